"""Request and response schemas of the inspection and case-handling area API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.cases.schemas import ID_NUMBER, PageQuerySchema
from backend.inspection.models import (
    CATEGORY_CODES,
    AreaPurpose,
    InspectionResult,
    ProblemStatus,
    RectificationKind,
)
from shared.enums import UnitTier

MOMENT = validate.Range(
    datetime(1990, 1, 1, tzinfo=UTC),
    datetime(2100, 1, 1, tzinfo=UTC),
    error="A time between 1990 and 2100.",
)
REFERENCES = validate.Length(max=50)


class StrictBoolean(ma.fields.Boolean):
    """A JSON boolean: ``true`` or ``false``, not 0, 1 or a string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class ReasonSchema(Schema):
    reason = Text(required=True, validate=validate.Length(1, 2000))


class KeyIncidentSchema(Schema):
    id = ma.fields.UUID()
    incident_id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    reason = ma.fields.String()
    marked_by = ma.fields.UUID()
    created_at = ma.fields.DateTime()


class KeyIncidentPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(KeyIncidentSchema))
    next_cursor = ma.fields.String(allow_none=True)


class UnitPageQuerySchema(PageQuerySchema):
    unit_id = ma.fields.UUID(
        load_default=None, metadata={"description": "One of your units: its whole subtree"}
    )


class InspectionCreateSchema(Schema):
    result = ma.fields.Enum(InspectionResult, by_value=True, required=True)
    note = Text(load_default="", validate=validate.Length(0, 5000))


class InspectionSchema(Schema):
    id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    case_id = ma.fields.UUID(allow_none=True)
    incident_id = ma.fields.UUID(allow_none=True)
    result = ma.fields.Enum(InspectionResult, by_value=True)
    note = ma.fields.String()
    inspector_id = ma.fields.UUID()
    created_at = ma.fields.DateTime()


class InspectionPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(InspectionSchema))
    next_cursor = ma.fields.String(allow_none=True)


class InspectionQuerySchema(UnitPageQuerySchema):
    case_id = ma.fields.UUID(load_default=None)
    incident_id = ma.fields.UUID(load_default=None)
    result = ma.fields.Enum(InspectionResult, by_value=True, load_default=None)


class CategorySchema(Schema):
    code = ma.fields.String()
    zh = ma.fields.String()
    en = ma.fields.String()


class ProblemCreateSchema(Schema):
    case_id = ma.fields.UUID(load_default=None, metadata={"description": "The case, or..."})
    incident_id = ma.fields.UUID(load_default=None, metadata={"description": "...the incident"})
    inspection_id = ma.fields.UUID(
        load_default=None, metadata={"description": "The inspection that found it"}
    )
    category = ma.fields.String(required=True, validate=validate.OneOf(CATEGORY_CODES))
    description = Text(required=True, validate=validate.Length(1, 5000))
    responsible_id = ma.fields.UUID(
        required=True, metadata={"description": "An officer of the case's unit"}
    )
    deadline = ma.fields.AwareDateTime(required=True, validate=MOMENT)


class RectificationSchema(Schema):
    id = ma.fields.UUID()
    kind = ma.fields.Enum(RectificationKind, by_value=True)
    actor_id = ma.fields.UUID()
    note = ma.fields.String()
    evidence_ids = ma.fields.List(ma.fields.String())
    document_ids = ma.fields.List(ma.fields.String())
    created_at = ma.fields.DateTime()


class FoundProblemSchema(Schema):
    id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    case_id = ma.fields.UUID(allow_none=True)
    incident_id = ma.fields.UUID(allow_none=True)
    inspection_id = ma.fields.UUID(allow_none=True)
    category = ma.fields.String()
    description = ma.fields.String()
    responsible_id = ma.fields.UUID()
    deadline = ma.fields.DateTime()
    status = ma.fields.Enum(ProblemStatus, by_value=True)
    filed_by = ma.fields.UUID()
    created_at = ma.fields.DateTime()
    closed_at = ma.fields.DateTime(allow_none=True)


class FoundProblemDetailSchema(FoundProblemSchema):
    rectifications = ma.fields.List(ma.fields.Nested(RectificationSchema))


class ProblemPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(FoundProblemSchema))
    next_cursor = ma.fields.String(allow_none=True)


class ProblemQuerySchema(UnitPageQuerySchema):
    case_id = ma.fields.UUID(load_default=None)
    incident_id = ma.fields.UUID(load_default=None)
    responsible_id = ma.fields.UUID(load_default=None)
    category = ma.fields.String(load_default=None, validate=validate.OneOf(CATEGORY_CODES))
    status = ma.fields.Enum(ProblemStatus, by_value=True, load_default=None)
    mine = ma.fields.Boolean(
        load_default=False, metadata={"description": "Only problems you are responsible for"}
    )
    overdue = ma.fields.Boolean(
        load_default=None, metadata={"description": "Not closed and past the deadline (or not)"}
    )


class RectificationCreateSchema(Schema):
    note = Text(required=True, validate=validate.Length(1, 5000))
    evidence_ids = ma.fields.List(ma.fields.UUID(), load_default=list, validate=REFERENCES)
    document_ids = ma.fields.List(ma.fields.UUID(), load_default=list, validate=REFERENCES)


class ReviewSchema(Schema):
    decision = ma.fields.String(required=True, validate=validate.OneOf(["accept", "return"]))
    comment = Text(load_default="", validate=validate.Length(0, 5000))

    @ma.validates_schema
    def _returned_with_comment(self, data: dict[str, object], **_: object) -> None:
        if data["decision"] == "return" and not data["comment"]:
            raise ma.ValidationError("Say what is still wrong.", "comment")


class ReportQuerySchema(Schema):
    unit_id = ma.fields.UUID(load_default=None, metadata={"description": "Default: your unit"})
    from_ = ma.fields.Date(required=True, data_key="from", metadata={"description": "Local date"})
    to = ma.fields.Date(required=True, metadata={"description": "Local date, inclusive"})


class CountsSchema(Schema):
    found = ma.fields.Integer()
    rectified = ma.fields.Integer(metadata={"description": "Of those found, closed"})
    overdue = ma.fields.Integer(
        metadata={"description": "Of those found, closed late or open past the deadline"}
    )


class UnitCountsSchema(CountsSchema):
    unit_id = ma.fields.UUID()
    code = ma.fields.String()
    name = ma.fields.String()
    tier = ma.fields.Enum(UnitTier, by_value=True)
    parent_id = ma.fields.UUID(allow_none=True)


class CategoryCountsSchema(CountsSchema):
    code = ma.fields.String()
    zh = ma.fields.String()
    en = ma.fields.String()


class ReportSchema(Schema):
    unit_id = ma.fields.UUID()
    from_ = ma.fields.Date(data_key="from")
    to = ma.fields.Date()
    totals = ma.fields.Nested(CountsSchema)
    units = ma.fields.List(
        ma.fields.Nested(UnitCountsSchema), metadata={"description": "Each counts its subtree"}
    )
    categories = ma.fields.List(ma.fields.Nested(CategoryCountsSchema))


class AreaEntryCreateSchema(Schema):
    id = ma.fields.UUID(
        load_default=None, metadata={"description": "Client-generated id (offline)"}
    )
    name = Text(required=True, validate=validate.Length(1, 120))
    id_number = ma.fields.String(load_default=None, validate=ID_NUMBER)
    case_id = ma.fields.UUID(load_default=None)
    person_id = ma.fields.UUID(load_default=None, metadata={"description": "A person of the case"})
    purpose = ma.fields.Enum(
        AreaPurpose,
        by_value=True,
        load_default=AreaPurpose.OTHER,
        metadata={"description": "questioning and continued_questioning start their time limit"},
    )
    reason = Text(required=True, validate=validate.Length(1, 2000))
    room = Text(required=True, validate=validate.Length(1, 64))
    escort_ids = ma.fields.List(
        ma.fields.UUID(), load_default=list, validate=validate.Length(max=10)
    )
    detention_possible = StrictBoolean(load_default=False)
    many_or_identity_unknown = StrictBoolean(load_default=False)
    entered_at = ma.fields.AwareDateTime(
        load_default=None, validate=MOMENT, metadata={"description": "Default: now"}
    )


class AreaExitSchema(Schema):
    exited_at = ma.fields.AwareDateTime(
        load_default=None, validate=MOMENT, metadata={"description": "Default: now"}
    )
    note = Text(load_default=None, validate=validate.Length(0, 2000))


class AreaEntrySchema(Schema):
    id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    case_id = ma.fields.UUID(allow_none=True)
    person_id = ma.fields.UUID(allow_none=True)
    name = ma.fields.String()
    id_number = ma.fields.String(allow_none=True, metadata={"description": "Masked"})
    purpose = ma.fields.Enum(AreaPurpose, by_value=True)
    reason = ma.fields.String()
    room = ma.fields.String()
    escort_ids = ma.fields.List(ma.fields.String())
    detention_possible = ma.fields.Boolean()
    many_or_identity_unknown = ma.fields.Boolean()
    entered_at = ma.fields.DateTime()
    exited_at = ma.fields.DateTime(allow_none=True)
    exit_note = ma.fields.String(allow_none=True)
    inside = ma.fields.Boolean()
    created_by = ma.fields.UUID()
    exited_by = ma.fields.UUID(allow_none=True)
    created_at = ma.fields.DateTime()


class AreaEntryPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(AreaEntrySchema))
    next_cursor = ma.fields.String(allow_none=True)


class AreaEntryQuerySchema(UnitPageQuerySchema):
    inside = ma.fields.Boolean(load_default=None, metadata={"description": "Still in the area"})
    date = ma.fields.Date(load_default=None, metadata={"description": "Local date of entry"})
    case_id = ma.fields.UUID(load_default=None)
