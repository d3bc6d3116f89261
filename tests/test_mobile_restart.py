"""The server is killed (SIGKILL) and restarted while the phone is sending: every queued
item still arrives exactly once.

A request the server was running when it died never committed: its work and the stored
answer for its ``Idempotency-Key`` commit together. The key's unfinished claim is taken
over by the phone's resend once it is older than ``FIELDCASE_IDEMPOTENCY_ABANDONED_SECONDS``
(a few seconds here, minutes in production).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from backend.cases.models import Case, CaseEvent, Incident
from backend.evidence.models import Evidence
from backend.extensions import db

from conftest import Org
from support_mobile import Phone
from support_server import LiveServer, live_server_fixture

NOTICE = {
    "facts": "在夜市互殴",
    "reasons_and_basis": "治安管理处罚法第四十三条",
    "hearing_requested": "否",
}
CASES = 12
EVIDENCE_BYTES = 512 * 1024

live_server = live_server_fixture(
    scope="module",
    workers=2,
    settings=lambda request, workdir: {
        "FIELDCASE_UPLOAD_DIR": str(workdir / "uploads"),
        "FIELDCASE_EVIDENCE_DIR": str(workdir / "evidence"),
        "FIELDCASE_IDEMPOTENCY_ABANDONED_SECONDS": "3",
    },
)


def test_items_arrive_once_across_a_server_crash(
    app: Flask, world: Org, live_server: LiveServer, tmp_path: Path
) -> None:
    phone = Phone(tmp_path / "phone", live_server.base_url, chunk_size=128 * 1024, backoff_max=0.5)
    try:
        phone.worker.start()
        assert phone.sign_in(world.user("a1.officer")).kind == "signed_in"
        case_ids, hashes = [], {}
        for number in range(CASES):
            report = phone.state.file_report(
                {
                    "occurred_at": "2026-03-01T09:30:00+08:00",
                    "place": f"解放路{number}号",
                    "category": "治安",
                    "summary": f"重启测试{number}",
                    "accept": {"case_type": "administrative", "title": f"重启{number}"},
                }
            )
            case_id = report.payload["accept"]["case_id"]
            phone.state.request_step(case_id, "start_investigation", {}, None, None)
            phone.state.request_step(case_id, "notify", NOTICE, "已告知", None)
            source = tmp_path / f"scene{number}.bin"
            source.write_bytes(os.urandom(EVIDENCE_BYTES))
            evidence = phone.state.capture_evidence(
                case_id, source, "other", f"解放路{number}号", None, None, "现场记录"
            )
            case_ids.append(uuid.UUID(case_id))
            hashes[evidence.payload["evidence_id"]] = evidence.payload["sha256"]
        phone.wait_for(lambda: sum(i.state == "done" for i in phone.outbox.all()) >= CASES)
        live_server.restart(crash=True)
        settled = phone.wait_settled(timeout=180)
    finally:
        phone.close()

    assert [(i.kind, i.state, i.error) for i in settled if i.state != "done"] == []
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Incident)
                .where(Incident.summary.like("重启测试%"))
            )
            == CASES
        )
        statuses = db.session.scalars(sa.select(Case.status).where(Case.id.in_(case_ids))).all()
        assert sorted(statuses) == ["notified"] * CASES
        steps = db.session.execute(
            sa.select(CaseEvent.action, sa.func.count())
            .where(CaseEvent.case_id.in_(case_ids), CaseEvent.action.is_not(None))
            .group_by(CaseEvent.action)
        ).all()
        assert dict(steps) == {"accept": CASES, "start_investigation": CASES, "notify": CASES}
        stored = db.session.execute(
            sa.select(Evidence.id, Evidence.sha256).where(Evidence.case_id.in_(case_ids))
        ).all()
    assert {str(id_): sha for id_, sha in stored} == hashes
