"""Warnings, the change feed, and the facts and deadlines of a case."""

from __future__ import annotations

import uuid
from typing import Any

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.cases import service as cases
from backend.supervision import service
from backend.supervision.models import CaseFact, CaseWarning
from backend.supervision.schemas import (
    CaseSupervisionSchema,
    FactCreateSchema,
    FactSchema,
    FeedQuerySchema,
    FeedSchema,
    ResolveSchema,
    WarningPageSchema,
    WarningQuerySchema,
    WarningSchema,
)
from shared.enums import CASE_READER_ROLES, Role

blp = Blueprint(
    "supervision", __name__, url_prefix="/api/v1", description="Early warnings (预警) and the feed"
)


@blp.route("/warnings")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.arguments(WarningQuerySchema, location="query")
@blp.response(200, WarningPageSchema)
def list_warnings(query: dict[str, Any]) -> dict[str, Any]:
    """Warnings addressed to you, newest first.

    Yours are those on cases you handle, and in your units those for your role: legal
    officers and leaders as each rule says, legal officers and the case-management centre
    once an unacknowledged warning has escalated to them. ``mine=true``: only the first.
    """
    cursor, limit = query.pop("cursor"), query.pop("limit")
    return service.list_warnings(current_user(), query, cursor, limit)


@blp.route("/warnings/<uuid:warning_id>")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, WarningSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_warning(warning_id: uuid.UUID) -> CaseWarning:
    """A warning on a case of your units."""
    return service.get_warning(current_user(), warning_id)


@blp.route("/warnings/<uuid:warning_id>/acknowledge", methods=["POST"])
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, WarningSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def acknowledge_warning(warning_id: uuid.UUID) -> CaseWarning:
    """Acknowledge a warning; it stops escalating. Acknowledging twice changes nothing."""
    user = current_user()
    warning = service.acknowledge(user, service.get_warning(user, warning_id, for_update=True))
    audit.target("warning", warning.id)
    return warning


@blp.route("/warnings/<uuid:warning_id>/resolve", methods=["POST"])
@roles_required(Role.OFFICER, Role.LEGAL_OFFICER, Role.LEADER)
@blp.arguments(ResolveSchema)
@blp.response(200, WarningSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def resolve_warning(data: dict[str, Any], warning_id: uuid.UUID) -> CaseWarning:
    """Resolve a warning with a note; it does not fire again for the same deadline.

    Officers resolve warnings on the cases they handle; legal officers and leaders any.
    """
    user = current_user()
    warning = service.resolve(
        user, service.get_warning(user, warning_id, for_update=True), data["note"]
    )
    audit.target("warning", warning.id, reason=data["note"])
    return warning


@blp.route("/feed")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.arguments(FeedQuerySchema, location="query")
@blp.response(200, FeedSchema)
def get_feed(query: dict[str, Any]) -> dict[str, Any]:
    """Changes for you since a cursor, oldest first: warnings, returned steps, approvals.

    Poll with the ``next_cursor`` of the previous answer.
    """
    return service.feed(current_user(), query["since"], query["limit"])


@blp.route("/cases/<uuid:case_id>/facts", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(FactCreateSchema)
@blp.response(201, FactSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def record_fact(data: dict[str, Any], case_id: uuid.UUID) -> tuple[CaseFact, int]:
    """Record a case fact the rules watch (delivered to jail, family notified, appraisal...).

    Allowed on closed cases too: some duties run on after closure (a notice of non-filing).
    """
    user = current_user()
    case = cases.get_case(user, case_id, for_update=True)
    fact = service.record_fact(user, case, data)
    audit.target("case", case.id)
    return fact, 201


@blp.route("/cases/<uuid:case_id>/supervision")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, CaseSupervisionSchema)
@blp.alt_response(404, response="NOT_FOUND")
def case_supervision(case_id: uuid.UUID) -> dict[str, Any]:
    """The case's facts and the deadlines the rules measure from them."""
    case = cases.get_case(current_user(), case_id)
    return {"facts": service.list_facts(case), "deadlines": service.list_deadlines(case)}
