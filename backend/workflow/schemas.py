from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.cases.schemas import CaseSchema, PageQuerySchema
from shared.enums import ApprovalStatus, Decision, RequestStatus, Role


class LabelField(ma.fields.Dict):
    """A workflow name in both languages: ``{"zh": ..., "en": ...}``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(keys=ma.fields.String(), values=ma.fields.String(), **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return super()._serialize(value.as_dict(), attr, obj, **kwargs)


class InputSpecSchema(Schema):
    name = ma.fields.String()
    type = ma.fields.String()
    required = ma.fields.Boolean()
    choices = ma.fields.List(ma.fields.String())
    label = LabelField()


class ApprovalStageSchema(Schema):
    role = ma.fields.Enum(Role, by_value=True)
    state = ma.fields.String(allow_none=True)


class ActionSpecSchema(Schema):
    name = ma.fields.String()
    label = LabelField()
    sources = ma.fields.List(ma.fields.String(), data_key="from")
    target = ma.fields.String(data_key="to")
    roles = ma.fields.Method("dump_roles")
    approvals = ma.fields.List(ma.fields.Nested(ApprovalStageSchema))
    inputs = ma.fields.List(ma.fields.Nested(InputSpecSchema))
    requires_signed = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "Document kinds the case must hold signed before any approval "
            "stage of the step can be approved"
        },
    )

    def dump_roles(self, obj: object) -> list[str]:
        return sorted(obj.roles)  # type: ignore[attr-defined]


class CaseActionSchema(ActionSpecSchema):
    missing_signed = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "Of requires_signed, the kinds with no signed document in this case "
            "yet: the step may be requested, but not approved before they are signed"
        },
    )


class StateSpecSchema(Schema):
    name = ma.fields.String()
    label = LabelField()
    terminal = ma.fields.Boolean()
    deadline_hours = ma.fields.Integer(allow_none=True)
    basis = ma.fields.String(allow_none=True)


class WorkflowSchema(Schema):
    case_type = ma.fields.String()
    label = LabelField()
    initial = ma.fields.String()
    states = ma.fields.Method("dump_states")
    actions = ma.fields.Method("dump_actions")

    def dump_states(self, obj: object) -> list[dict]:
        return StateSpecSchema(many=True).dump(obj.states.values())  # type: ignore[attr-defined]

    def dump_actions(self, obj: object) -> list[dict]:
        return ActionSpecSchema(many=True).dump(obj.actions.values())  # type: ignore[attr-defined]


class TransitionSchema(Schema):
    action = ma.fields.String(required=True, validate=validate.Length(1, 64))
    comment = Text(load_default=None, validate=validate.Length(max=5000))
    payload = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)


class StepRequestSchema(Schema):
    id = ma.fields.UUID()
    case_id = ma.fields.UUID()
    action = ma.fields.String()
    from_state = ma.fields.String()
    to_state = ma.fields.String()
    requested_by = ma.fields.UUID()
    requested_at = ma.fields.DateTime()
    comment = ma.fields.String(allow_none=True)
    payload = ma.fields.Dict()
    status = ma.fields.Enum(RequestStatus, by_value=True)
    stage = ma.fields.Integer()


class StepOutcomeSchema(Schema):
    outcome = ma.fields.String(
        metadata={"description": "applied, pending (waiting for approval) or returned"}
    )
    case = ma.fields.Nested(CaseSchema)
    request = ma.fields.Nested(StepRequestSchema, allow_none=True)


class ApprovalSchema(Schema):
    id = ma.fields.UUID()
    request_id = ma.fields.UUID()
    case_id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    stage = ma.fields.Integer()
    role = ma.fields.Enum(Role, by_value=True)
    status = ma.fields.Enum(ApprovalStatus, by_value=True)
    created_at = ma.fields.DateTime()
    decided_by = ma.fields.UUID(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)
    comment = ma.fields.String(allow_none=True)


class ApprovalDetailSchema(ApprovalSchema):
    request = ma.fields.Nested(StepRequestSchema)
    case = ma.fields.Nested(CaseSchema)


class ApprovalPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(ApprovalDetailSchema))
    next_cursor = ma.fields.String(allow_none=True)


class ApprovalQuerySchema(PageQuerySchema):
    status = ma.fields.Enum(ApprovalStatus, by_value=True, load_default=None)


class DecisionSchema(Schema):
    decision = ma.fields.Enum(Decision, by_value=True, required=True)
    comment = Text(load_default=None, validate=validate.Length(max=5000))
