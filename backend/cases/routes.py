"""Incidents, cases, persons and case history."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.cases import service
from backend.cases.models import Case, CaseEvent, Incident
from backend.cases.schemas import (
    AcceptSchema,
    CasePageSchema,
    CaseQuerySchema,
    CaseSchema,
    CloseIncidentSchema,
    EventQuerySchema,
    EventSchema,
    IncidentCreateSchema,
    IncidentPageSchema,
    IncidentQuerySchema,
    IncidentSchema,
    PersonCreateSchema,
    PersonSchema,
    RevealSchema,
)
from backend.idempotency import service as idempotency
from shared.enums import CASE_READER_ROLES, IDENTITY_REVEALER_ROLES, Role

blp = Blueprint("cases", __name__, url_prefix="/api/v1", description="Incidents and cases")

Result = tuple[Any, int, dict[str, str]]
IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "schema": {"type": "string"},
    "description": "An ETag you hold; 304 if the case still has it",
}


def case_response(case: Case, status: int = 200) -> Result:
    return case, status, {"ETag": case.etag}


@blp.route("/incidents", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(IncidentCreateSchema)
@blp.response(201, IncidentSchema)
@blp.alt_response(200, schema=IncidentSchema, description="Resent with the same id and content")
@blp.alt_response(409, response="CONFLICT")
def create_incident(data: dict[str, Any]) -> tuple[Incident, int]:
    """File a report (警情). Offline clients send their own id; a resend creates nothing."""
    incident, created = service.create_incident(current_user(), data)
    audit.target("incident", incident.id)
    return incident, 201 if created else 200


@blp.route("/incidents")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.arguments(IncidentQuerySchema, location="query")
@blp.response(200, IncidentPageSchema)
def list_incidents(query: dict[str, Any]) -> dict[str, Any]:
    return service.list_incidents(current_user(), query["status"], query["cursor"], query["limit"])


@blp.route("/incidents/<uuid:incident_id>")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, IncidentSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_incident(incident_id: uuid.UUID) -> Incident:
    return service.get_incident(current_user(), incident_id)


@blp.route("/incidents/<uuid:incident_id>/accept", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(AcceptSchema)
@blp.response(201, CaseSchema)
@blp.alt_response(200, schema=CaseSchema, description="Resent with the same case id")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def accept_incident(data: dict[str, Any], incident_id: uuid.UUID) -> Result:
    """Register the incident as a case (受案); the case gets its unit's next number."""
    user = current_user()
    case, created = service.accept_incident(
        user,
        service.get_incident(user, incident_id, for_update=True),
        case_type=data["case_type"],
        title=data["title"],
        case_id=data["case_id"],
    )
    audit.target("case", case.id)
    return case_response(case, 201 if created else 200)


@blp.route("/incidents/<uuid:incident_id>/close", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(CloseIncidentSchema)
@blp.response(200, IncidentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def close_incident(data: dict[str, Any], incident_id: uuid.UUID) -> Incident:
    """Close the incident as not a case."""
    user = current_user()
    incident = service.get_incident(user, incident_id, for_update=True)
    return service.close_incident(user, incident, data["reason"])


@blp.route("/cases")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.arguments(CaseQuerySchema, location="query")
@blp.response(200, CasePageSchema)
def list_cases(query: dict[str, Any]) -> dict[str, Any]:
    """Cases of your units, newest first, with keyset pagination (``next_cursor``)."""
    cursor, limit = query.pop("cursor"), query.pop("limit")
    return service.list_cases(current_user(), query, cursor, limit)


@blp.route("/cases/<uuid:case_id>")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, CaseSchema, headers={"ETag": {"schema": {"type": "string"}}})
@blp.alt_response(304, description="Not modified (If-None-Match)")
@blp.alt_response(404, response="NOT_FOUND")
@blp.doc(parameters=[IF_NONE_MATCH])
def get_case(case_id: uuid.UUID) -> Any:
    """A case; its ``ETag`` goes in ``If-Match`` when you request a step."""
    case = service.get_case(current_user(), case_id)
    if case.etag in request.headers.get("If-None-Match", ""):
        return None, 304, {"ETag": case.etag}
    return case_response(case)


@blp.route("/cases/<uuid:case_id>/events")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.arguments(EventQuerySchema, location="query")
@blp.response(200, EventSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_events(query: dict[str, Any], case_id: uuid.UUID) -> list[CaseEvent]:
    """The case's append-only history, oldest first; ``after`` continues from a seq."""
    case = service.get_case(current_user(), case_id)
    return service.list_events(case, query["after"], query["limit"])


@blp.route("/cases/<uuid:case_id>/persons")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, PersonSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_persons(case_id: uuid.UUID) -> list[dict[str, Any]]:
    """Persons in the case, identity data masked."""
    case = service.get_case(current_user(), case_id)
    return [service.masked(p) for p in service.list_persons(case)]


@blp.route("/cases/<uuid:case_id>/persons", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(PersonCreateSchema)
@blp.response(201, PersonSchema)
@blp.alt_response(200, schema=PersonSchema, description="Resent with the same id and content")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def add_person(data: dict[str, Any], case_id: uuid.UUID) -> tuple[dict[str, Any], int]:
    user = current_user()
    person, created = service.add_person(user, service.get_case(user, case_id), data)
    audit.target("person", person.id)
    return service.masked(person), 201 if created else 200


@blp.route("/cases/<uuid:case_id>/persons/<uuid:person_id>/reveal", methods=["POST"])
@idempotency.exempt
@roles_required(*sorted(IDENTITY_REVEALER_ROLES))
@blp.arguments(RevealSchema)
@blp.response(200, PersonSchema)
@blp.alt_response(404, response="NOT_FOUND")
def reveal_person(data: dict[str, Any], case_id: uuid.UUID, person_id: uuid.UUID) -> Any:
    """A person's full identity data; the stated reason is kept in the audit trail."""
    user = current_user()
    case = service.get_case(user, case_id)
    person = service.get_person(case, person_id)
    audit.target("person", person.id, reason=data["reason"])
    return service.revealed(person)
