#!/usr/bin/env python3
"""Upload benchmark: one big tus upload to Fieldcase and to the official Node.js tus server.

Run from the repository root::

    .venv/bin/python scripts/bench/upload.py --size-mib 64 --rounds 1   # a quick look
    .venv/bin/python scripts/bench/upload.py --write-docs               # 1 GiB x 3 rounds

What it does, in one run:

1. makes a temporary folder and installs ``@tus/server`` and ``@tus/file-store``
   there with npm (major versions pinned below), writes a small ``server.mjs``
   (a ``FileStore`` in the temporary folder) and starts it with node on a free
   loopback port;
2. makes a database for the run (PostgreSQL ``fieldcase_bench_upload`` by
   default, or an SQLite file), migrates it (``flask db upgrade``), makes a
   unit and an officer with the product's CLI (``create-root-unit``,
   ``create-user``) and serves Fieldcase with gunicorn (``backend.gunicorn_conf``,
   access log off, ``--workers`` x ``--threads``); the officer signs in and opens
   a case through the API (an incident, accepted);
3. writes a file of random bytes (``--size-mib``) and computes its SHA-256;
4. sends a small warm-up upload to each server, then, per round, uploads the
   file to both servers with ``tuspy`` (``--chunk-mib`` per PATCH), in
   alternating order, each after waiting (up to ``--wait-quiet`` seconds) for
   other work on the machine to stop. While an upload runs, the resident memory
   (RSS) of the server's process tree (gunicorn master and workers; node) is
   sampled every 50 ms; growth = peak - median of the samples in the second
   before the upload. The CPU time of the server, of its PostgreSQL sessions and
   of this process (the client) is measured too. The SHA-256 Fieldcase recorded
   while receiving (``uploads.sha256``) must equal the file's; every upload is
   removed again (tus termination) before the next one;
5. prints the figures per round, the medians over the rounds, the ratio
   Fieldcase / Node and whether the targets are met; ``--write-docs`` records
   them in docs/performance.md under "Resumable uploads (tus)".

Throughput is bytes of the file over the wall-clock time of the whole upload
(creation ``POST`` to the last ``PATCH``'s response), in MiB/s (1 MiB = 1,048,576
bytes) and MB/s (10^6 bytes). Servers, the temporary folder and the database are
removed at the end, also on errors (``--keep-temp`` keeps the folder).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import api as api_bench  # scripts/bench/api.py: the machine-load helpers
import psycopg
import requests
from psycopg import sql
from tusclient import client as tus

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "performance.md"
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
API = "/api/v1"
UPLOADS = f"{API}/uploads"
UNIT_CODE = "UB"
OFFICER = "ub.officer"
PASSWORD = "bench-password-2026"
NODE_PACKAGES = {"@tus/server": "^2", "@tus/file-store": "^2"}
NODE_PATH = "/files"
MIB = 1024 * 1024
SAMPLE_SECONDS = 0.05
BASELINE_SECONDS = 1.0
RATIO_TARGET = 1.0
MEMORY_TARGET_MIB = 64.0
SECTION = "Resumable uploads (tus)"
MARK_START = "<!-- bench-upload:start -->"
MARK_END = "<!-- bench-upload:end -->"

NODE_SERVER = """\
import { Server } from "@tus/server";
import { FileStore } from "@tus/file-store";

const [host, port, directory] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const server = new Server({ path: "@PATH@", datastore: new FileStore({ directory }) });
server.listen({ host, port }, () => console.log(`listening on ${host}:${port}`));
""".replace("@PATH@", NODE_PATH)

_started = time.monotonic()
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------
# Process trees: memory and CPU from /proc


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (threads are not processes)."""
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        with contextlib.suppress(OSError):
            for task in os.scandir(f"/proc/{pid}/task"):
                stack += [int(c) for c in Path(task.path, "children").read_text().split()]
    return pids


def rss_bytes(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    return total


def cpu_by_pid(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU of each process (all its threads), in seconds."""
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return seconds


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of the processes (all their threads), in seconds."""
    return sum(cpu_by_pid(pids).values())


def cpu_since(before: dict[int, float], pids: Sequence[int]) -> float:
    """CPU used since ``before`` by the processes ``pids`` (new ones count from 0).

    The database sessions change during an upload when the connection pool
    replaces a connection (``pool_recycle``); a session that ended meanwhile
    is not counted after ``before``.
    """
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in cpu_by_pid(pids).items())


class MemorySampler:
    """Samples the RSS of a process tree every ``SAMPLE_SECONDS`` in a thread."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids, refreshed = process_tree(self.root), time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now - refreshed > 0.5:  # gunicorn may replace a worker
                pids, refreshed = process_tree(self.root), now
            self.samples.append((now, rss_bytes(pids)))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> list[int]:
        return [rss for at, rss in self.samples if start <= at <= end]


# --------------------------------------------------------------------------
# The servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    port: int, method: str, path: str, ok: Callable[[int], bool], alive: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server on port {port} exited")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request(method, path, headers={"Tus-Resumable": "1.0.0"})
            status = conn.getresponse().status
            conn.close()
            if ok(status):
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not answer {method} {path} within 60 s")


class Process:
    """A server started in its own session, output to a log file, stopped with SIGTERM."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def install_node_server(folder: Path) -> dict[str, str]:
    """npm-install the official tus server into ``folder``; the installed versions."""
    (folder / "package.json").write_text(
        json.dumps({"private": True, "type": "module", "dependencies": NODE_PACKAGES}, indent=2)
    )
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"npm install failed:\n{done.stdout}\n{done.stderr}")
    (folder / "server.mjs").write_text(NODE_SERVER)
    return {
        name: json.loads((folder / "node_modules" / name / "package.json").read_text())["version"]
        for name in NODE_PACKAGES
    }


def start_node_server(folder: Path, servers: list[Process]) -> str:
    """Start the node server (added to ``servers`` at once, for the clean-up); its URL."""
    store = folder / "store"
    store.mkdir()
    port = free_port()
    server = Process(
        ["node", "server.mjs", "127.0.0.1", str(port), str(store)],
        folder,
        dict(os.environ),
        folder / "node.log",
    )
    servers.append(server)
    wait_http(port, "OPTIONS", NODE_PATH, lambda s: s in (200, 204), server.alive)
    return f"http://127.0.0.1:{port}{NODE_PATH}"


@contextlib.contextmanager
def database(kind: str, server_url: str, name: str, folder: Path) -> Iterator[str]:
    """A database made for the run: an SQLite file, or a PostgreSQL database dropped at the end."""
    if kind == "sqlite":
        yield "sqlite:///" + str(folder / "fieldcase.db")
        return
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server_url.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(drop)
        log(f"dropped database {name}")


def database_sessions(kind: str, server_url: str, name: str) -> Callable[[], list[int]]:
    """The PostgreSQL backend processes serving database ``name`` (none for SQLite)."""
    if kind == "sqlite":
        return list

    def pids() -> list[int]:
        with psycopg.connect(server_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchall()
        return [int(row[0]) for row in rows]

    return pids


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


def fieldcase_env(url: str, folder: Path, size: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "FIELDCASE_DATABASE_URL": url,
            "FIELDCASE_JWT_PRIVATE_KEY": signing_key(),
            "FIELDCASE_UPLOAD_DIR": str(folder / "uploads"),
            "FIELDCASE_EVIDENCE_DIR": str(folder / "evidence"),
            "FIELDCASE_UPLOAD_MAX_BYTES": str(max(size, 8 * 1024 * MIB)),
            "FIELDCASE_CASE_EVIDENCE_MAX_BYTES": str(max(4 * size, 64 * 1024 * MIB)),
        }
    )
    return env


def flask(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    command = [sys.executable, "-m", "flask", "--app", "backend", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def create_officer(env: dict[str, str]) -> None:
    """A unit and one officer in it, made with the product's CLI (password on stdin)."""
    flask(env, "create-root-unit", "--code", UNIT_CODE, "--name", "上传基准测试局")
    flask(
        env,
        "create-user",
        "--username",
        OFFICER,
        "--display-name",
        "基准民警",
        "--unit-code",
        UNIT_CODE,
        "--role",
        "officer",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )


def start_fieldcase(
    env: dict[str, str], workers: int, threads: int, folder: Path, servers: list[Process]
) -> int:
    """Start gunicorn (added to ``servers`` at once, for the clean-up); its port."""
    conf = folder / "gunicorn_bench_conf.py"
    conf.write_text(
        "from backend.gunicorn_conf import *  # noqa: F403\naccesslog = None\nerrorlog = '-'\n"
    )
    port = free_port()
    env = {
        **env,
        "FIELDCASE_BIND": f"127.0.0.1:{port}",
        "FIELDCASE_WORKERS": str(workers),
        "FIELDCASE_THREADS": str(threads),
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = Process(
        [str(gunicorn), "-c", str(conf), "backend:create_app()"],
        ROOT,
        env,
        folder / "gunicorn.log",
    )
    servers.append(server)

    def ready(status: int) -> bool:
        return status == 200 and len(process_tree(server.pid)) > workers

    wait_http(port, "GET", "/readyz", ready, server.alive)
    return port


def bearer(port: int) -> dict[str, str]:
    """A fresh access token for the officer, as headers.

    Access tokens live at most 15 minutes, and a run that waits for a quiet
    machine can take longer: each upload to Fieldcase signs in again.
    """
    return {"Authorization": f"Bearer {sign_in(port, open_case=False)[0]}"}


def sign_in(port: int, *, open_case: bool = True) -> tuple[str, str]:
    """An access token for the officer, and an open case made through the API."""
    base = f"http://127.0.0.1:{port}{API}"

    def call(path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.post(base + path, json=body, headers=headers, timeout=30)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
        return dict(response.json())

    token = str(call("/auth/login", {"username": OFFICER, "password": PASSWORD})["access_token"])
    if not open_case:
        return token, ""
    incident = call(
        "/incidents",
        {
            "occurred_at": datetime.now(UTC).isoformat(),
            "place": "基准市人民路1号",
            "category": "盗窃",
            "summary": "上传基准测试：执法记录仪视频。",
        },
        token,
    )
    case = call(
        f"/incidents/{incident['id']}/accept",
        {"case_type": "administrative", "title": "上传基准测试"},
        token,
    )
    return token, str(case["id"])


# --------------------------------------------------------------------------
# Uploads


@dataclass
class Target:
    name: str
    url: str  # the creation URL
    pid: int  # root of the server's process tree
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    recorded_sha256: Callable[[str], str] | None = None
    database_pids: Callable[[], list[int]] = list  # the server's database sessions, if any


@dataclass
class Result:
    server: str
    size: int
    seconds: float
    baseline: int  # bytes of RSS
    peak: int
    after: int
    cpu: float  # seconds of server CPU during the upload
    database_cpu: float  # seconds of CPU of the server's database sessions
    client_cpu: float  # seconds of CPU of this script (tuspy, the memory sampler)
    other: float  # cores busy with none of these, on average

    @property
    def mib_s(self) -> float:
        return self.size / MIB / self.seconds

    @property
    def mb_s(self) -> float:
        return self.size / 1e6 / self.seconds

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / MIB


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, 8 * MIB))
            digest.update(block)
            handle.write(block)
            left -= len(block)
    return digest.hexdigest()


def upload(target: Target, path: Path, sha256: str, chunk: int) -> Result:
    """One tus upload, measured; the upload is verified and then removed from the server."""
    size = path.stat().st_size
    client = tus.TusClient(target.url, headers=target.headers)
    os.sync()  # the previous upload's dirty pages should not be flushed during this one
    with MemorySampler(target.pid) as sampler:
        time.sleep(BASELINE_SECONDS)
        pids, sessions = process_tree(target.pid), target.database_pids
        cpu0, db0 = cpu_seconds(pids), cpu_by_pid(sessions())
        busy0, own0 = api_bench.machine_busy(), time.process_time()
        began = time.monotonic()
        uploader = client.uploader(
            file_path=str(path), chunk_size=chunk, metadata=target.metadata, retries=0
        )
        uploader.upload()
        ended = time.monotonic()
        busy1, own1 = api_bench.machine_busy(), time.process_time()
        cpu1, database_cpu = cpu_seconds(process_tree(target.pid)), cpu_since(db0, sessions())
        time.sleep(2 * SAMPLE_SECONDS)
    seconds = ended - began
    before = sampler.between(began - BASELINE_SECONDS, began)
    during = sampler.between(began, ended + 2 * SAMPLE_SECONDS)
    if not before or not during:
        raise RuntimeError("no memory samples")
    url = str(uploader.url)
    check(target, url, size, sha256)
    server_cpu, client_cpu = cpu1 - cpu0, own1 - own0
    return Result(
        server=target.name,
        size=size,
        seconds=seconds,
        baseline=int(statistics.median(before)),
        peak=max(during),
        after=during[-1],
        cpu=server_cpu,
        database_cpu=database_cpu,
        client_cpu=client_cpu,
        other=max(0.0, busy1 - busy0 - server_cpu - database_cpu - client_cpu) / seconds,
    )


def check(target: Target, url: str, size: int, sha256: str) -> None:
    """The server has all bytes (and Fieldcase the right SHA-256); then remove the upload."""
    headers = {**target.headers, "Tus-Resumable": "1.0.0"}
    response = requests.head(url, headers=headers, timeout=30)
    offset = response.headers.get("Upload-Offset")
    if response.status_code != 200 or offset != str(size):
        raise RuntimeError(f"{target.name}: HEAD {response.status_code}, Upload-Offset {offset}")
    if target.recorded_sha256 is not None:
        recorded = target.recorded_sha256(url)
        if recorded != sha256:
            raise RuntimeError(f"{target.name} recorded SHA-256 {recorded}, the file has {sha256}")
    response = requests.delete(url, headers=headers, timeout=30)
    if response.status_code != 204:
        raise RuntimeError(f"{target.name}: DELETE {response.status_code} {response.text[:200]}")


def fieldcase_sha256(url: str) -> Callable[[str], str]:
    """Reads the SHA-256 Fieldcase recorded for an upload (by its URL) from the database."""
    import sqlalchemy as sa

    from backend.config import normalise_database_url
    from backend.uploads.models import Upload

    engine = sa.create_engine(normalise_database_url(url), poolclass=sa.NullPool)

    def recorded(upload_url: str) -> str:
        upload_id = uuid.UUID(upload_url.rstrip("/").rsplit("/", 1)[-1])
        with engine.connect() as conn:
            value = conn.scalar(sa.select(Upload.sha256).where(Upload.id == upload_id))
        return str(value)

    return recorded


# --------------------------------------------------------------------------
# Reporting


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
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        "tuspy": metadata.version("tuspy"),
        "gunicorn": metadata.version("gunicorn"),
    }


def database_version(kind: str, server_url: str) -> str:
    if kind == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with psycopg.connect(server_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


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


@dataclass
class Summary:
    fieldcase: float  # median MiB/s
    node: float
    fieldcase_growth: float  # median MiB
    node_growth: float
    fieldcase_growth_max: float
    node_growth_max: float

    @property
    def ratio(self) -> float:
        return self.fieldcase / self.node

    @property
    def ratio_met(self) -> bool:
        return self.ratio >= RATIO_TARGET

    @property
    def memory_met(self) -> bool:
        return self.fieldcase_growth_max <= MEMORY_TARGET_MIB


def summarise(rounds: list[dict[str, Result]]) -> Summary:
    def med(server: str, value: Callable[[Result], float]) -> float:
        return statistics.median(value(r[server]) for r in rounds)

    return Summary(
        fieldcase=med("fieldcase", lambda r: r.mib_s),
        node=med("node", lambda r: r.mib_s),
        fieldcase_growth=med("fieldcase", lambda r: r.growth_mib),
        node_growth=med("node", lambda r: r.growth_mib),
        fieldcase_growth_max=max(r["fieldcase"].growth_mib for r in rounds),
        node_growth_max=max(r["node"].growth_mib for r in rounds),
    )


def met(ok: bool) -> str:
    return "met" if ok else "missed"


def result_line(r: Result) -> str:
    return (
        f"{r.server}: {r.mib_s:.1f} MiB/s ({r.mb_s:.1f} MB/s) in {r.seconds:.1f} s; "
        f"RSS {r.baseline / MIB:.1f} -> peak {r.peak / MIB:.1f} MiB "
        f"(growth {r.growth_mib:.1f} MiB); CPU s: server {r.cpu:.2f}, database "
        f"{r.database_cpu:.2f}, client {r.client_cpu:.2f}; other load {r.other:.2f} cores"
    )


def print_summary(s: Summary) -> None:
    print()
    print(f"Medians over the rounds (1 MiB = {MIB:,} bytes):")
    print(f"  Fieldcase  {s.fieldcase:7.1f} MiB/s  ({s.fieldcase * MIB / 1e6:.1f} MB/s)")
    print(f"  Node       {s.node:7.1f} MiB/s  ({s.node * MIB / 1e6:.1f} MB/s)")
    print(f"  ratio Fieldcase/Node {s.ratio:.2f} (target >= {RATIO_TARGET:.1f}): ", end="")
    print(met(s.ratio_met))
    print(
        f"  server memory growth: Fieldcase {s.fieldcase_growth:.1f} MiB (largest "
        f"{s.fieldcase_growth_max:.1f}; target <= {MEMORY_TARGET_MIB:.0f}): "
        f"{met(s.memory_met)}; Node {s.node_growth:.1f} MiB (largest {s.node_growth_max:.1f})"
    )


def render(ctx: dict[str, Any], rounds: list[dict[str, Result]], s: Summary) -> str:
    m = ctx["machine"]
    args = ctx["args"]
    size = rounds[0]["fieldcase"].size
    lines = [
        f"## {SECTION}",
        "",
        "`scripts/bench/upload.py` uploads one file of random bytes with the Python tus "
        f"client `tuspy` ({args.chunk_mib} MiB per `PATCH`, a new connection per request as "
        "tuspy makes them) to Fieldcase served by gunicorn and, in the same run, to the "
        "official Node.js tus server (`@tus/server` with `@tus/file-store`, installed by the "
        "script with npm into a temporary folder) on the same machine, alternating which "
        "server goes first. Fieldcase computes the whole-file SHA-256 while the bytes arrive; "
        "the script checks it against the file's. Both servers write to the same file system. "
        "A small warm-up upload goes to each server first, so one-time start-up costs "
        "(imports, first requests) are not counted.",
        "",
        "Throughput is the file's size over the wall-clock time of the whole upload "
        "(creation `POST` to the last `PATCH` response); MiB/s uses 1 MiB = 1,048,576 bytes "
        "and MB/s 10^6 bytes. Memory growth is the peak resident memory (RSS, sampled every "
        "50 ms) of the server's process tree (gunicorn master and workers; node) during the "
        "upload minus the median in the second before it. CPU columns are seconds of CPU "
        "during the upload: the server's process tree, its PostgreSQL sessions, and the "
        "benchmark process (tuspy and the sampler). *Other load* is the CPU, in cores on "
        "average, used by all other processes: the machine is shared, so before each upload "
        f"the script waits up to {ctx['args'].wait_quiet:.0f} s for other work to stop.",
        "",
        f"**Run of {ctx['when']}** (commit {ctx['commit']}):",
        "",
        "```",
        ctx["command"],
        "```",
        "",
        f"- Machine: {m['cpus']} cores ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}.",
        f"- Fieldcase: Python {m['python']}, gunicorn {m['gunicorn']} with "
        f"`backend/gunicorn_conf.py`, {ctx['worker_text']}; {ctx['database']}.",
        f"- Node.js {m['node']}: "
        + ", ".join(f"`{k}` {v}" for k, v in ctx["node_packages"].items())
        + ".",
        f"- Client: tuspy {m['tuspy']}; file {size / MIB:,.0f} MiB "
        f"({size:,} bytes), {args.chunk_mib} MiB chunks, {len(rounds)} rounds.",
        "",
        "| Round | Server | MiB/s | MB/s | Seconds | RSS before (MiB) | Peak growth (MiB) "
        "| Server CPU (s) | Database CPU (s) | Client CPU (s) | Other load (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, results in enumerate(rounds, start=1):
        for r in results.values():
            lines.append(
                f"| {index} | {r.server} | {r.mib_s:.1f} | {r.mb_s:.1f} | {r.seconds:.1f} "
                f"| {r.baseline / MIB:.1f} | {r.growth_mib:.1f} | {r.cpu:.2f} "
                f"| {r.database_cpu:.2f} | {r.client_cpu:.2f} | {r.other:.2f} |"
            )
    lines += [
        "",
        "Medians over the rounds:",
        "",
        "| | Fieldcase | Node `@tus/server` | Target | |",
        "|---|---|---|---|---|",
        f"| Throughput (MiB/s) | {s.fieldcase:.1f} | {s.node:.1f} | | |",
        f"| Throughput (MB/s) | {s.fieldcase * MIB / 1e6:.1f} | {s.node * MIB / 1e6:.1f} | | |",
        f"| Ratio Fieldcase / Node | {s.ratio:.2f} | | ≥ {RATIO_TARGET:.1f} "
        f"| **{met(s.ratio_met)}** |",
        f"| Server memory growth (MiB) | {s.fieldcase_growth:.1f} (largest "
        f"{s.fieldcase_growth_max:.1f}) | {s.node_growth:.1f} (largest {s.node_growth_max:.1f}) "
        f"| ≤ {MEMORY_TARGET_MIB:.0f} "
        f"(Fieldcase) | **{met(s.memory_met)}** |",
    ]
    return "\n".join(_wrap(line) for line in lines) + "\n"


def _wrap(line: str, width: int = 80) -> str:
    """Prose lines wrapped like the rest of docs/performance.md; tables and code as they are."""
    if line.startswith(("|", "```", "$")) or len(line) <= width:
        return line
    indent = "  " if line.startswith("- ") else ""
    return textwrap.fill(line, width, subsequent_indent=indent, break_on_hyphens=False)


def write_docs(body: str) -> None:
    """Replace this script's block in docs/performance.md (or add it at the end).

    Text after the block's end marker (findings written by hand) is kept.
    """
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    block = f"{MARK_START}\n{body.rstrip()}\n{MARK_END}"
    marked = re.compile(re.escape(MARK_START) + r".*?" + re.escape(MARK_END), re.S)
    heading = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if marked.search(text):
        text = marked.sub(lambda _m: block, text)
    elif heading.search(text):
        text = heading.sub(lambda _m: block + "\n\n", text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(text.rstrip() + "\n")


# --------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the file to upload")
    parser.add_argument("--rounds", type=int, default=3, help="uploads to each server")
    parser.add_argument("--chunk-mib", type=int, default=8, help="MiB per PATCH (tuspy)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument(
        "--database", choices=("postgres", "sqlite"), default="postgres", help="Fieldcase's DB"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60,
        help="before each upload, wait up to this many seconds for other work to stop (0: don't)",
    )
    parser.add_argument("--server-url", default=SERVER_URL, help="PostgreSQL maintenance URL")
    parser.add_argument("--db-name", default="fieldcase_bench_upload", help="database to create")
    parser.add_argument(
        "--tmp",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where to make the temp folder",
    )
    parser.add_argument("--keep-temp", action="store_true", help="keep the temporary folder")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.rounds < 1 or args.chunk_mib < 1 or args.workers < 1:
        parser.error("--size-mib, --rounds, --chunk-mib and --workers must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    command = "$ .venv/bin/python scripts/bench/upload.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    size, chunk = args.size_mib * MIB, args.chunk_mib * MIB
    folder = Path(tempfile.mkdtemp(prefix="fieldcase-bench-upload-", dir=args.tmp))
    servers: list[Process] = []
    log(f"temporary folder {folder}")
    try:
        with database(args.database, args.server_url, args.db_name, folder) as url:
            return run(args, command, folder, url, size, chunk, servers)
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            if "Traceback" in server.log_path.read_text(errors="replace"):
                log(f"{server.log_path.name} has errors:\n{server.log_path.read_text()[-3000:]}")
        if args.keep_temp:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def run(
    args: argparse.Namespace,
    command: str,
    folder: Path,
    url: str,
    size: int,
    chunk: int,
    servers: list[Process],
) -> int:
    node_dir = folder / "node"
    node_dir.mkdir()
    log("installing " + ", ".join(f"{k}@{v}" for k, v in NODE_PACKAGES.items()) + " with npm")
    node_packages = install_node_server(node_dir)
    node_url = start_node_server(node_dir, servers)
    node = servers[-1]
    log(f"node tus server (pid {node.pid}) at {node_url}: {node_packages}")

    env = fieldcase_env(url, folder, size)
    log(f"migrating the {args.database} database; a unit and an officer (flask CLI)")
    flask(env, "db", "upgrade")
    create_officer(env)
    port = start_fieldcase(env, args.workers, args.threads, folder, servers)
    fieldcase = servers[-1]
    kind = "gthread" if args.threads > 1 else "sync"
    worker_text = f"{args.workers} {kind} worker" + ("s" if args.workers > 1 else "")
    if args.threads > 1:
        worker_text += f" with {args.threads} threads" + (" each" if args.workers > 1 else "")
    log(f"gunicorn (pid {fieldcase.pid}) on port {port}: {worker_text}")
    token, case_id = sign_in(port)
    headers = {"Authorization": f"Bearer {token}"}
    targets = {
        "fieldcase": Target(
            "fieldcase",
            f"http://127.0.0.1:{port}{UPLOADS}",
            fieldcase.pid,
            headers,
            {"case_id": case_id, "filename": "bench.bin", "filetype": "application/octet-stream"},
            fieldcase_sha256(url),
            database_sessions(args.database, args.server_url, args.db_name),
        ),
        "node": Target("node", node_url, node.pid, {}, {"filename": "bench.bin"}),
    }

    source = folder / "bench.bin"
    log(f"writing {args.size_mib} MiB of random bytes")
    sha256 = make_file(source, size)
    warm = folder / "warm-up.bin"
    warm_sha256 = make_file(warm, min(size, 2 * chunk + MIB))
    for target in targets.values():
        upload(target, warm, warm_sha256, chunk)
    log(f"file SHA-256 {sha256}; warm-up uploads done")

    rounds: list[dict[str, Result]] = []
    order = list(targets)
    for number in range(1, args.rounds + 1):
        results: dict[str, Result] = {}
        for name in order:
            if args.wait_quiet:
                load = api_bench.wait_for_quiet(args.wait_quiet)
                log(f"round {number}, {name}: other work on the machine {load:.2f} cores")
            if name == "fieldcase":
                targets[name].headers = bearer(port)
            results[name] = upload(targets[name], source, sha256, chunk)
            log(f"round {number}: {result_line(results[name])}")
        rounds.append(results)
        order.reverse()

    summary = summarise(rounds)
    print_summary(summary)
    if args.json:
        args.json.write_text(
            json.dumps(
                [{k: {**vars(r), "mib_s": r.mib_s} for k, r in x.items()} for x in rounds],
                indent=2,
            )
        )
    if args.write_docs:
        ctx = {
            "args": args,
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(),
            "command": command,
            "machine": machine(),
            "node_packages": node_packages,
            "worker_text": worker_text,
            "database": database_version(args.database, args.server_url),
        }
        write_docs(render(ctx, rounds, summary))
        log(f"wrote {DOCS}")
    return 0


def _interrupted(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
