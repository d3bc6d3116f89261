"""Incidents, cases, persons and the case history."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from backend.cases.models import Case, CaseEvent, CaseNumberCounter, CasePerson, Incident
from backend.common import dialect_insert, utcnow
from backend.errors import Conflict, Forbidden, NotFound
from backend.extensions import db
from backend.org.models import Unit, User
from backend.org.service import visible_unit_ids
from backend.pagination import keyset_page
from shared.enums import (
    CASE_READER_ROLES,
    CaseType,
    IncidentStatus,
    PersonRole,
    Role,
)
from shared.workflow import Workflow, workflow_for

ACCEPT_ACTION = "accept"


def content_hash(data: dict[str, Any]) -> str:
    """A stable hash of a client-submitted record, to tell a resend from a conflict."""
    canonical = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def store_once(record: Any, is_resend: Callable[[Any], bool], what: str) -> tuple[Any, bool]:
    """Insert a record made with a client-chosen id, once (checklist I2).

    A resend of the same content returns the stored record; the same id with
    other content is a conflict. Concurrent resends race on the primary key
    inside a savepoint, so exactly one insert wins.
    """
    existing = db.session.get(type(record), record.id)
    if existing is None:
        try:
            with db.session.begin_nested():
                db.session.add(record)
            return record, True
        except IntegrityError:
            existing = db.session.get(type(record), record.id, populate_existing=True)
    if existing is not None and is_resend(existing):
        return existing, False
    raise Conflict(f"{what} with this id exists with other content.")


def require_case_reader(user: User) -> None:
    if not user.has_role(*CASE_READER_ROLES):
        raise Forbidden("Your role does not give access to case data.")


# Incidents


def create_incident(user: User, data: dict[str, Any]) -> tuple[Incident, bool]:
    """Record a report. A resend with the same client id and content creates nothing."""
    incident_id = data.pop("id") or uuid.uuid4()
    digest = content_hash(data)
    reporter = data.pop("reporter", None) or {}
    incident = Incident(
        id=incident_id,
        unit_id=user.unit_id,
        created_by=user.id,
        content_hash=digest,
        reporter_name=reporter.get("name"),
        reporter_phone=reporter.get("phone"),
        reporter_id_number=reporter.get("id_number"),
        **data,
    )
    return store_once(
        incident,
        lambda stored: stored.content_hash == digest and stored.created_by == user.id,
        "An incident",
    )


def get_incident(user: User, incident_id: uuid.UUID, *, for_update: bool = False) -> Incident:
    require_case_reader(user)
    incident = db.session.get(Incident, incident_id, with_for_update=for_update or None)
    if incident is None or incident.unit_id not in visible_unit_ids(user):
        raise NotFound("No such incident.")
    return incident


def list_incidents(user: User, status: IncidentStatus | None, cursor: str | None, limit: int):
    require_case_reader(user)
    query = sa.select(Incident).where(Incident.unit_id.in_(visible_unit_ids(user)))
    if status:
        query = query.where(Incident.status == status)
    return keyset_page(query, Incident, cursor, limit)


def _ensure_incident_reported(incident: Incident) -> None:
    if incident.status != IncidentStatus.REPORTED:
        raise Conflict(f"The incident is already {incident.status}.", slug="incident-decided")


def accept_incident(
    user: User,
    incident: Incident,
    *,
    case_type: CaseType,
    title: str,
    case_id: uuid.UUID | None,
) -> tuple[Case, bool]:
    """Register the incident as a case (受案): the workflow's ``accept`` step."""
    if case_id is not None and incident.case_id == case_id:
        return db.session.get_one(Case, case_id), False
    _ensure_incident_reported(incident)
    workflow = workflow_for(case_type)
    action = workflow.actions[ACCEPT_ACTION]
    if not user.has_role(*action.roles):
        raise Forbidden("Your role may not accept incidents.")
    if case_id is not None and db.session.get(Case, case_id) is not None:
        raise Conflict("A case with this id exists.")
    now = utcnow()
    unit = db.session.get_one(Unit, incident.unit_id)
    seq = next_case_seq(unit.id, now.year)
    case = Case(
        id=case_id or uuid.uuid4(),
        number=f"{unit.code}-{now.year}-{seq:06d}",
        unit_id=unit.id,
        year=now.year,
        seq=seq,
        case_type=case_type,
        status=action.target,
        is_open=True,
        title=title,
        summary=incident.summary,
        handler_id=user.id,
        incident_id=incident.id,
        due_at=deadline_for(workflow, action.target, now, None),
        created_at=now,
        updated_at=now,
    )
    db.session.add(case)
    incident.status, incident.case_id = IncidentStatus.ACCEPTED, case.id
    db.session.flush()
    append_event(
        case,
        "transition",
        user,
        action=ACCEPT_ACTION,
        from_state=workflow.initial,
        to_state=action.target,
    )
    if incident.reporter_name:
        person = CasePerson(
            case_id=case.id,
            role=PersonRole.REPORTER,
            name=incident.reporter_name,
            phone=incident.reporter_phone,
            id_number=incident.reporter_id_number,
            content_hash=content_hash({"from_incident": incident.id.hex}),
        )
        db.session.add(person)
    db.session.flush()
    return case, True


def close_incident(user: User, incident: Incident, reason: str) -> Incident:
    if not user.has_role(Role.OFFICER):
        raise Forbidden("Only officers close incidents.")
    _ensure_incident_reported(incident)
    incident.status, incident.closed_reason = IncidentStatus.CLOSED_NOT_CASE, reason
    db.session.flush()
    return incident


def next_case_seq(unit_id: uuid.UUID, year: int) -> int:
    """The next gap-free number for the unit and year.

    The counter row is bumped inside the creating transaction: concurrent
    creators queue on its row lock, and a rolled-back creation returns its
    number with it.
    """
    statement = (
        dialect_insert(CaseNumberCounter, db.session)
        .values(unit_id=unit_id, year=year, last=1)
        .on_conflict_do_update(
            index_elements=["unit_id", "year"], set_={"last": CaseNumberCounter.last + 1}
        )
        .returning(CaseNumberCounter.last)
    )
    return db.session.execute(statement).scalar_one()


def deadline_for(
    workflow: Workflow, state: str, now: datetime, current: datetime | None
) -> datetime | None:
    """The case's deadline after entering ``state`` (see the workflow files)."""
    spec = workflow.states[state]
    if spec.terminal or spec.deadline_hours == 0:
        return None
    if spec.deadline_hours:
        return now + timedelta(hours=spec.deadline_hours)
    return current


# Cases


def get_case(user: User, case_id: uuid.UUID, *, for_update: bool = False) -> Case:
    require_case_reader(user)
    case = db.session.get(Case, case_id, with_for_update=for_update or None)
    if case is None or case.unit_id not in visible_unit_ids(user):
        raise NotFound("No such case.")
    return case


def list_cases(user: User, filters: dict[str, Any], cursor: str | None, limit: int):
    require_case_reader(user)
    units = visible_unit_ids(user)
    if filters.get("unit_id"):
        units = units & {filters["unit_id"]}
    query = sa.select(Case).where(Case.unit_id.in_(units))
    if filters.get("status"):
        query = query.where(Case.status.in_(filters["status"]))
    if filters.get("case_type"):
        query = query.where(Case.case_type == filters["case_type"])
    if filters.get("handler_id"):
        query = query.where(Case.handler_id == filters["handler_id"])
    if filters.get("open") is not None:
        query = query.where(Case.is_open.is_(filters["open"]))
    if filters.get("overdue") is not None:
        late = sa.and_(Case.is_open.is_(True), Case.due_at < utcnow())
        query = query.where(late if filters["overdue"] else sa.not_(late) | Case.due_at.is_(None))
    if filters.get("q"):
        pattern = "%" + _escape_like(filters["q"]) + "%"
        query = query.where(
            sa.or_(
                Case.number.ilike(pattern, escape="\\"),
                Case.title.ilike(pattern, escape="\\"),
                Case.summary.ilike(pattern, escape="\\"),
            )
        )
    return keyset_page(query, Case, cursor, limit)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def ensure_open(case: Case) -> None:
    if workflow_for(case.case_type).is_terminal(case.status):
        raise Conflict("The case is closed; it can no longer change.", slug="case-closed")


def touch(case: Case) -> None:
    """Mark the case changed: bumps its version (and so its ETag)."""
    case.updated_at = utcnow()


def append_event(case: Case, event_type: str, actor: User, **fields: Any) -> CaseEvent:
    """Append to the case history, in the transaction of the change it records."""
    last = db.session.scalar(
        sa.select(sa.func.max(CaseEvent.seq)).where(CaseEvent.case_id == case.id)
    )
    event = CaseEvent(
        case_id=case.id, seq=(last or 0) + 1, type=event_type, actor_id=actor.id, **fields
    )
    db.session.add(event)
    touch(case)
    db.session.flush()
    return event


def list_events(case: Case, after: int, limit: int) -> list[CaseEvent]:
    return list(
        db.session.scalars(
            sa.select(CaseEvent)
            .where(CaseEvent.case_id == case.id, CaseEvent.seq > after)
            .order_by(CaseEvent.seq)
            .limit(limit)
        )
    )


# Persons and their identity data (checklist Z5)


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    keep = 4 if len(value) > 8 else 1
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) >= 8:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    return "*" * max(len(value) - 2, 1) + value[-2:]


def mask_address(value: str | None) -> str | None:
    if not value:
        return value
    return value[:6] + "…" if len(value) > 6 else value[:2] + "…"


def masked(person: CasePerson) -> dict[str, Any]:
    return {
        "id": person.id,
        "case_id": person.case_id,
        "role": person.role,
        "name": person.name,
        "id_number": mask_id_number(person.id_number),
        "phone": mask_phone(person.phone),
        "address": mask_address(person.address),
        "masked": True,
        "created_at": person.created_at,
    }


def revealed(person: CasePerson) -> dict[str, Any]:
    return {
        **masked(person),
        "id_number": person.id_number,
        "phone": person.phone,
        "address": person.address,
        "masked": False,
    }


def list_persons(case: Case) -> list[CasePerson]:
    return list(
        db.session.scalars(
            sa.select(CasePerson)
            .where(CasePerson.case_id == case.id)
            .order_by(CasePerson.created_at)
        )
    )


def get_person(case: Case, person_id: uuid.UUID) -> CasePerson:
    person = db.session.get(CasePerson, person_id)
    if person is None or person.case_id != case.id:
        raise NotFound("No such person in this case.")
    return person


def add_person(user: User, case: Case, data: dict[str, Any]) -> tuple[CasePerson, bool]:
    if not user.has_role(Role.OFFICER):
        raise Forbidden("Only officers add persons to a case.")
    person_id = data.pop("id") or uuid.uuid4()
    digest = content_hash(data)
    if db.session.get(CasePerson, person_id) is None:
        ensure_open(case)
    person, created = store_once(
        CasePerson(id=person_id, case_id=case.id, content_hash=digest, **data),
        lambda stored: stored.case_id == case.id and stored.content_hash == digest,
        "A person",
    )
    if not created:
        return person, False
    append_event(
        case, "person_added", user, payload={"person_id": str(person.id), "role": str(person.role)}
    )
    return person, True
