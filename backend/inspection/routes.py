"""Inspections (巡查), problems and rectification (整改), and the case-handling area (办案区)."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.cases import service as cases
from backend.inspection import service
from backend.inspection.models import PROBLEM_CATEGORIES, Inspection, KeyIncident, Problem
from backend.inspection.schemas import (
    AreaEntryCreateSchema,
    AreaEntryPageSchema,
    AreaEntryQuerySchema,
    AreaEntrySchema,
    AreaExitSchema,
    CategorySchema,
    FoundProblemDetailSchema,
    FoundProblemSchema,
    InspectionCreateSchema,
    InspectionPageSchema,
    InspectionQuerySchema,
    InspectionSchema,
    KeyIncidentPageSchema,
    KeyIncidentSchema,
    ProblemCreateSchema,
    ProblemPageSchema,
    ProblemQuerySchema,
    ReasonSchema,
    RectificationCreateSchema,
    ReportQuerySchema,
    ReportSchema,
    ReviewSchema,
    UnitPageQuerySchema,
)
from shared.enums import CASE_READER_ROLES, Role

blp = Blueprint(
    "inspection",
    __name__,
    url_prefix="/api/v1",
    description="Inspections, problems and rectification; the case-handling area register",
)

INSPECTORS = sorted(service.INSPECTOR_ROLES)
OVERSIGHT = sorted(service.OVERSIGHT_ROLES)
READERS = sorted(CASE_READER_ROLES)
UNPROCESSABLE = HTTPStatus(422).name


def _paged(page: dict[str, Any]) -> dict[str, Any]:
    return {**page, "items": [service.entry_view(entry) for entry in page["items"]]}


# Key incidents and inspections


@blp.route("/incidents/<uuid:incident_id>/key", methods=["POST"])
@roles_required(*INSPECTORS)
@blp.arguments(ReasonSchema)
@blp.response(201, KeyIncidentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def mark_key_incident(data: dict[str, Any], incident_id: uuid.UUID) -> tuple[KeyIncident, int]:
    """Mark an incident as key (标注重点警情), with the reason."""
    user = current_user()
    mark = service.mark_key_incident(
        user, cases.get_incident(user, incident_id, for_update=True), data["reason"]
    )
    audit.target("incident", incident_id, reason=data["reason"])
    return mark, 201


@blp.route("/key-incidents")
@roles_required(*OVERSIGHT)
@blp.arguments(UnitPageQuerySchema, location="query")
@blp.response(200, KeyIncidentPageSchema)
@blp.alt_response(404, response="NOT_FOUND")
def list_key_incidents(query: dict[str, Any]) -> dict[str, Any]:
    """Key incidents of your units (or one unit's subtree), newest first."""
    return service.list_key_incidents(
        current_user(), query["unit_id"], query["cursor"], query["limit"]
    )


@blp.route("/cases/<uuid:case_id>/inspections", methods=["POST"])
@roles_required(*INSPECTORS)
@blp.arguments(InspectionCreateSchema)
@blp.response(201, InspectionSchema)
@blp.alt_response(404, response="NOT_FOUND")
def inspect_case(data: dict[str, Any], case_id: uuid.UUID) -> tuple[Inspection, int]:
    """Record the result of inspecting a case (巡查); it enters the case history."""
    user = current_user()
    inspection = service.record_inspection(
        user, cases.get_case(user, case_id, for_update=True), None, data
    )
    audit.target("inspection", inspection.id)
    return inspection, 201


@blp.route("/incidents/<uuid:incident_id>/inspections", methods=["POST"])
@roles_required(*INSPECTORS)
@blp.arguments(InspectionCreateSchema)
@blp.response(201, InspectionSchema)
@blp.alt_response(404, response="NOT_FOUND")
def inspect_incident(data: dict[str, Any], incident_id: uuid.UUID) -> tuple[Inspection, int]:
    """Record the result of inspecting an incident."""
    user = current_user()
    inspection = service.record_inspection(user, None, cases.get_incident(user, incident_id), data)
    audit.target("inspection", inspection.id)
    return inspection, 201


@blp.route("/inspections")
@roles_required(*OVERSIGHT)
@blp.arguments(InspectionQuerySchema, location="query")
@blp.response(200, InspectionPageSchema)
@blp.alt_response(404, response="NOT_FOUND")
def list_inspections(query: dict[str, Any]) -> dict[str, Any]:
    """Inspections of your units, newest first."""
    cursor, limit = query.pop("cursor"), query.pop("limit")
    return service.list_inspections(current_user(), query, cursor, limit)


# Problems and rectification


@blp.route("/problems/categories")
@roles_required(*READERS)
@blp.response(200, CategorySchema(many=True))
def list_categories() -> list[dict[str, str]]:
    """The problem categories, in report order."""
    return list(PROBLEM_CATEGORIES)


@blp.route("/problems", methods=["POST"])
@roles_required(*INSPECTORS)
@blp.arguments(ProblemCreateSchema)
@blp.response(201, FoundProblemSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(422, response=UNPROCESSABLE)
def file_problem(data: dict[str, Any]) -> tuple[Problem, int]:
    """File a problem on a case or an incident, for an officer to rectify by a deadline."""
    problem = service.file_problem(current_user(), data)
    audit.target("problem", problem.id)
    return problem, 201


@blp.route("/problems")
@roles_required(*READERS)
@blp.arguments(ProblemQuerySchema, location="query")
@blp.response(200, ProblemPageSchema)
@blp.alt_response(404, response="NOT_FOUND")
def list_problems(query: dict[str, Any]) -> dict[str, Any]:
    """Problems of your units, newest first; officers see those assigned to them.

    ``overdue=true``: not closed and past the deadline.
    """
    cursor, limit = query.pop("cursor"), query.pop("limit")
    return service.list_problems(current_user(), query, cursor, limit)


@blp.route("/problems/report")
@roles_required(*OVERSIGHT)
@blp.arguments(ReportQuerySchema, location="query")
@blp.response(200, ReportSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(422, response=UNPROCESSABLE)
def problem_report(query: dict[str, Any]) -> dict[str, Any]:
    """Problems found in a period, rectified and overdue, per unit (with its subtree) and
    per category."""
    return service.report(current_user(), query["unit_id"], query["from_"], query["to"])


def _detail(problem: Problem) -> dict[str, Any]:
    fields = {column.key: getattr(problem, column.key) for column in Problem.__table__.columns}
    return {**fields, "rectifications": service.rectifications(problem)}


@blp.route("/problems/<uuid:problem_id>")
@roles_required(*READERS)
@blp.response(200, FoundProblemDetailSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_problem(problem_id: uuid.UUID) -> dict[str, Any]:
    """A problem with its rectification history."""
    return _detail(service.get_problem(current_user(), problem_id))


@blp.route("/problems/<uuid:problem_id>/rectification", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(RectificationCreateSchema)
@blp.response(200, FoundProblemDetailSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(422, response=UNPROCESSABLE)
def submit_rectification(data: dict[str, Any], problem_id: uuid.UUID) -> dict[str, Any]:
    """The responsible officer submits the fix (整改), with evidence or documents of the case."""
    user = current_user()
    problem = service.get_problem(user, problem_id, for_update=True)
    service.submit_rectification(user, problem, data)
    audit.target("problem", problem.id)
    return _detail(problem)


@blp.route("/problems/<uuid:problem_id>/review", methods=["POST"])
@roles_required(*INSPECTORS)
@blp.arguments(ReviewSchema)
@blp.response(200, FoundProblemDetailSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def review_rectification(data: dict[str, Any], problem_id: uuid.UUID) -> dict[str, Any]:
    """Accept the fix (the problem closes) or return it with a comment (it stays open)."""
    user = current_user()
    problem = service.get_problem(user, problem_id, for_update=True)
    service.review_rectification(user, problem, data["decision"] == "accept", data["comment"])
    audit.target("problem", problem.id)
    return _detail(problem)


# The case-handling area register


@blp.route("/handling-area/entries", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(AreaEntryCreateSchema)
@blp.response(201, AreaEntrySchema)
@blp.alt_response(200, schema=AreaEntrySchema, description="Resent with the same id and content")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(422, response=UNPROCESSABLE)
def create_entry(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Register a person brought into the case-handling area (办案区).

    Linked to a case, the entry is recorded as the case facts the rules watch: the
    area entry, and for questioning the start of its time limit.
    """
    entry, created = service.create_entry(current_user(), data)
    audit.target("area_entry", entry.id)
    return service.entry_view(entry), 201 if created else 200


@blp.route("/handling-area/entries")
@roles_required(*READERS)
@blp.arguments(AreaEntryQuerySchema, location="query")
@blp.response(200, AreaEntryPageSchema)
@blp.alt_response(404, response="NOT_FOUND")
def list_entries(query: dict[str, Any]) -> dict[str, Any]:
    """Area entries of your units, newest first; ``inside=true``: those still inside."""
    cursor, limit = query.pop("cursor"), query.pop("limit")
    return _paged(service.list_entries(current_user(), query, cursor, limit))


@blp.route("/handling-area/entries/<uuid:entry_id>")
@roles_required(*READERS)
@blp.response(200, AreaEntrySchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_entry(entry_id: uuid.UUID) -> dict[str, Any]:
    return service.entry_view(service.get_entry(current_user(), entry_id))


@blp.route("/handling-area/entries/<uuid:entry_id>/exit", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(AreaExitSchema, required=False)
@blp.response(200, AreaEntrySchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(422, response=UNPROCESSABLE)
def record_exit(data: dict[str, Any], entry_id: uuid.UUID) -> dict[str, Any]:
    """Record that the person left; sent again with the same ``exited_at``, changes nothing."""
    user = current_user()
    entry, _ = service.record_exit(user, service.get_entry(user, entry_id, for_update=True), data)
    audit.target("area_entry", entry.id)
    return service.entry_view(entry)
