"""The README's curl walk-through, run as written against a real gunicorn server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```", readme, re.S)
    assert section, "the README has no walk-through block"
    return section.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_server(fresh_database, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "FIELDCASE_DATABASE_URL": fresh_database,
        "FIELDCASE_JWT_PRIVATE_KEY_FILE": str(tmp_path / "jwt.pem"),
        "FIELDCASE_BIND": f"127.0.0.1:{port}",
        "FIELDCASE_WORKERS": "2",
        "FIELDCASE_ACCESS_LOG": str(tmp_path / "access.log"),
        "FLASK_APP": "backend",
    }
    flask = [sys.executable, "-m", "flask"]
    subprocess.run([*flask, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run([*flask, "seed-demo"], env=env, cwd=ROOT, check=True, capture_output=True)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:backend.gunicorn_conf",
            "backend:create_app()",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _ready(base):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(
                    "gunicorn did not become ready: " + (tmp_path / "server.log").read_text()
                )
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False  # not listening yet, or its workers are still starting


def test_readme_walkthrough_takes_a_case_to_closure(demo_server):
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        env={**os.environ, "BASE": demo_server},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    outcomes = [line for line in lines if re.match(r"^(applied|pending): ", line)]
    assert outcomes == [
        "applied: investigating",
        "applied: notified",
        "pending: legal_review",
        "pending: leader_approval",
        "applied: decided",
        "applied: executed",
        "applied: closed",
    ]
    assert "start_investigation" in lines
    # The decision is refused approval until the notification record is signed.
    refusal = lines.index("409 urn:fieldcase:problem:documents-unsigned")
    signed = lines.index("document: signed")
    assert lines.index("pending: legal_review") < refusal < signed
    assert lines[signed - 3 : signed] == [
        "signed: officer",
        "signed: second_officer",
        "signed: party",
    ]
    assert signed < lines.index("pending: leader_approval")
    events = [line for line in lines if re.match(r"^\d+ [a-z_]+ ", line)]
    assert len(events) == 14
    assert events[0] == "1 transition accept reported -> accepted"
    assert [e.split()[1] for e in events[4:8]] == [
        "person_added",
        "document_created",
        "document_finalized",
        "document_signed",
    ]
    assert events[-1] == "14 transition close executed -> closed"
    assert "evidence_added" in [e.split()[1] for e in events]
    assert "evidence: 206 image/png" in lines
    assert "custody: collected uploaded verified downloaded" in lines
    assert "%PDF-" in lines
    assert "verified: true, 3 signatures" in lines
