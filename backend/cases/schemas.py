from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.config import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from shared.enums import CaseType, IncidentStatus, PersonRole

ID_NUMBER = validate.Regexp(r"^[0-9A-Za-z]{6,32}$")
PHONE = validate.Regexp(r"^\+?[0-9 -]{3,32}$")
# Instants that have a date in UTC too, whatever their offset
INSTANT = validate.Range(datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
SEQ = validate.Range(0, 2**31 - 1)  # a 32-bit column


class PageQuerySchema(Schema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(1, MAX_PAGE_SIZE),
        metadata={"description": f"Items per page, 1 to {MAX_PAGE_SIZE}"},
    )
    cursor = ma.fields.String(
        load_default=None,
        validate=validate.Length(1, 200),
        metadata={"description": "Opaque: the previous page's ``next_cursor``"},
    )


class ReporterSchema(Schema):
    name = Text(required=True, validate=validate.Length(1, 120))
    phone = ma.fields.String(load_default=None, validate=PHONE)
    id_number = ma.fields.String(load_default=None, validate=ID_NUMBER)


class IncidentCreateSchema(Schema):
    id = ma.fields.UUID(
        load_default=None, metadata={"description": "Client-generated id (offline)"}
    )
    occurred_at = ma.fields.AwareDateTime(required=True, validate=INSTANT)
    place = Text(required=True, validate=validate.Length(1, 300))
    latitude = ma.fields.Float(load_default=None, validate=validate.Range(-90, 90))
    longitude = ma.fields.Float(load_default=None, validate=validate.Range(-180, 180))
    source = ma.fields.String(
        load_default="patrol", validate=validate.OneOf(["dispatch", "walk_in", "patrol"])
    )
    category = Text(required=True, validate=validate.Length(1, 64))
    summary = Text(required=True, validate=validate.Length(1, 5000))
    reporter = ma.fields.Nested(ReporterSchema, load_default=None)


class IncidentSchema(Schema):
    id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    occurred_at = ma.fields.DateTime()
    place = ma.fields.String()
    latitude = ma.fields.Float(allow_none=True)
    longitude = ma.fields.Float(allow_none=True)
    source = ma.fields.String()
    category = ma.fields.String()
    summary = ma.fields.String()
    reporter_name = ma.fields.String(allow_none=True)
    status = ma.fields.Enum(IncidentStatus, by_value=True)
    closed_reason = ma.fields.String(allow_none=True)
    case_id = ma.fields.UUID(allow_none=True)
    created_by = ma.fields.UUID()
    created_at = ma.fields.DateTime()


class IncidentPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(IncidentSchema))
    next_cursor = ma.fields.String(allow_none=True)


class IncidentQuerySchema(PageQuerySchema):
    status = ma.fields.Enum(IncidentStatus, by_value=True, load_default=None)


class AcceptSchema(Schema):
    case_id = ma.fields.UUID(load_default=None, metadata={"description": "Client-generated id"})
    case_type = ma.fields.Enum(CaseType, by_value=True, required=True)
    title = Text(required=True, validate=validate.Length(1, 200))


class CloseIncidentSchema(Schema):
    reason = Text(required=True, validate=validate.Length(1, 2000))


class PendingRequestSchema(Schema):
    id = ma.fields.UUID()
    action = ma.fields.String()
    stage = ma.fields.Integer()


class CaseSchema(Schema):
    id = ma.fields.UUID()
    number = ma.fields.String()
    unit_id = ma.fields.UUID()
    case_type = ma.fields.Enum(CaseType, by_value=True)
    status = ma.fields.String()
    is_open = ma.fields.Boolean()
    title = ma.fields.String()
    summary = ma.fields.String()
    handler_id = ma.fields.UUID()
    incident_id = ma.fields.UUID(allow_none=True)
    pending_request_id = ma.fields.UUID(allow_none=True)
    due_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    version = ma.fields.Integer()


class CasePageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(CaseSchema))
    next_cursor = ma.fields.String(allow_none=True)


class CaseQuerySchema(PageQuerySchema):
    status = ma.fields.List(Text(validate=validate.Length(1, 40)), load_default=None)
    case_type = ma.fields.Enum(CaseType, by_value=True, load_default=None)
    unit_id = ma.fields.UUID(load_default=None)
    handler_id = ma.fields.UUID(load_default=None)
    open = ma.fields.Boolean(load_default=None)
    overdue = ma.fields.Boolean(load_default=None)
    q = Text(load_default=None, validate=validate.Length(1, 100))


class EventSchema(Schema):
    seq = ma.fields.Integer()
    type = ma.fields.String()
    at = ma.fields.DateTime()
    actor_id = ma.fields.UUID()
    action = ma.fields.String(allow_none=True)
    from_state = ma.fields.String(allow_none=True)
    to_state = ma.fields.String(allow_none=True)
    request_id = ma.fields.UUID(allow_none=True)
    comment = ma.fields.String(allow_none=True)
    payload = ma.fields.Dict()


class EventQuerySchema(Schema):
    after = ma.fields.Integer(load_default=0, validate=SEQ)
    limit = ma.fields.Integer(load_default=500, validate=validate.Range(1, 1000))


class PersonCreateSchema(Schema):
    id = ma.fields.UUID(load_default=None, metadata={"description": "Client-generated id"})
    role = ma.fields.Enum(PersonRole, by_value=True, required=True)
    name = Text(required=True, validate=validate.Length(1, 120))
    id_number = ma.fields.String(load_default=None, validate=ID_NUMBER)
    phone = ma.fields.String(load_default=None, validate=PHONE)
    address = Text(load_default=None, validate=validate.Length(1, 300))


class PersonSchema(Schema):
    id = ma.fields.UUID()
    case_id = ma.fields.UUID()
    role = ma.fields.Enum(PersonRole, by_value=True)
    name = ma.fields.String()
    id_number = ma.fields.String(allow_none=True)
    phone = ma.fields.String(allow_none=True)
    address = ma.fields.String(allow_none=True)
    masked = ma.fields.Boolean(metadata={"description": "Identity data is masked"})
    created_at = ma.fields.DateTime()


class RevealSchema(Schema):
    reason = Text(required=True, validate=validate.Length(5, 500))
