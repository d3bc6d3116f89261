#!/usr/bin/env python3
"""Rules-engine benchmark: a full sweep, incremental evaluation and the city's weekly bulletin.

Run from the repository root::

    .venv/bin/python scripts/bench/rules.py --cases 10000               # a quick look
    .venv/bin/python scripts/bench/rules.py --write-docs                # 1,000,000 cases

What it does, in one run:

1. makes a fresh database (``fieldcase_bench_rules``; dropped first if it exists),
   migrates it with ``flask db upgrade`` and creates the organisation through the
   product, as ``scripts/bench/api.py`` does (whose helpers it imports): one city
   bureau, 12 district bureaus, 222 stations of skewed size;
2. generates N open cases set-based, inside PostgreSQL (``INSERT ... SELECT`` over
   ``generate_series``; every random draw is ``hashint8extended`` of the case
   number and a slot, so a seed gives the same data): each case follows one of
   the scenarios in ``SCENARIOS`` (type, state, age, steps with probabilities and
   delays), which become the case history (``case_events``), the facts the rules
   watch (``case_facts``) and the deadlines measured from them (``deadlines``,
   their ends computed with the engine's own ``legaltime.period_end`` once per
   rule and starting hour);
3. measures ``supervision.service.sweep(now)`` twice (the second one must raise
   nothing), then ``evaluate_case(case_id, now)`` on random open cases, then the
   city's weekly bulletin (``stats.service.ensure_bulletin``) when backend/stats
   provides it; ``EXPLAIN ANALYZE`` of the slowest rules' firing queries;
4. prints the figures against the targets; ``--write-docs`` replaces the
   "Rules engine" section of ``docs/performance.md``.

The database is dropped at the end, also on errors and Ctrl-C (``--keep-db`` keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import statistics
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import api as api_bench  # scripts/bench/api.py: databases, migration, organisation, machine
import psycopg
from psycopg import sql

ROOT = api_bench.ROOT
DOCS = api_bench.DOCS
SECTION = "## Rules engine (`scripts/bench/rules.py`)"
FINDINGS = "### Findings"
DB_NAME = "fieldcase_bench_rules"
SWEEP_TARGET_S = 60.0
WARM_UP_CALLS = 100
"""evaluate_case calls on other cases (rolled back) before the timed ones."""
INCREMENTAL_P99_TARGET_MS = 5.0
BULLETIN_TARGET_S = 10.0
LOAD_TABLES = ("cases", "case_persons", "case_events", "case_facts", "deadlines")
log = api_bench.log


# --------------------------------------------------------------------------
# Scenarios: what a case went through, step by step


@dataclass(frozen=True)
class Step:
    """One event in a case's history, and the fact it records (if any).

    A step happens at a fraction ``at`` of the case's age (``0`` is when it was
    accepted) or ``hours`` after an earlier step ``after``; it happens with
    probability ``p`` (given that ``after`` happened) and only if that time is
    not in the future. ``data`` draws the fact's data: key -> (value, share,
    other value), ``None`` leaving the key out.
    """

    name: str
    event: str  # transition | fact_recorded | step_requested | step_approved | person_added
    fact: str = ""
    action: str = ""
    to: str = ""
    at: float | None = None
    after: str = ""
    hours: tuple[float, float] = (0.0, 0.0)
    p: float = 1.0
    person: bool = False
    role: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    data: dict[str, tuple[Any, float, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    case_type: str
    status: str
    share: float
    age_days: tuple[float, float]
    skew: float  # age = lo + (hi - lo) * u ** skew: above 1, younger cases are more common
    steps: tuple[Step, ...]


def fact(name: str, kind: str, **fields: Any) -> Step:
    return Step(name, "fact_recorded", fact=kind, **fields)


def move(name: str, action: str, to: str, kind: str, **fields: Any) -> Step:
    return Step(name, "transition", fact=kind, action=action, to=to, **fields)


INTERROGATION = {
    "officers": (2, 0.98, 1),
    "officer_signatures": (2, 0.99, 1),
    "minor": (True, 0.03, None),
    "guardian_present": (True, 0.9, None),
    "major_case": (True, 0.15, None),
    "av_recorded": (True, 0.97, None),
}
SEIZURE = {"officers": (2, 0.97, 1), "list_signed": (True, 0.98, None)}

ACCEPT = (
    move("accept", "accept", "accepted", "accepted", at=0.0),
    Step("suspect", "person_added", after="accept", hours=(0.1, 2.0)),
    fact("receipt", "receipt_issued", after="accept", hours=(0.05, 0.6), p=0.98),
)
ADMIN_WORK = (
    *ACCEPT,
    move("investigate", "start_investigation", "investigating", "investigation_started", at=0.03),
    fact("question", "questioning_started", at=0.1, p=0.45, person=True,
         data={"detention_possible": (True, 0.1, None),
               "many_or_identity_unknown": (True, 0.05, None)}),
    fact("question_end", "questioning_ended", after="question", hours=(0.5, 7.0), p=0.995,
         person=True),
    fact("interrogate", "interrogated", after="question", hours=(0.2, 2.0), p=0.8, person=True,
         data=INTERROGATION),
    fact("area_in", "area_entry", at=0.1, p=0.4, person=True),
    fact("area_out", "area_exit", after="area_in", hours=(0.5, 8.0), p=0.995, person=True),
    fact("seize", "property_seized", at=0.15, p=0.12, person=True, data=SEIZURE),
    fact("handover", "property_handed_over", after="seize", hours=(1.0, 22.0), p=0.97,
         person=True),
    fact("admin_seize", "admin_seizure", at=0.2, p=0.05, person=True),
    fact("admin_seize_end", "seizure_ended", after="admin_seize", hours=(72.0, 900.0), p=0.9,
         person=True),
    fact("evidence", "evidence_listed", at=0.2, p=0.3, person=True),
    fact("evidence_up", "evidence_uploaded", after="evidence", hours=(0.1, 20.0), p=0.98,
         person=True),
)  # fmt: skip
NOTIFY = move("notify", "notify", "notified", "notified", at=0.6, payload=api_bench.NOTIFY)
DECIDE_REQUEST = Step("decide_request", "step_requested", action="submit_decision",
                      to="legal_review", at=0.7, payload=api_bench.DECISION)  # fmt: skip
LEGAL_OK = Step("legal_ok", "step_approved", fact="legal_reviewed", action="submit_decision",
                to="leader_approval", role="legal_officer", at=0.75)  # fmt: skip
LEADER_OK = Step("leader_ok", "step_approved", action="submit_decision", role="leader", at=0.79)


def admin_decided(decided_at: float) -> tuple[Step, ...]:
    return (
        *ADMIN_WORK,
        NOTIFY,
        DECIDE_REQUEST,
        LEGAL_OK,
        LEADER_OK,
        move("decide", "submit_decision", "decided", "decided", at=decided_at,
             payload=api_bench.DECISION),
    )  # fmt: skip


CRIMINAL_FILED = (
    *ACCEPT,
    move("review", "start_filing_review", "filing_review", "filing_review_started", at=0.1),
    move("file", "file_case", "filed", "filed", at=0.25, payload={"charge": "盗窃罪"}),
)
CRIMINAL_WORK = (
    *CRIMINAL_FILED,
    move("investigate", "start_investigation", "investigating", "investigation_started", at=0.3),
    move("summon", "summon", "investigating", "summoned", at=0.4, p=0.5, person=True,
         data={"especially_serious": (True, 0.05, None)}),
    fact("summon_end", "summons_ended", after="summon", hours=(1.0, 11.0), p=0.97, person=True),
    move("detain", "detain", "investigating", "detained", after="summon", hours=(2.0, 11.5),
         p=0.45, person=True, data={"roving_or_gang": (True, 0.1, None)}),
    fact("jail", "delivered_to_jail", after="detain", hours=(1.0, 20.0), p=0.99, person=True),
    fact("family", "family_notified", after="detain", hours=(2.0, 22.0), p=0.98, person=True),
    fact("interrogate", "interrogated", after="detain", hours=(0.5, 20.0), p=0.995, person=True,
         data=INTERROGATION),
    fact("counsel", "counsel_rights_notified", after="interrogate", hours=(0.0, 0.5), p=0.99,
         person=True),
    move("arrest_request", "request_arrest", "investigating", "arrest_requested", after="detain",
         hours=(24.0, 70.0), p=0.8, person=True),
    fact("release", "released", after="detain", hours=(24.0, 70.0), p=0.25, person=True),
    fact("arrest_ok", "arrest_approved", after="arrest_request", hours=(24.0, 160.0), p=0.9,
         person=True),
    fact("arrested", "arrested", after="arrest_ok", hours=(1.0, 20.0), person=True),
    fact("family2", "family_notified", after="arrested", hours=(2.0, 22.0), p=0.98, person=True),
    fact("interrogate2", "interrogated", after="arrested", hours=(1.0, 20.0), p=0.99,
         person=True, data=INTERROGATION),
    move("bail", "grant_bail", "investigating", "bail", after="detain", hours=(24.0, 70.0),
         p=0.15, person=True),
    move("rsl", "residential_surveillance", "investigating", "rsl", at=0.5, p=0.03, person=True,
         data={"designated_residence": (True, 0.3, False)}),
    fact("rsl_family", "family_notified", after="rsl", hours=(2.0, 22.0), p=0.98, person=True),
    fact("area_in", "area_entry", at=0.35, p=0.5, person=True),
    fact("area_out", "area_exit", after="area_in", hours=(0.5, 12.0), p=0.995, person=True),
    fact("seize", "property_seized", at=0.45, p=0.2, person=True,
         data={**SEIZURE, "witness_is_police": (True, 0.05, None)}),
    fact("evidence", "evidence_listed", at=0.45, p=0.4, person=True),
    fact("evidence_up", "evidence_uploaded", after="evidence", hours=(0.1, 20.0), p=0.98,
         person=True),
)  # fmt: skip

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("admin accepted", "administrative", "accepted", 0.06, (0, 1.2), 1.5, ACCEPT),
    Scenario("admin investigating", "administrative", "investigating", 0.32, (0.5, 40), 2.2,
             ADMIN_WORK),
    Scenario("admin notified", "administrative", "notified", 0.08, (2, 40), 1.8,
             (*ADMIN_WORK, NOTIFY)),
    Scenario("admin legal review", "administrative", "legal_review", 0.03, (3, 40), 1.8,
             (*ADMIN_WORK, NOTIFY, DECIDE_REQUEST)),
    Scenario("admin leader approval", "administrative", "leader_approval", 0.02, (3, 40), 1.8,
             (*ADMIN_WORK, NOTIFY, DECIDE_REQUEST, LEGAL_OK)),
    Scenario("admin decided", "administrative", "decided", 0.05, (3, 45), 1.5,
             admin_decided(0.97)),
    Scenario("admin executed", "administrative", "executed", 0.14, (3, 60), 1.5,
             (*admin_decided(0.8),
              move("execute", "execute", "executed", "served", at=0.81))),
    Scenario("criminal accepted", "criminal", "accepted", 0.015, (0, 2.5), 1.2, ACCEPT),
    Scenario("criminal filing review", "criminal", "filing_review", 0.025, (0.5, 4), 1.2,
             CRIMINAL_FILED[:-1]),
    Scenario("criminal filed", "criminal", "filed", 0.02, (1, 30), 1.3, CRIMINAL_FILED),
    Scenario("criminal investigating", "criminal", "investigating", 0.18, (2, 60), 1.3,
             CRIMINAL_WORK),
    Scenario("criminal concluded", "criminal", "investigation_concluded", 0.025, (10, 60), 1.0,
             (*CRIMINAL_WORK, move("conclude", "conclude_investigation",
                                   "investigation_concluded", "investigation_concluded",
                                   at=0.9, payload={"summary": "证据确实充分"}))),
    Scenario("criminal transferred", "criminal", "transferred_for_prosecution", 0.035, (15, 60),
             1.0,
             (*CRIMINAL_WORK,
              move("conclude", "conclude_investigation", "investigation_concluded",
                   "investigation_concluded", at=0.9, payload={"summary": "证据确实充分"}),
              move("prosecute", "transfer_for_prosecution", "transferred_for_prosecution",
                   "transferred_for_prosecution", at=0.95,
                   payload={"procuratorate": "示范市人民检察院"}))),
)  # fmt: skip
DATA_SLOTS = 8  # random draws per step: happens, delay, then one per data key


def walk(scenario: Scenario) -> tuple[list[tuple[str | None, str | None]], str]:
    """(from, to) state of each step's event, and the state the case shows at the end.

    Transitions move the case; a step request and its approvals only change the
    state it shows while the approval is pending (as in the workflow files).
    """
    from shared.workflow import workflow_for

    workflow = workflow_for(scenario.case_type)  # type: ignore[arg-type]
    state = shown = workflow.initial
    moves: list[tuple[str | None, str | None]] = []
    for step in scenario.steps:
        if step.event == "transition":
            action = workflow.actions[step.action]
            if state not in action.sources or action.target != step.to:
                raise RuntimeError(f"{scenario.name}: {step.action} not from {state}")
            moves.append((state, step.to))
            if step.at is not None and step.p == 1.0:
                state = shown = step.to
        elif step.event == "step_requested":
            moves.append((state, step.to))
            shown = step.to
        else:
            moves.append((None, None))
            shown = step.to or shown
    if shown != scenario.status or workflow.is_terminal(shown):
        raise RuntimeError(f"{scenario.name}: ends in {shown}, not open {scenario.status}")
    return moves, shown


def check_scenarios() -> None:
    """Scenarios follow the workflows, and record no fact the deadline lookup cannot price."""
    from backend.supervision.service import pack

    if abs(sum(s.share for s in SCENARIOS) - 1) > 1e-9:
        raise RuntimeError("scenario shares must add up to 1")
    rules = pack().rules.values()
    unpriced = {
        k for r in rules if r.deadline for k in (*r.deadline.exclude, *r.deadline.extensions)
    }
    for scenario in SCENARIOS:
        names: set[str] = set()
        for step in scenario.steps:
            if step.after and step.after not in names:
                raise RuntimeError(f"{scenario.name}: {step.name} follows an unknown step")
            if (step.at is None) == (not step.after):
                raise RuntimeError(f"{scenario.name}: {step.name} needs `at` or `after`")
            if len(step.data) > DATA_SLOTS - 2:
                raise RuntimeError(f"{scenario.name}: {step.name} draws too many data keys")
            if step.fact in unpriced:
                raise RuntimeError(f"{step.fact} would lengthen or pause deadlines")
            if step.name in names:
                raise RuntimeError(f"{scenario.name}: two steps named {step.name}")
            names.add(step.name)
        walk(scenario)


# --------------------------------------------------------------------------
# Set-based generation


def _lit(value: Any) -> str:
    """A SQL literal for a Python value (only the benchmark's own constants reach it)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _jsonb(value: Any) -> str:
    return _lit(json.dumps(value, ensure_ascii=False)) + "::jsonb"


def _u(slot: int) -> str:
    return f"bench_u(c.g, {slot})"


def _iso(column: str) -> str:
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


def step_rows(scenario_index: int, scenario: Scenario, first_step: int, now: str) -> str:
    """INSERT of one scenario's steps: a chain of LATERAL times, one row per step that happened."""
    laterals, values = [], []
    position = {step.name: i for i, step in enumerate(scenario.steps)}
    for i, step in enumerate(scenario.steps):
        base = i * DATA_SLOTS
        if step.at is not None:
            when = f"c.t0 + c.age * {step.at!r}"
            happens = f"{_u(base)} < {step.p!r}"
        else:
            parent = f"s{position[step.after]}.t"
            lo, hi = step.hours
            when = (
                f"{parent} + make_interval(secs => ({lo!r} + {hi - lo!r} * {_u(base + 1)}) * 3600)"
            )
            happens = f"{parent} IS NOT NULL AND {_u(base)} < {step.p!r}"
        laterals.append(f"LATERAL (SELECT CASE WHEN {happens} THEN {when} END AS t) s{i}")
        pairs = []
        for k, (key, (value, share, other)) in enumerate(step.data.items()):
            pick = (
                f"CASE WHEN {_u(base + 2 + k)} < {share!r} "
                f"THEN {_jsonb(value)} ELSE {_jsonb(other)} END"
            )
            pairs.append(f"{_lit(key)}, {pick}")
        data = f"jsonb_strip_nulls(jsonb_build_object({', '.join(pairs)}))" if pairs else "'{}'"
        values.append(f"({first_step + i}, s{i}.t, {data}::jsonb)")
    return (
        "INSERT INTO bench_steps (case_id, step, at, data) SELECT c.id, v.step, v.at, v.data "
        f"FROM bench_cases c, {', '.join(laterals)}, "
        f"LATERAL (VALUES {', '.join(values)}) v(step, at, data) "
        f"WHERE c.scenario = {scenario_index} AND v.at IS NOT NULL AND v.at <= {now}"
    )


def _condition_sql(column: str, condition: Any) -> str:
    """shared.rules.Condition.matches, in SQL over a jsonb column."""
    element, value = f"({column} -> {_lit(condition.key)})", _jsonb(condition.value)
    if condition.op == "eq":
        return f"{element} = {value}"
    if condition.op == "ne":
        return f"({element} IS NULL OR {element} = 'null'::jsonb OR {element} <> {value})"
    op = "<" if condition.op == "lt" else ">"
    return (
        f"(jsonb_typeof({element}) = 'number' AND "
        f"({column} ->> {_lit(condition.key)})::numeric {op} {condition.value!r})"
    )


def deadline_lookup(now: datetime, days: int) -> list[tuple[str, datetime, datetime, datetime]]:
    """(rule, starting hour, due, warn) for every deadline rule and hour of the generated span.

    A period's end depends only on the hour it starts in (hours count from the next
    full hour; days and months from the local day, and Asia/Shanghai keeps whole-hour
    offsets), so pricing each hour once with ``legaltime.period_end`` gives exactly
    what ``refresh_deadlines`` computes for facts without exclusions or extensions.
    """
    from backend.supervision import legaltime
    from backend.supervision.service import pack

    first = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    hours = [first + timedelta(hours=h) for h in range(days * 24 + 2)]
    rows = []
    for rule in pack().rules.values():
        spec = rule.deadline
        if spec is None:
            continue
        ahead = timedelta(hours=rule.ahead_hours) if rule.kind == "warning" else timedelta()
        for hour in hours:
            if not rule.in_force(hour.astimezone(legaltime.DEFAULT_ZONE).date()):
                continue
            due = legaltime.period_end(
                hour, spec.amount, legaltime.Unit(spec.unit), legaltime.Counting(spec.counting)
            )
            rows.append((rule.id, hour, due, due - ahead))
    return rows


@dataclass
class LoadReport:
    rows: dict[str, int]
    seconds: dict[str, float]
    database_bytes: int
    scenario_counts: dict[str, int]
    fact_counts: dict[str, int]
    deadline_spread: dict[str, int]


def _timed(
    conn: psycopg.Connection[Any], label: str, statement: str, seconds: dict[str, float]
) -> int:
    started = time.monotonic()
    cursor = conn.execute(statement)  # type: ignore[arg-type]
    seconds[label] = seconds.get(label, 0.0) + time.monotonic() - started
    return cursor.rowcount


def _secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, str]]:
    """(kind, table, name, definition) of the loaded tables' unique constraints and indexes."""
    rows = conn.execute(
        """
        SELECT 'constraint', t.relname, c.conname, pg_get_constraintdef(c.oid)
          FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
         WHERE c.contype = 'u' AND t.relname = ANY(%(tables)s)
        UNION ALL
        SELECT 'index', t.relname, i.relname, pg_get_indexdef(i.oid)
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
          JOIN pg_class t ON t.oid = x.indrelid
         WHERE t.relname = ANY(%(tables)s) AND NOT x.indisprimary
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                            WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid)
        """,
        {"tables": list(LOAD_TABLES)},
    ).fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def bulk_load(url: str, stations: list[Any], cases: int, seed: int, now: datetime) -> LoadReport:
    import random

    from backend.supervision.service import pack
    from shared.workflow import workflow_for

    sizes = api_bench.station_sizes(cases, len(stations), random.Random(seed))
    seconds: dict[str, float] = {}
    rows: dict[str, int] = {}
    now_sql = f"{_lit(now.isoformat())}::timestamptz"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK or history triggers
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET synchronous_commit = off")
        indexes = _secondary_indexes(conn)
        for kind, table, name, _ in indexes:
            if kind == "constraint":
                conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(table), sql.Identifier(name)))  # fmt: skip
            else:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        conn.execute(
            "CREATE FUNCTION bench_u(g bigint, slot int) RETURNS float8 "
            "LANGUAGE sql IMMUTABLE AS $$ SELECT (hashint8extended(g * 1024 + slot, "
            f"{int(seed)}) & 4294967295)::float8 / 4294967296 $$"
        )
        conn.execute(
            "CREATE TEMP TABLE bench_units (code text, unit_id uuid, officer1 uuid, "
            "officer2 uuid, legal uuid, leader uuid, size int)"
        )
        with conn.cursor().copy("COPY bench_units FROM STDIN") as copy:
            for station, size in zip(stations, sizes, strict=True):
                copy.write_row((station.code, station.id, *station.officers, station.legal,
                                station.leader, size))  # fmt: skip
        bounds, total = [], 0.0
        for index, scenario in enumerate(SCENARIOS):
            total += scenario.share
            bounds.append(f"WHEN r < {total!r} THEN {index}")
        ages = " ".join(
            f"WHEN {i} THEN make_interval(secs => ({s.age_days[0]!r} + "
            f"{s.age_days[1] - s.age_days[0]!r} * power(bench_u(g, 1), {s.skew!r})) * 86400)"
            for i, s in enumerate(SCENARIOS)
        )
        _timed(conn, "cases", f"""
            CREATE TEMP TABLE bench_cases AS
            SELECT g, gen_random_uuid() AS id, gen_random_uuid() AS person_id, unit_id, code,
                   CASE WHEN bench_u(g, 2) < 0.5 THEN officer1 ELSE officer2 END AS handler_id,
                   legal, leader, scenario, age, {now_sql} - age AS t0
              FROM (SELECT g, u.*,
                           CASE {' '.join(bounds)} ELSE {len(SCENARIOS) - 1} END AS scenario
                      FROM (SELECT u.*, row_number() OVER () AS k FROM bench_units u) u,
                           generate_series(1, u.size) s,
                           LATERAL (SELECT (u.k * 10000000 + s)::bigint AS g) gg,
                           LATERAL (SELECT bench_u(g, 0) AS r) rr) x,
                   LATERAL (SELECT CASE scenario {ages} END AS age) a
        """, seconds)  # fmt: skip
        conn.execute(
            "CREATE TEMP TABLE bench_steps (case_id uuid, step int, at timestamptz, data jsonb)"
        )
        meta, first = [], 0
        for index, scenario in enumerate(SCENARIOS):
            _timed(conn, "steps", step_rows(index, scenario, first, now_sql), seconds)
            moves, _ = walk(scenario)
            for number, (step, (source, target)) in enumerate(
                zip(scenario.steps, moves, strict=True), start=first
            ):
                meta.append((number, step.event, step.fact, step.action or None, source, target,
                             step.person, step.role,
                             json.dumps(step.payload, ensure_ascii=False)))  # fmt: skip
            first += len(scenario.steps)
        conn.execute(
            "CREATE TEMP TABLE bench_meta (step int PRIMARY KEY, event text, fact text, "
            "action text, from_state text, to_state text, person bool, role text, extra jsonb)"
        )
        with conn.cursor().copy("COPY bench_meta FROM STDIN") as copy:
            for row in meta:
                copy.write_row(row)
        _timed(conn, "steps", """
            CREATE TEMP TABLE bench_ev AS
            SELECT s.*, row_number() OVER (PARTITION BY s.case_id ORDER BY s.at, s.step) AS seq
              FROM bench_steps s
        """, seconds)  # fmt: skip
        conn.execute("ANALYZE bench_cases")
        conn.execute("ANALYZE bench_ev")
        statuses = " ".join(f"WHEN {i} THEN {_lit(s.status)}" for i, s in enumerate(SCENARIOS))
        types = " ".join(f"WHEN {i} THEN {_lit(s.case_type)}" for i, s in enumerate(SCENARIOS))
        state_hours = []
        for i, s in enumerate(SCENARIOS):
            hours = workflow_for(s.case_type).states[s.status].deadline_hours  # type: ignore[arg-type]
            if hours:
                state_hours.append(f"WHEN {i} THEN {hours}")
        due = (
            f"e.entered + make_interval(hours => CASE c.scenario {' '.join(state_hours)} END)"
            if state_hours
            else "NULL"
        )
        rows["cases"] = _timed(conn, "cases", f"""
            INSERT INTO cases (id, number, unit_id, year, seq, case_type, status, is_open, title,
                               summary, handler_id, incident_id, pending_request_id, due_at,
                               created_at, updated_at, version)
            SELECT c.id, c.code || '-' || y.year || '-' || lpad((row_number()
                       OVER (PARTITION BY c.unit_id, y.year ORDER BY c.t0, c.g))::text, 6, '0'),
                   c.unit_id, y.year,
                   row_number() OVER (PARTITION BY c.unit_id, y.year ORDER BY c.t0, c.g),
                   CASE c.scenario {types} END, CASE c.scenario {statuses} END, true,
                   '基准案件 ' || c.g, '', c.handler_id, NULL, NULL, {due}, c.t0, e.last, e.n + 1
              FROM bench_cases c
              JOIN (SELECT ev.case_id, max(ev.at) AS last, count(*) AS n,
                           max(ev.at) FILTER (WHERE m.event = 'transition'
                                              AND m.to_state <> m.from_state) AS entered
                      FROM bench_ev ev JOIN bench_meta m USING (step)
                     GROUP BY ev.case_id) e ON e.case_id = c.id,
                   LATERAL (SELECT extract(year FROM c.t0 AT TIME ZONE 'Asia/Shanghai')::int
                            AS year) y
        """, seconds)  # fmt: skip
        rows["case_number_counters"] = _timed(conn, "cases", """
            INSERT INTO case_number_counters (unit_id, year, last)
            SELECT unit_id, year, max(seq) FROM cases GROUP BY unit_id, year
        """, seconds)  # fmt: skip
        rows["case_persons"] = _timed(conn, "cases", """
            INSERT INTO case_persons (id, case_id, role, name, id_number, phone, address,
                                      created_at, content_hash)
            SELECT c.person_id, c.id, 'suspect', '张伟', '330102198801011234', '13900000000',
                   '基准市东城区人民路88号', ev.at, md5(c.g::text) || md5(c.id::text)
              FROM bench_ev ev JOIN bench_meta m USING (step)
              JOIN bench_cases c ON c.id = ev.case_id
             WHERE m.event = 'person_added'
        """, seconds)  # fmt: skip
        person = "jsonb_build_object('person_id', c.person_id::text)"
        payload = f"""CASE m.event
            WHEN 'transition' THEN m.extra || CASE WHEN m.person
                 THEN {person} || jsonb_build_object('starts_at', {_iso("ev.at")})
                 ELSE '{{}}' END || ev.data
            WHEN 'fact_recorded' THEN jsonb_build_object(
                 'kind', m.fact, 'subject', CASE WHEN m.person THEN c.person_id::text ELSE '' END,
                 'started_at', {_iso("ev.at")}, 'ended_at', NULL, 'data', ev.data)
            WHEN 'step_approved' THEN jsonb_build_object('role', m.role)
            WHEN 'person_added' THEN {person} || '{{"role": "suspect"}}'
            ELSE m.extra END"""
        rows["case_events"] = _timed(conn, "events", f"""
            INSERT INTO case_events (case_id, seq, type, at, actor_id, action, from_state,
                                     to_state, request_id, comment, payload)
            SELECT ev.case_id, ev.seq, m.event, ev.at,
                   CASE m.role WHEN 'legal_officer' THEN c.legal WHEN 'leader' THEN c.leader
                        ELSE c.handler_id END,
                   m.action, m.from_state, m.to_state,
                   NULL, NULL, {payload}
              FROM bench_ev ev JOIN bench_meta m USING (step)
              JOIN bench_cases c ON c.id = ev.case_id
        """, seconds)  # fmt: skip
        rows["case_facts"] = _timed(conn, "facts", f"""
            INSERT INTO case_facts (id, case_id, event_seq, kind, subject, started_at, ended_at,
                                    data, created_at)
            SELECT gen_random_uuid(), ev.case_id, ev.seq, m.fact,
                   CASE WHEN m.person THEN c.person_id::text ELSE '' END, ev.at, NULL,
                   CASE m.event WHEN 'transition' THEN {payload} WHEN 'fact_recorded'
                        THEN ev.data ELSE '{{}}' END,
                   ev.at
              FROM bench_ev ev JOIN bench_meta m USING (step)
              JOIN bench_cases c ON c.id = ev.case_id
             WHERE m.fact <> ''
        """, seconds)  # fmt: skip
        started = time.monotonic()
        conn.execute(
            "CREATE TEMP TABLE bench_lookup (rule_id text, hour timestamptz, due_at timestamptz, "
            "warn_at timestamptz, PRIMARY KEY (rule_id, hour))"
        )
        span = max(s.age_days[1] for s in SCENARIOS) + 2
        with conn.cursor().copy("COPY bench_lookup FROM STDIN") as copy:
            for row in deadline_lookup(now, math.ceil(span)):
                copy.write_row(row)
        conn.execute("ANALYZE bench_lookup")
        seconds["deadline prices"] = time.monotonic() - started
        rules, matches = [], []
        for rule in pack().rules.values():
            if rule.deadline is None:
                continue
            types_sql = "ARRAY[" + ", ".join(_lit(t) for t in rule.case_types) + "]"
            rules.append(f"({_lit(rule.id)}, {_lit(rule.deadline.start)}, {types_sql})")
            where = " AND ".join(_condition_sql("f.data", c) for c in rule.deadline.where)
            matches.append(f"WHEN {_lit(rule.id)} THEN {where or 'true'}")
        rows["deadlines"] = _timed(conn, "deadlines", f"""
            INSERT INTO deadlines (id, rule_id, case_id, fact_id, subject, starts_at, due_at,
                                   warn_at)
            SELECT gen_random_uuid(), r.rule_id, f.case_id, f.id, f.subject, f.started_at,
                   l.due_at, l.warn_at
              FROM case_facts f
              JOIN cases c ON c.id = f.case_id
              JOIN (VALUES {', '.join(rules)}) r(rule_id, kind, case_types)
                ON r.kind = f.kind AND c.case_type = ANY(r.case_types)
              JOIN bench_lookup l
                ON l.rule_id = r.rule_id AND l.hour = date_trunc('hour', f.started_at)
             WHERE CASE r.rule_id {' '.join(matches)} ELSE false END
        """, seconds)  # fmt: skip
        log(f"generated {', '.join(f'{rows[t]:,} {t}' for t in rows)}")
        started = time.monotonic()
        for kind, table, name, definition in indexes:
            conn.execute(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'  # type: ignore[arg-type]
                if kind == "constraint"
                else definition
            )
        seconds["indexes"] = time.monotonic() - started
        started = time.monotonic()
        for table in (*LOAD_TABLES, "case_number_counters"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        seconds["vacuum analyze"] = time.monotonic() - started
        scenario_counts = {
            SCENARIOS[i].name: n
            for i, n in conn.execute("SELECT scenario, count(*) FROM bench_cases GROUP BY 1")
        }
        fact_counts = dict(
            conn.execute("SELECT kind, count(*) FROM case_facts GROUP BY 1 ORDER BY 2 DESC")
        )
        until = ", ".join(
            f"({_lit(r.id)}, ARRAY[{', '.join(_lit(k) for k in r.deadline.until)}]::text[], "
            f"{_lit(r.deadline.per_subject)})"
            for r in pack().rules.values()
            if r.deadline is not None
        )
        spread = dict(
            conn.execute(
                f"""
                SELECT CASE WHEN due_at <= {now_sql} THEN 'past'
                            WHEN due_at <= {now_sql} + interval '1 day' THEN 'within 1 day'
                            WHEN due_at <= {now_sql} + interval '7 days' THEN 'within 7 days'
                            ELSE 'later' END, count(*)
                  FROM deadlines d JOIN (VALUES {until}) r(rule_id, until, per_subject)
                    ON r.rule_id = d.rule_id
                 WHERE NOT EXISTS (
                       SELECT 1 FROM case_facts m
                        WHERE m.case_id = d.case_id AND m.kind = ANY(r.until)
                          AND m.started_at >= d.starts_at
                          AND (NOT r.per_subject OR m.subject IN (d.subject, '')))
                 GROUP BY 1
                """  # type: ignore[arg-type]
            )
        )
        orphans = conn.execute(
            "SELECT (SELECT count(*) FROM bench_cases c WHERE NOT EXISTS "
            "(SELECT 1 FROM cases x WHERE x.id = c.id))"
        ).fetchone()
        if orphans and orphans[0]:
            raise RuntimeError(f"{orphans[0]} generated cases have no history")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return LoadReport(
        rows=rows,
        seconds=seconds,
        database_bytes=int(size[0]) if size else 0,
        scenario_counts=scenario_counts,
        fact_counts=fact_counts,
        deadline_spread=spread,
    )


# --------------------------------------------------------------------------
# Measurements


class StatementMeter:
    """Counts the statements an engine executes and the time spent inside them (in PostgreSQL
    and on the wire), so that the rest of a measured span is the application's own time."""

    def __init__(self, engine: Any) -> None:
        import sqlalchemy as sa

        self.engine, self.statements, self.seconds = engine, 0, 0.0
        self._started = 0.0
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_args: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, *_args: Any) -> None:
        self.statements += 1
        self.seconds += time.perf_counter() - self._started

    def reset(self) -> tuple[int, float]:
        counted = self.statements, self.seconds
        self.statements, self.seconds = 0, 0.0
        return counted

    def close(self) -> None:
        import sqlalchemy as sa

        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        sa.event.remove(self.engine, "after_cursor_execute", self._after)


@dataclass
class SweepResult:
    seconds: float
    commit_seconds: float
    raised: int
    resolved: int
    per_rule: dict[str, tuple[float, int]]
    statements: int
    database_seconds: float


def run_sweep(app: Any, now: datetime) -> SweepResult:
    """``service.sweep(now)`` in an app context, then commit; per-rule times on the side."""
    from backend.extensions import db
    from backend.supervision import service

    per_rule: dict[str, tuple[float, int]] = {}
    original = service.apply_rule

    def timed_rule(rule: Any, when: datetime, *args: Any, **kwargs: Any) -> tuple[int, int]:
        started = time.perf_counter()
        result = original(rule, when, *args, **kwargs)
        per_rule[rule.id] = (time.perf_counter() - started, result[0])
        return result

    with app.app_context():
        service.apply_rule = timed_rule  # type: ignore[assignment]
        meter = StatementMeter(db.engine)
        try:
            started = time.perf_counter()
            raised, resolved = service.sweep(now)
            seconds = time.perf_counter() - started
            statements, database_seconds = meter.reset()
            started = time.perf_counter()
            db.session.commit()
            commit_seconds = time.perf_counter() - started
        finally:
            meter.close()
            service.apply_rule = original  # type: ignore[assignment]
            db.session.remove()
    return SweepResult(
        seconds, commit_seconds, raised, resolved, per_rule, statements, database_seconds
    )


def explain_rules(app: Any, now: datetime, rule_ids: list[str]) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the firing query of each rule in ``rule_ids``."""
    from backend.extensions import db
    from backend.supervision import service

    plans = {}
    with app.app_context():
        try:
            for rule_id in rule_ids:
                query = service.firing_query(service.pack().rules[rule_id], now)
                compiled = query.compile(
                    dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}
                )
                result = db.session.connection().exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + str(compiled)
                )
                plans[rule_id] = "\n".join(row[0] for row in result)
        finally:
            db.session.rollback()
            db.session.remove()
    return plans


@dataclass
class IncrementalResult:
    calls: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    commit_p50_ms: float
    raised: int
    resolved: int
    deadline_mismatches: int
    statements_per_call: float
    database_ms_per_call: float
    firing_queries_per_call: float = 0.0
    firing_ms_per_call: float = 0.0
    times_ms: list[float] = field(repr=False, default_factory=list)


def _deadline_rows(url: str, case_ids: list[Any]) -> set[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return {
            tuple(row)
            for row in conn.execute(
                "SELECT case_id, rule_id, fact_id, subject, starts_at, due_at, warn_at "
                "FROM deadlines WHERE case_id = ANY(%s)",
                (case_ids,),
            )
        }


def _warning_counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'resolved') FROM warnings"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def run_incremental(app: Any, url: str, now: datetime, sample: int, seed: int) -> IncrementalResult:
    """``evaluate_case(case_id, now)`` on random open cases, each timed with its flush.

    Each call's work is committed after its timer stops (as the request that caused
    it would commit); the commit is timed apart.
    """
    from backend.extensions import db
    from backend.supervision import service

    with psycopg.connect(url) as conn:
        drawn = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM cases WHERE is_open ORDER BY md5(id::text || %s) LIMIT %s",
                (str(seed), sample + WARM_UP_CALLS),
            )
        ]
    warm_up, case_ids = drawn[:WARM_UP_CALLS], drawn[WARM_UP_CALLS:]
    before = _deadline_rows(url, case_ids)
    total_before, resolved_before = _warning_counts(url)
    times, commits = [], []
    statements, database_seconds = 0, 0.0
    # On PostgreSQL the firing queries go to the server in one pipeline on the driver's
    # connection, which the statement meter does not see: count and time them here.
    firing = {"queries": 0, "seconds": 0.0}
    original = service.firing_rows

    def counted_firing_rows(session: Any, rules: list[Any], *args: Any) -> list[Any]:
        started = time.perf_counter()
        rows = original(session, rules, *args)
        firing["seconds"] += time.perf_counter() - started
        firing["queries"] += len(rules)
        return rows

    with app.app_context():
        meter = StatementMeter(db.engine)
        service.firing_rows = counted_firing_rows  # type: ignore[assignment]
        try:
            # Warm the caches a running server has warm: the rule pack, the mappers, each
            # rule's compiled firing query and its prepared statement on the connection.
            for case_id in warm_up:
                service.evaluate_case(case_id, now)
            db.session.rollback()
            firing.update(queries=0, seconds=0.0)
            for case_id in case_ids:
                # The request that causes an evaluation holds its connection already:
                # checking one out of the pool is not the engine's cost.
                db.session.connection()
                meter.reset()
                started = time.perf_counter()
                service.evaluate_case(case_id, now)
                times.append((time.perf_counter() - started) * 1000)
                counted, spent = meter.reset()
                statements, database_seconds = statements + counted, database_seconds + spent
                started = time.perf_counter()
                db.session.commit()
                commits.append((time.perf_counter() - started) * 1000)
        finally:
            service.firing_rows = original  # type: ignore[assignment]
            meter.close()
            db.session.rollback()
            db.session.remove()
    after = _deadline_rows(url, case_ids)
    total_after, resolved_after = _warning_counts(url)
    ordered = sorted(times)
    return IncrementalResult(
        calls=len(times),
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)],
        max_ms=ordered[-1],
        mean_ms=statistics.fmean(ordered),
        commit_p50_ms=statistics.median(commits),
        raised=total_after - total_before,
        resolved=resolved_after - resolved_before,
        deadline_mismatches=len(before ^ after),
        statements_per_call=statements / len(times),
        database_ms_per_call=database_seconds * 1000 / len(times),
        firing_queries_per_call=firing["queries"] / len(times),
        firing_ms_per_call=firing["seconds"] * 1000 / len(times),
        times_ms=times,
    )


@dataclass
class BulletinResult:
    measured: bool
    week: str = ""
    seconds: float = 0.0
    registered: int = 0
    note: str = ""


def run_bulletin(app: Any, now: datetime) -> BulletinResult:
    """The city bureau's bulletin for the last full ISO week, generated and rolled back."""
    try:
        from backend.stats import service as stats
    except ImportError:
        return BulletinResult(False, note="backend/stats does not exist")
    if not hasattr(stats, "ensure_bulletin") or not hasattr(stats, "last_full_week"):
        return BulletinResult(False, note="backend/stats has no ensure_bulletin(unit, week, ...)")
    import sqlalchemy as sa

    from backend.extensions import db
    from backend.org.models import Unit

    with app.app_context():
        try:
            city = db.session.scalars(sa.select(Unit).where(Unit.parent_id.is_(None))).one()
            week = stats.last_full_week(now)
            started = time.perf_counter()
            bulletin, _ = stats.ensure_bulletin(city, week, None, now)
            seconds = time.perf_counter() - started
            registered = int(bulletin.data["statistics"]["totals"].get("registered", 0))
        finally:
            db.session.rollback()
            db.session.remove()
    return BulletinResult(True, week=week, seconds=seconds, registered=registered)


# --------------------------------------------------------------------------
# Report


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_summary(
    sweep: SweepResult, again: SweepResult, inc: IncrementalResult, bulletin: BulletinResult
) -> None:
    sweep_ok = _met(sweep.seconds <= SWEEP_TARGET_S)
    inc_ok = _met(inc.p99_ms <= INCREMENTAL_P99_TARGET_MS)
    print()
    print(
        f"full sweep:     {sweep.seconds:7.1f} s (+{sweep.commit_seconds:.1f} s commit), "
        f"{sweep.raised:,} raised, {sweep.resolved:,} resolved; target {SWEEP_TARGET_S:.0f} s: "
        f"{sweep_ok}"
    )
    print(
        f"second sweep:   {again.seconds:7.1f} s, {again.raised:,} raised, "
        f"{again.resolved:,} resolved; de-duplication: {_met(again.raised == 0)}"
    )
    print(
        f"evaluate_case:  p50 {inc.p50_ms:.2f} ms, p99 {inc.p99_ms:.2f} ms, max "
        f"{inc.max_ms:.1f} ms over {inc.calls:,} cases; target p99 "
        f"{INCREMENTAL_P99_TARGET_MS:.0f} ms: {inc_ok}"
    )
    print(
        f"                {inc.raised} raised, {inc.resolved} resolved, "
        f"{inc.deadline_mismatches} deadline rows differ from the bulk load"
    )
    if bulletin.measured:
        bulletin_ok = _met(bulletin.seconds <= BULLETIN_TARGET_S)
        print(
            f"city bulletin:  {bulletin.seconds:7.1f} s for {bulletin.week}; target "
            f"{BULLETIN_TARGET_S:.0f} s: {bulletin_ok}"
        )
    else:
        print(f"city bulletin:  not measured ({bulletin.note})")
    slowest = sorted(sweep.per_rule.items(), key=lambda item: -item[1][0])[:8]
    print("slowest rules:  " + ", ".join(f"{r} {t:.1f}s/{n:,}" for r, (t, n) in slowest))


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def render_section(ctx: dict[str, Any]) -> str:
    load = ctx["load"]
    sweep, again, inc, bulletin = ctx["sweep"], ctx["again"], ctx["inc"], ctx["bulletin"]
    host, pg = ctx["machine"], ctx["postgres"]
    cases = sum(load.scenario_counts.values())
    scenario_rows = "\n".join(
        f"| {s.name} | {s.case_type} | `{s.status}` | {s.share * 100:.1f}% | "
        f"{load.scenario_counts.get(s.name, 0):,} | {s.age_days[0]:g}-{s.age_days[1]:g} d |"
        for s in SCENARIOS
    )
    facts = ", ".join(f"{k} {v:,}" for k, v in load.fact_counts.items())
    spread_total = sum(load.deadline_spread.values())
    counts = {k: load.deadline_spread.get(k, 0) for k in ("past", "within 1 day", "within 7 days")}
    counts["later"] = load.deadline_spread.get("later", 0)
    spread = ", ".join(f"{k} {n:,} ({_pct(n, spread_total)})" for k, n in counts.items())
    slowest = sorted(sweep.per_rule.items(), key=lambda item: -item[1][0])[:10]
    rule_rows = "\n".join(f"| `{r}` | {t:.2f} | {n:,} |" for r, (t, n) in slowest)
    load_times = ", ".join(f"{k} {v:.0f} s" for k, v in load.seconds.items())
    agree = (
        ": sweep and incremental evaluation agree on the sample"
        if inc.raised == inc.resolved == 0
        else ", so sweep and incremental evaluation DISAGREE on the sample"
    )
    result_rows = "\n".join(
        [
            f"| Full sweep, all {len(sweep.per_rule)} rules (`service.sweep(now)`, its flush "
            f"included) | {sweep.seconds:.1f} s, {sweep.raised:,} warnings raised, "
            f"{sweep.resolved:,} resolved (+{sweep.commit_seconds:.1f} s commit) | "
            f"≤ {SWEEP_TARGET_S:.0f} s | **{_met(sweep.seconds <= SWEEP_TARGET_S).lower()}** |",
            f"| Second sweep right after (de-duplication) | {again.seconds:.1f} s, "
            f"{again.raised:,} raised, {again.resolved:,} resolved | 0 new | "
            f"**{_met(again.raised == 0).lower()}** |",
            f"| `evaluate_case(case_id, now)` on {inc.calls:,} random open cases, flush "
            f"included | p50 {inc.p50_ms:.2f} ms, p99 {inc.p99_ms:.2f} ms, max "
            f"{inc.max_ms:.1f} ms (commit p50 {inc.commit_p50_ms:.2f} ms, not included) | "
            f"p99 ≤ {INCREMENTAL_P99_TARGET_MS:.0f} ms | "
            f"**{_met(inc.p99_ms <= INCREMENTAL_P99_TARGET_MS).lower()}** |",
        ]
    )
    if bulletin.measured:
        bulletin_line = (
            f"| City bulletin, ISO week {bulletin.week} (`stats.service.ensure_bulletin`) | "
            f"{bulletin.seconds:.1f} s | ≤ {BULLETIN_TARGET_S:.0f} s | "
            f"**{_met(bulletin.seconds <= BULLETIN_TARGET_S).lower()}** |"
        )
    else:
        bulletin_line = f"| City bulletin | not measured ({bulletin.note}) | ≤ 10 s | - |"
    shared = (
        "The lead's go-ahead file was present: no other helper was loading the machine."
        if ctx["quiet"]
        else "**The machine was shared**: other helpers' work was running during the "
        "measurement (the go-ahead file never appeared), so these figures are upper bounds. "
        f"Load average (1 min) before the first sweep {ctx['load_before']:.1f}, after the "
        f"incremental calls {ctx['load_after']:.1f}, on {host['cpus']} cores."
    )
    return f"""{SECTION}

What the early-warning rules engine (`backend/supervision`) costs on PostgreSQL with
{cases:,} open cases. `scripts/bench/rules.py` makes its own database, migrates it,
creates the organisation through the product (the API benchmark's helpers: 1 city bureau,
12 district bureaus, 222 stations of log-normally skewed size), generates the cases
set-based inside PostgreSQL (`INSERT ... SELECT` over `generate_series`; each random draw
is `hashint8extended` of the case and a slot, so `--seed` reproduces the data), measures,
and drops the database.

### Data

Every case is open and follows one scenario (shares of all cases; the case's age is drawn
between the bounds, skewed towards young cases):

| Scenario | Type | State | Share | Cases | Age |
|---|---|---|---:|---:|---:|
{scenario_rows}

That is 70% administrative and 30% criminal cases. The history of each case is its
workflow path (`accept`, `start_investigation`, `notify`, the decision request with its
legal-officer and leader approvals, `submit_decision`, `execute`; `start_filing_review`,
`file_case`, ... for criminal cases) at fixed fractions of its age, a suspect
(`person_added`), and the events the rules watch, each with a probability and a delay
after the event it follows: the report receipt (98%, within 36 min); administrative
questioning after a summons (45% of working cases; 10% "detention possible"), its end
(99.5%, 0.5-7 h later), interrogations (2% by one officer, 3% minors of whom 10% without a
guardian, ...), handling-area entry (40%) and exit (99.5%), seizures (12%; 3% by one
officer, 2% without a signed list) and hand-over (97%, 1-22 h), administrative seizures
(5%) and their end (90%, 3-37 days), evidence listed (30%) and uploaded (98%); for
criminal cases summons (50%; 5% especially serious), their end (97%, 1-11 h), detention
after the summons (45% of them, 2-11.5 h; 10% roving or gang crime), delivery to jail
(99%), family notice (98%), interrogation (99.5%) and counsel-rights notice (99%), the
arrest request (80%, 1-3 days), its approval (90%, 1-7 days) and the arrest (within 20 h)
with its own family notice and interrogation, release (25%, 1-3 days), bail (15%);
residential surveillance (3%; 30% at a designated residence). A step whose time would fall
after `now` has not happened yet: its deadline is running.

Loaded: {", ".join(f"{v:,} {k}" for k, v in load.rows.items())}; database
{load.database_bytes / 2**30:.1f} GiB. Facts by kind: {facts}.
Of the {load.rows["deadlines"]:,} deadlines, those not met yet (no fact of the kinds that meet
them) fall due: {spread}. Deadlines are computed with the engine's own
`legaltime.period_end` once per rule and starting hour (a period's end depends only on the
hour it starts in) and joined to the facts; no generated fact pauses or extends a period,
so this is exactly `refresh_deadlines`, which the incremental measurement re-runs on its
sample ({inc.deadline_mismatches} deadline rows differed). Load times: {load_times}.

### Results

| Measurement | Result | Target | |
|---|---|---|---|
{result_rows}
{bulletin_line}

Where the time goes: the first sweep ran {sweep.statements:,} statements (on PostgreSQL one
per rule, which raises and resolves that rule's warnings inside the database, and the `SET
LOCAL work_mem`), which spent {sweep.database_seconds:.1f} s inside the driver's `execute`;
the other {sweep.seconds - sweep.database_seconds:.1f} s went to SQLAlchemy and the engine's
Python. An `evaluate_case` call ran {inc.statements_per_call:.1f} statements through
SQLAlchemy (the case with its facts, its deadlines and its warnings; more when something
changes), taking {inc.database_ms_per_call:.2f} ms inside `execute`, and the firing queries of
{inc.firing_queries_per_call:.1f} relevant rules, prepared statements sent in one pipeline,
taking {inc.firing_ms_per_call:.2f} ms; the mean call took {inc.mean_ms:.2f} ms. Each call's
timer starts with the session's connection checked out, as it is in the request that causes
an evaluation (the check-out from the pool is not counted).

The incremental calls ran after the sweep, one app-context session for all of them, after
{WARM_UP_CALLS} untimed calls on other cases (rolled back) that warm what a running server
has warm (each rule's compiled firing query and its prepared statement), each call committed
after its timer stopped (as the request that caused it would); they raised
{inc.raised} and resolved {inc.resolved} warnings{agree}. The bulletin was
generated for the city bureau (all 235 units rolled up; it reads cases, warnings, evidence,
documents and inspection problems, of which this data has only cases and warnings) and
rolled back.

Slowest rules of the first sweep (seconds, warnings raised):

| Rule | s | Raised |
|---|---:|---:|
{rule_rows}

Machine: {host["cpus"]} cores, {host["cpu"]}, {host["memory"]} RAM, Linux {host["kernel"]};
PostgreSQL {pg["version"]} (shared_buffers {pg["shared_buffers"]}, work_mem
{pg["work_mem"]}, synchronous_commit {pg["synchronous_commit"]}); Python {host["python"]};
commit {ctx["commit"]}. {shared}
Run on {ctx["date"]} with:

    {ctx["command"]}
"""


def reflow(markdown: str, width: int = 92) -> str:
    """Re-wrap the prose paragraphs of ``markdown``; tables, headings and code stay as they are."""
    blocks = []
    for block in markdown.split("\n\n"):
        if block.startswith(("|", "    ", "#", "```")):
            blocks.append(block)
        else:
            blocks.append(
                textwrap.fill(
                    " ".join(block.split()),
                    width=width,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
    return "\n\n".join(blocks)


def write_docs(section: str) -> None:
    """Replace (or append) this script's section of docs/performance.md, nothing else."""
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    pattern = re.compile(re.escape(SECTION) + r".*?(?=^## |\Z)", re.S | re.M)
    body = reflow(section.rstrip()) + "\n"
    found = pattern.search(text)
    if found:
        # A hand-written "### Findings" subsection (the analysis of a run) is kept.
        _, marker, findings = found.group(0).partition(FINDINGS)
        body += "\n" + marker + findings.rstrip() + "\n" if marker else ""
        text = pattern.sub(lambda _m: body + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + body
    DOCS.write_text(text)


# --------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--cases", type=int, default=1_000_000, help="open cases to generate")
    parser.add_argument("--sample", type=int, default=2000, help="cases timed with evaluate_case")
    parser.add_argument("--server-url", default=api_bench.SERVER_URL,
                        help="PostgreSQL maintenance URL")  # fmt: skip
    parser.add_argument("--db-name", default=DB_NAME, help="database to create and drop")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated data")
    parser.add_argument(
        "--explain", type=int, default=5, help="EXPLAIN ANALYZE this many slowest rules' queries"
    )
    parser.add_argument(
        "--quiet-file",
        type=Path,
        default=Path("/tmp/fieldcase-bench-go"),
        help="exists when no other work loads the machine (recorded in the docs)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    if args.cases < api_bench.STATIONS or args.sample < 1:
        parser.error("need --cases >= 222 and --sample >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "$ .venv/bin/python scripts/bench/rules.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    signal.signal(signal.SIGTERM, api_bench._interrupted)
    check_scenarios()
    url = api_bench.db_url(args.server_url, args.db_name)
    key = api_bench.signing_key()
    try:
        api_bench.recreate_database(args.server_url, args.db_name)
        api_bench.migrate(url, key)
        log("migrated")
        stations = api_bench.create_organisation(url, key)
        log(f"organisation: {len(stations)} stations")
        now = datetime.now(UTC).replace(microsecond=0)
        load = bulk_load(url, stations, args.cases, args.seed, now)
        log(f"loaded in {sum(load.seconds.values()):.0f} s; deadlines: {load.deadline_spread}")
        quiet = args.quiet_file.exists()
        app = api_bench.make_app(url, key)
        load_before = os.getloadavg()[0]
        log("first sweep")
        sweep = run_sweep(app, now)
        log(f"first sweep: {sweep.seconds:.1f} s, {sweep.raised:,} raised")
        again = run_sweep(app, now)
        log(f"second sweep: {again.seconds:.1f} s, {again.raised:,} raised")
        inc = run_incremental(app, url, now, args.sample, args.seed)
        log(f"evaluate_case p99 {inc.p99_ms:.2f} ms")
        load_after = os.getloadavg()[0]
        bulletin = run_bulletin(app, now)
        slowest = sorted(sweep.per_rule, key=lambda r: -sweep.per_rule[r][0])[: args.explain]
        plans = explain_rules(app, now, slowest)
        for rule_id, plan in plans.items():
            print(f"\n--- EXPLAIN ANALYZE firing query of {rule_id}\n{plan}")
        print_summary(sweep, again, inc, bulletin)
        ctx = {
            "args": args,
            "load": load,
            "sweep": sweep,
            "again": again,
            "inc": inc,
            "bulletin": bulletin,
            "machine": api_bench.machine(),
            "postgres": api_bench.postgres_info(args.server_url),
            "commit": api_bench.git_commit(),
            "quiet": quiet and args.quiet_file.exists(),
            "load_before": load_before,
            "load_after": load_after,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
        }
        if args.json:
            raw = {
                "load": load.__dict__,
                "sweep": sweep.__dict__,
                "again": again.__dict__,
                "incremental": inc.__dict__,
                "bulletin": bulletin.__dict__,
                "plans": plans,
                "machine": ctx["machine"],
                "postgres": ctx["postgres"],
            }
            args.json.write_text(json.dumps(raw, indent=2, default=str))
        if args.write_docs:
            write_docs(render_section(ctx))
            log(f"wrote {DOCS.relative_to(ROOT)}")
        ok = (
            sweep.seconds <= SWEEP_TARGET_S
            and again.raised == 0
            and inc.p99_ms <= INCREMENTAL_P99_TARGET_MS
            and (not bulletin.measured or bulletin.seconds <= BULLETIN_TARGET_S)
        )
        return 0 if ok else 1
    finally:
        if args.keep_db:
            log(f"kept database {args.db_name}")
        else:
            with contextlib.suppress(psycopg.Error):
                api_bench.drop_database(args.server_url, args.db_name)
            log("dropped the benchmark database")


if __name__ == "__main__":
    sys.exit(main())
