from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.org.service import MIN_PASSWORD_LENGTH
from shared.enums import Role, UnitTier

PASSWORD = validate.Length(MIN_PASSWORD_LENGTH, 256)


class UnitSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    code = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    name_en = ma.fields.String(dump_only=True, allow_none=True)
    tier = ma.fields.Enum(UnitTier, by_value=True, dump_only=True)
    parent_id = ma.fields.UUID(dump_only=True, allow_none=True)


class UnitCreateSchema(Schema):
    id = ma.fields.UUID(load_default=None, metadata={"description": "Client-chosen id"})
    code = ma.fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9-]{2,32}$"))
    name = Text(required=True, validate=validate.Length(1, 200))
    name_en = Text(load_default=None, validate=validate.Length(1, 200))
    tier = ma.fields.Enum(UnitTier, by_value=True, required=True)
    parent_id = ma.fields.UUID(required=True)


class UnitUpdateSchema(Schema):
    name = Text(validate=validate.Length(1, 200))
    name_en = Text(allow_none=True, validate=validate.Length(1, 200))


class UserSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    username = ma.fields.String(dump_only=True)
    display_name = ma.fields.String(dump_only=True)
    unit_id = ma.fields.UUID(dump_only=True)
    roles = ma.fields.List(ma.fields.Enum(Role, by_value=True), dump_only=True)
    active = ma.fields.Boolean(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)


class MeSchema(UserSchema):
    unit = ma.fields.Nested(UnitSchema, dump_only=True)


class UserCreateSchema(Schema):
    username = ma.fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9._-]{3,64}$"))
    display_name = Text(required=True, validate=validate.Length(1, 120))
    password = ma.fields.String(required=True, load_only=True, validate=PASSWORD)
    unit_id = ma.fields.UUID(required=True)
    roles = ma.fields.List(
        ma.fields.Enum(Role, by_value=True), required=True, validate=validate.Length(1, len(Role))
    )


class UserUpdateSchema(Schema):
    display_name = Text(validate=validate.Length(1, 120))
    password = ma.fields.String(load_only=True, validate=PASSWORD)
    unit_id = ma.fields.UUID()
    roles = ma.fields.List(
        ma.fields.Enum(Role, by_value=True), validate=validate.Length(1, len(Role))
    )
    active = ma.fields.Boolean()


class UserQuerySchema(Schema):
    unit_id = ma.fields.UUID()
