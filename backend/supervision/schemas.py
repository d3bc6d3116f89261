"""Request and response schemas of the supervision API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.cases.schemas import PageQuerySchema
from backend.supervision import service
from shared.enums import WarningStatus
from shared.rules import KINDS, SEVERITIES

NAME = validate.Regexp(r"^[a-z][a-z0-9_]{0,47}$", error="A lowercase fact name.")
FACT_TIME = validate.Range(
    datetime(1990, 1, 1, tzinfo=UTC),
    datetime(2100, 1, 1, tzinfo=UTC),
    error="A fact's time lies between 1990 and 2100.",
)


def flat_scalars(data: dict[str, Any]) -> None:
    """Fact data: at most 32 scalar values (booleans, integers, short texts without NUL)."""
    if len(data) > 32:
        raise ma.ValidationError("At most 32 entries.")
    for key, value in data.items():
        if "\x00" in key:
            raise ma.ValidationError("Keys contain no NUL characters.")
        if isinstance(value, float) or not isinstance(value, bool | int | str | None):
            raise ma.ValidationError(f"{key}: a boolean, an integer, a text or null.")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**31:
            raise ma.ValidationError(f"{key}: the integer is out of range.")
        if isinstance(value, str) and ("\x00" in value or len(value) > 500):
            raise ma.ValidationError(f"{key}: at most 500 characters, no NUL.")


class TextsSchema(Schema):
    zh = ma.fields.String()
    en = ma.fields.String()


class WarningSchema(Schema):
    id = ma.fields.UUID()
    rule_id = ma.fields.String()
    case_id = ma.fields.UUID()
    case_number = ma.fields.String()
    unit_id = ma.fields.UUID()
    handler_id = ma.fields.UUID()
    key = ma.fields.String(metadata={"description": "The deadline or fact the warning is about"})
    kind = ma.fields.String(metadata={"description": "warning, alert, completeness or quality"})
    severity = ma.fields.String()
    due_at = ma.fields.DateTime(allow_none=True)
    status = ma.fields.Enum(WarningStatus, by_value=True)
    level = ma.fields.Integer(
        metadata={"description": "0: handler; 1: escalated to legal officers; 2: to the centre"}
    )
    message = ma.fields.Method("_message", metadata={"description": "Rendered in zh and en"})
    rule_name = ma.fields.Method("_rule_name")
    unverified = ma.fields.Method("_unverified")
    created_at = ma.fields.DateTime()
    changed_at = ma.fields.DateTime()
    acknowledged_by = ma.fields.UUID(allow_none=True)
    acknowledged_at = ma.fields.DateTime(allow_none=True)
    resolved_by = ma.fields.UUID(allow_none=True)
    resolved_at = ma.fields.DateTime(allow_none=True)
    resolution_note = ma.fields.String(allow_none=True)

    def _message(self, warning: Any) -> dict[str, str]:
        return service.render(warning)

    def _rule_name(self, warning: Any) -> dict[str, str]:
        rule = service.pack().rules.get(warning.rule_id)
        return rule.name if rule else {"zh": warning.rule_id, "en": warning.rule_id}

    def _unverified(self, warning: Any) -> bool:
        rule = service.pack().rules.get(warning.rule_id)
        return bool(rule and rule.unverified)


class WarningPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(WarningSchema))
    next_cursor = ma.fields.String(allow_none=True)


class WarningQuerySchema(PageQuerySchema):
    mine = ma.fields.Boolean(
        load_default=False, metadata={"description": "Only warnings on cases you handle"}
    )
    status = ma.fields.List(ma.fields.Enum(WarningStatus, by_value=True), load_default=None)
    case_id = ma.fields.UUID(load_default=None)
    unit_id = ma.fields.UUID(load_default=None)
    rule_id = Text(load_default=None, validate=validate.Length(1, 64))
    kind = ma.fields.String(load_default=None, validate=validate.OneOf(KINDS))
    severity = ma.fields.String(load_default=None, validate=validate.OneOf(SEVERITIES))


class ResolveSchema(Schema):
    note = Text(required=True, validate=validate.Length(1, 2000))


class FeedQuerySchema(Schema):
    since = ma.fields.String(
        load_default=None,
        validate=validate.Length(1, 400),
        metadata={"description": "The next_cursor of your last poll; absent: from the start"},
    )
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(1, 500))


class FeedStepSchema(Schema):
    case_number = ma.fields.String()
    action = ma.fields.String(allow_none=True)
    comment = ma.fields.String(allow_none=True)
    seq = ma.fields.Integer()


class FeedApprovalSchema(Schema):
    id = ma.fields.UUID()
    action = ma.fields.String()
    role = ma.fields.String()
    stage = ma.fields.Integer()


class FeedItemSchema(Schema):
    type = ma.fields.String(metadata={"description": "warning, step_returned or approval"})
    id = ma.fields.String()
    at = ma.fields.DateTime()
    case_id = ma.fields.UUID()
    warning = ma.fields.Nested(WarningSchema)
    step = ma.fields.Nested(FeedStepSchema)
    approval = ma.fields.Nested(FeedApprovalSchema)


class FeedSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(FeedItemSchema))
    next_cursor = ma.fields.String(allow_none=True)
    more = ma.fields.Boolean()


class FactCreateSchema(Schema):
    kind = ma.fields.String(required=True, validate=NAME)
    subject = Text(load_default="", validate=validate.Length(0, 64))
    started_at = ma.fields.AwareDateTime(required=True, validate=FACT_TIME)
    ended_at = ma.fields.AwareDateTime(load_default=None, validate=FACT_TIME)
    data = ma.fields.Dict(
        keys=Text(validate=validate.Length(1, 48)),
        load_default=dict,
        validate=flat_scalars,
        metadata={"description": "Scalar details the rules test (officers, minor, ...)"},
    )


class FactSchema(Schema):
    id = ma.fields.UUID()
    case_id = ma.fields.UUID()
    event_seq = ma.fields.Integer()
    kind = ma.fields.String()
    subject = ma.fields.String()
    started_at = ma.fields.DateTime()
    ended_at = ma.fields.DateTime(allow_none=True)
    data = ma.fields.Dict()


class DeadlineSchema(Schema):
    id = ma.fields.UUID()
    rule_id = ma.fields.String()
    fact_id = ma.fields.UUID()
    subject = ma.fields.String()
    starts_at = ma.fields.DateTime()
    due_at = ma.fields.DateTime()
    warn_at = ma.fields.DateTime()


class CaseSupervisionSchema(Schema):
    facts = ma.fields.List(ma.fields.Nested(FactSchema))
    deadlines = ma.fields.List(ma.fields.Nested(DeadlineSchema))
