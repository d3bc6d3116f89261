"""Workflow definitions, case steps and approvals."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.cases import service as cases
from backend.workflow import service
from backend.workflow.models import Approval
from backend.workflow.schemas import (
    ApprovalDetailSchema,
    ApprovalPageSchema,
    ApprovalQuerySchema,
    CaseActionSchema,
    DecisionSchema,
    StepOutcomeSchema,
    TransitionSchema,
    WorkflowSchema,
)
from shared.enums import CASE_READER_ROLES, Role
from shared.workflow import Workflow, load_workflows

blp = Blueprint("workflow", __name__, url_prefix="/api/v1", description="Workflows and approvals")

ETAG_HEADER = {"ETag": {"schema": {"type": "string"}}}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string"},
    "description": "The case's ETag, as read with the case",
}


@blp.route("/workflows")
@blp.response(200, WorkflowSchema(many=True))
def list_workflows() -> list[Workflow]:
    """The administrative and criminal workflows: states, actions, approvals, inputs."""
    return list(load_workflows().values())


@blp.route("/cases/<uuid:case_id>/actions")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, CaseActionSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_actions(case_id: uuid.UUID) -> list[service.CaseAction]:
    """What you may request on this case now, with the required documents still unsigned."""
    user = current_user()
    return service.available_actions(user, cases.get_case(user, case_id))


@blp.route("/cases/<uuid:case_id>/transitions", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(TransitionSchema)
@blp.response(200, StepOutcomeSchema, description="Applied at once", headers=ETAG_HEADER)
@blp.alt_response(202, schema=StepOutcomeSchema, description="Waiting for approval")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(428, response="PRECONDITION_REQUIRED")
@blp.doc(parameters=[IF_MATCH])
def request_transition(data: dict[str, Any], case_id: uuid.UUID) -> Any:
    """Request a workflow step; needs ``If-Match`` with the case's ETag.

    A step that needs no approval is applied at once (200); otherwise it waits
    for its approvals (202).
    """
    user = current_user()
    case = cases.get_case(user, case_id, for_update=True)
    service.check_if_match(case, request.headers.get("If-Match"))
    outcome = service.request_step(
        user, case, action_name=data["action"], comment=data["comment"], payload=data["payload"]
    )
    return outcome, 200 if outcome.outcome == "applied" else 202, {"ETag": case.etag}


@blp.route("/approvals")
@roles_required(Role.LEGAL_OFFICER, Role.LEADER)
@blp.arguments(ApprovalQuerySchema, location="query")
@blp.response(200, ApprovalPageSchema)
def list_approvals(query: dict[str, Any]) -> dict[str, Any]:
    """Approvals for your roles in your units, e.g. ``?status=pending``."""
    return service.list_approvals(current_user(), query["status"], query["cursor"], query["limit"])


@blp.route("/approvals/<uuid:approval_id>")
@roles_required(Role.LEGAL_OFFICER, Role.LEADER)
@blp.response(200, ApprovalDetailSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_approval(approval_id: uuid.UUID) -> Approval:
    return service.get_approval(current_user(), approval_id)


@blp.route("/approvals/<uuid:approval_id>/decision", methods=["POST"])
@roles_required(Role.LEGAL_OFFICER, Role.LEADER)
@blp.arguments(DecisionSchema)
@blp.response(200, StepOutcomeSchema, headers=ETAG_HEADER)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def decide(data: dict[str, Any], approval_id: uuid.UUID) -> Any:
    """Approve, or return to the handler with a comment. Each approval is decided once."""
    user = current_user()
    approval = service.get_approval(user, approval_id)
    audit.target("approval", approval.id)
    outcome = service.decide(user, approval, data["decision"], data["comment"])
    return outcome, 200, {"ETag": outcome.case.etag}
