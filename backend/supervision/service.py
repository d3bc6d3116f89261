"""The early-warning rules engine: case facts, deadlines, warnings, escalation and the feed.

Facts are derived from case events as they are flushed; when the transaction
commits, the touched cases are evaluated (so the warnings exist by the time
the request that caused them returns). The sweep runs the same per-rule
queries without the case filter, one set-based pass per rule; on PostgreSQL
each pass is one statement that raises and resolves inside the database.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import NoResultFound
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.functions import FunctionElement

from backend.cases import service as cases
from backend.cases.models import Case, CaseEvent
from backend.common import UTCDateTime, dialect_insert, utcnow
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


class FactRow(Protocol):
    """The parts of a case fact that deadlines are computed from (a ``CaseFact`` or a row)."""

    id: uuid.UUID
    kind: str
    subject: str
    started_at: datetime
    ended_at: datetime | None
    data: dict[str, Any] | None


def _excluded(start: datetime, intervals: Iterable[FactRow]) -> timedelta | None:
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


def deadline_for(rule: Rule, start: FactRow, facts: dict[str, list[FactRow]]) -> datetime | None:
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


@dataclass(frozen=True)
class CaseState:
    """What ``refresh_deadlines`` read and computed: enough to tell which rules matter."""

    case_type: str
    kinds: frozenset[str]
    """The kinds of the case's facts."""
    timed: frozenset[str]
    """The rules with a deadline of the case."""


DEADLINE_FIELDS = ("rule_id", "fact_id", "subject", "starts_at", "due_at", "warn_at")

# What evaluate_case reads, built once (in Core: ORM statements cost more to run).
_cases, _facts = Case.__table__.c, CaseFact.__table__.c
_deadlines, _warnings = Deadline.__table__.c, CaseWarning.__table__.c
LOAD_CASE = (
    sa.select(
        _cases.case_type,
        _facts.id,
        _facts.kind,
        _facts.subject,
        _facts.started_at,
        _facts.ended_at,
        _facts.data,
    )
    .select_from(Case.__table__.outerjoin(CaseFact.__table__, _facts.case_id == _cases.id))
    .where(_cases.id == sa.bindparam("case_id", type_=sa.Uuid()))
)
LOAD_DEADLINES = sa.select(*(_deadlines[name] for name in DEADLINE_FIELDS)).where(
    _deadlines.case_id == sa.bindparam("case_id", type_=sa.Uuid())
)
KNOWN = sa.or_(_warnings.status != WarningStatus.RESOLVED.value, _warnings.resolved_by.is_not(None))
"""The warnings that keep a rule from raising again: unresolved, or resolved by someone
(a warning resolved because its condition cleared is raised again when it fires again)."""
LOAD_WARNINGS = sa.select(
    _warnings.id, _warnings.rule_id, _warnings.case_id, _warnings.key, _warnings.status
).where(_warnings.case_id == sa.bindparam("case_id", type_=sa.Uuid()), KNOWN)


def refresh_deadlines(case_id: uuid.UUID, session: Session | None = None) -> CaseState:
    """Recompute the case's deadlines from its facts; unchanged deadlines are not rewritten."""
    session = session or db.session
    loaded = session.execute(LOAD_CASE, {"case_id": case_id}).all()
    if not loaded:
        raise NoResultFound(f"No case {case_id}.")
    case_type = str(loaded[0].case_type)
    facts: dict[str, list[FactRow]] = defaultdict(list)
    for fact in loaded:
        if fact.id is not None:
            facts[fact.kind].append(fact)
    rows = []
    for rule in pack().rules.values():
        if rule.deadline is None or case_type not in rule.case_types:
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
    stored = session.execute(LOAD_DEADLINES, {"case_id": case_id}).all()
    wanted = {tuple(row[name] for name in DEADLINE_FIELDS) for row in rows}
    if len(stored) != len(rows) or {tuple(row) for row in stored} != wanted:
        session.execute(sa.delete(Deadline).where(Deadline.case_id == case_id))
        if rows:
            session.execute(sa.insert(Deadline), rows)
    return CaseState(case_type, frozenset(facts), frozenset(str(row["rule_id"]) for row in rows))


def list_deadlines(case: Case) -> list[Deadline]:
    return list(
        db.session.scalars(
            sa.select(Deadline).where(Deadline.case_id == case.id).order_by(Deadline.due_at)
        )
    )


# Rule queries
#
# Each rule's firing query is built once, with bound parameters: ``now``, the
# rule's own cutoff (``now`` less its grace or idle period, computed in
# Python) and, for one case, ``case_id``. A warning's key is computed in SQL
# by the firing query, so that the sweep can compare and insert it without
# the rows coming back to Python.


def _param_type(name: str) -> Any:
    return sa.Uuid() if name == "case_id" else UTCDateTime()


def bound(name: str) -> Any:
    """A bound parameter of the firing queries: ``now``, ``case_id`` or a rule's cutoff."""
    return sa.bindparam(name, type_=_param_type(name))


def _placeholder(name: str) -> Any:
    """``bound(name)`` that stays a ``:name`` placeholder when compiled with literal binds."""
    return sa.literal_column(f":{name}", _param_type(name))


NOW = bound("now")
ESCALATE_AT = sa.bindparam("escalate_at", type_=UTCDateTime())
FIRING_COLUMNS = {
    "rule_id": sa.String(),
    "case_id": sa.Uuid(),
    "key": sa.String(),
    "due_at": UTCDateTime(),
    "unit_id": sa.Uuid(),
    "handler_id": sa.Uuid(),
    "number": sa.String(),
}


class instant_key(FunctionElement[str]):
    """A warning key made of an instant: ``datetime.isoformat()`` of it in UTC.

    As ``isoformat`` does, the fraction is left out when it is zero
    (``2026-03-02T02:20:00+00:00``, ``2026-03-02T02:20:00.250000+00:00``).
    """

    type = sa.String()
    name = "instant_key"
    inherit_cache = True


@compiles(instant_key, "postgresql")
def _instant_key_postgresql(element: instant_key, compiler: Any, **kw: Any) -> str:
    utc = f"({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({utc}, 'US') = "
        f"'000000' THEN '' ELSE to_char({utc}, '.US') END || '+00:00'"
    )


@compiles(instant_key, "sqlite")
def _instant_key_sqlite(element: instant_key, compiler: Any, **kw: Any) -> str:
    # SQLite holds the UTC time as text: 'YYYY-MM-DD HH:MM:SS.ffffff'.
    stored = compiler.process(element.clauses, **kw)
    return (
        f"replace(substr({stored}, 1, 19), ' ', 'T') || CASE WHEN substr({stored}, 21, 6) "
        f"IN ('', '000000') THEN '' ELSE substr({stored}, 20, 7) END || '+00:00'"
    )


def uuid_key(column: Any) -> Any:
    """A warning key made of an id: ``uuid.hex`` (SQLite stores ids that way already)."""
    return sa.func.replace(sa.cast(column, sa.String), "-", "")


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


def _cutoff(rule: Rule) -> str:
    return f"cutoff_{rule.id}"


def rule_params(rule: Rule, now: datetime) -> dict[str, datetime]:
    """The values of the bound parameters of ``rule``'s firing query, but ``case_id``."""
    if rule.predicate is None:
        return {"now": now}
    if rule.predicate.type == "idle":
        return {_cutoff(rule): now - timedelta(days=rule.predicate.idle_days)}
    return {_cutoff(rule): now - timedelta(hours=rule.predicate.grace_hours)}


_FIRING: dict[tuple[str, bool], tuple[Rule, sa.Select]] = {}


def rule_query(rule: Rule, for_case: bool = False) -> sa.Select:
    """Rows (rule_id, case_id, key, due_at, unit_id, handler_id, number) for which ``rule``
    fires, with the parameters of ``rule_params`` (and ``case_id`` if ``for_case``)."""
    cached = _FIRING.get((rule.id, for_case))
    if cached is None or cached[0] is not rule:
        cached = _FIRING[rule.id, for_case] = (rule, _build_rule_query(rule, for_case, bound))
    return cached[1]


_CASE_SQL: dict[tuple[str, str], tuple[Rule, str]] = {}


def case_sql(rule: Rule, dialect: sa.Dialect) -> str:
    """``rule_query(rule, for_case=True)`` as SQL text, its constants written out and its
    parameters left as ``:now``, ``:case_id`` and ``:cutoff_<rule>``.

    Compiled once per rule, these are the pieces ``firing_rows`` runs for a case. A
    ``UNION ALL`` of ``Select`` objects would be compiled again for every new combination
    of rules, and its cache key built on every call.
    """
    cached = _CASE_SQL.get((rule.id, dialect.name))
    if cached is None or cached[0] is not rule:
        query = _build_rule_query(rule, True, _placeholder)
        text = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        cached = _CASE_SQL[rule.id, dialect.name] = (rule, text)
    return cached[1]


def _build_rule_query(rule: Rule, for_case: bool, param: Callable[[str], Any]) -> sa.Select:
    case_columns = (Case.unit_id, Case.handler_id, Case.number)
    rule_id = sa.literal(rule.id, sa.String).label("rule_id")
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
                rule_id,
                Deadline.case_id,
                uuid_key(Deadline.fact_id).label("key"),
                Deadline.due_at,
                *case_columns,
            )
            .join(Case, Case.id == Deadline.case_id)
            .where(
                Deadline.rule_id == rule.id,
                Deadline.warn_at <= param("now"),
                ~sa.exists().where(*meeting),
            )
        )
        scope = Deadline.case_id
    elif rule.predicate is not None and rule.predicate.type == "idle":
        query = sa.select(
            rule_id,
            Case.id.label("case_id"),
            instant_key(Case.updated_at).label("key"),
            Case.updated_at.label("due_at"),
            *case_columns,
        ).where(
            Case.updated_at <= param(_cutoff(rule)),
            Case.case_type.in_(rule.case_types),
        )
        scope = Case.id
    else:
        spec_p = rule.predicate
        assert spec_p is not None
        clauses = [
            CaseFact.kind == spec_p.fact,
            CaseFact.started_at <= param(_cutoff(rule)),
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
                rule_id,
                CaseFact.case_id,
                uuid_key(CaseFact.id).label("key"),
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
    if for_case:
        query = query.where(scope == param("case_id"))
    return query


def firing_query(rule: Rule, now: datetime, case_id: uuid.UUID | None = None) -> sa.Select:
    """``rule_query`` with its parameters bound: the rows for which ``rule`` fires now."""
    params: dict[str, Any] = rule_params(rule, now)
    if case_id is not None:
        params["case_id"] = case_id
    return rule_query(rule, case_id is not None).params(params)


def _due(rule: Rule, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if rule.predicate is not None and rule.predicate.type != "idle":
        return value + timedelta(hours=rule.predicate.grace_hours)
    return value


def _changes(
    rule: Rule,
    now: datetime,
    firing: dict[tuple[uuid.UUID, str], Any],
    known: Iterable[Any],
) -> tuple[list[dict[str, Any]], list[uuid.UUID]]:
    """The warnings to raise and the ids of those to resolve, from the firing rows and the
    rule's known warnings (unresolved, or resolved by someone: those do not come back)."""
    taken: set[tuple[uuid.UUID, str]] = set()
    cleared: list[uuid.UUID] = []
    for row in known:
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
    return new, cleared


def _write(
    session: Session, now: datetime, new: list[dict[str, Any]], cleared: list[uuid.UUID]
) -> None:
    if new:
        session.execute(dialect_insert(CaseWarning, session).on_conflict_do_nothing(), new)
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


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def apply_rule(
    rule: Rule, now: datetime, case_id: uuid.UUID | None = None, session: Session | None = None
) -> tuple[int, int]:
    """Raise the warnings ``rule`` fires now and resolve those it no longer does.

    Returns (raised, resolved). With ``case_id`` only that case is looked at.
    Over all cases on PostgreSQL, this is one statement (``sweep_statement``);
    otherwise the firing rows and the rule's known warnings are compared here.
    """
    session = session or db.session
    if case_id is None and _postgresql(session):
        params = rule_params(rule, now) | {
            "now": now,
            "escalate_at": now + timedelta(hours=pack().escalate_to_legal_hours),
        }
        raised, resolved = session.execute(sweep_statement(rule), params).one()
        return int(raised), int(resolved)
    params = rule_params(rule, now) | ({} if case_id is None else {"case_id": case_id})
    firing = {
        (row.case_id, row.key): row
        for row in session.execute(rule_query(rule, case_id is not None), params)
    }
    known = sa.select(
        CaseWarning.id, CaseWarning.case_id, CaseWarning.key, CaseWarning.status
    ).where(CaseWarning.rule_id == rule.id, KNOWN)
    if case_id is not None:
        known = known.where(CaseWarning.case_id == case_id)
    new, cleared = _changes(rule, now, firing, session.execute(known))
    _write(session, now, new, cleared)
    return len(new), len(cleared)


WARNING_COLUMNS = (
    "id",
    "rule_id",
    "case_id",
    "key",
    "unit_id",
    "handler_id",
    "case_number",
    "kind",
    "severity",
    "due_at",
    "status",
    "to_legal",
    "to_leader",
    "to_centre",
    "level",
    "escalate_at",
    "created_at",
    "changed_at",
)

_SWEEP: dict[str, tuple[Rule, sa.Select]] = {}


def sweep_statement(rule: Rule) -> sa.Select:
    """``apply_rule`` over all cases as one PostgreSQL statement.

    Raises what fires and is not known (``INSERT ... SELECT``) and resolves
    the unresolved warnings that no longer fire (``UPDATE``), in CTEs that
    share the firing query; selects the counts of both. The firing rows never
    leave the database.
    """
    cached = _SWEEP.get(rule.id)
    if cached is None or cached[0] is not rule:
        cached = _SWEEP[rule.id] = (rule, _build_sweep_statement(rule))
    return cached[1]


def _build_sweep_statement(rule: Rule) -> sa.Select:
    firing = rule_query(rule).cte("firing")
    due: Any = firing.c.due_at
    if rule.predicate is not None and rule.predicate.type != "idle":
        due = due + sa.literal_column(
            f"interval '{rule.predicate.grace_hours * 3600} seconds'", postgresql.INTERVAL
        )
    known = aliased(CaseWarning)
    fired = sa.select(
        sa.func.gen_random_uuid(),
        firing.c.rule_id,
        firing.c.case_id,
        firing.c.key,
        firing.c.unit_id,
        firing.c.handler_id,
        firing.c.number,
        sa.literal(rule.kind, sa.String),
        sa.literal(rule.severity, sa.String),
        due,
        sa.literal(WarningStatus.OPEN.value, sa.String),
        sa.literal("legal_officer" in rule.notify),
        sa.literal("leader" in rule.notify),
        sa.literal("centre" in rule.notify),
        sa.literal(0),
        ESCALATE_AT,
        NOW,
        NOW,
    ).where(
        ~sa.exists().where(
            known.rule_id == rule.id,
            known.case_id == firing.c.case_id,
            known.key == firing.c.key,
            sa.or_(known.status != WarningStatus.RESOLVED, known.resolved_by.is_not(None)),
        )
    )
    raised = (
        postgresql.insert(CaseWarning)
        .from_select(WARNING_COLUMNS, fired)
        .on_conflict_do_nothing()
        .returning(CaseWarning.id)
        .cte("raised")
    )
    resolved = (
        sa.update(CaseWarning)
        .where(
            CaseWarning.rule_id == rule.id,
            CaseWarning.status != WarningStatus.RESOLVED,
            ~sa.exists().where(
                firing.c.case_id == CaseWarning.case_id, firing.c.key == CaseWarning.key
            ),
        )
        .values(
            status=WarningStatus.RESOLVED,
            resolved_at=NOW,
            changed_at=NOW,
            resolution_note=AUTO_NOTE,
            escalate_at=None,
        )
        .returning(CaseWarning.id)
        .cte("resolved")
    )
    return sa.select(
        sa.select(sa.func.count()).select_from(raised).scalar_subquery(),
        sa.select(sa.func.count()).select_from(resolved).scalar_subquery(),
    )


def evaluate_case(
    case_id: uuid.UUID, now: datetime | None = None, session: Session | None = None
) -> None:
    """Incremental evaluation: refresh one case's deadlines and run every rule for it.

    When nothing changes this reads the case with its facts, its deadlines, its
    warnings, and the firing rows of the rules relevant to it (``firing_rows``).
    """
    session = session or db.session
    now = now or utcnow()
    state = refresh_deadlines(case_id, session)
    known: dict[str, list[Any]] = defaultdict(list)
    for row in session.execute(LOAD_WARNINGS, {"case_id": case_id}):
        known[row.rule_id].append(row)
    warned = {
        rule_id
        for rule_id, rows in known.items()
        if any(row.status != WarningStatus.RESOLVED for row in rows)
    }
    rules = relevant_rules(state, warned)
    firing: dict[str, dict[tuple[uuid.UUID, str], Any]] = defaultdict(dict)
    for row in firing_rows(session, rules, case_id, now):
        firing[row.rule_id][row.case_id, row.key] = row
    new: list[dict[str, Any]] = []
    cleared: list[uuid.UUID] = []
    for rule in rules:
        raised, resolved = _changes(rule, now, firing[rule.id], known[rule.id])
        new += raised
        cleared += resolved
    _write(session, now, new, cleared)
    session.flush()


def firing_rows(
    session: Session, rules: list[Rule], case_id: uuid.UUID, now: datetime
) -> list[Any]:
    """The rows (see ``FIRING_COLUMNS``) for which ``rules`` fire for one case now.

    On PostgreSQL, each rule's query is a server-side prepared statement (its
    text is the same for every case), and all of them go to the server in one
    pipeline: one round trip, no planning. One ``UNION ALL`` of the relevant
    rules would differ from case to case, and planning it anew cost more than
    running it. Elsewhere (SQLite) it is that union.
    """
    if not rules:
        return []
    params: dict[str, Any] = {"case_id": case_id}
    for rule in rules:
        params.update(rule_params(rule, now))
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        cursors = []
        with driver.pipeline():
            for rule in rules:
                sql, names = _driver_sql(rule, connection.dialect)
                cursor = driver.cursor(row_factory=namedtuple_row)
                cursor.execute(sql, {name: params[name] for name in names}, prepare=True)
                cursors.append(cursor)
        return [row for cursor in cursors for row in cursor.fetchall()]
    statement = (
        sa.text(" UNION ALL ".join(case_sql(rule, connection.dialect) for rule in rules))
        .bindparams(*(bound(name) for name in sorted(params)))
        .columns(**FIRING_COLUMNS)
    )
    return list(connection.execute(statement, params))


_DRIVER_SQL: dict[str, tuple[Rule, str, tuple[str, ...]]] = {}


def _driver_sql(rule: Rule, dialect: sa.Dialect) -> tuple[str, tuple[str, ...]]:
    """``case_sql`` in the driver's own parameter style, and the names of its parameters."""
    cached = _DRIVER_SQL.get(rule.id)
    if cached is None or cached[0] is not rule:
        names = ("case_id", *rule_params(rule, utcnow()))
        text = sa.text(case_sql(rule, dialect)).bindparams(*(bound(name) for name in names))
        cached = _DRIVER_SQL[rule.id] = (rule, text.compile(dialect=dialect).string, names)
    return cached[1], cached[2]


def relevant_rules(state: CaseState, warned: set[str]) -> list[Rule]:
    """The rules that can fire for the case or have a warning on it (``warned``) to resolve.

    A deadline rule needs a deadline of the case, a predicate its fact; the
    others give the same answer without being asked.
    """

    def relevant(rule: Rule) -> bool:
        if rule.id in warned:
            return True
        if state.case_type not in rule.case_types:
            return False
        if rule.deadline is not None:
            return rule.id in state.timed
        assert rule.predicate is not None
        return rule.predicate.type == "idle" or rule.predicate.fact in state.kinds

    return [rule for rule in pack().rules.values() if relevant(rule)]


def sweep(now: datetime | None = None) -> tuple[int, int]:
    """The set-based pass over all cases: one firing query per rule.

    On PostgreSQL, each rule is one statement, and the transaction gets more
    memory for the anti-joins of a million facts (at the default 4 MB their
    hash tables spill to disk in batches).
    """
    now = now or utcnow()
    if _postgresql(db.session):
        db.session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
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
