#!/usr/bin/env python3
"""Field client sync benchmark: a full outbox drained through a faulty network, and the
client's cold start to the sign-in screen.

Run from the repository root::

    .venv/bin/python scripts/bench/sync.py --cases 10 --cold-starts 1   # a quick look
    .venv/bin/python scripts/bench/sync.py --write-docs                  # the full run

What it does:

1. makes a database for the run (PostgreSQL ``fieldcase_bench_sync`` by default, or
   an SQLite file), migrates it, makes a unit and an officer with the product's
   CLI and serves Fieldcase with gunicorn (the helpers of ``scripts/bench/upload.py``);
2. puts the fault-injecting TCP proxy of the client's fault test
   (``tests/support_faultproxy.py``) in front of it and signs the client core
   (``mobile.state.AppState``: local store, outbox, sync worker, as in the app)
   in through it, enrolling the device key;
3. with the worker stopped (offline), queues per case a report registered as a
   case, two workflow steps and two evidence files of random bytes: 100 cases
   give 500 items with 200 MB (10^6 bytes) of evidence;
4. sets the proxy to fail ``--failure`` of all new TCP connections (reset, dropped,
   request cut, answer cut: a quarter each), starts the worker with the app's own
   retry timing and waits until nothing is waiting: the time to drain;
5. counts the bytes the proxy forwarded upstream (every request, header and
   retry, the cache refreshes included) against the evidence payload: the
   overhead; then checks in the database that every incident, case, step and
   evidence file is there exactly once, each file with the hash taken at capture;
6. under a fresh Xvfb, starts ``python -m mobile`` ``--cold-starts`` times with a
   new data folder each time and takes the wall-clock time from starting the
   process to the first frame on the window showing the sign-in screen (the
   app writes the time to ``FIELDCASE_READY_FILE``); the median counts.

``--write-docs`` replaces the "Field client sync" section of docs/performance.md.
Servers, the temporary folder and the database are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for folder in (ROOT, HERE, ROOT / "tests"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import upload as bench  # noqa: E402  (scripts/bench/upload.py: serving and cleaning up)

from backend.cases.models import Case, CaseEvent, Incident  # noqa: E402
from backend.evidence.models import Evidence  # noqa: E402
from mobile.services.outbox import OutboxItem  # noqa: E402
from mobile.services.sync import SyncEvent  # noqa: E402
from mobile.state import AppState  # noqa: E402

from support_faultproxy import NO_FAULTS, FaultProxy, FaultRates  # noqa: E402

DOCS = ROOT / "docs" / "performance.md"
SECTION = "## Field client sync (`scripts/bench/sync.py`)"
DRAIN_TARGET_OVERHEAD = 0.15
COLD_START_TARGET = 2.0
NOTICE = {
    "facts": "在夜市互殴",
    "reasons_and_basis": "治安管理处罚法第四十三条",
    "hearing_requested": "否",
}
EVIDENCE_PER_CASE = 2
ITEMS_PER_CASE = 3 + EVIDENCE_PER_CASE
STEPS = ("start_investigation", "notify")


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# The client


class Client:
    """The client core in ``folder``, as the app runs it, with a way to wait for it."""

    def __init__(self, folder: Path, server_url: str, backoff: tuple[float, float]) -> None:
        self._changed = threading.Condition()
        self.state = AppState.open(
            folder,
            on_event=self._event,
            server_url=server_url,
            backoff_base=backoff[0],
            backoff_max=backoff[1],
        )
        self.signed: list[SyncEvent] = []

    def _event(self, event: SyncEvent) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait(self, check: Any, timeout: float) -> bool:
        with self._changed:
            return bool(self._changed.wait_for(check, timeout))

    def sign_in(self, server_url: str) -> None:
        self.state.sign_in(server_url, bench.OFFICER, bench.PASSWORD, self.signed.append)
        if not self.wait(lambda: self.signed, 60) or self.signed[0].kind != "signed_in":
            raise RuntimeError(f"signing in failed: {self.signed}")

    def settled(self) -> bool:
        counts = self.state.outbox.counts()
        return counts["waiting"] + counts["sending"] + counts["uploading"] == 0

    def close(self) -> None:
        self.state.close()


def queue_items(state: AppState, cases: int, file_bytes: int, files: Path) -> list[OutboxItem]:
    """Per case: a report registered as a case, two steps and two evidence files."""
    items: list[OutboxItem] = []
    for number in range(cases):
        report = state.file_report(
            {
                "occurred_at": "2026-03-01T21:30:00+08:00",
                "place": f"人民路{number}号",
                "category": "治安",
                "summary": f"第{number}起：两人在夜市互殴。",
                "source": "patrol",
                "accept": {"case_type": "administrative", "title": f"夜市斗殴{number}"},
            }
        )
        case_id = report.payload["accept"]["case_id"]
        items.append(report)
        items.append(state.request_step(case_id, STEPS[0], {}, None, None))
        items.append(state.request_step(case_id, STEPS[1], NOTICE, "已告知", None))
        for copy in range(EVIDENCE_PER_CASE):
            source = files / f"record-{number}-{copy}.bin"
            source.write_bytes(os.urandom(file_bytes))
            items.append(
                state.capture_evidence(
                    case_id, source, "other", f"人民路{number}号", None, None, "执法记录仪数据"
                )
            )
            source.unlink()
    return items


@dataclass
class Drain:
    items: int
    payload_bytes: int
    seconds: float
    upstream_bytes: int
    downstream_bytes: int
    proxy: dict[str, int]
    not_done: list[str]
    queued: list[OutboxItem] = field(default_factory=list)
    database: dict[str, Any] = field(default_factory=dict)

    @property
    def overhead(self) -> float:
        return (self.upstream_bytes - self.payload_bytes) / self.payload_bytes

    @property
    def exact(self) -> bool:
        return not self.not_done and not self.database.get("problems")


def check_database(url: str, items: list[OutboxItem]) -> dict[str, Any]:
    """Every record once, every file with its hash: the problems found, and counts."""
    incidents = [uuid.UUID(i.payload["incident_id"]) for i in items if i.kind == "incident"]
    cases = [uuid.UUID(i.payload["accept"]["case_id"]) for i in items if i.kind == "incident"]
    evidence_items = [i for i in items if i.kind == "evidence"]
    expected = {uuid.UUID(i.payload["evidence_id"]): i.payload["sha256"] for i in evidence_items}
    problems: list[str] = []
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            found_incidents = conn.scalars(
                sa.select(Incident.id).where(Incident.id.in_(incidents))
            ).all()
            all_incidents = conn.scalar(sa.select(sa.func.count()).select_from(Incident))
            found_cases = conn.scalars(sa.select(Case.id).where(Case.id.in_(cases))).all()
            all_cases = conn.scalar(sa.select(sa.func.count()).select_from(Case))
            steps = conn.execute(
                sa.select(CaseEvent.case_id, CaseEvent.action, sa.func.count())
                .where(CaseEvent.case_id.in_(cases), CaseEvent.action.is_not(None))
                .group_by(CaseEvent.case_id, CaseEvent.action)
            ).all()
            stored = conn.execute(sa.select(Evidence.id, Evidence.sha256, Evidence.case_id)).all()
    finally:
        engine.dispose()
    # The database was made for the run: every row in it came from the outbox.
    if sorted(found_incidents) != sorted(incidents) or all_incidents != len(incidents):
        problems.append(f"incidents: {all_incidents} stored, {len(incidents)} queued")
    if sorted(found_cases) != sorted(cases) or all_cases != len(cases):
        problems.append(f"cases: {all_cases} stored, {len(cases)} queued")
    per_action: dict[str, int] = {}
    for _case, action, count in steps:
        per_action[action] = per_action.get(action, 0) + count
        if count != 1:
            problems.append(f"step {action} recorded {count} times in one case")
    for action in ("accept", *STEPS):
        if per_action.get(action) != len(cases):
            problems.append(f"{action}: {per_action.get(action, 0)} of {len(cases)}")
    recorded = {row[0]: row[1] for row in stored}
    if len(stored) != len(expected) or recorded != expected:
        problems.append(f"evidence: {len(stored)} stored, {len(expected)} queued or hash differs")
    return {
        "problems": problems,
        "incidents": all_incidents,
        "cases": all_cases,
        "steps": per_action,
        "evidence": len(stored),
    }


def start_gunicorn(
    env: dict[str, str], workers: int, threads: int, folder: Path
) -> tuple[bench.Process, int]:
    """Fieldcase served by gunicorn (the product's config, access log off); its port."""
    conf = folder / "gunicorn_bench_conf.py"
    conf.write_text(
        "from backend.gunicorn_conf import *  # noqa: F403\naccesslog = None\nerrorlog = '-'\n"
    )
    port = bench.free_port()
    server = bench.Process(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", str(conf), "backend:create_app()"],
        ROOT,
        {
            **env,
            "FIELDCASE_BIND": f"127.0.0.1:{port}",
            "FIELDCASE_WORKERS": str(workers),
            "FIELDCASE_THREADS": str(threads),
        },
        folder / "gunicorn.log",
    )
    try:
        bench.wait_http(
            port,
            "GET",
            "/readyz",
            lambda status: status == 200 and len(bench.process_tree(server.pid)) > workers,
            server.alive,
        )
    except BaseException:
        server.stop()
        raise
    return server, port


def run_drain(args: argparse.Namespace, folder: Path) -> Drain:
    size = args.cases * EVIDENCE_PER_CASE * args.file_bytes
    with bench.database(args.database, args.server_url, args.db_name, folder) as url:
        env = bench.fieldcase_env(url, folder, size)
        bench.flask(env, "db", "upgrade")
        bench.create_officer(env)
        server, port = start_gunicorn(env, args.workers, args.threads, folder)
        try:
            with FaultProxy(port, seed=args.seed) as proxy:
                drain = _drain(args, folder, proxy)
            drain.database = check_database(url, drain.queued)
        finally:
            server.stop()
    return drain


def _drain(args: argparse.Namespace, folder: Path, proxy: FaultProxy) -> Drain:
    client = Client(folder / "phone", proxy.url, (args.backoff_base, args.backoff_max))
    try:
        client.state.start()
        client.sign_in(proxy.url)
        client.state.worker.stop()
        files = folder / "captured"
        files.mkdir()
        log(f"queueing {args.cases * ITEMS_PER_CASE} items")
        items = queue_items(client.state, args.cases, args.file_bytes, files)
        payload = sum(i.payload["size"] for i in items if i.kind == "evidence")
        quarter = args.failure / 4
        proxy.rates = FaultRates(
            reset=quarter,
            drop=quarter,
            cut_request=quarter,
            cut_answer=quarter,
            cut_max=max(args.file_bytes, 64 * 1024),
        )
        before = dict(proxy.stats)
        log(f"draining {len(items)} items ({payload / 1e6:.0f} MB of evidence)")
        began = time.monotonic()
        client.state.start()
        if not client.wait(client.settled, args.timeout):
            raise RuntimeError("the outbox did not drain in time")
        seconds = time.monotonic() - began
        proxy.rates = NO_FAULTS
        stats = {k: v - before.get(k, 0) for k, v in proxy.stats.items()}
        settled = client.state.outbox.all()
    finally:
        client.close()
    return Drain(
        items=len(items),
        payload_bytes=payload,
        seconds=seconds,
        upstream_bytes=stats.get("bytes_up", 0),
        downstream_bytes=stats.get("bytes_down", 0),
        proxy=stats,
        not_done=[f"{i.kind}: {i.state} {i.error}" for i in settled if i.state != "done"],
        queued=items,
    )


# Cold start


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A fresh Xvfb on a free display number."""
    executable = shutil.which("Xvfb")
    if executable is None:
        raise RuntimeError("Xvfb is not installed (Debian/Ubuntu: apt-get install xvfb)")
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    process = subprocess.Popen(
        [executable, f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.05)
        yield f":{number}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def cold_start(display: str, folder: Path, run: int) -> float:
    """Seconds from starting ``python -m mobile`` to the sign-in screen on the window."""
    data = folder / f"cold-{run}"
    marker = folder / f"cold-{run}.ready"
    env = {
        **os.environ,
        "DISPLAY": display,
        "FIELDCASE_READY_FILE": str(marker),
        "KIVY_NO_CONSOLELOG": "1",
        "KIVY_HOME": str(folder / "kivy-home"),
    }
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "mobile", "--data-dir", str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() or not marker.read_text().endswith("\n"):
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"the client exited: {error[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the client did not show a screen within 60 s")
            time.sleep(0.01)
        shown_at, screen = marker.read_text().split()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if screen != "signin":
        raise RuntimeError(f"the client showed {screen!r}, not the sign-in screen")
    return float(shown_at) - started


def run_cold_starts(count: int, folder: Path) -> list[float]:
    times = []
    with xvfb() as display:
        # Kivy writes its config on the very first run of a machine: not part of a start.
        cold_start(display, folder, -1)
        for run in range(count):
            times.append(cold_start(display, folder, run))
            log(f"cold start {run + 1}: {times[-1]:.2f} s")
    return times


# Report


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render(args: argparse.Namespace, drain: Drain | None, starts: list[float]) -> str:
    info = bench.machine()
    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {info['cpus']} × {info['cpu']}, "
        f"{info['memory']} RAM, Linux {info['kernel']}, Python {info['python']}, "
        f"{bench.database_version(args.database, args.server_url)}, gunicorn "
        f"{info['gunicorn']} ({args.workers} workers × {args.threads} threads); "
        f"code {bench.git_commit()}. Other work shared the machine during the run "
        "(two cores, other sessions' tests): the times are upper bounds.",
        "",
        "```",
        "$ .venv/bin/python scripts/bench/sync.py " + " ".join(args.argv),
        "```",
        "",
    ]
    if drain is not None:
        proxy = drain.proxy
        faults = sum(proxy.get(k, 0) for k in ("reset", "drop", "cut_request", "cut_answer"))
        found = drain.not_done + drain.database["problems"]
        problems = "none" if drain.exact else "; ".join(found[:3]) + f" ({len(found)} in all)"
        lines += [
            f"Outbox drain through the fault proxy at {args.failure:.0%} connection failure "
            f"(reset, dropped, request cut, answer cut: a quarter each), the client core "
            f"with the app's retry timing (back-off {args.backoff_base:g} s to "
            f"{args.backoff_max:g} s):",
            "",
            "| Figure | Value | Target |",
            "|---|---|---|",
            f"| Items queued | {drain.items} ({args.cases} cases × report, 2 steps, "
            f"{EVIDENCE_PER_CASE} evidence files) | 500 |",
            f"| Evidence payload | {drain.payload_bytes / 1e6:.1f} MB | 200 MB |",
            f"| Time to drain | {drain.seconds:.1f} s | — |",
            f"| Bytes sent upstream | {drain.upstream_bytes / 1e6:.1f} MB | — |",
            f"| Overhead beyond the payload | {drain.overhead:.1%} | ≤ 15 % "
            f"({met(drain.overhead <= DRAIN_TARGET_OVERHEAD)}) |",
            f"| Lost / duplicated | {problems} | none ({met(drain.exact)}) |",
            "",
            f"Connections: {proxy.get('connections', 0)}, of which {faults} failed "
            f"({proxy.get('reset', 0)} reset, {proxy.get('drop', 0)} dropped, "
            f"{proxy.get('cut_request', 0)} request cuts, {proxy.get('cut_answer', 0)} "
            f"answer cuts). The overhead counts every byte the proxy forwarded to the server "
            "(request lines, headers, JSON bodies, the cache refreshes after deliveries, "
            "and every re-sent byte) beyond the evidence files themselves. The database "
            f"held {drain.database['incidents']} incidents, {drain.database['cases']} cases, "
            f"each step once per case and {drain.database['evidence']} evidence files with "
            "the hashes taken at capture.",
            "",
        ]
    if starts:
        median = statistics.median(starts)
        runs = ", ".join(f"{value:.2f}" for value in starts)
        lines += [
            f"Cold start of `python -m mobile` to the sign-in screen under Xvfb (a new data "
            f"folder each run; from starting the process to the first frame shown): median "
            f"of {len(starts)} runs **{median:.2f} s** (runs: {runs} s); target ≤ 2 s "
            f"({met(median <= COLD_START_TARGET)}).",
            "",
        ]
    return "\n".join(wrap(line) for line in lines)


def wrap(line: str, width: int = 80) -> str:
    """Prose wrapped like the rest of docs/performance.md; tables and code as they are."""
    if line.startswith(("|", "```", "$", "#")) or len(line) <= width:
        return line
    return textwrap.fill(line, width, break_on_hyphens=False, break_long_words=False)


def write_docs(body: str) -> None:
    """Replace this section of docs/performance.md (or add it at the end)."""
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        text = text.rstrip() + "\n\n" + body.rstrip() + "\n"
    else:
        end = text.find("\n## ", start + len(SECTION))
        rest = text[end + 1 :] if end >= 0 else ""
        text = text[:start] + body.rstrip() + "\n" + ("\n" + rest if rest else "")
    DOCS.write_text(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--cases", type=int, default=100, help="cases: 5 items each")
    parser.add_argument(
        "--file-bytes", type=int, default=1_000_000, help="bytes per evidence file (2 per case)"
    )
    parser.add_argument("--failure", type=float, default=0.10, help="share of failed connections")
    parser.add_argument("--seed", type=int, default=20261126, help="the proxy's RNG seed")
    parser.add_argument("--backoff-base", type=float, default=1.0, help="the app's default")
    parser.add_argument("--backoff-max", type=float, default=60.0, help="the app's default")
    parser.add_argument("--timeout", type=float, default=3600, help="give up draining after")
    parser.add_argument("--cold-starts", type=int, default=5, help="0: skip")
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--server-url", default=bench.SERVER_URL, help="PostgreSQL maintenance")
    parser.add_argument("--db-name", default="fieldcase_bench_sync", help="database to create")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.cases < 1 or args.file_bytes < 1 or not 0 <= args.failure < 1:
        parser.error("--cases and --file-bytes must be at least 1, --failure in [0, 1)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="fieldcase-bench-sync-"))
    try:
        drain = None if args.skip_drain else run_drain(args, folder)
        starts = run_cold_starts(args.cold_starts, folder) if args.cold_starts else []
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = render(args, drain, starts)
    print(report)
    if args.write_docs:
        write_docs(report)
        log(f"wrote {DOCS.relative_to(ROOT)}")
    ok = drain is None or (drain.exact and drain.overhead <= DRAIN_TARGET_OVERHEAD)
    return 0 if ok and (not starts or statistics.median(starts) <= COLD_START_TARGET) else 1


if __name__ == "__main__":
    sys.exit(main())
