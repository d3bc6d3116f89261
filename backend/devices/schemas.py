from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text

DEVICE_ID = validate.Regexp(r"^[A-Za-z0-9._:-]{1,64}$")


class DeviceSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    device_id = ma.fields.String(dump_only=True)
    user_id = ma.fields.UUID(dump_only=True)
    unit_id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String(dump_only=True)
    public_key = ma.fields.String(dump_only=True)
    active = ma.fields.Boolean(dump_only=True)
    enrolled_at = ma.fields.DateTime(dump_only=True)
    revoked_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    revoked_reason = ma.fields.String(dump_only=True, allow_none=True)


class EnrollSchema(Schema):
    device_id = ma.fields.String(
        required=True,
        validate=DEVICE_ID,
        metadata={"description": "The id the device sends as X-Device-Id"},
    )
    name = Text(required=True, validate=validate.Length(1, 120))
    public_key = ma.fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9+/]{43}=$"),
        metadata={"description": "Raw Ed25519 public key, base64 (32 bytes)"},
    )


class RevokeSchema(Schema):
    reason = Text(required=True, validate=validate.Length(1, 500))
