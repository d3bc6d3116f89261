"""The early-warning rules engine: case facts, deadlines, warnings, escalation and the feed.

Facts are derived from case events as they are flushed; when the transaction
commits, the touched cases are evaluated (so the warnings exist by the time
the request that caused them returns). The sweep runs the same per-rule
queries without the case filter, one set-based pass per rule.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, aliased

from backend.cases import service as cases
from backend.cases.models import Case, CaseEvent
from backend.common import dialect_insert, utcnow
from backend.errors import Conflict, Forbidden, NotFound, Problem
from backend.extensions import db
from backend.jobs import service as jobs
from backend.org.models import User
from backend.org.service import visible_unit_ids
from backend.pagination import keyset_page
from backend.supervision import legaltime
from backend.supervision.models import CaseFact, CaseWarning, Deadline
from backend.workflow.models import Approval
from shared.enums import ApprovalStatus, Role, WarningStatus
from shared.rules import Condition, Rule, RulePack, default_pack

PENDING = "supervision_pending_cases"
TIME_INPUTS = ("starts_at", "served_at")
LEGAL_REVIEW_FACT = "legal_reviewed"
AUTO_NOTE = "条件已消除 / condition cleared"


def pack() -> RulePack:
    return default_pack()


# Facts


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo else None
    except (ValueError, OverflowError):
        return None


def facts_from_event(event: CaseEvent) -> list[CaseFact]:
    """The facts one case event records (none for most events)."""
    payload = event.payload or {}
    at = event.at

    def fact(kind: str, **fields: Any) -> CaseFact:
        return CaseFact(
            case_id=event.case_id, event_seq=event.seq, kind=kind, created_at=at, **fields
        )

    if event.type == "fact_recorded":
        return [
            fact(
                payload["kind"],
                subject=payload.get("subject") or "",
                started_at=_parse_time(payload.get("started_at")) or at,
                ended_at=_parse_time(payload.get("ended_at")),
                data=payload.get("data") or {},
            )
        ]
    if event.type == "step_approved" and payload.get("role") == Role.LEGAL_OFFICER:
        return [fact(LEGAL_REVIEW_FACT, subject="", started_at=at, data={})]
    if event.type == "transition" and event.action in pack().action_facts:
        starts = next((_parse_time(payload.get(k)) for k in TIME_INPUTS if payload.get(k)), None)
        return [
            fact(
                pack().action_facts[event.action],
                subject=str(payload.get("person_id") or ""),
                started_at=starts or at,
                data=dict(payload),
            )
        ]
    return []


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    events = [obj for obj in session.new if isinstance(obj, CaseEvent)]
    for case_event in events:
        case_event.at = case_event.at or utcnow()
        session.add_all(facts_from_event(case_event))
        session.info.setdefault(PENDING, set()).add(case_event.case_id)


def _before_commit(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    session.flush()
    now = utcnow()
    for case_id in sorted(pending):
        evaluate_case(case_id, now, session=session)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)


sa_event.listen(Session, "before_flush", _before_flush)
sa_event.listen(Session, "before_commit", _before_commit)
sa_event.listen(Session, "after_soft_rollback", lambda session, _tx: _after_rollback(session))


def record_fact(user: User, case: Case, data: dict[str, Any]) -> CaseFact:
    """Record a fact that no workflow step records (delivered to jail, family notified...)."""
    if not user.has_role(Role.OFFICER):
        raise Forbidden("Only officers record case facts.")
    started_at, ended_at = data["started_at"], data.get("ended_at")
    if ended_at is not None and ended_at < started_at:
        raise Problem("A fact cannot end before it starts.", status=422, slug="fact-ends-early")
    payload = {
        "kind": data["kind"],
        "subject": data.get("subject") or "",
        "started_at": started_at.astimezone(UTC).isoformat(),
        "ended_at": ended_at.astimezone(UTC).isoformat() if ended_at else None,
        "data": data.get("data") or {},
    }
    recorded = cases.append_event(case, "fact_recorded", user, payload=payload)
    return db.session.scalars(
        sa.select(CaseFact).where(CaseFact.case_id == case.id, CaseFact.event_seq == recorded.seq)
    ).one()


def list_facts(case: Case) -> list[CaseFact]:
    return list(
        db.session.scalars(
            sa.select(CaseFact)
            .where(CaseFact.case_id == case.id)
            .order_by(CaseFact.started_at, CaseFact.event_seq)
        )
    )


# Deadlines


def _local_day(moment: datetime) -> Any:
    return moment.astimezone(legaltime.DEFAULT_ZONE).date()


def _excluded(start: datetime, intervals: Iterable[CaseFact]) -> timedelta | None:
    """Time after ``start`` spent in excluded intervals; None while one is still running."""
    total = timedelta()
    for interval in intervals:
        if interval.ended_at is None:
            if interval.started_at >= start:
                return None
            continue
        if interval.ended_at > start:
            total += interval.ended_at - max(interval.started_at, start)
    return total


def deadline_for(rule: Rule, start: CaseFact, facts: dict[str, list[CaseFact]]) -> datetime | None:
    """When ``rule``'s period measured from ``start`` runs out, or None if it does not apply."""
    spec = rule.deadline
    assert spec is not None
    if not all(condition.matches(start.data or {}) for condition in spec.where):
        return None
    try:
        in_force = rule.in_force(_local_day(start.started_at))
    except OverflowError:
        return None
    if not in_force:
        return None
    excluded = _excluded(
        start.started_at, (f for kind in spec.exclude for f in facts.get(kind, []))
    )
    if excluded is None:
        return None
    amount = spec.amount + sum(
        int((f.data or {}).get("amount", 1))
        for kind in spec.extensions
        for f in facts.get(kind, [])
        if f.started_at >= start.started_at
        and (not spec.per_subject or f.subject in (start.subject, ""))
    )
    try:
        return legaltime.period_end(
            start.started_at + excluded,
            amount,
            legaltime.Unit(spec.unit),
            legaltime.Counting(spec.counting),
        )
    except (OverflowError, ValueError):
        return None  # a start time at the edge of the calendar: no period to watch


def refresh_deadlines(case_id: uuid.UUID, session: Session | None = None) -> None:
    """Recompute the case's deadlines from its facts."""
    session = session or db.session
    case = session.get_one(Case, case_id)
    facts: dict[str, list[CaseFact]] = defaultdict(list)
    for fact in session.scalars(sa.select(CaseFact).where(CaseFact.case_id == case_id)):
        facts[fact.kind].append(fact)
    session.execute(sa.delete(Deadline).where(Deadline.case_id == case_id))
    rows = []
    for rule in pack().rules.values():
        if rule.deadline is None or str(case.case_type) not in rule.case_types:
            continue
        for start in facts.get(rule.deadline.start, []):
            due = deadline_for(rule, start, facts)
            if due is None:
                continue
            ahead = timedelta(hours=rule.ahead_hours) if rule.kind == "warning" else timedelta()
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "rule_id": rule.id,
                    "case_id": case_id,
                    "fact_id": start.id,
                    "subject": start.subject,
                    "starts_at": start.started_at,
                    "due_at": due,
                    "warn_at": due - ahead,
                }
            )
    if rows:
        session.execute(sa.insert(Deadline), rows)


def list_deadlines(case: Case) -> list[Deadline]:
    return list(
        db.session.scalars(
            sa.select(Deadline).where(Deadline.case_id == case.id).order_by(Deadline.due_at)
        )
    )


# Rule queries


def _in_force_window(rule: Rule, column: Any) -> list[Any]:
    clauses = [column >= legaltime.local_midnight(rule.law.effective_from)]
    if rule.law.effective_to is not None:
        clauses.append(column < legaltime.local_midnight(rule.law.effective_to))
    return clauses


def _json_condition(column: Any, condition: Condition) -> Any:
    element = column[condition.key]
    value = condition.value
    if isinstance(value, bool):
        typed = element.as_boolean()
    elif isinstance(value, int):
        typed = element.as_integer()
    elif isinstance(value, float):
        typed = element.as_float()
    else:
        typed = element.as_string()
    if condition.op == "eq":
        return typed == value
    if condition.op == "ne":
        return sa.or_(typed.is_(None), typed != value)
    return typed < value if condition.op == "lt" else typed > value


def firing_query(rule: Rule, now: datetime, case_id: uuid.UUID | None = None) -> sa.Select:
    """Rows (case_id, key, due_at, unit_id, handler_id, number) for which ``rule`` fires now."""
    case_columns = (Case.unit_id, Case.handler_id, Case.number)
    if rule.deadline is not None:
        spec = rule.deadline
        met = aliased(CaseFact)
        meeting = [
            met.case_id == Deadline.case_id,
            met.kind.in_(spec.until),
            met.started_at >= Deadline.starts_at,
        ]
        if spec.per_subject:
            meeting.append(sa.or_(met.subject == Deadline.subject, met.subject == ""))
        query = (
            sa.select(
                Deadline.case_id,
                Deadline.fact_id.label("key"),
                Deadline.due_at,
                *case_columns,
            )
            .join(Case, Case.id == Deadline.case_id)
            .where(
                Deadline.rule_id == rule.id,
                Deadline.warn_at <= now,
                ~sa.exists().where(*meeting),
            )
        )
        scope = Deadline.case_id
    elif rule.predicate is not None and rule.predicate.type == "idle":
        cutoff = now - timedelta(days=rule.predicate.idle_days)
        query = sa.select(
            Case.id.label("case_id"),
            Case.updated_at.label("key"),
            Case.updated_at.label("due_at"),
            *case_columns,
        ).where(Case.updated_at <= cutoff, Case.case_type.in_(rule.case_types))
        scope = Case.id
    else:
        spec_p = rule.predicate
        assert spec_p is not None
        grace = timedelta(hours=spec_p.grace_hours)
        clauses = [
            CaseFact.kind == spec_p.fact,
            CaseFact.started_at <= now - grace,
            Case.case_type.in_(rule.case_types),
            *_in_force_window(rule, CaseFact.started_at),
            *(_json_condition(CaseFact.data, c) for c in spec_p.where),
        ]
        if spec_p.type == "fact_without":
            other = aliased(CaseFact)
            present = [other.case_id == CaseFact.case_id, other.kind.in_(spec_p.missing)]
            if spec_p.per_subject:
                present.append(sa.or_(other.subject == CaseFact.subject, other.subject == ""))
            clauses.append(~sa.exists().where(*present))
        query = (
            sa.select(
                CaseFact.case_id,
                CaseFact.id.label("key"),
                CaseFact.started_at.label("due_at"),
                *case_columns,
            )
            .join(Case, Case.id == CaseFact.case_id)
            .where(*clauses)
        )
        scope = CaseFact.case_id
    if not rule.after_close:
        query = query.where(Case.is_open.is_(True))
    if rule.states:
        query = query.where(Case.status.in_(rule.states))
    if case_id is not None:
        query = query.where(scope == case_id)
    return query


def _normal_key(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    return str(value)[:64]


def apply_rule(
    rule: Rule, now: datetime, case_id: uuid.UUID | None = None, session: Session | None = None
) -> tuple[int, int]:
    """Raise the warnings ``rule`` fires now and resolve those it no longer does.

    Returns (raised, resolved). With ``case_id`` only that case is looked at.
    """
    session = session or db.session
    firing = {
        (row.case_id, _normal_key(row.key)): row
        for row in session.execute(firing_query(rule, now, case_id))
    }
    known = sa.select(
        CaseWarning.id, CaseWarning.case_id, CaseWarning.key, CaseWarning.status
    ).where(
        CaseWarning.rule_id == rule.id,
        sa.or_(CaseWarning.status != WarningStatus.RESOLVED, CaseWarning.resolved_by.is_not(None)),
    )
    if case_id is not None:
        known = known.where(CaseWarning.case_id == case_id)
    taken: set[tuple[uuid.UUID, str]] = set()
    cleared: list[uuid.UUID] = []
    for row in session.execute(known):
        taken.add((row.case_id, row.key))
        if row.status != WarningStatus.RESOLVED and (row.case_id, row.key) not in firing:
            cleared.append(row.id)
    escalate_at = now + timedelta(hours=pack().escalate_to_legal_hours)
    new = [
        {
            "id": uuid.uuid4(),
            "rule_id": rule.id,
            "case_id": key[0],
            "key": key[1],
            "unit_id": row.unit_id,
            "handler_id": row.handler_id,
            "case_number": row.number,
            "kind": rule.kind,
            "severity": rule.severity,
            "due_at": _due(rule, row.due_at),
            "status": WarningStatus.OPEN,
            "to_legal": "legal_officer" in rule.notify,
            "to_leader": "leader" in rule.notify,
            "to_centre": "centre" in rule.notify,
            "level": 0,
            "escalate_at": escalate_at,
            "created_at": now,
            "changed_at": now,
        }
        for key, row in firing.items()
        if key not in taken
    ]
    for start in range(0, len(new), 500):
        session.execute(
            dialect_insert(CaseWarning, session)
            .values(new[start : start + 500])
            .on_conflict_do_nothing()
        )
    for start in range(0, len(cleared), 500):
        session.execute(
            sa.update(CaseWarning)
            .where(
                CaseWarning.id.in_(cleared[start : start + 500]),
                CaseWarning.status != WarningStatus.RESOLVED,
            )
            .values(
                status=WarningStatus.RESOLVED,
                resolved_at=now,
                changed_at=now,
                resolution_note=AUTO_NOTE,
                escalate_at=None,
            )
            .execution_options(synchronize_session=False)
        )
    return len(new), len(cleared)


def _due(rule: Rule, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if rule.predicate is not None and rule.predicate.type != "idle":
        return value + timedelta(hours=rule.predicate.grace_hours)
    return value


def evaluate_case(
    case_id: uuid.UUID, now: datetime | None = None, session: Session | None = None
) -> None:
    """Incremental evaluation: refresh one case's deadlines and run every rule for it."""
    session = session or db.session
    now = now or utcnow()
    refresh_deadlines(case_id, session)
    for rule in relevant_rules(case_id, session):
        apply_rule(rule, now, case_id, session)
    session.flush()


def relevant_rules(case_id: uuid.UUID, session: Session) -> list[Rule]:
    """The rules that can fire for the case or have a warning on it to resolve.

    A deadline rule needs a deadline of the case, a predicate its fact; the
    others give the same answer without being asked.
    """
    case_type = str(session.get_one(Case, case_id).case_type)
    kinds = set(session.scalars(sa.select(CaseFact.kind).where(CaseFact.case_id == case_id)))
    timed = set(session.scalars(sa.select(Deadline.rule_id).where(Deadline.case_id == case_id)))
    warned = set(
        session.scalars(
            sa.select(CaseWarning.rule_id).where(
                CaseWarning.case_id == case_id, CaseWarning.status != WarningStatus.RESOLVED
            )
        )
    )

    def relevant(rule: Rule) -> bool:
        if rule.id in warned:
            return True
        if case_type not in rule.case_types:
            return False
        if rule.deadline is not None:
            return rule.id in timed
        assert rule.predicate is not None
        return rule.predicate.type == "idle" or rule.predicate.fact in kinds

    return [rule for rule in pack().rules.values() if relevant(rule)]


def sweep(now: datetime | None = None) -> tuple[int, int]:
    """The set-based pass over all cases: one firing query per rule."""
    now = now or utcnow()
    raised = resolved = 0
    for rule in pack().rules.values():
        new, cleared = apply_rule(rule, now)
        raised, resolved = raised + new, resolved + cleared
    db.session.flush()
    return raised, resolved


def escalate(now: datetime | None = None) -> int:
    """Unacknowledged warnings go to the legal officer, then to the case-management centre."""
    now = now or utcnow()
    due = [CaseWarning.status == WarningStatus.OPEN, CaseWarning.escalate_at <= now]
    to_centre = db.session.execute(
        sa.update(CaseWarning)
        .where(*due, CaseWarning.level == 1)
        .values(level=2, to_centre=True, escalate_at=None, changed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    to_legal = db.session.execute(
        sa.update(CaseWarning)
        .where(*due, CaseWarning.level == 0)
        .values(
            level=1,
            to_legal=True,
            escalate_at=now + timedelta(hours=pack().escalate_to_centre_hours),
            changed_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return to_legal + to_centre


@jobs.periodic("supervision.sweep", every=timedelta(minutes=5))
def sweep_job() -> str:
    raised, resolved = sweep()
    return f"{raised} warnings raised, {resolved} resolved"


@jobs.periodic("supervision.escalate", every=timedelta(minutes=15))
def escalate_job() -> str:
    return f"{escalate()} warnings escalated"


# Delivery


def _addressed_to(user: User) -> Any:
    audience = [CaseWarning.handler_id == user.id]
    if user.has_role(Role.LEGAL_OFFICER):
        audience.append(CaseWarning.to_legal.is_(True))
    if user.has_role(Role.LEADER):
        audience.append(CaseWarning.to_leader.is_(True))
    if user.has_role(Role.CASE_MANAGER):
        audience.append(CaseWarning.to_centre.is_(True))
    return sa.and_(CaseWarning.unit_id.in_(visible_unit_ids(user)), sa.or_(*audience))


def list_warnings(
    user: User, filters: dict[str, Any], cursor: str | None, limit: int
) -> dict[str, Any]:
    cases.require_case_reader(user)
    query = sa.select(CaseWarning).where(_addressed_to(user))
    if filters.get("mine"):
        query = query.where(CaseWarning.handler_id == user.id)
    for name in ("case_id", "rule_id", "kind", "severity", "unit_id"):
        if filters.get(name):
            query = query.where(getattr(CaseWarning, name) == filters[name])
    if filters.get("status"):
        query = query.where(CaseWarning.status.in_(filters["status"]))
    return keyset_page(query, CaseWarning, cursor, limit)


def get_warning(user: User, warning_id: uuid.UUID, *, for_update: bool = False) -> CaseWarning:
    """A warning on a case of the caller's units (like the case itself: 404 otherwise)."""
    cases.require_case_reader(user)
    warning = db.session.get(CaseWarning, warning_id, with_for_update=for_update or None)
    if warning is None or warning.unit_id not in visible_unit_ids(user):
        raise NotFound("No such warning.")
    return warning


def acknowledge(user: User, warning: CaseWarning) -> CaseWarning:
    if warning.status == WarningStatus.RESOLVED:
        raise Conflict("The warning is resolved.", slug="warning-resolved")
    if warning.status == WarningStatus.OPEN:
        now = utcnow()
        warning.status, warning.acknowledged_by, warning.acknowledged_at = (
            WarningStatus.ACKNOWLEDGED,
            user.id,
            now,
        )
        warning.escalate_at, warning.changed_at = None, now
        db.session.flush()
    return warning


def resolve(user: User, warning: CaseWarning, note: str) -> CaseWarning:
    if not (warning.handler_id == user.id or user.has_role(Role.LEGAL_OFFICER, Role.LEADER)):
        raise Forbidden("Only the case's handler, a legal officer or a leader resolves a warning.")
    if warning.status == WarningStatus.RESOLVED:
        raise Conflict("The warning is already resolved.", slug="warning-resolved")
    now = utcnow()
    warning.status, warning.resolved_by, warning.resolved_at = WarningStatus.RESOLVED, user.id, now
    warning.resolution_note, warning.escalate_at, warning.changed_at = note, None, now
    db.session.flush()
    return warning


def render(warning: CaseWarning) -> dict[str, str]:
    rule = pack().rules.get(warning.rule_id)
    if rule is None:
        return {"zh": warning.rule_id, "en": warning.rule_id}
    due = (
        warning.due_at.astimezone(legaltime.DEFAULT_ZONE).strftime("%Y-%m-%d %H:%M")
        if warning.due_at
        else ""
    )
    return {
        lang: rule.template[lang].format(
            case_number=warning.case_number, due_at=due, name=rule.name[lang]
        )
        for lang in ("zh", "en")
    }


# Change feed


FEED_SOURCES = ("approval", "step_returned", "warning")


def _encode_feed_cursor(at: datetime, source: str, item: str) -> str:
    raw = json.dumps([at.astimezone(UTC).isoformat(), source, item]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_feed_cursor(cursor: str) -> tuple[datetime, str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, source, item = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or source not in FEED_SOURCES or not isinstance(item, str):
            raise ValueError("bad cursor")
        return moment.astimezone(UTC), source, item
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise Problem("The cursor is not valid.", slug="invalid-cursor") from exc


def _after(
    column: Any, id_column: Any, source: str, cursor: tuple[datetime, str, str] | None, cast: Any
) -> list[Any]:
    """Keyset condition for one source on the feed order (time, source, id)."""
    if cursor is None:
        return []
    at, cursor_source, item = cursor
    if source > cursor_source:
        return [column >= at]
    if source < cursor_source:
        return [column > at]
    return [sa.tuple_(column, id_column) > (at, cast(item))]


def feed(user: User, since: str | None, limit: int) -> dict[str, Any]:
    """What changed for the caller: warnings, returned steps and approvals waiting for them."""
    cases.require_case_reader(user)
    cursor = _decode_feed_cursor(since) if since else None
    units = visible_unit_ids(user)
    items: list[dict[str, Any]] = []
    warnings = db.session.scalars(
        sa.select(CaseWarning)
        .where(
            _addressed_to(user),
            *_after(CaseWarning.changed_at, CaseWarning.id, "warning", cursor, uuid.UUID),
        )
        .order_by(CaseWarning.changed_at, CaseWarning.id)
        .limit(limit + 1)
    )
    for warning in warnings:
        items.append(
            {
                "type": "warning",
                "id": warning.id.hex,
                "at": warning.changed_at,
                "case_id": warning.case_id,
                "warning": warning,
            }
        )
    returned = db.session.execute(
        sa.select(CaseEvent, Case.number)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(
            CaseEvent.type == "step_returned",
            Case.handler_id == user.id,
            Case.unit_id.in_(units),
            *_after(CaseEvent.at, CaseEvent.id, "step_returned", cursor, int),
        )
        .order_by(CaseEvent.at, CaseEvent.id)
        .limit(limit + 1)
    )
    for case_event, number in returned:
        items.append(
            {
                "type": "step_returned",
                "id": str(case_event.id),
                "at": case_event.at,
                "case_id": case_event.case_id,
                "step": {
                    "case_number": number,
                    "action": case_event.action,
                    "comment": case_event.comment,
                    "seq": case_event.seq,
                },
            }
        )
    approvals = db.session.scalars(
        sa.select(Approval)
        .where(
            Approval.unit_id.in_(units),
            Approval.role.in_(user.roles),
            Approval.status == ApprovalStatus.PENDING,
            *_after(Approval.created_at, Approval.id, "approval", cursor, uuid.UUID),
        )
        .order_by(Approval.created_at, Approval.id)
        .limit(limit + 1)
    )
    for approval in approvals:
        items.append(
            {
                "type": "approval",
                "id": approval.id.hex,
                "at": approval.created_at,
                "case_id": approval.case_id,
                "approval": {
                    "id": approval.id,
                    "action": approval.request.action,
                    "role": approval.role,
                    "stage": approval.stage,
                },
            }
        )
    items.sort(key=lambda item: (item["at"], item["type"], _sort_id(item)))
    page = items[:limit]
    last = page[-1] if page else None
    next_cursor = _encode_feed_cursor(last["at"], last["type"], last["id"]) if last else since
    return {"items": page, "next_cursor": next_cursor, "more": len(items) > limit}


def _sort_id(item: dict[str, Any]) -> Any:
    return int(item["id"]) if item["type"] == "step_returned" else item["id"]
