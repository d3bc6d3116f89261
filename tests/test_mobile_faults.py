"""200 queued items (reports, steps, evidence files of 50 MiB in all) through a
fault-injecting proxy at a real gunicorn server: each arrives exactly once,
every evidence file with the hash taken at capture."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from backend.cases.models import Case, CaseEvent, Incident
from backend.evidence.models import Evidence
from backend.extensions import db
from mobile.services.outbox import OutboxItem

from conftest import Org
from support_faultproxy import NO_FAULTS, FaultProxy, FaultRates
from support_mobile import Phone
from support_server import LiveServer, live_server_fixture

CASES = 50
EVIDENCE_BYTES = 1024 * 1024  # one file per case: 50 MiB in all
FAULTS = FaultRates(
    reset=0.04, drop=0.04, cut_request=0.08, cut_answer=0.08, delay=0.1, cut_max=384 * 1024
)
NOTICE = {
    "facts": "在夜市互殴",
    "reasons_and_basis": "治安管理处罚法第四十三条",
    "hearing_requested": "否",
}

live_server = live_server_fixture(
    scope="module",
    workers=2,
    settings=lambda request, workdir: {
        "FIELDCASE_UPLOAD_DIR": str(workdir / "uploads"),
        "FIELDCASE_EVIDENCE_DIR": str(workdir / "evidence"),
    },
)


@pytest.fixture
def proxy(live_server: LiveServer) -> Iterator[FaultProxy]:
    with FaultProxy(live_server.port, seed=20260301) as running:
        yield running


def queue_cases(phone: Phone, files: Path) -> tuple[list[OutboxItem], dict[str, str]]:
    """Per case: a report registered as a case, two steps and one evidence file."""
    items: list[OutboxItem] = []
    hashes: dict[str, str] = {}
    for number in range(CASES):
        report = phone.state.file_report(
            {
                "occurred_at": "2026-03-01T09:30:00+08:00",
                "place": f"人民路{number}号",
                "category": "治安",
                "summary": f"第{number}起：两人在夜市互殴。",
                "accept": {"case_type": "administrative", "title": f"夜市斗殴{number}"},
            }
        )
        case_id = report.payload["accept"]["case_id"]
        start = phone.state.request_step(case_id, "start_investigation", {}, None, None)
        notify = phone.state.request_step(case_id, "notify", NOTICE, "已告知", None)
        source = files / f"record{number}.bin"
        source.write_bytes(os.urandom(EVIDENCE_BYTES))
        evidence = phone.state.capture_evidence(
            case_id, source, "other", f"人民路{number}号", None, None, "现场记录"
        )
        hashes[evidence.payload["evidence_id"]] = evidence.payload["sha256"]
        items += [report, start, notify, evidence]
    return items, hashes


def test_every_item_arrives_exactly_once_through_a_faulty_network(
    app: Flask, world: Org, proxy: FaultProxy, tmp_path: Path
) -> None:
    phone = Phone(
        tmp_path / "phone",
        proxy.url,
        chunk_size=EVIDENCE_BYTES,
        backoff_base=0.02,
        backoff_max=0.2,
    )
    try:
        phone.worker.start()
        assert phone.sign_in(world.user("a1.officer")).kind == "signed_in"
        phone.worker.stop()
        files = tmp_path / "captured"
        files.mkdir()
        items, hashes = queue_cases(phone, files)
        assert len(items) == 200

        proxy.rates = FAULTS
        began = time.monotonic()
        phone.worker.start()
        settled = phone.wait_settled(timeout=240)
        drained = time.monotonic() - began
        proxy.rates = NO_FAULTS
    finally:
        phone.close()

    not_done = [(i.kind, i.state, i.error) for i in settled if i.state != "done"]
    assert not not_done
    assert len(settled) == 200
    print(f"\ndrained 200 items in {drained:.1f}s; proxy: {dict(proxy.stats)}")
    assert proxy.stats["cuts"] > 0 and proxy.stats["reset"] > 0 and proxy.stats["drop"] > 0

    incident_ids = [uuid.UUID(i.payload["incident_id"]) for i in items if i.kind == "incident"]
    case_ids = [uuid.UUID(i.payload["accept"]["case_id"]) for i in items if i.kind == "incident"]
    with app.app_context():
        incidents = db.session.scalars(
            sa.select(Incident.id).where(Incident.id.in_(incident_ids))
        ).all()
        assert sorted(incidents) == sorted(incident_ids)
        statuses = db.session.execute(
            sa.select(Case.id, Case.status).where(Case.id.in_(case_ids))
        ).all()
        assert len(statuses) == CASES
        assert {status for _, status in statuses} == {"notified"}
        steps = db.session.execute(
            sa.select(CaseEvent.action, sa.func.count())
            .where(CaseEvent.case_id.in_(case_ids), CaseEvent.action.is_not(None))
            .group_by(CaseEvent.action)
        ).all()
        assert dict(steps) == {"accept": CASES, "start_investigation": CASES, "notify": CASES}
        stored = db.session.execute(
            sa.select(Evidence.id, Evidence.sha256, Evidence.size).where(
                Evidence.case_id.in_(case_ids)
            )
        ).all()
    assert {str(id_): sha for id_, sha, _ in stored} == hashes
    assert all(size == EVIDENCE_BYTES for _, _, size in stored)
