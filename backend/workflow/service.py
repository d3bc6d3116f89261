"""Workflow steps: requests, approvals and applying transitions.

A step whose action needs no approval is applied at once. Otherwise a
``StepRequest`` opens with one pending ``Approval`` per stage, decided in order;
the last approval applies the transition, a return sends the case back to the
handler. Every request, decision and state change is a case event written in
the same transaction.

An action that requires signed documents (``requires_signed``) may be
requested at any time, so that the officer can prepare the decision while the
party still has to sign; each of its stages is refused approval (409
``documents-unsigned``) until the case holds a signed document of every kind
named. Returning the step stays possible.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from backend.cases import service as cases
from backend.cases.models import Case, CasePerson
from backend.common import utcnow
from backend.documents import service as documents
from backend.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from backend.extensions import db
from backend.org.models import User
from backend.org.service import visible_unit_ids
from backend.pagination import keyset_page
from backend.workflow.models import Approval, StepRequest
from shared.enums import ApprovalStatus, Decision, RequestStatus
from shared.templates import load_catalogue
from shared.workflow import Action, Workflow, workflow_for


@dataclass(frozen=True)
class StepOutcome:
    outcome: str
    case: Case
    request: StepRequest | None


@dataclass(frozen=True)
class CaseAction(Action):
    """An action as offered on one case: with the required documents it still lacks."""

    missing_signed: tuple[str, ...] = ()


def check_if_match(case: Case, if_match: str | None) -> None:
    """Optimistic concurrency (checklist W3): 428 without If-Match, 412 when stale."""
    if not if_match:
        raise PreconditionRequired("Send If-Match with the case's current ETag.")
    if case.etag not in [tag.strip() for tag in if_match.split(",")]:
        raise PreconditionFailed("The case has changed since you read it.", current_etag=case.etag)


def available_actions(user: User, case: Case) -> list[CaseAction]:
    workflow = workflow_for(case.case_type)
    if case.pending_request_id or workflow.is_terminal(case.status):
        return []
    offered = [a for a in workflow.actions_from(case.status) if user.has_role(*a.roles)]
    signed = documents.signed_kinds(case.id) if any(a.requires_signed for a in offered) else set()
    return [
        CaseAction(
            **{f.name: getattr(action, f.name) for f in fields(Action)},
            missing_signed=_unsigned(action, signed),
        )
        for action in offered
    ]


def _unsigned(action: Action, signed: set[str]) -> tuple[str, ...]:
    return tuple(kind for kind in action.requires_signed if kind not in signed)


def _ensure_signed(case: Case, action: Action) -> None:
    """409 while the case lacks a signed document of a kind the action requires."""
    if not action.requires_signed:
        return
    missing = _unsigned(action, documents.signed_kinds(case.id))
    if missing:
        kinds = load_catalogue().kinds
        names = ", ".join(f"{kinds[k].label.en} ({kinds[k].label.zh})" for k in missing)
        raise Conflict(
            f"The step cannot be approved before these documents of the case are signed: {names}.",
            slug="documents-unsigned",
            missing_signed=list(missing),
        )


def _check_person_inputs(case: Case, action: Action, payload: dict[str, Any]) -> None:
    for spec in action.inputs:
        if spec.type != "person" or spec.name not in payload:
            continue
        try:
            person_id = uuid.UUID(payload[spec.name])
        except ValueError:
            person_id = None
        person = db.session.get(CasePerson, person_id) if person_id else None
        if person is None or person.case_id != case.id:
            raise Unprocessable(
                "The step names a person who is not in this case.",
                errors={"json": {"payload": {spec.name: ["No such person in this case."]}}},
            )


def request_step(
    user: User, case: Case, *, action_name: str, comment: str | None, payload: dict[str, Any]
) -> StepOutcome:
    workflow = workflow_for(case.case_type)
    action = workflow.actions.get(action_name)
    if action is None or action_name == cases.ACCEPT_ACTION:
        raise Unprocessable(
            f"{action_name!r} is not an action of the {case.case_type} workflow.",
            errors={"json": {"action": ["Unknown action."]}},
        )
    cases.ensure_open(case)
    if not user.has_role(*action.roles):
        raise Forbidden("Your role may not request this step.")
    if case.pending_request_id:
        raise Conflict("The case has a step waiting for approval.", slug="step-pending")
    if case.status not in action.sources:
        raise Conflict(
            f"{action_name!r} is not allowed while the case is {case.status}.",
            slug="action-not-allowed",
        )
    errors = action.payload_errors(payload)
    if errors:
        raise Unprocessable(
            "The step's inputs did not validate.", errors={"json": {"payload": errors}}
        )
    _check_person_inputs(case, action, payload)
    if not action.needs_approval:
        _apply(workflow, case, user, action.name, action.target, comment, payload, None)
        return StepOutcome("applied", case, None)
    request = StepRequest(
        case_id=case.id,
        action=action.name,
        from_state=case.status,
        to_state=action.target,
        requested_by=user.id,
        comment=comment,
        payload=payload,
    )
    db.session.add(request)
    db.session.flush()
    case.pending_request_id = request.id
    _open_stage(case, request, action, 0)
    cases.append_event(
        case,
        "step_requested",
        user,
        action=action.name,
        from_state=request.from_state,
        to_state=case.status,
        request_id=request.id,
        comment=comment,
        payload=payload,
    )
    return StepOutcome("pending", case, request)


def _open_stage(case: Case, request: StepRequest, action: Action, stage: int) -> None:
    spec = action.approvals[stage]
    request.stage = stage
    db.session.add(
        Approval(
            request_id=request.id,
            case_id=case.id,
            unit_id=case.unit_id,
            stage=stage,
            role=spec.role,
        )
    )
    case.status = spec.state or request.from_state


def _apply(
    workflow: Workflow,
    case: Case,
    actor: User,
    action: str,
    target: str,
    comment: str | None,
    payload: dict[str, Any],
    request: StepRequest | None,
) -> None:
    from_state = request.from_state if request else case.status
    now = utcnow()
    case.due_at = cases.deadline_for(workflow, target, now, case.due_at)
    case.status = target
    case.is_open = not workflow.is_terminal(target)
    cases.append_event(
        case,
        "transition",
        actor,
        action=action,
        from_state=from_state,
        to_state=target,
        request_id=request.id if request else None,
        comment=comment,
        payload=payload,
    )


def get_approval(user: User, approval_id: uuid.UUID) -> Approval:
    approval = db.session.get(Approval, approval_id)
    if approval is None or approval.unit_id not in visible_unit_ids(user):
        raise NotFound("No such approval.")
    return approval


def pending_approval(request: StepRequest) -> Approval:
    return db.session.scalars(
        sa.select(Approval).where(
            Approval.request_id == request.id, Approval.status == ApprovalStatus.PENDING
        )
    ).one()


def list_approvals(
    user: User, status: ApprovalStatus | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    """Approvals for the caller's roles in the caller's units."""
    query = sa.select(Approval).where(
        Approval.unit_id.in_(visible_unit_ids(user)), Approval.role.in_(user.roles)
    )
    if status:
        query = query.where(Approval.status == status)
    return keyset_page(query, Approval, cursor, limit)


def decide(user: User, approval: Approval, decision: Decision, comment: str | None) -> StepOutcome:
    """Record one decision. Of concurrent decisions on one approval exactly one wins."""
    if not user.has_role(approval.role):
        raise Forbidden(f"This stage needs a {approval.role}.")
    request = db.session.get_one(StepRequest, approval.request_id)
    if request.requested_by == user.id:
        raise Forbidden("You cannot decide on a step you requested.")
    if decision == Decision.RETURN and not (comment and comment.strip()):
        raise Unprocessable(
            "A returned step needs a comment for the handler.",
            errors={"json": {"comment": ["Required when returning."]}},
        )
    case = db.session.get_one(Case, approval.case_id)
    workflow = workflow_for(case.case_type)
    action = workflow.actions[request.action]
    # A decided approval is reported as such by the update below, whatever its documents.
    if decision == Decision.APPROVE and approval.status == ApprovalStatus.PENDING:
        _ensure_signed(case, action)
    now = utcnow()
    won = db.session.execute(
        sa.update(Approval)
        .where(Approval.id == approval.id, Approval.status == ApprovalStatus.PENDING)
        .values(
            status=ApprovalStatus.APPROVED
            if decision == Decision.APPROVE
            else ApprovalStatus.RETURNED,
            decided_by=user.id,
            decided_at=now,
            comment=comment,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        raise Conflict("This approval has already been decided.", slug="approval-decided")
    db.session.refresh(approval)
    event_payload = {
        "stage": approval.stage,
        "role": str(approval.role),
        "approval_id": str(approval.id),
    }
    if decision == Decision.RETURN:
        request.status, request.resolved_at = RequestStatus.RETURNED, now
        case.status, case.pending_request_id = request.from_state, None
        cases.append_event(
            case,
            "step_returned",
            user,
            action=request.action,
            from_state=request.from_state,
            to_state=request.from_state,
            request_id=request.id,
            comment=comment,
            payload=event_payload,
        )
        return StepOutcome("returned", case, request)
    cases.append_event(
        case,
        "step_approved",
        user,
        action=request.action,
        request_id=request.id,
        comment=comment,
        payload=event_payload,
    )
    if approval.stage + 1 < len(action.approvals):
        _open_stage(case, request, action, approval.stage + 1)
        cases.touch(case)
        db.session.flush()
        return StepOutcome("pending", case, request)
    request.status, request.resolved_at = RequestStatus.APPLIED, now
    case.pending_request_id = None
    _apply(
        workflow,
        case,
        user,
        request.action,
        request.to_state,
        request.comment,
        request.payload,
        request,
    )
    return StepOutcome("applied", case, request)
