from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.org.schemas import MeSchema


class LoginSchema(Schema):
    username = Text(required=True, validate=validate.Length(1, 64))
    password = ma.fields.String(required=True, load_only=True, validate=validate.Length(1, 256))
    device_id = ma.fields.String(
        load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9._:-]{1,64}$")
    )


class RefreshSchema(Schema):
    refresh_token = ma.fields.String(required=True, validate=validate.Length(1, 4096))


class TokenPairSchema(Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.Constant("Bearer")
    expires_in = ma.fields.Integer(metadata={"description": "Access token lifetime, seconds"})
    user = ma.fields.Nested(MeSchema)
