"""Inspections, problems and their rectification, the problem report, and the
case-handling area register whose entries and exits become supervision case facts."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from backend.cases import service as cases
from backend.cases.models import Case, Incident
from backend.common import utcnow
from backend.documents.models import Document
from backend.errors import Conflict, Forbidden, NotFound, Unprocessable
from backend.evidence.models import Evidence
from backend.extensions import db
from backend.inspection.models import (
    PROBLEM_CATEGORIES,
    AreaEntry,
    AreaPurpose,
    Inspection,
    KeyIncident,
    Problem,
    ProblemStatus,
    Rectification,
    RectificationKind,
)
from backend.org.models import Unit, User
from backend.org.service import get_unit, subtree_ids, visible_unit_ids
from backend.pagination import keyset_page
from backend.supervision import legaltime
from backend.supervision import service as supervision
from shared.enums import Role

INSPECTOR_ROLES = frozenset({Role.LEGAL_OFFICER, Role.LEADER})
"""Roles that inspect, file problems and review rectifications."""
OVERSIGHT_ROLES = frozenset({Role.LEGAL_OFFICER, Role.LEADER, Role.CASE_MANAGER})
"""Roles that read every inspection and problem of their units."""

FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2100, 1, 1)
"""Dates outside hold no records (times are kept to this range); queries clamp to it."""
AREA_FACTS = ("area_entry", "area_exit")
PURPOSE_FACTS: dict[AreaPurpose, tuple[str, str]] = {
    AreaPurpose.QUESTIONING: ("questioning_started", "questioning_ended"),
    AreaPurpose.CONTINUED_QUESTIONING: ("continued_questioning", "continued_questioning_ended"),
}
"""The period facts an entry starts and its exit ends, by purpose (see shared/rules)."""


# Targets: the case or incident an inspection or problem is about


def resolve_target(
    user: User, case_id: uuid.UUID | None, incident_id: uuid.UUID | None
) -> tuple[Case | None, Incident | None]:
    """The case or the incident (exactly one) of the user's units; 404 otherwise."""
    if (case_id is None) == (incident_id is None):
        raise Unprocessable("Name either a case or an incident.", slug="case-or-incident")
    if case_id is not None:
        return cases.get_case(user, case_id), None
    assert incident_id is not None
    return None, cases.get_incident(user, incident_id)


def _unit_of(case: Case | None, incident: Incident | None) -> uuid.UUID:
    owner = case if case is not None else incident
    assert owner is not None
    return owner.unit_id


# Key incidents


def mark_key_incident(user: User, incident: Incident, reason: str) -> KeyIncident:
    mark = KeyIncident(
        incident_id=incident.id, unit_id=incident.unit_id, reason=reason, marked_by=user.id
    )
    try:
        with db.session.begin_nested():
            db.session.add(mark)
    except IntegrityError as exc:
        raise Conflict("The incident is already marked as key.", slug="already-marked") from exc
    return mark


def list_key_incidents(
    user: User, unit_id: uuid.UUID | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    query = sa.select(KeyIncident).where(KeyIncident.unit_id.in_(_units(user, unit_id)))
    return keyset_page(query, KeyIncident, cursor, limit)


def _units(user: User, unit_id: uuid.UUID | None) -> frozenset[uuid.UUID]:
    """The user's units, or the subtree of one of them."""
    if unit_id is None:
        return visible_unit_ids(user)
    return frozenset(subtree_ids(get_unit(user, unit_id)))


# Inspections


def record_inspection(
    user: User, case: Case | None, incident: Incident | None, data: dict[str, Any]
) -> Inspection:
    inspection = Inspection(
        unit_id=_unit_of(case, incident),
        case_id=case.id if case else None,
        incident_id=incident.id if incident else None,
        result=data["result"],
        note=data["note"],
        inspector_id=user.id,
    )
    db.session.add(inspection)
    db.session.flush()
    if case is not None:
        cases.append_event(
            case,
            "inspected",
            user,
            comment=inspection.note or None,
            payload={"inspection_id": str(inspection.id), "result": str(inspection.result)},
        )
    return inspection


def list_inspections(user: User, filters: dict[str, Any], cursor: str | None, limit: int):
    query = sa.select(Inspection).where(
        Inspection.unit_id.in_(_units(user, filters.get("unit_id")))
    )
    if filters.get("case_id"):
        query = query.where(Inspection.case_id == filters["case_id"])
    if filters.get("incident_id"):
        query = query.where(Inspection.incident_id == filters["incident_id"])
    if filters.get("result"):
        query = query.where(Inspection.result == filters["result"])
    return keyset_page(query, Inspection, cursor, limit)


# Problems


def file_problem(user: User, data: dict[str, Any], now: datetime | None = None) -> Problem:
    """File a problem on a case or incident of the user's units (整改通知)."""
    now = now or utcnow()
    case, incident = resolve_target(user, data["case_id"], data["incident_id"])
    unit_id = _unit_of(case, incident)
    inspection_id = data.get("inspection_id")
    if inspection_id is not None:
        inspection = db.session.get(Inspection, inspection_id)
        if inspection is None or (inspection.case_id, inspection.incident_id) != (
            data["case_id"],
            data["incident_id"],
        ):
            raise Unprocessable(
                "The inspection is not one of this case or incident.", slug="inspection-mismatch"
            )
    responsible = db.session.get(User, data["responsible_id"])
    owner = db.session.get_one(Unit, unit_id)
    if (
        responsible is None
        or not responsible.active
        or not responsible.has_role(Role.OFFICER)
        or responsible.unit_id not in subtree_ids(owner)
    ):
        raise Unprocessable(
            "The responsible person must be an active officer of the case's unit.",
            slug="responsible-not-officer",
        )
    if data["deadline"] <= now:
        raise Unprocessable("The deadline must lie in the future.", slug="deadline-passed")
    problem = Problem(
        unit_id=unit_id,
        case_id=case.id if case else None,
        incident_id=incident.id if incident else None,
        inspection_id=inspection_id,
        category=data["category"],
        description=data["description"],
        responsible_id=responsible.id,
        deadline=data["deadline"],
        filed_by=user.id,
        created_at=now,
    )
    db.session.add(problem)
    db.session.flush()
    if case is not None:
        cases.append_event(
            case,
            "problem_filed",
            user,
            comment=problem.description,
            payload={
                "problem_id": str(problem.id),
                "category": problem.category,
                "responsible_id": str(problem.responsible_id),
                "deadline": problem.deadline.isoformat(),
            },
        )
    return problem


def _problem_scope(user: User) -> Any:
    """Who sees which problems: oversight roles their units', officers those assigned to them."""
    units = Problem.unit_id.in_(visible_unit_ids(user))
    if user.has_role(*OVERSIGHT_ROLES):
        return units
    if user.has_role(Role.OFFICER):
        return sa.and_(units, Problem.responsible_id == user.id)
    raise Forbidden("Your role does not give access to problems.")


def get_problem(user: User, problem_id: uuid.UUID, *, for_update: bool = False) -> Problem:
    query = sa.select(Problem).where(Problem.id == problem_id, _problem_scope(user))
    problem = db.session.scalar(query.with_for_update() if for_update else query)
    if problem is None:
        raise NotFound("No such problem.")
    return problem


def is_overdue(now: datetime) -> Any:
    return sa.and_(Problem.status != ProblemStatus.CLOSED, Problem.deadline < now)


def list_problems(
    user: User, filters: dict[str, Any], cursor: str | None, limit: int, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    query = sa.select(Problem).where(_problem_scope(user))
    if filters.get("unit_id"):
        query = query.where(Problem.unit_id.in_(_units(user, filters["unit_id"])))
    for key in ("case_id", "incident_id", "category", "responsible_id"):
        if filters.get(key):
            query = query.where(getattr(Problem, key) == filters[key])
    if filters.get("status"):
        query = query.where(Problem.status == filters["status"])
    if filters.get("mine"):
        query = query.where(Problem.responsible_id == user.id)
    if filters.get("overdue") is not None:
        late = is_overdue(now)
        query = query.where(late if filters["overdue"] else sa.not_(late))
    return keyset_page(query, Problem, cursor, limit)


def rectifications(problem: Problem) -> list[Rectification]:
    return list(
        db.session.scalars(
            sa.select(Rectification)
            .where(Rectification.problem_id == problem.id)
            .order_by(Rectification.created_at, Rectification.id)
        )
    )


def _check_references(
    problem: Problem, evidence_ids: list[uuid.UUID], document_ids: list[uuid.UUID]
) -> None:
    for model, ids, what in (
        (Evidence, evidence_ids, "evidence"),
        (Document, document_ids, "documents"),
    ):
        if not ids:
            continue
        found = set(
            db.session.scalars(
                sa.select(model.id).where(model.id.in_(ids), model.case_id == problem.case_id)
            )
        )
        if problem.case_id is None or found != set(ids):
            raise Unprocessable(
                f"The fix may refer only to {what} of the problem's case.", slug="foreign-reference"
            )


def _case_event(problem: Problem, event_type: str, user: User, note: str) -> None:
    if problem.case_id is None:
        return
    case = db.session.get_one(Case, problem.case_id)
    cases.append_event(
        case, event_type, user, comment=note or None, payload={"problem_id": str(problem.id)}
    )


def submit_rectification(user: User, problem: Problem, data: dict[str, Any]) -> Problem:
    """The responsible officer reports the fix, with what shows it."""
    if problem.responsible_id != user.id or not user.has_role(Role.OFFICER):
        raise Forbidden("Only the responsible officer submits the rectification.")
    if problem.status != ProblemStatus.OPEN:
        raise Conflict(f"The problem is {problem.status}.", slug="problem-not-open")
    evidence_ids = list(dict.fromkeys(data["evidence_ids"]))
    document_ids = list(dict.fromkeys(data["document_ids"]))
    _check_references(problem, evidence_ids, document_ids)
    db.session.add(
        Rectification(
            problem_id=problem.id,
            kind=RectificationKind.SUBMITTED,
            actor_id=user.id,
            note=data["note"],
            evidence_ids=[str(i) for i in evidence_ids],
            document_ids=[str(i) for i in document_ids],
        )
    )
    problem.status = ProblemStatus.SUBMITTED
    db.session.flush()
    _case_event(problem, "rectification_submitted", user, data["note"])
    return problem


def review_rectification(
    user: User, problem: Problem, accept: bool, comment: str, now: datetime | None = None
) -> Problem:
    """Accept the fix (the problem closes) or return it (it stays open, with the comment)."""
    if problem.status != ProblemStatus.SUBMITTED:
        raise Conflict("No rectification awaits review.", slug="nothing-to-review")
    now = now or utcnow()
    kind = RectificationKind.ACCEPTED if accept else RectificationKind.RETURNED
    db.session.add(
        Rectification(
            problem_id=problem.id, kind=kind, actor_id=user.id, note=comment, created_at=now
        )
    )
    if accept:
        problem.status, problem.closed_at = ProblemStatus.CLOSED, now
    else:
        problem.status = ProblemStatus.OPEN
    db.session.flush()
    _case_event(problem, f"rectification_{kind}", user, comment)
    return problem


# The problem report


def report(
    user: User, unit_id: uuid.UUID | None, first: date, last: date, now: datetime | None = None
) -> dict[str, Any]:
    """Problems found from ``first`` to ``last`` (local dates, inclusive) in a unit's subtree.

    Of the problems found: ``rectified`` are closed; ``overdue`` were closed after
    their deadline or are still open past it. Each unit counts its whole subtree.
    """
    if last < first:
        raise Unprocessable("The period ends before it starts.", slug="bad-period")
    now = now or utcnow()
    root = get_unit(user, unit_id) if unit_id else user.unit
    units = list(
        db.session.scalars(
            sa.select(Unit).where(Unit.path.startswith(root.path)).order_by(Unit.path)
        )
    )
    start = legaltime.local_midnight(min(max(first, FIRST_DAY), LAST_DAY))
    end = legaltime.local_midnight(min(max(last, FIRST_DAY), LAST_DAY) + timedelta(days=1))
    rectified = sa.case((Problem.status == ProblemStatus.CLOSED, 1), else_=0)
    late = sa.case(
        (
            sa.or_(
                sa.and_(
                    Problem.status == ProblemStatus.CLOSED, Problem.closed_at > Problem.deadline
                ),
                sa.and_(Problem.status != ProblemStatus.CLOSED, Problem.deadline < now),
            ),
            1,
        ),
        else_=0,
    )
    rows = db.session.execute(
        sa.select(
            Problem.unit_id,
            Problem.category,
            sa.func.count(),
            sa.func.sum(rectified),
            sa.func.sum(late),
        )
        .where(
            Problem.unit_id.in_([u.id for u in units]),
            Problem.created_at >= start,
            Problem.created_at < end,
        )
        .group_by(Problem.unit_id, Problem.category)
    )
    by_unit: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for unit, category, found, fixed, overdue in rows:
        for tally in (by_unit[unit], by_category[category]):
            tally[0] += found
            tally[1] += int(fixed or 0)
            tally[2] += int(overdue or 0)
    paths = {u.id: u.path for u in units}

    def counts(tally: list[int]) -> dict[str, int]:
        return {"found": tally[0], "rectified": tally[1], "overdue": tally[2]}

    def rolled_up(unit: Unit) -> dict[str, int]:
        total = [0, 0, 0]
        for other, tally in by_unit.items():
            if paths[other].startswith(unit.path):
                total = [a + b for a, b in zip(total, tally, strict=True)]
        return counts(total)

    return {
        "unit_id": root.id,
        "from_": first,
        "to": last,
        "totals": rolled_up(root),
        "units": [
            {
                "unit_id": u.id,
                "code": u.code,
                "name": u.name,
                "tier": u.tier,
                "parent_id": u.parent_id,
                **rolled_up(u),
            }
            for u in units
        ],
        "categories": [
            {**category, **counts(by_category.get(category["code"], [0, 0, 0]))}
            for category in PROBLEM_CATEGORIES
        ],
    }


# The case-handling area register (办案区)


def _entry_digest(data: dict[str, Any]) -> str:
    return cases.content_hash({k: v for k, v in data.items() if k != "id"})


def create_entry(user: User, data: dict[str, Any]) -> tuple[AreaEntry, bool]:
    """Register a person brought into the area; a resend with the same id creates nothing.

    Linked to a case, the entry becomes the case facts the rules watch: ``area_entry``
    and, for questioning, the start of the questioning period (counted from arrival).
    """
    entry_id = data["id"] or uuid.uuid4()
    digest = _entry_digest(data)
    existing = db.session.get(AreaEntry, entry_id)
    if existing is not None:
        if existing.content_hash == digest and existing.created_by == user.id:
            return existing, False
        raise Conflict("An area entry with this id exists with other content.")
    case = cases.get_case(user, data["case_id"]) if data["case_id"] else None
    if data["person_id"] is not None:
        if case is None:
            raise Unprocessable("A person is linked through a case.", slug="person-without-case")
        cases.get_person(case, data["person_id"])
    if case is not None:
        cases.ensure_open(case)
    escorts = list(dict.fromkeys(data["escort_ids"]))
    _check_escorts(user, escorts)
    entry = AreaEntry(
        id=entry_id,
        unit_id=case.unit_id if case else user.unit_id,
        case_id=case.id if case else None,
        person_id=data["person_id"],
        name=data["name"],
        id_number=data["id_number"],
        purpose=data["purpose"],
        reason=data["reason"],
        room=data["room"],
        escort_ids=[str(e) for e in escorts],
        detention_possible=data["detention_possible"],
        many_or_identity_unknown=data["many_or_identity_unknown"],
        entered_at=data["entered_at"] or utcnow(),
        created_by=user.id,
        content_hash=digest,
    )
    entry, created = cases.store_once(
        entry,
        lambda stored: stored.content_hash == digest and stored.created_by == user.id,
        "An area entry",
    )
    if created and case is not None:
        _record_entry_facts(user, case, entry)
    return entry, created


def _check_escorts(user: User, escorts: list[uuid.UUID]) -> None:
    if not escorts:
        return
    found = db.session.scalars(
        sa.select(User).where(User.id.in_(escorts), User.unit_id.in_(visible_unit_ids(user)))
    ).all()
    if len(found) != len(escorts) or not all(u.active and u.has_role(Role.OFFICER) for u in found):
        raise Unprocessable(
            "Escorting officers must be active officers of your units.", slug="bad-escort"
        )


def _fact_data(entry: AreaEntry) -> dict[str, Any]:
    return {
        "entry_id": str(entry.id),
        "person_id": str(entry.person_id) if entry.person_id else None,
        "room": entry.room,
        "purpose": str(entry.purpose),
        "detention_possible": entry.detention_possible,
        "many_or_identity_unknown": entry.many_or_identity_unknown,
    }


def _record(user: User, case: Case, entry: AreaEntry, kind: str, at: datetime) -> None:
    supervision.record_fact(
        user,
        case,
        {"kind": kind, "subject": str(entry.id), "started_at": at, "data": _fact_data(entry)},
    )


def _record_entry_facts(user: User, case: Case, entry: AreaEntry) -> None:
    _record(user, case, entry, AREA_FACTS[0], entry.entered_at)
    if entry.purpose in PURPOSE_FACTS:
        _record(user, case, entry, PURPOSE_FACTS[entry.purpose][0], entry.entered_at)


def get_entry(user: User, entry_id: uuid.UUID, *, for_update: bool = False) -> AreaEntry:
    cases.require_case_reader(user)
    entry = db.session.get(AreaEntry, entry_id, with_for_update=for_update or None)
    if entry is None or entry.unit_id not in visible_unit_ids(user):
        raise NotFound("No such area entry.")
    return entry


def record_exit(user: User, entry: AreaEntry, data: dict[str, Any]) -> tuple[AreaEntry, bool]:
    """Record that the person left; the same exit sent again changes nothing."""
    exited_at = data["exited_at"] or utcnow()
    if entry.exited_at is not None:
        if data["exited_at"] is not None and entry.exited_at == exited_at:
            return entry, False
        raise Conflict("The exit is already recorded.", slug="already-exited")
    if exited_at < entry.entered_at:
        raise Unprocessable("The exit cannot precede the entry.", slug="exit-before-entry")
    entry.exited_at, entry.exited_by, entry.exit_note = exited_at, user.id, data["note"]
    db.session.flush()
    if entry.case_id is not None:
        case = db.session.get_one(Case, entry.case_id)
        _record(user, case, entry, AREA_FACTS[1], exited_at)
        if entry.purpose in PURPOSE_FACTS:
            _record(user, case, entry, PURPOSE_FACTS[entry.purpose][1], exited_at)
    return entry, True


def list_entries(
    user: User, filters: dict[str, Any], cursor: str | None, limit: int
) -> dict[str, Any]:
    cases.require_case_reader(user)
    query = sa.select(AreaEntry).where(AreaEntry.unit_id.in_(_units(user, filters["unit_id"])))
    if filters["inside"] is not None:
        inside = AreaEntry.exited_at.is_(None)
        query = query.where(inside if filters["inside"] else sa.not_(inside))
    if filters["date"] is not None:
        day = filters["date"]
        if not FIRST_DAY <= day < LAST_DAY:
            query = query.where(sa.false())
        else:
            query = query.where(
                AreaEntry.entered_at >= legaltime.local_midnight(day),
                AreaEntry.entered_at < legaltime.local_midnight(day + timedelta(days=1)),
            )
    if filters["case_id"] is not None:
        query = query.where(AreaEntry.case_id == filters["case_id"])
    return keyset_page(query, AreaEntry, cursor, limit)


def entry_view(entry: AreaEntry) -> dict[str, Any]:
    """An entry as the API shows it: the id number masked (checklist Z5)."""
    view = {column.key: getattr(entry, column.key) for column in AreaEntry.__table__.columns}
    view.pop("content_hash")
    view["id_number"] = cases.mask_id_number(entry.id_number)
    view["inside"] = entry.exited_at is None
    return view
