#!/usr/bin/env python3
"""API benchmark: the step cycle and a station's open-case list, against a pgbench ceiling.

Run from the repository root::

    .venv/bin/python scripts/bench/api.py                       # 100,000 cases
    .venv/bin/python scripts/bench/api.py --cases 1000000 --write-docs

What it does, in one run:

1. makes a fresh database (``fieldcase_bench``; dropped first if it exists) and
   migrates it with ``flask db upgrade``;
2. creates the organisation through the product (``backend.org.service``): one
   city bureau, 12 district bureaus, 222 stations, four users per station;
3. bulk-loads N synthetic cases with ``COPY`` (incidents, cases, persons, case
   history, step requests, approvals, case-number counters), following the
   workflow files step by step, then rebuilds the secondary indexes and runs
   ``VACUUM ANALYZE``;
4. serves the app with gunicorn (``backend.gunicorn_conf``, access log off) on a
   free loopback port;
5. per round: ``pgbench -N`` on a scratch database of the same server (the
   ceiling), then 8 concurrent clients for a fixed time on each of
   - ``list``:   ``GET /api/v1/cases?open=true&limit=50`` as a station officer;
   - ``summon``: the one-stage step cycle on a criminal case (officer requests
     ``summon``, the station leader finds it in ``GET /approvals`` and approves;
     the step is applied and the case stays ``investigating``);
   - ``detain``: the two-stage cycle (legal officer, then leader);
6. prints per-round figures, medians over the rounds and the ratio of write
   requests per second to pgbench TPS; ``--write-docs`` records them in
   ``docs/performance.md``.

gunicorn is stopped and the databases are dropped at the end, also on errors;
``--keep-db`` keeps the databases.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import math
import os
import platform
import queue
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "performance.md"
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password-2026"
API = "/api/v1"

CITY_CODE = "BM"
DISTRICTS = 12
STATIONS = 222
STATION_SKEW_SIGMA = 0.6  # log-normal spread of case volume between stations
HISTORY_DAYS = 3 * 365
OPEN_MEAN_AGE_DAYS = 60
DAY = 86_400.0
REPORTER_SHARE = 0.9
SUSPECT_SHARE = 0.55

LIST_PATH = f"{API}/cases?open=true&limit=50"
LIST_P99_TARGET_MS = 50.0
WRITE_RATIO_TARGET = 0.10

_started = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------
# Synthetic case histories, built from the workflow files


PERSON = "@PERSON@"
WHEN = "@WHEN@"
NOTIFY = {
    "facts": "当事人在公共场所殴打他人。",
    "reasons_and_basis": "治安管理处罚法第43条",
    "hearing_requested": False,
}
DECISION = {"penalty": "fine", "penalty_detail": "罚款五百元"}
Steps = list[tuple[str, dict[str, Any]]]
_acc: Steps = [("accept", {})]
_a_inv = [*_acc, ("start_investigation", {})]
_a_not = [*_a_inv, ("notify", NOTIFY)]
_a_dec = [*_a_not, ("submit_decision", DECISION)]
_a_exe = [*_a_dec, ("execute", {"served_at": WHEN})]
_c_fr = [*_acc, ("start_filing_review", {})]
_c_filed = [*_c_fr, ("file_case", {"charge": "盗窃罪"})]
_c_inv = [*_c_filed, ("start_investigation", {})]
_c_conc = [*_c_inv, ("conclude_investigation", {"summary": "证据确实充分"})]
_c_tfp = [*_c_conc, ("transfer_for_prosecution", {"procuratorate": "示范市人民检察院"})]
_measures: Steps = [
    ("summon", {"person_id": PERSON, "starts_at": WHEN}),
    ("detain", {"person_id": PERSON, "starts_at": WHEN}),
]
_reason = {"reason": "经审查，依法处理。"}

# (case type, steps from the report, approval stage the last step waits at, share of all cases)
HISTORIES: list[tuple[str, Steps, int | None, float]] = [
    ("administrative", _acc, None, 0.050),
    ("administrative", _a_inv, None, 0.070),
    ("administrative", _a_not, None, 0.040),
    ("administrative", _a_dec, 0, 0.008),
    ("administrative", _a_dec, 1, 0.007),
    ("administrative", _a_dec, None, 0.020),
    ("administrative", _a_exe, None, 0.015),
    ("administrative", [*_a_exe, ("close", {})], None, 0.400),
    ("administrative", [*_a_inv, ("decide_no_punishment", _reason)], None, 0.050),
    (
        "administrative",
        [*_a_inv, ("transfer", {"receiving_agency": "市场监督管理局", **_reason})],
        None,
        0.030,
    ),
    ("administrative", [*_acc, ("revoke", _reason)], None, 0.020),
    ("administrative", [*_a_inv, ("convert_to_criminal", _reason)], None, 0.020),
    ("criminal", _acc, None, 0.010),
    ("criminal", _c_fr, None, 0.010),
    ("criminal", _c_filed, 0, 0.003),
    ("criminal", _c_filed, 1, 0.002),
    ("criminal", _c_filed, None, 0.005),
    ("criminal", _c_inv, None, 0.015),
    ("criminal", [*_c_inv, *_measures], None, 0.015),
    ("criminal", _c_conc, None, 0.010),
    ("criminal", _c_tfp, None, 0.015),
    ("criminal", [*_c_tfp, ("close", {})], None, 0.120),
    ("criminal", [*_c_fr, ("refuse_filing", {"reason": "没有犯罪事实"})], None, 0.030),
    ("criminal", [*_c_inv, ("revoke_case", _reason)], None, 0.015),
    ("criminal", [*_c_inv, ("terminate_investigation", _reason)], None, 0.020),
]
CATEGORIES = [
    ("治安", "两人在夜市因琐事发生争执并互殴。"),
    ("盗窃", "报警人称其电动车在小区楼下被盗。"),
    ("诈骗", "报警人称接到冒充客服电话被骗转账。"),
    ("噪音", "邻居深夜持续高声播放音乐。"),
    ("交通", "两车在路口剐蹭后双方发生争执。"),
]
STREETS = ["人民路", "解放路", "滨江路", "中山路", "建设路", "和平街"]
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵强", "孙磊", "周杰"]

# A plan op: ("T", action, from, to, deadline, payload, request index or -1, actor)
# transition; ("R", action, from, shown state, request index, payload) step requested;
# ("A", action, request index, stage, role) approved; ("P", request index, stage, role) pending.
Op = tuple[Any, ...]


@dataclass
class Plan:
    """One kind of case history, expanded from the workflow into rows to write."""

    case_type: str
    status: str
    is_open: bool
    share: float
    ops: list[Op]
    requests: list[tuple[str, str, str, str, bool, int]]  # action, from, to, payload, done, stage
    needs_person: bool
    pending: bool
    slots: int  # distinct event times


def _deadline(workflow: Any, state: str) -> int:
    """-1 clears the deadline, 0 keeps it, n > 0 sets it n hours ahead (cases.deadline_for)."""
    spec = workflow.states[state]
    if spec.terminal or spec.deadline_hours == 0:
        return -1
    return spec.deadline_hours or 0


def build_plans() -> list[Plan]:
    from shared.workflow import workflow_for

    plans = []
    for case_type, steps, pending_stage, share in HISTORIES:
        workflow = workflow_for(case_type)  # type: ignore[arg-type]
        state, ops, requests, slots = workflow.initial, [], [], 0
        needs_person = False
        for index, (name, payload) in enumerate(steps):
            action = workflow.actions[name]
            if state not in action.sources:
                raise RuntimeError(f"{case_type}: {name} is not allowed from {state}")
            probe = {
                k: ("00000000-0000-4000-8000-000000000000" if v == PERSON else v)
                for k, v in payload.items()
            }
            probe = {k: ("2026-01-05T10:00:00+00:00" if v == WHEN else v) for k, v in probe.items()}
            if action.payload_errors(probe):
                raise RuntimeError(f"{name}: {action.payload_errors(probe)}")
            needs_person |= PERSON in payload.values()
            text = json.dumps(payload, ensure_ascii=False)
            if any(c in text for c in "\t\n\\"):
                raise RuntimeError("payload text must not need COPY escaping")
            last = index == len(steps) - 1
            if not action.approvals:
                ops.append(("T", name, state, action.target, _deadline(workflow, action.target),
                            text, -1, "officer"))  # fmt: skip
                slots += 1
                state = action.target
                continue
            stop = pending_stage if last and pending_stage is not None else None
            request = len(requests)
            shown = action.approvals[0].state or state
            ops.append(("R", name, state, shown, request, text))
            slots += 1
            for stage, approval in enumerate(action.approvals):
                if stop is not None and stage == stop:
                    ops.append(("P", request, stage, str(approval.role)))
                    break
                ops.append(("A", name, request, stage, str(approval.role)))
                slots += 1
            if stop is not None:
                requests.append((name, state, action.target, text, False, stop))
                state = action.approvals[stop].state or state
                continue
            requests.append((name, state, action.target, text, True, len(action.approvals) - 1))
            role = str(action.approvals[-1].role)
            ops.append(("T", name, state, action.target, _deadline(workflow, action.target),
                        text, request, role))  # fmt: skip
            state = action.target
        plans.append(
            Plan(
                case_type=case_type,
                status=state,
                is_open=not workflow.is_terminal(state),
                share=share,
                ops=ops,
                requests=requests,
                needs_person=needs_person,
                pending=pending_stage is not None,
                slots=slots,
            )
        )
    if abs(sum(p.share for p in plans) - 1) > 1e-9:
        raise RuntimeError("history shares must add up to 1")
    return plans


@dataclass
class Station:
    id: str  # uuid hex
    code: str
    district: str
    officers: list[str]
    legal: str
    leader: str
    cases: int = 0

    @property
    def users(self) -> dict[str, str]:
        prefix = self.code.lower()
        return {
            "officer": f"{prefix}.officer",
            "legal_officer": f"{prefix}.legal",
            "leader": f"{prefix}.leader",
        }


TABLES: dict[str, str] = {
    "incidents": "id, unit_id, occurred_at, place, latitude, longitude, source, category, "
    "summary, reporter_name, reporter_phone, reporter_id_number, status, closed_reason, "
    "case_id, created_by, created_at, content_hash",
    "cases": "id, number, unit_id, year, seq, case_type, status, is_open, title, summary, "
    "handler_id, incident_id, pending_request_id, due_at, created_at, updated_at, version",
    "case_persons": "id, case_id, role, name, id_number, phone, address, created_at, content_hash",
    "case_events": "case_id, seq, type, at, actor_id, action, from_state, to_state, request_id, "
    "comment, payload",
    "step_requests": "id, case_id, action, from_state, to_state, requested_by, requested_at, "
    "comment, payload, status, stage, resolved_at",
    "approvals": "id, request_id, case_id, unit_id, stage, role, status, created_at, "
    "decided_by, decided_at, comment",
    "case_number_counters": "unit_id, year, last",
}
NULL = "\\N"  # COPY text format
_V4_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_V4_SET = (0x4 << 76) | (0x2 << 62)


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(t))


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))


def _dashed(hex32: str) -> str:
    h = hex32
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Synthesiser:
    """Turns (station, plan, creation time) into COPY text lines, table by table."""

    def __init__(self, plans: list[Plan], seed: int, now: float) -> None:
        self.plans = plans
        self.rng = random.Random(seed)
        self.now = now
        self.rows = dict.fromkeys(TABLES, 0)
        self.buffers: dict[str, list[str]] = {t: [] for t in TABLES}
        self.status_counts: dict[tuple[str, str], int] = {}

    def uid(self) -> str:
        return f"{(self.rng.getrandbits(128) & _V4_CLEAR) | _V4_SET:032x}"

    def station_cases(self, station: Station, count: int) -> None:
        rng, now = self.rng, self.now
        plans = rng.choices(self.plans, weights=[p.share for p in self.plans], k=count)
        history = HISTORY_DAYS * DAY
        dated = []
        for plan in plans:
            if plan.is_open:
                age = min(rng.expovariate(1 / (OPEN_MEAN_AGE_DAYS * DAY)), history)
            else:
                age = rng.uniform(0.5 * DAY, history)
            dated.append((now - age, plan))
        dated.sort(key=lambda item: item[0])
        seqs: dict[int, int] = {}
        for created, plan in dated:
            year = time.gmtime(created).tm_year
            seqs[year] = seqs.get(year, 0) + 1
            self.case(station, plan, created, year, seqs[year])
        for year, last in seqs.items():
            self.buffers["case_number_counters"].append(f"{station.id}\t{year}\t{last}\n")
        self.rows["case_number_counters"] += len(seqs)
        station.cases += count

    def case(self, station: Station, plan: Plan, t0: float, year: int, seq: int) -> None:
        rng, b = self.rng, self.buffers
        unit = station.id
        case_id, incident_id = self.uid(), self.uid()
        officer = station.officers[rng.getrandbits(1)]
        actors = {"officer": officer, "legal_officer": station.legal, "leader": station.leader}
        category, summary = CATEGORIES[rng.randrange(len(CATEGORIES))]
        suspect = plan.needs_person or rng.random() < SUSPECT_SHARE
        reporter = rng.random() < REPORTER_SHARE
        slots = plan.slots + suspect
        age = self.now - t0
        span = age * rng.uniform(0.2, 0.9) if plan.is_open else min(age, rng.uniform(1, 90) * DAY)
        gap = span / slots
        created = _ts(t0)
        place = f"基准市{STREETS[rng.randrange(len(STREETS))]}{rng.randint(1, 400)}号"
        r_name = NAMES[rng.randrange(len(NAMES))] if reporter else None
        r_phone = f"138{rng.randint(10_000_000, 99_999_999)}" if reporter else None
        r_idno = f"1101011990{rng.randint(10_000_000, 99_999_999)}" if reporter else None
        b["incidents"].append(
            f"{incident_id}\t{unit}\t{_ts(t0 - rng.uniform(1800, 72 * 3600))}\t{place}\t"
            f"{30 + rng.random():.6f}\t{120 + rng.random():.6f}\t"
            f"{('dispatch', 'walk_in', 'patrol')[rng.randrange(3)]}\t{category}\t{summary}\t"
            f"{r_name or NULL}\t{r_phone or NULL}\t{r_idno or NULL}\taccepted\t\\N\t"
            f"{case_id}\t{officer}\t{_ts(t0 - rng.uniform(60, 3600))}\t"
            f"{rng.getrandbits(256):064x}\n"
        )
        if reporter:
            b["case_persons"].append(
                f"{self.uid()}\t{case_id}\treporter\t{r_name}\t{r_idno}\t{r_phone}\t\\N\t"
                f"{created}\t{rng.getrandbits(256):064x}\n"
            )
            self.rows["case_persons"] += 1
        person = ""
        events = b["case_events"]
        requests = [self.uid() for _ in plan.requests]
        request_times: list[list[float]] = [[] for _ in plan.requests]
        approvals = b["approvals"]
        due: float | None = None
        event_seq, slot, t = 0, 0, t0
        pending_request = "\\N"
        for op in plan.ops:
            kind = op[0]
            if kind != "T" or op[6] < 0:
                t = t0 + gap * slot
                slot += 1
            at = _ts(t)
            if kind == "T":
                _, action, source, target, deadline, payload, request, role = op
                if "@" in payload:
                    payload = payload.replace(PERSON, person).replace(WHEN, _iso(t))
                if deadline > 0:
                    due = t + deadline * 3600
                elif deadline < 0:
                    due = None
                event_seq += 1
                events.append(
                    f"{case_id}\t{event_seq}\ttransition\t{at}\t{actors[role]}\t{action}\t"
                    f"{source}\t{target}\t{requests[request] if request >= 0 else NULL}\t\\N\t"
                    f"{payload}\n"
                )
                if request >= 0:
                    request_times[request].append(t)
                if event_seq == 1 and suspect:
                    t = t0 + gap * slot
                    slot += 1
                    pid = self.uid()
                    person = _dashed(pid)
                    event_seq += 1
                    b["case_persons"].append(
                        f"{pid}\t{case_id}\tsuspect\t{NAMES[rng.randrange(len(NAMES))]}\t"
                        f"3301021988{rng.randint(10_000_000, 99_999_999)}\t"
                        f"139{rng.randint(10_000_000, 99_999_999)}\t基准市东城区人民路88号\t"
                        f"{_ts(t)}\t{rng.getrandbits(256):064x}\n"
                    )
                    self.rows["case_persons"] += 1
                    events.append(
                        f"{case_id}\t{event_seq}\tperson_added\t{_ts(t)}\t{officer}\t\\N\t\\N\t"
                        f'\\N\t\\N\t\\N\t{{"person_id": "{person}", "role": "suspect"}}\n'
                    )
            elif kind == "R":
                _, action, source, shown, request, payload = op
                if "@" in payload:
                    payload = payload.replace(PERSON, person).replace(WHEN, _iso(t))
                event_seq += 1
                events.append(
                    f"{case_id}\t{event_seq}\tstep_requested\t{at}\t{officer}\t{action}\t"
                    f"{source}\t{shown}\t{requests[request]}\t\\N\t{payload}\n"
                )
                request_times[request].append(t)
            elif kind == "A":
                _, action, request, stage, role = op
                approval = self.uid()
                opened = _ts(request_times[request][-1])
                approvals.append(
                    f"{approval}\t{requests[request]}\t{case_id}\t{unit}\t{stage}\t{role}\t"
                    f"approved\t{opened}\t{actors[role]}\t{at}\t同意\n"
                )
                self.rows["approvals"] += 1
                event_seq += 1
                events.append(
                    f"{case_id}\t{event_seq}\tstep_approved\t{at}\t{actors[role]}\t{action}\t"
                    f"\\N\t\\N\t{requests[request]}\t同意\t"
                    f'{{"stage": {stage}, "role": "{role}", '
                    f'"approval_id": "{_dashed(approval)}"}}\n'
                )
                request_times[request].append(t)
            else:  # "P": the request waits for this stage
                _, request, stage, role = op
                approvals.append(
                    f"{self.uid()}\t{requests[request]}\t{case_id}\t{unit}\t{stage}\t{role}\t"
                    f"pending\t{_ts(request_times[request][-1])}\t\\N\t\\N\t\\N\n"
                )
                self.rows["approvals"] += 1
                pending_request = requests[request]
        for index, (action, source, target, payload, done, stage) in enumerate(plan.requests):
            times = request_times[index]
            if "@" in payload:
                payload = payload.replace(PERSON, person).replace(WHEN, _iso(times[0]))
            b["step_requests"].append(
                f"{requests[index]}\t{case_id}\t{action}\t{source}\t{target}\t{officer}\t"
                f"{_ts(times[0])}\t\\N\t{payload}\t{'applied' if done else 'pending'}\t{stage}\t"
                f"{_ts(times[-1]) if done else NULL}\n"
            )
        self.rows["step_requests"] += len(plan.requests)
        self.rows["case_events"] += event_seq
        code = station.code
        b["cases"].append(
            f"{case_id}\t{code}-{year}-{seq:06d}\t{unit}\t{year}\t{seq}\t{plan.case_type}\t"
            f"{plan.status}\t{'t' if plan.is_open else 'f'}\t{category}案 {place}\t{summary}\t"
            f"{officer}\t{incident_id}\t{pending_request}\t"
            f"{_ts(due) if due is not None else NULL}\t{created}\t{_ts(t)}\t{event_seq + 1}\n"
        )
        self.rows["cases"] += 1
        self.rows["incidents"] += 1
        key = (plan.case_type, plan.status)
        self.status_counts[key] = self.status_counts.get(key, 0) + 1

    def drain(self) -> dict[str, bytes]:
        out = {t: "".join(lines).encode() for t, lines in self.buffers.items() if lines}
        self.buffers = {t: [] for t in TABLES}
        return out


def station_sizes(count: int, stations: int, rng: random.Random) -> list[int]:
    weights = [rng.lognormvariate(0, STATION_SKEW_SIGMA) for _ in range(stations)]
    total = sum(weights)
    sizes = [max(1, int(count * w / total)) for w in weights]
    order = sorted(range(stations), key=lambda i: -weights[i])
    index = 0
    while sum(sizes) < count:
        sizes[order[index % stations]] += 1
        index += 1
    while sum(sizes) > count:
        i = order[index % stations]
        if sizes[i] > 1:
            sizes[i] -= 1
        index += 1
    return sizes


class CopyLoader:
    """One COPY stream per table, each in its own connection and thread.

    The generator (main thread) hands over encoded chunks; PostgreSQL parses and
    stores them on the other core meanwhile. Foreign-key triggers are skipped
    (``session_replication_role = replica``): the rows are consistent by
    construction and checked afterwards (``check_integrity``).
    """

    def __init__(self, url: str) -> None:
        self.queues: dict[str, queue.Queue[bytes | None]] = {}
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        for table in TABLES:
            q: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
            thread = threading.Thread(target=self._run, args=(url, table, q), daemon=True)
            thread.start()
            self.queues[table], self.threads = q, [*self.threads, thread]

    def _run(self, url: str, table: str, q: queue.Queue[bytes | None]) -> None:
        try:
            with psycopg.connect(url) as conn:
                conn.execute("SET session_replication_role = replica")
                with conn.cursor() as cur:
                    statement = f"COPY {table} ({TABLES[table]}) FROM STDIN"
                    with cur.copy(statement) as copy:  # type: ignore[arg-type]
                        while (chunk := q.get()) is not None:
                            copy.write(chunk)
        except BaseException as exc:
            self.errors.append(exc)
            with contextlib.suppress(queue.Empty):
                while True:
                    q.get_nowait()

    def put(self, chunks: dict[str, bytes | None]) -> None:
        for table, data in chunks.items():
            while True:
                if self.errors:
                    raise RuntimeError(f"COPY failed: {self.errors[0]}") from self.errors[0]
                try:
                    self.queues[table].put(data, timeout=0.5)
                    break
                except queue.Full:
                    continue

    def finish(self) -> None:
        self.put(dict.fromkeys(TABLES))
        for thread in self.threads:
            thread.join()
        if self.errors:
            raise RuntimeError(f"COPY failed: {self.errors[0]}") from self.errors[0]


# --------------------------------------------------------------------------
# Databases, the organisation, the bulk load


def db_url(server_url: str, name: str) -> str:
    return server_url.rpartition("/")[0] + "/" + name


def recreate_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def app_env(url: str, key_pem: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "FIELDCASE_DATABASE_URL": url,
            "FIELDCASE_JWT_PRIVATE_KEY": key_pem,
            "FIELDCASE_RATE_LIMIT_LOGIN_PER_MINUTE": "1000000",
            "FIELDCASE_RATE_LIMIT_REFRESH_PER_MINUTE": "1000000",
        }
    )
    return env


def migrate(url: str, key_pem: str) -> None:
    command = [sys.executable, "-m", "flask", "--app", "backend", "db", "upgrade"]
    done = subprocess.run(
        command, cwd=ROOT, env=app_env(url, key_pem), capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"migration failed:\n{done.stdout}\n{done.stderr}")


def signing_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def make_app(url: str, key_pem: str) -> Any:
    from backend import create_app
    from backend.config import normalise_database_url

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": normalise_database_url(url),
            "JWT_PRIVATE_KEY": key_pem,
            "RATE_LIMIT_LOGIN_PER_MINUTE": 1_000_000,
        }
    )


def create_organisation(url: str, key_pem: str) -> list[Station]:
    """City bureau, districts, stations and their users, made by the product's services.

    Every user has the same password; its Argon2 hash is computed once and reused.
    """
    from backend.auth import service as auth
    from backend.extensions import db
    from backend.org import service as org
    from backend.org.models import User
    from shared.enums import Role, UnitTier

    app = make_app(url, key_pem)
    original = auth.hash_password
    auth.hash_password = functools.cache(original)  # type: ignore[assignment]
    stations: list[Station] = []
    try:
        with app.app_context():
            city = org.create_root_unit(
                code=CITY_CODE, name="基准市公安局", name_en="Benchmark City Police Bureau"
            )

            def user(unit: Any, suffix: str, roles: set[Role]) -> str:
                made = org.create_user(
                    username=f"{unit.code.lower()}.{suffix}",
                    display_name=f"{unit.name}{suffix}",
                    password=PASSWORD,
                    unit=unit,
                    roles=roles,
                )
                return made.id.hex

            admin_id = user(city, "admin", {Role.ADMIN})
            user(city, "centre", {Role.CASE_MANAGER})
            user(city, "legal", {Role.LEGAL_OFFICER})
            admin = db.session.get(User, uuid_from_hex(admin_id))
            per_district = [
                STATIONS // DISTRICTS + (d < STATIONS % DISTRICTS) for d in range(DISTRICTS)
            ]
            for d, count in enumerate(per_district, start=1):
                district = org.create_unit(
                    admin,
                    code=f"D{d:02d}",
                    name=f"第{d}分局",
                    name_en=f"District {d} Bureau",
                    tier=UnitTier.DISTRICT,
                    parent_id=city.id,
                )
                user(district, "leader", {Role.LEADER})
                user(district, "centre", {Role.CASE_MANAGER})
                for s in range(1, count + 1):
                    unit = org.create_unit(
                        admin,
                        code=f"D{d:02d}S{s:02d}",
                        name=f"第{d}分局第{s}派出所",
                        name_en=f"District {d} Station {s}",
                        tier=UnitTier.STATION,
                        parent_id=district.id,
                    )
                    stations.append(
                        Station(
                            id=unit.id.hex,
                            code=unit.code,
                            district=district.code,
                            officers=[
                                user(unit, "officer", {Role.OFFICER}),
                                user(unit, "officer2", {Role.OFFICER}),
                            ],
                            legal=user(unit, "legal", {Role.LEGAL_OFFICER}),
                            leader=user(unit, "leader", {Role.LEADER}),
                        )
                    )
            db.session.commit()
            db.engine.dispose()
    finally:
        auth.hash_password = original  # type: ignore[assignment]
    return stations


def uuid_from_hex(value: str) -> Any:
    import uuid

    return uuid.UUID(hex=value)


def _secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, str]]:
    """(kind, table, name, definition) of the unique constraints and plain indexes to rebuild."""
    tables = [t for t in TABLES if t != "case_number_counters"]
    rows = conn.execute(
        """
        SELECT 'constraint', t.relname, c.conname, pg_get_constraintdef(c.oid)
          FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
         WHERE c.contype = 'u' AND t.relname = ANY(%(tables)s)
        UNION ALL
        SELECT 'index', t.relname, i.relname, pg_get_indexdef(i.oid)
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
          JOIN pg_class t ON t.oid = x.indrelid
         WHERE t.relname = ANY(%(tables)s)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                            WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid)
        """,
        {"tables": tables},
    ).fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _rebuild(url: str, statements: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 0")
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


@dataclass
class LoadReport:
    rows: dict[str, int]
    copy_seconds: float
    index_seconds: float
    vacuum_seconds: float
    check_seconds: float
    sizes: list[int]
    status_counts: dict[tuple[str, str], int]
    database_bytes: int = 0


def bulk_load(url: str, stations: list[Station], cases: int, seed: int) -> LoadReport:
    plans = build_plans()
    rng = random.Random(seed)
    sizes = station_sizes(cases, len(stations), rng)
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = _secondary_indexes(conn)
        for kind, table, name, _ in indexes:
            if kind == "constraint":
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                )
            else:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    log(f"dropped {len(indexes)} secondary indexes and unique constraints for the load")
    synth = Synthesiser(plans, seed + 1, time.time())
    loader = CopyLoader(url)
    started = time.monotonic()
    pending = 0
    try:
        for station, size in zip(stations, sizes, strict=True):
            synth.station_cases(station, size)
            pending += size
            if pending >= 20_000:
                loader.put(synth.drain())  # type: ignore[arg-type]
                pending = 0
        loader.put(synth.drain())  # type: ignore[arg-type]
    finally:
        loader.finish()
    copy_seconds = time.monotonic() - started
    log(f"COPY of {sum(synth.rows.values()):,} rows took {copy_seconds:.1f}s")
    started = time.monotonic()
    # Two connections build in parallel, the work split by table size (largest first).
    jobs = sorted(
        (
            synth.rows.get(table, 0),
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
            if kind == "constraint"
            else definition,
        )
        for kind, table, name, definition in indexes
    )
    shares: list[list[str]] = [[], []]
    weights = [0, 0]
    for weight, statement in reversed(jobs):
        lighter = weights.index(min(weights))
        shares[lighter].append(statement)
        weights[lighter] += weight
    statements = shares[0] + shares[1]
    workers = [threading.Thread(target=_rebuild, args=(url, share)) for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    index_seconds = time.monotonic() - started
    log(f"rebuilt {len(statements)} indexes and constraints in {index_seconds:.1f}s")
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        conn.execute("ANALYZE")
    vacuum_seconds = time.monotonic() - started
    log(f"VACUUM ANALYZE took {vacuum_seconds:.1f}s")
    started = time.monotonic()
    check_integrity(url)
    check_seconds = time.monotonic() - started
    log(f"integrity checks passed in {check_seconds:.1f}s")
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return LoadReport(
        rows=dict(synth.rows),
        copy_seconds=copy_seconds,
        index_seconds=index_seconds,
        vacuum_seconds=vacuum_seconds,
        check_seconds=check_seconds,
        sizes=sizes,
        status_counts=synth.status_counts,
        database_bytes=int(size[0]) if size else 0,
    )


INTEGRITY_CHECKS = {
    "event without case": "SELECT count(*) FROM case_events e "
    "WHERE NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = e.case_id)",
    "event actor unknown": "SELECT count(*) FROM case_events e "
    "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = e.actor_id)",
    "person without case": "SELECT count(*) FROM case_persons p "
    "WHERE NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = p.case_id)",
    "case without incident": "SELECT count(*) FROM cases c "
    "WHERE NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = c.incident_id AND i.case_id = c.id)",
    "case handler or unit unknown": "SELECT count(*) FROM cases c "
    "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.handler_id AND u.unit_id = c.unit_id)",
    "approval without request": "SELECT count(*) FROM approvals a "
    "WHERE NOT EXISTS (SELECT 1 FROM step_requests r WHERE r.id = a.request_id "
    "AND r.case_id = a.case_id)",
    "pending request mismatch": "SELECT count(*) FROM cases c WHERE c.pending_request_id "
    "IS NOT NULL AND NOT EXISTS (SELECT 1 FROM step_requests r "
    "WHERE r.id = c.pending_request_id AND r.status = 'pending')",
    "counter behind cases": "SELECT count(*) FROM (SELECT unit_id, year, max(seq) m FROM cases "
    "GROUP BY 1, 2) s LEFT JOIN case_number_counters n USING (unit_id, year) "
    "WHERE n.last IS DISTINCT FROM s.m",
    "version below 1": "SELECT count(*) FROM cases WHERE version < 1",
}


def check_integrity(url: str) -> None:
    """The checks the skipped foreign keys would have made, and a few more."""
    from shared.workflow import workflow_for

    with psycopg.connect(url) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 2")
        failures = {}
        for name, query in INTEGRITY_CHECKS.items():
            row = conn.execute(query).fetchone()  # type: ignore[arg-type]
            if row and row[0]:
                failures[name] = row[0]
        for case_type, status, is_open in conn.execute(
            "SELECT DISTINCT case_type, status, is_open FROM cases"
        ):
            if workflow_for(case_type).is_terminal(status) == is_open:
                failures[f"is_open wrong for {case_type}/{status}"] = 1
    if failures:
        raise RuntimeError(f"loaded data failed integrity checks: {failures}")


# --------------------------------------------------------------------------
# The server and the clients


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """gunicorn with the product's settings, access log off, errors to a file."""

    def __init__(self, url: str, key_pem: str, workers: int | None, threads: int, logdir: Path):
        if workers:
            self.workers = workers
        else:  # gunicorn_conf's own default, as the server will compute it
            from backend import gunicorn_conf

            self.workers = int(gunicorn_conf.workers)
        self.port = free_port()
        self.log_path = logdir / "gunicorn.log"
        conf = logdir / "gunicorn_bench_conf.py"
        conf.write_text(
            "from backend.gunicorn_conf import *  # noqa: F403\naccesslog = None\nerrorlog = '-'\n"
        )
        env = app_env(url, key_pem)
        env["FIELDCASE_BIND"] = f"127.0.0.1:{self.port}"
        env["FIELDCASE_THREADS"] = str(threads)
        if workers:
            env["FIELDCASE_WORKERS"] = str(workers)
        else:
            env.pop("FIELDCASE_WORKERS", None)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(gunicorn), "-c", str(conf), "backend:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    if len(self.worker_pids()) >= self.workers:
                        return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {timeout}s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        return [pid for pid, ppid, _ in _processes() if ppid == self.process.pid]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, since boot)."""
    with open("/proc/stat") as handle:
        parts = [int(x) for x in handle.readline().split()[1:]]
    return (sum(parts) - parts[3] - parts[4]) / _TICK


def wait_for_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (up to ``max_wait`` s) until other work uses under ``threshold`` cores.

    The machines this runs on are shared; returns the load last seen (cores).
    """
    deadline = time.monotonic() + max_wait
    while True:
        before, mark = machine_busy(), time.monotonic()
        time.sleep(2)
        load = (machine_busy() - before) / (time.monotonic() - mark)
        if load < threshold or time.monotonic() >= deadline:
            return load
        log(f"machine busy with other work ({load:.2f} cores); waiting")


def _processes() -> Iterator[tuple[int, int, str]]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(entry.path, "stat").read_text()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            yield int(entry.name), ppid, comm


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int, children: bool = False) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:  # reaped children: gunicorn workers recycled, postgres backends ended
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def cpu_snapshot(server: Server) -> dict[str, float]:
    """CPU seconds used so far by the app server, PostgreSQL, this process, and the machine."""
    procs = list(_processes())
    pg = {pid for pid, _, comm in procs if comm == "postgres"}
    app = _cpu_of(server.process.pid, children=True) + sum(
        _cpu_of(pid) for pid, ppid, _ in procs if ppid == server.process.pid
    )
    postgres = sum(_cpu_of(pid, children=pid in pg and ppid not in pg) for pid, ppid, _ in procs
                   if pid in pg)  # fmt: skip
    times = os.times()
    return {
        "app": app,
        "postgres": postgres,
        "client": times.user + times.system,
        "machine": machine_busy(),
    }


class Http:
    """A small HTTP/1.1 client; gunicorn's sync workers close after each response."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, Any]:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=sent)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                if attempt == 2:
                    raise
        if response.will_close:
            self.conn.close()
        payload = json.loads(raw) if raw else None
        return response.status, response.headers, payload

    def close(self) -> None:
        self.conn.close()


def login(port: int, username: str) -> str:
    client = Http(port)
    status, _, body = client.call(
        "POST", f"{API}/auth/login", body={"username": username, "password": PASSWORD}
    )
    client.close()
    if status != 200:
        raise RuntimeError(f"login {username}: {status} {body}")
    return str(body["access_token"])


@dataclass
class BenchCase:
    station: Station
    case_id: str
    person_id: str


def choose_bench_cases(url: str, stations: list[Station], clients: int) -> list[BenchCase]:
    """One station per client, from the busiest down through the size distribution.

    Each needs a criminal case under investigation with a person in it, for the
    repeatable summon / detain steps.
    """
    ranked = sorted(stations, key=lambda s: -s.cases)
    chosen: list[BenchCase] = []
    used: set[str] = set()
    with psycopg.connect(url) as conn:
        for i in range(clients):
            start = round(i * (len(ranked) - 1) / max(clients - 1, 1))
            for station in ranked[start:] + ranked[:start]:
                if station.id in used:
                    continue
                row = conn.execute(
                    """
                    SELECT c.id, p.id FROM cases c
                      JOIN LATERAL (SELECT id FROM case_persons WHERE case_id = c.id
                                     ORDER BY created_at LIMIT 1) p ON true
                     WHERE c.unit_id = %s AND c.case_type = 'criminal'
                       AND c.status = 'investigating' AND c.pending_request_id IS NULL
                     ORDER BY c.created_at DESC LIMIT 1
                    """,
                    (uuid_from_hex(station.id),),
                ).fetchone()
                if row:
                    used.add(station.id)
                    chosen.append(BenchCase(station, str(row[0]), str(row[1])))
                    break
    if len(chosen) < clients:
        raise RuntimeError("not enough stations with a criminal case under investigation")
    return chosen


# --------------------------------------------------------------------------
# Phases


@dataclass
class Sample:
    kind: str
    end: float
    latency: float
    ok: bool


@dataclass
class PhaseResult:
    name: str
    seconds: float
    samples: list[Sample]
    cpu: dict[str, float]
    commits: int
    sessions: dict[str, float] = field(default_factory=dict)

    def of(self, kind: str, ok: bool = True) -> list[Sample]:
        return [s for s in self.samples if s.kind == kind and s.ok == ok]

    def rate(self, *kinds: str) -> float:
        return sum(len(self.of(k)) for k in kinds) / self.seconds

    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    def percentile_ms(self, q: float, *kinds: str) -> float:
        values = sorted(s.latency for k in kinds for s in self.of(k))
        if not values:
            return float("nan")
        rank = max(0, min(len(values) - 1, math.ceil(q * len(values)) - 1))
        return values[rank] * 1000


class Recorder:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def timed(
        self, kind: str, call: Callable[[], tuple[int, Any, Any]], expect: int
    ) -> tuple[int, Any, Any]:
        start = time.perf_counter()
        status, headers, body = call()
        end = time.perf_counter()
        self.samples.append(Sample(kind, end, end - start, status == expect))
        return status, headers, body


def commits(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def run_phase(
    name: str,
    workers: Sequence[Callable[[Recorder, threading.Event], None]],
    server: Server,
    url: str,
    warmup: float,
    duration: float,
) -> PhaseResult:
    stop = threading.Event()
    recorders = [Recorder() for _ in workers]
    failures: list[BaseException] = []

    def run(work: Callable[[Recorder, threading.Event], None], rec: Recorder) -> None:
        try:
            work(rec, stop)
        except BaseException as exc:
            failures.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=run, args=(w, r), daemon=True)
        for w, r in zip(workers, recorders, strict=True)
    ]
    for thread in threads:
        thread.start()
    stop.wait(warmup)
    sampler = SessionSampler(url)
    window_start = time.perf_counter()
    cpu_before, commits_before = cpu_snapshot(server), commits(url)
    stop.wait(duration)
    window_end = time.perf_counter()
    cpu_after, commits_after = cpu_snapshot(server), commits(url)
    sessions = sampler.finish()
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    if failures:
        raise RuntimeError(f"phase {name} failed: {failures[0]!r}") from failures[0]
    samples = [s for r in recorders for s in r.samples if window_start <= s.end <= window_end]
    seconds = window_end - window_start
    cpu = {k: (cpu_after[k] - cpu_before[k]) / seconds for k in cpu_after}
    cpu["other"] = max(0.0, cpu["machine"] - cpu["app"] - cpu["postgres"] - cpu["client"])
    return PhaseResult(name, seconds, samples, cpu, commits_after - commits_before, sessions)


SESSION_STATES = {
    "app": "in a transaction, waiting for the app",
    "advisory": "waiting on an advisory lock",
    "lock": "waiting on another lock",
    "wal": "waiting on WAL",
    "running": "running a statement",
    "idle": "idle",
}


class SessionSampler:
    """Samples what the app's database sessions are doing, ten times a second."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.counts = dict.fromkeys(SESSION_STATES, 0)
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(0.1):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                ).fetchall()
                self.samples += 1
                for state, wait_type, wait in rows:
                    if state == "idle":
                        key = "idle"
                    elif state and state.startswith("idle in transaction"):
                        key = "app"
                    elif wait_type == "Lock":
                        key = "advisory" if wait == "advisory" else "lock"
                    elif wait_type in ("IO", "LWLock") and wait and "WAL" in wait:
                        key = "wal"
                    else:
                        key = "running"
                    self.counts[key] += 1

    def finish(self) -> dict[str, float]:
        """Average number of sessions in each state."""
        self.stop.set()
        self.thread.join()
        return {k: v / max(self.samples, 1) for k, v in self.counts.items()}


def list_worker(port: int, token: str) -> Callable[[Recorder, threading.Event], None]:
    def work(rec: Recorder, stop: threading.Event) -> None:
        client = Http(port)
        while not stop.is_set():
            rec.timed("list", lambda: client.call("GET", LIST_PATH, token), 200)
        client.close()

    return work


def step_worker(
    port: int,
    bench: BenchCase,
    tokens: dict[str, str],
    action: str,
    stages: list[str],
) -> Callable[[Recorder, threading.Event], None]:
    """Request ``action`` on the case, then approve each stage as the stage's role."""

    case_path = f"{API}/cases/{bench.case_id}"

    def find_approval(client: Http, rec: Recorder, role: str, request_id: str) -> str | None:
        status, _, body = rec.timed(
            "approvals",
            lambda: client.call("GET", f"{API}/approvals?status=pending&limit=50", tokens[role]),
            200,
        )
        if status != 200:
            return None
        for item in body["items"]:
            if item["request_id"] == request_id:
                return str(item["id"])
        return None

    def settle(client: Http, rec: Recorder) -> str:
        """Bring the case back to no pending step; return its ETag."""
        for _ in range(10):
            status, headers, body = client.call("GET", case_path, tokens["officer"])
            if status != 200:
                raise RuntimeError(f"GET case: {status} {body}")
            pending = body.get("pending_request_id")
            if not pending:
                return str(headers["ETag"])
            for role in stages:
                approval = find_approval(client, rec, role, pending)
                if approval:
                    client.call(
                        "POST",
                        f"{API}/approvals/{approval}/decision",
                        tokens[role],
                        {"decision": "approve"},
                    )
        raise RuntimeError("could not settle the bench case")

    def work(rec: Recorder, stop: threading.Event) -> None:
        client = Http(port)
        etag = settle(client, rec)
        while not stop.is_set():
            begun = time.perf_counter()
            body_out = {
                "action": action,
                "payload": {
                    "person_id": bench.person_id,
                    "starts_at": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            }
            status, headers, body = rec.timed(
                "write",
                lambda body_out=body_out, etag=etag: client.call(
                    "POST",
                    f"{case_path}/transitions",
                    tokens["officer"],
                    body_out,
                    {"If-Match": etag},
                ),
                202,
            )
            if status != 202:
                etag = settle(client, rec)
                continue
            request_id = body["request"]["id"]
            outcome = None
            for role in stages:
                approval = find_approval(client, rec, role, request_id)
                if approval is None:
                    break
                status, headers, body = rec.timed(
                    "write",
                    lambda approval=approval, role=role: client.call(
                        "POST",
                        f"{API}/approvals/{approval}/decision",
                        tokens[role],
                        {"decision": "approve"},
                    ),
                    200,
                )
                if status != 200:
                    break
                outcome = body["outcome"]
                etag = str(headers["ETag"])
            if outcome == "applied":
                end = time.perf_counter()
                rec.samples.append(Sample("step", end, end - begun, True))
            else:
                rec.samples.append(Sample("step", time.perf_counter(), 0.0, False))
                etag = settle(client, rec)
        client.close()

    return work


def pgbench(server_url: str, name: str, clients: int, seconds: int) -> float:
    target = db_url(server_url, name)
    info = conninfo_to_dict(target)
    command = [
        "pgbench",
        "-h",
        str(info.get("host", "127.0.0.1")),
        "-p",
        str(info.get("port", 5432)),
        "-U",
        str(info.get("user", "postgres")),
        "-N",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(seconds),
        name,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    if done.returncode or not found:
        raise RuntimeError(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def pgbench_init(server_url: str, name: str, scale: int) -> None:
    recreate_database(server_url, name)
    info = conninfo_to_dict(db_url(server_url, name))
    command = [
        "pgbench",
        "-i",
        "-q",
        "-s",
        str(scale),
        "-h",
        str(info.get("host", "127.0.0.1")),
        "-p",
        str(info.get("port", 5432)),
        "-U",
        str(info.get("user", "postgres")),
        name,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"pgbench -i failed:\n{done.stdout}\n{done.stderr}")


# --------------------------------------------------------------------------
# Diagnostics: statements per request and the list query's plan


def diagnose(url: str, key_pem: str, bench: BenchCase) -> dict[str, Any]:
    """Count SQL statements per request in-process, and EXPLAIN ANALYZE the list query."""
    from sqlalchemy import event

    from backend.extensions import db

    app = make_app(url, key_pem)
    statements: list[tuple[str, Any]] = []
    with app.app_context():
        engine = db.engine

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    client = app.test_client()
    users = bench.station.users

    def token(username: str) -> str:
        response = client.post(
            f"{API}/auth/login", json={"username": username, "password": PASSWORD}
        )
        return str(response.get_json()["access_token"])

    officer, leader = token(users["officer"]), token(users["leader"])
    counts: dict[str, int] = {}

    def counted(label: str, call: Callable[[], Any]) -> Any:
        statements.clear()
        response = call()
        counts[label] = len(statements)
        return response

    auth = {"Authorization": f"Bearer {officer}"}
    counted("GET /cases?open=true (list)", lambda: client.get(LIST_PATH, headers=auth))
    list_statement = next(
        (s for s in statements if "FROM cases" in s[0] and "ORDER BY" in s[0]), None
    )
    case = counted(
        "GET /cases/{id}", lambda: client.get(f"{API}/cases/{bench.case_id}", headers=auth)
    )
    payload = {"person_id": bench.person_id, "starts_at": datetime.now(UTC).isoformat()}
    requested = counted(
        "POST /cases/{id}/transitions",
        lambda: client.post(
            f"{API}/cases/{bench.case_id}/transitions",
            json={"action": "summon", "payload": payload},
            headers={**auth, "If-Match": case.headers["ETag"]},
        ),
    )
    request_id = requested.get_json()["request"]["id"]
    lead = {"Authorization": f"Bearer {leader}"}
    listed = counted(
        "GET /approvals?status=pending",
        lambda: client.get(f"{API}/approvals?status=pending&limit=50", headers=lead),
    )
    queue_statement = next(
        (s for s in statements if "FROM approvals" in s[0] and "ORDER BY" in s[0]), None
    )
    approval = next(i["id"] for i in listed.get_json()["items"] if i["request_id"] == request_id)
    decided = counted(
        "POST /approvals/{id}/decision",
        lambda: client.post(
            f"{API}/approvals/{approval}/decision", json={"decision": "approve"}, headers=lead
        ),
    )
    if decided.get_json()["outcome"] != "applied":
        raise RuntimeError("diagnostic summon was not applied")
    with app.app_context():
        db.engine.dispose()
    if list_statement is None or queue_statement is None:
        raise RuntimeError("the list requests ran no ordered query on cases or approvals")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + list_statement[0],  # type: ignore[operator]
            list_statement[1],
        ).fetchall()
        queue_rows = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + queue_statement[0],  # type: ignore[operator]
            queue_statement[1],
        ).fetchall()
        pending = conn.execute(
            "SELECT count(*) FROM approvals WHERE unit_id = %s AND status = 'pending' "
            "AND role = 'leader'",
            (uuid_from_hex(bench.station.id),),
        ).fetchone()
        open_cases = conn.execute(
            "SELECT count(*) FROM cases WHERE unit_id = %s AND is_open",
            (uuid_from_hex(bench.station.id),),
        ).fetchone()
    return {
        "statements": counts,
        "list_sql": list_statement[0],
        "plan": "\n".join(r[0] for r in rows),
        "queue_plan": "\n".join(r[0] for r in queue_rows),
        "station_pending": int(pending[0]) if pending else 0,
        "station": bench.station.code,
        "station_cases": bench.station.cases,
        "station_open": int(open_cases[0]) if open_cases else 0,
    }


# --------------------------------------------------------------------------
# Reporting


@dataclass
class Round:
    tps: float
    phases: dict[str, PhaseResult]


CYCLES = {"summon": ["leader"], "detain": ["legal_officer", "leader"]}


def round_figures(r: Round) -> dict[str, float]:
    out: dict[str, float] = {"pgbench_tps": r.tps}
    lst = r.phases["list"]
    out.update(
        list_rps=lst.rate("list"),
        list_p50=lst.percentile_ms(0.50, "list"),
        list_p99=lst.percentile_ms(0.99, "list"),
        list_errors=lst.errors(),
    )
    for name in CYCLES:
        p = r.phases[name]
        writes = p.rate("write")
        out.update(
            {
                f"{name}_writes": writes,
                f"{name}_steps": p.rate("step"),
                f"{name}_requests": p.rate("write", "approvals"),
                f"{name}_write_p50": p.percentile_ms(0.50, "write"),
                f"{name}_write_p99": p.percentile_ms(0.99, "write"),
                f"{name}_step_p50": p.percentile_ms(0.50, "step"),
                f"{name}_step_p99": p.percentile_ms(0.99, "step"),
                f"{name}_ratio": writes / r.tps,
                f"{name}_errors": p.errors(),
            }
        )
    return out


def solo_line(phase: PhaseResult) -> str:
    parts = []
    for kind in ("list", "write", "approvals", "step"):
        if phase.of(kind):
            parts.append(
                f"{kind} p50 {phase.percentile_ms(0.5, kind):.1f} ms, "
                f"p99 {phase.percentile_ms(0.99, kind):.1f} ms"
            )
    rps = sum(1 for s in phase.samples if s.kind != "step") / phase.seconds
    return "; ".join(parts) + f"; {rps:.0f} requests/s, gunicorn CPU {phase.cpu['app']:.2f} cores"


def medians(rounds: list[Round]) -> dict[str, float]:
    figures = [round_figures(r) for r in rounds]
    return {k: statistics.median(f[k] for f in figures) for k in figures[0]}


def print_summary(rounds: list[Round], med: dict[str, float]) -> None:
    print()
    header = f"{'round':>5} {'pgbench':>8} {'list/s':>7} {'p50':>6} {'p99':>6}"
    for name in CYCLES:
        header += f" | {name + ' w/s':>12} {'steps/s':>7} {'w p50':>6} {'w p99':>6} {'ratio':>6}"
    print(header)
    for index, r in enumerate(rounds, start=1):
        f = round_figures(r)
        line = (
            f"{index:>5} {f['pgbench_tps']:>8.0f} {f['list_rps']:>7.1f} "
            f"{f['list_p50']:>6.1f} {f['list_p99']:>6.1f}"
        )
        for name in CYCLES:
            line += (
                f" | {f[name + '_writes']:>12.1f} {f[name + '_steps']:>7.1f} "
                f"{f[name + '_write_p50']:>6.1f} {f[name + '_write_p99']:>6.1f} "
                f"{f[name + '_ratio']:>6.1%}"
            )
        print(line)
    m = med
    print(
        f"\nmedian: list p50 {m['list_p50']:.1f} ms, p99 {m['list_p99']:.1f} ms "
        f"(target p99 <= {LIST_P99_TARGET_MS:.0f} ms); pgbench -N {m['pgbench_tps']:.0f} TPS"
    )
    for name in CYCLES:
        print(
            f"median {name}: {m[name + '_writes']:.1f} write requests/s, "
            f"{m[name + '_steps']:.1f} steps/s, write p50/p99 {m[name + '_write_p50']:.1f}/"
            f"{m[name + '_write_p99']:.1f} ms, step p50/p99 {m[name + '_step_p50']:.1f}/"
            f"{m[name + '_step_p99']:.1f} ms, ratio to pgbench {m[name + '_ratio']:.1%} "
            f"(target >= {WRITE_RATIO_TARGET:.0%})"
        )


def machine() -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def postgres_info(server_url: str) -> dict[str, str]:
    with psycopg.connect(server_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                (["shared_buffers", "synchronous_commit", "fsync", "max_wal_size", "work_mem"],),
            ).fetchall()
        )
    return {"version": str(version[0]) if version else "?", **settings}


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "backend", "shared"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + (" plus uncommitted changes in backend/ or shared/" if dirty else "")


def _ms(value: float) -> str:
    return f"{value:.1f}"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def render_intro() -> str:
    plans = build_plans()
    open_share = sum(p.share for p in plans if p.is_open)
    by_type: dict[str, float] = {}
    for p in plans:
        by_type[p.case_type] = by_type.get(p.case_type, 0) + p.share
    states: dict[tuple[str, str, bool], float] = {}
    for p in plans:
        key = (p.case_type, p.status + (" (step pending)" if p.pending else ""), p.is_open)
        states[key] = states.get(key, 0) + p.share
    rows = "\n".join(
        f"| {t} | {s} | {'open' if o else 'closed'} | {share:.1%} |"
        for (t, s, o), share in sorted(states.items(), key=lambda kv: (kv[0][0], -kv[1]))
    )
    return f"""## API benchmark (`scripts/bench/api.py`)

Throughput and latency of the HTTP API on PostgreSQL, with the database's own
simple-update rate as the ceiling. One run of the script:

1. creates a fresh database, migrates it (`flask db upgrade`) and creates the
   organisation through the product's services: one city bureau, {DISTRICTS} district
   bureaus, {STATIONS} stations (18–19 per district), and per station two officers,
   a legal officer and a leader;
2. bulk-loads N synthetic cases with `COPY` and rebuilds the secondary indexes,
   then `VACUUM ANALYZE` and integrity checks (foreign-key triggers are skipped
   during `COPY`, so the checks re-do them: every event, person, approval and
   case points at an existing row; `is_open` matches the workflow's terminal
   states; case-number counters equal the highest number issued);
3. serves the app with gunicorn using `backend/gunicorn_conf.py` (access log off,
   workers as stated with each result) and signs the bench users in;
4. per round: `pgbench -N -c 8 -j 2` (scale 10, scratch database on the same
   server), then three phases with 8 concurrent clients (threads, one
   station each, HTTP/1.1, a new connection per request as sync workers close
   it), each a few seconds of warm-up and then a fixed measuring window:
   - **list**: `GET /api/v1/cases?open=true&limit=50` as a station officer;
   - **summon** (one-stage step cycle): the officer `POST`s
     `/cases/{{id}}/transitions` `summon` (with `If-Match`), the station leader
     finds the approval in `GET /approvals?status=pending` and `POST`s
     `/approvals/{{id}}/decision` `approve`; the step is applied and the case
     stays `investigating`, so every client repeats the cycle on its own case;
   - **detain** (two-stage cycle): the same with the station's legal officer
     approving first and the leader second;
5. before each round, waits up to `--wait-quiet` seconds for other work on the
   machine to stop (the machines are shared; the CPU other processes used is
   reported with each round);
6. reports medians over the rounds. *Write requests* are the `POST`s
   (transition and decision); *steps* are cycles that ended `applied`;
   *ratio* is write requests/s divided by the pgbench TPS of the same round.
   Every API request, reads included, also commits one transaction (its audit
   row).

Clients are spread over the station-size distribution: the busiest station and
then every 1/8 of the ranking (each needs a criminal case under investigation).

**Synthetic data.** Cases per station follow a log-normal spread (σ = {STATION_SKEW_SIGMA}),
so the busiest station has several times the median's cases. Each case comes
from an accepted incident; {REPORTER_SHARE:.0%} have the reporter as a person and
{SUSPECT_SHARE:.0%} a suspect, added by a `person_added` event (every case with
coercive measures has one). Histories follow the workflow files action by action
(checked against them when the script starts): every event, every step request
with its approvals (approved ones, or pending for the cases waiting in
`legal_review`/`leader_approval`/`filing_review`), deadlines as
`cases.deadline_for` sets them. Closed cases were created uniformly over the
last {HISTORY_DAYS // 365} years; open ones are younger (exponential age, mean
{OPEN_MEAN_AGE_DAYS} days). Case numbers run per station and year. Types:
{by_type.get("administrative", 0):.0%} administrative, {by_type.get("criminal", 0):.0%} criminal;
{open_share:.1%} open.

| Type | State | Open or closed | Share |
|---|---|---|---|
{rows}
"""


def render_result(args: argparse.Namespace, ctx: dict[str, Any]) -> str:
    rounds: list[Round] = ctx["rounds"]
    med = medians(rounds)
    load: LoadReport = ctx["load"]
    m, pg = ctx["machine"], ctx["postgres"]
    diag = ctx["diagnostics"]
    sizes = sorted(load.sizes)
    open_count = sum(n for (t, s), n in load.status_counts.items() if _open_state(t, s))
    list_ok = med["list_p99"] <= LIST_P99_TARGET_MS
    lines = [
        f"### {args.cases:,} cases",
        "",
        f"Run {ctx['when']} at commit `{ctx['commit']}`:",
        "",
        "```",
        ctx["command"],
        "```",
        "",
        f"- Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}, "
        f"Python {m['python']}.",
        f"- PostgreSQL {pg['version']} on the same machine (shared_buffers "
        f"{pg.get('shared_buffers')}, synchronous_commit {pg.get('synchronous_commit')}, "
        f"fsync {pg.get('fsync')}, max_wal_size {pg.get('max_wal_size')}).",
        f"- gunicorn: {ctx['workers']} workers, {args.threads} thread(s) each "
        f"({'gthread' if args.threads > 1 else 'sync'}); {args.clients} clients; "
        f"{args.rounds} rounds of {args.warmup:g} s warm-up + {args.duration:g} s per phase; "
        f"pgbench -T {round(args.duration)}.",
        f"- Data: {load.rows['cases']:,} cases ({open_count:,} open) in {STATIONS} stations "
        f"(cases per station: min {sizes[0]:,}, median {sizes[len(sizes) // 2]:,}, "
        f"max {sizes[-1]:,}); {load.rows['case_events']:,} events, "
        f"{load.rows['case_persons']:,} persons, {load.rows['step_requests']:,} step "
        f"requests, {load.rows['approvals']:,} approvals; database "
        f"{load.database_bytes / 2**30:.2f} GiB after the load.",
        f"- Load: COPY {load.copy_seconds:.0f} s, index rebuild {load.index_seconds:.0f} s, "
        f"VACUUM ANALYZE {load.vacuum_seconds:.0f} s, integrity checks "
        f"{load.check_seconds:.0f} s; whole run {ctx['total_seconds'] / 60:.1f} min.",
        "",
        f"| Figure (median of {len(rounds)} rounds) | Value | Target |",
        "|---|---|---|",
        f"| Open-case list, p50 / p99 | {_ms(med['list_p50'])} / {_ms(med['list_p99'])} ms "
        f"| p99 ≤ {LIST_P99_TARGET_MS:.0f} ms (at 1,000,000 cases): {_met(list_ok)} |",
        f"| Open-case list, requests/s | {med['list_rps']:.0f} | |",
        f"| pgbench -N (ceiling) | {med['pgbench_tps']:.0f} TPS | |",
    ]
    for name in CYCLES:
        ok = med[f"{name}_ratio"] >= WRITE_RATIO_TARGET
        label = "1 approval" if name == "summon" else "2 approvals"
        lines += [
            f"| {name} cycle ({label}): write requests/s | {med[name + '_writes']:.1f} | |",
            f"| {name} cycle: completed steps/s | {med[name + '_steps']:.1f} | |",
            f"| {name} cycle: write request p50 / p99 | {_ms(med[name + '_write_p50'])} / "
            f"{_ms(med[name + '_write_p99'])} ms | |",
            f"| {name} cycle: whole step p50 / p99 | {_ms(med[name + '_step_p50'])} / "
            f"{_ms(med[name + '_step_p99'])} ms | |",
            f"| {name} cycle: write requests/s ÷ pgbench TPS | {med[name + '_ratio']:.1%} "
            f"| ≥ {WRITE_RATIO_TARGET:.0%}: {_met(ok)} |",
        ]
    lines += [
        "",
        "Per round (requests/s, latencies in ms; w = write requests):",
        "",
        "| Round | pgbench TPS | list/s | list p50 | list p99 | summon w/s | summon steps/s "
        "| summon ratio | detain w/s | detain steps/s | detain ratio | errors "
        "| other load (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, r in enumerate(rounds, start=1):
        f = round_figures(r)
        errors = int(f["list_errors"] + f["summon_errors"] + f["detain_errors"])
        other = max(p.cpu["other"] for p in r.phases.values())
        lines.append(
            f"| {index} | {f['pgbench_tps']:.0f} | {f['list_rps']:.0f} | {_ms(f['list_p50'])} "
            f"| {_ms(f['list_p99'])} | {f['summon_writes']:.1f} | {f['summon_steps']:.1f} "
            f"| {f['summon_ratio']:.1%} | {f['detain_writes']:.1f} | {f['detain_steps']:.1f} "
            f"| {f['detain_ratio']:.1%} | {errors} | {other:.2f} |"
        )
    lines += [
        "",
        "*Other load* is the most CPU used during a phase of the round by processes other "
        "than the benchmark's own (gunicorn, PostgreSQL, the load generator): the machine is "
        "shared, and rounds with more other load give lower figures. The PostgreSQL column "
        "counts the whole server, including sessions of other users of the machine.",
    ]
    lines += [
        "",
        "Where the time goes (last round; CPU cores busy on average during the window, "
        "of the machine's " + m["cpus"] + "):",
        "",
        "| Phase | requests/s | gunicorn | PostgreSQL | load generator | other | machine "
        "| gunicorn CPU ms/request | PostgreSQL CPU ms/request | DB commits/request |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    session_rows = [
        "",
        "What the app's database sessions were doing (last round; average number of "
        f"sessions, of {ctx['workers']} — one per gunicorn worker — sampled ten times a second):",
        "",
        "| Phase | " + " | ".join(SESSION_STATES.values()) + " |",
        "|---|" + "---|" * len(SESSION_STATES),
    ]
    for name, phase in rounds[-1].phases.items():
        session_rows.append(
            f"| {name} | "
            + " | ".join(f"{phase.sessions.get(k, 0):.2f}" for k in SESSION_STATES)
            + " |"
        )
    for name, phase in rounds[-1].phases.items():
        rps = sum(1 for s in phase.samples if s.kind != "step") / phase.seconds
        c = phase.cpu
        per = 1000 / rps if rps else 0
        lines.append(
            f"| {name} | {rps:.0f} | {c['app']:.2f} | {c['postgres']:.2f} | {c['client']:.2f} "
            f"| {c['other']:.2f} | {c['machine']:.2f} | {c['app'] * per:.1f} "
            f"| {c['postgres'] * per:.1f} "
            f"| {phase.commits / phase.seconds / rps if rps else 0:.2f} |"
        )
    lines += session_rows
    lines += [
        "",
        "DB commits per request are about 2: the request's own transaction and the "
        "connection pool's pre-ping (`SELECT 1` in autocommit, no WAL), as "
        "`pool_pre_ping` checks every connection a request takes from the pool.",
        "",
        "Service time with one client alone (no queueing), after the rounds:",
        "",
    ]
    for phase in ctx["solo"].values():
        lines.append(f"- {phase.name}: {solo_line(phase)}.")
    counts = diag["statements"]
    lines += [
        "",
        "SQL statements per request (counted in-process; BEGIN/COMMIT not included): "
        + ", ".join(f"{k}: {v}" for k, v in counts.items())
        + ".",
        "",
        f"List query plan for the busiest station ({diag['station']}, "
        f"{diag['station_cases']:,} cases, {diag['station_open']:,} open):",
        "",
        "```",
        diag["plan"],
        "```",
        "",
        f"Approval queue query (`GET /approvals?status=pending` as that station's leader, "
        f"{diag['station_pending']:,} pending leader approvals):",
        "",
        "```",
        diag["queue_plan"],
        "```",
    ]
    return "\n".join(lines) + "\n"


def _open_state(case_type: str, status: str) -> bool:
    from shared.workflow import workflow_for

    return not workflow_for(case_type).is_terminal(status)  # type: ignore[arg-type]


def _block(key: str, body: str) -> str:
    return f"<!-- bench-api:{key}:start -->\n{body.rstrip()}\n<!-- bench-api:{key}:end -->"


def write_docs(result_key: str, result: str) -> None:
    """Replace this script's blocks in docs/performance.md, leaving everything else alone."""
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    blocks = {"intro": render_intro(), result_key: result}
    for key, body in blocks.items():
        pattern = re.compile(
            rf"<!-- bench-api:{re.escape(key)}:start -->.*?<!-- bench-api:{re.escape(key)}:end -->",
            re.S,
        )
        if pattern.search(text):
            text = pattern.sub(lambda _m, key=key, body=body: _block(key, body), text)
            continue
        existing = [
            (m.group(1), m.end()) for m in re.finditer(r"<!-- bench-api:([\w-]+):end -->", text)
        ]
        if not existing:
            text = text.rstrip() + "\n\n" + _block(key, body) + "\n"
            continue
        # Results go in order of case count, after the intro.
        order = _docs_order(key)
        after = [end for k, end in existing if _docs_order(k) < order]
        position = max(after) if after else existing[0][1]
        text = text[:position] + "\n\n" + _block(key, body) + text[position:]
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def _docs_order(key: str) -> int:
    if key == "intro":
        return -1
    found = re.search(r"(\d+)", key)
    return int(found.group(1)) if found else 0


# --------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--cases", type=int, default=100_000, help="synthetic cases to load")
    parser.add_argument("--duration", type=float, default=20, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all phases + pgbench")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn workers; None: gunicorn_conf's default (2 x cores + 1)",
    )
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--server-url", default=SERVER_URL, help="PostgreSQL maintenance URL")
    parser.add_argument("--db-name", default="fieldcase_bench", help="database to create")
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60,
        help="before each round, wait up to this many seconds for other work to stop (0: don't)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    if args.cases < STATIONS or args.clients < 1 or args.rounds < 1 or args.duration <= 0:
        parser.error("need --cases >= 222, --clients >= 1, --rounds >= 1, --duration > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "$ .venv/bin/python scripts/bench/api.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    signal.signal(signal.SIGTERM, _interrupted)
    url = db_url(args.server_url, args.db_name)
    pgbench_db = f"{args.db_name}_pgbench"
    key_pem = signing_key()
    logdir = Path(tempfile.mkdtemp(prefix="fieldcase-bench-"))
    server: Server | None = None
    began = time.monotonic()
    ctx: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "command": command,
        "machine": machine(),
        "postgres": postgres_info(args.server_url),
    }
    try:
        log(f"creating database {args.db_name} and migrating it")
        recreate_database(args.server_url, args.db_name)
        migrate(url, key_pem)
        log("creating the organisation through backend.org.service")
        stations = create_organisation(url, key_pem)
        log(f"{len(stations)} stations, {4 * len(stations)} station users; loading cases")
        ctx["load"] = bulk_load(url, stations, args.cases, args.seed)
        log(f"loaded: {ctx['load'].rows}")
        benches = choose_bench_cases(url, stations, args.clients)
        log(
            "bench stations: " + ", ".join(f"{b.station.code} ({b.station.cases})" for b in benches)
        )
        ctx["diagnostics"] = diagnose(url, key_pem, benches[0])
        log(f"statements per request: {ctx['diagnostics']['statements']}")
        log("list query plan:\n" + ctx["diagnostics"]["plan"])
        pgbench_init(args.server_url, pgbench_db, args.pgbench_scale)
        server = Server(url, key_pem, args.workers, args.threads, logdir)
        server.wait_ready()
        ctx["workers"] = server.workers
        log(f"gunicorn on port {server.port} with {ctx['workers']} workers; log {server.log_path}")
        rounds: list[Round] = []
        for number in range(1, args.rounds + 1):
            if args.wait_quiet:
                load = wait_for_quiet(args.wait_quiet)
                log(f"round {number}: other work on the machine {load:.2f} cores")
            tps = pgbench(args.server_url, pgbench_db, args.clients, round(args.duration))
            log(f"round {number}: pgbench -N {tps:.0f} TPS")
            tokens = sign_in(server.port, benches)
            phases: dict[str, PhaseResult] = {}
            phases["list"] = run_phase(
                "list",
                [list_worker(server.port, tokens[b.station.users["officer"]]) for b in benches],
                server,
                url,
                args.warmup,
                args.duration,
            )
            for name, stages in CYCLES.items():
                workers = [
                    step_worker(
                        server.port,
                        b,
                        {role: tokens[b.station.users[role]] for role in ("officer", *stages)},
                        name,
                        stages,
                    )
                    for b in benches
                ]
                phases[name] = run_phase(name, workers, server, url, args.warmup, args.duration)
            rounds.append(Round(tps, phases))
            f = round_figures(rounds[-1])
            log(
                f"round {number}: list {f['list_rps']:.0f}/s p50 {f['list_p50']:.1f} "
                f"p99 {f['list_p99']:.1f} ms; summon {f['summon_writes']:.1f} w/s "
                f"({f['summon_ratio']:.1%}); detain {f['detain_writes']:.1f} w/s "
                f"({f['detain_ratio']:.1%}); errors "
                f"{f['list_errors'] + f['summon_errors'] + f['detain_errors']:.0f}"
            )
        ctx["rounds"] = rounds
        log("one client alone, for the service time without queueing")
        solo_tokens = sign_in(server.port, benches[:1])
        users = benches[0].station.users
        ctx["solo"] = {
            "list": run_phase(
                "list, 1 client",
                [list_worker(server.port, solo_tokens[users["officer"]])],
                server,
                url,
                args.warmup,
                args.duration,
            ),
            "summon": run_phase(
                "summon, 1 client",
                [
                    step_worker(
                        server.port,
                        benches[0],
                        {r: solo_tokens[users[r]] for r in ("officer", "leader")},
                        "summon",
                        ["leader"],
                    )
                ],
                server,
                url,
                args.warmup,
                args.duration,
            ),
        }
        for phase in ctx["solo"].values():
            log(f"{phase.name}: {solo_line(phase)}")
        ctx["total_seconds"] = time.monotonic() - began
        med = medians(rounds)
        print_summary(rounds, med)
        for name, phase in rounds[-1].phases.items():
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in phase.cpu.items())
            log(f"CPU cores busy in last round, {name}: {cpu}")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "cases": args.cases,
                        "medians": med,
                        "rounds": [round_figures(r) for r in rounds],
                        "cpu": [{n: p.cpu for n, p in r.phases.items()} for r in rounds],
                        "diagnostics": ctx["diagnostics"],
                    },
                    indent=2,
                )
            )
        if args.write_docs:
            write_docs(f"cases-{args.cases}", render_result(args, ctx))
            log(f"wrote {DOCS.relative_to(ROOT)}")
        return 0
    finally:
        if server is not None:
            server.stop()
            errors = server.log_path.read_text(errors="replace")
            if "Traceback" in errors:
                log(f"gunicorn logged errors; see {server.log_path}")
            elif not args.keep_db:
                shutil.rmtree(logdir, ignore_errors=True)
        elif not args.keep_db:
            shutil.rmtree(logdir, ignore_errors=True)
        if args.keep_db:
            log(f"kept databases {args.db_name} and {pgbench_db}")
        else:
            for name in (args.db_name, pgbench_db):
                with contextlib.suppress(psycopg.Error):
                    drop_database(args.server_url, name)
            log("dropped the benchmark databases")


def _interrupted(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def sign_in(port: int, benches: list[BenchCase]) -> dict[str, str]:
    """Sign in every bench user once per round (access tokens live 15 minutes)."""
    names = [name for b in benches for name in b.station.users.values()]
    tokens: dict[str, str] = {}
    threads = [threading.Thread(target=lambda n=n: tokens.__setitem__(n, login(port, n)))
               for n in names]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    missing = set(names) - set(tokens)
    if missing:
        raise RuntimeError(f"could not sign in: {sorted(missing)}")
    return tokens


if __name__ == "__main__":
    sys.exit(main())
