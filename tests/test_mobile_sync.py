"""The sync worker against a real Fieldcase server (the test app served over HTTP):
sign-in and enrolment, offline delivery, resends, conflicts, token expiry,
resumed evidence uploads and refused items."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from backend.cases.models import Case, CaseEvent, CasePerson, Incident
from backend.devices.models import Device
from backend.evidence.models import Evidence
from backend.extensions import db
from mobile.services.sync import ACCESS_TOKEN, REFRESH_TOKEN, USER, USERNAME, SyncEvent
from mobile.state import UnsentItems
from shared.client import upload_id_of

from conftest import PASSWORD, Api, Org, make_app
from support_mobile import Phone, serve_on
from support_server import free_port, serving

REPORT: dict[str, Any] = {
    "occurred_at": "2026-03-01T09:30:00+08:00",
    "place": "人民路1号",
    "category": "治安",
    "summary": "两人在夜市互殴。",
    "source": "patrol",
    "reporter": {"name": "张伟", "phone": "13812345678"},
}
NOTICE = {
    "facts": "在夜市互殴",
    "reasons_and_basis": "治安管理处罚法第四十三条",
    "hearing_requested": "否",
}


@pytest.fixture(scope="module")
def base_url(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture
def make_phone(tmp_path: Path, base_url: str) -> Iterator[Callable[..., Phone]]:
    phones: list[Phone] = []

    def make(url: str | None = None, **options: Any) -> Phone:
        phone = Phone(tmp_path / f"phone{len(phones)}", url or base_url, **options)
        phones.append(phone)
        return phone

    yield make
    for phone in phones:
        phone.close()


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def report(title: str = "夜市斗殴", **extra: Any) -> dict[str, Any]:
    return {**REPORT, "accept": {"case_type": "administrative", "title": title}, **extra}


def test_sign_in_enrols_the_device_and_keeps_no_password(
    app: Flask, world: Org, make_phone: Callable[..., Phone]
) -> None:
    officer = world.user("a1.officer")
    phone = make_phone()
    phone.worker.start()

    event = phone.sign_in(officer)

    assert event.kind == "signed_in", event.detail
    device_id = phone.device.device_id_for(officer.username)
    with app.app_context():
        device = db.session.scalar(sa.select(Device).where(Device.device_id == device_id))
        assert device is not None
        assert device.user_id == officer.id
        assert device.public_key == phone.device.public_key_text()
    assert phone.device.enrolled_for(phone.server_url, officer.username)
    assert phone.store.get_setting(REFRESH_TOKEN) and phone.store.get_setting(ACCESS_TOKEN)
    assert PASSWORD.encode() not in phone.store.path.read_bytes()
    assert PASSWORD.encode() not in Path(f"{phone.store.path}-wal").read_bytes()
    assert phone.state.signed_in and phone.state.username == officer.username

    again = phone.sign_in(officer)
    assert again.kind == "signed_in"
    assert count(app, Device, Device.device_id == device_id) == 1

    wrong = phone.sign_in(officer, password="not the password")
    assert wrong.kind == "sign_in_failed"
    assert wrong.detail is not None and wrong.detail["reason"] == "credentials"


def test_a_report_filed_offline_arrives_once_when_the_server_comes_up(
    app: Flask, world: Org, make_phone: Callable[..., Phone]
) -> None:
    officer = world.user("a1.officer")
    port = free_port()
    phone = make_phone(f"http://127.0.0.1:{port}")
    phone.worker.start()
    with serve_on(app, port):
        assert phone.sign_in(officer).kind == "signed_in"

    item = phone.state.file_report(
        report(persons=[{"role": "witness", "name": "李四", "phone": "13900000000"}])
    )

    def sent_back() -> bool:
        """A try failed for want of a server: the item waits again (the worker may be
        trying it once more by now)."""
        return any(
            e.kind == "item" and e.item_id == item.id and (e.detail or {})["state"] == "waiting"
            for e in phone.events
        )

    phone.wait_for(sent_back)
    waiting = phone.outbox.get(item.id)
    assert waiting is not None and waiting.state != "done" and waiting.attempts == 0
    assert phone.event("offline") is not None and not phone.worker.online
    case_id = item.payload["accept"]["case_id"]
    assert [case["id"] for case in phone.state.my_cases() if case.get("pending")] == [case_id]

    with serve_on(app, port):
        items = phone.wait_settled()

    assert [i.state for i in items] == ["done", "done"]
    assert phone.event("online") is not None
    assert count(app, Incident, Incident.id == uuid.UUID(item.payload["incident_id"])) == 1
    assert count(app, Case, Case.id == uuid.UUID(case_id)) == 1
    witnesses = count(
        app, CasePerson, CasePerson.case_id == uuid.UUID(case_id), CasePerson.role == "witness"
    )
    assert witnesses == 1


def test_a_resend_after_a_lost_answer_duplicates_nothing(
    app: Flask, world: Org, make_phone: Callable[..., Phone]
) -> None:
    """The server answered but the app died before marking the items done: they are
    sent again on the next start and the server replays its answers."""
    officer = world.user("a1.officer")
    phone = make_phone()
    item = phone.state.file_report(report())
    case_id = item.payload["accept"]["case_id"]
    step = phone.state.request_step(case_id, "start_investigation", {}, "开始调查", None)
    assert step.depends_on == item.id
    phone.worker.start()
    phone.sign_in(officer)
    assert [i.state for i in phone.wait_settled()] == ["done", "done"]

    phone.worker.stop()
    for sent in (item, step):
        phone.outbox.mark(sent.id, "sending")
    phone.restart()
    phone.worker.start()
    items = phone.wait_settled()

    assert [i.state for i in items] == ["done", "done"], [i.error for i in items]
    assert items[1].server_state is not None and items[1].server_state["outcome"] == "applied"
    assert count(app, Incident, Incident.id == uuid.UUID(item.payload["incident_id"])) == 1
    assert count(app, Case, Case.id == uuid.UUID(case_id)) == 1
    steps = count(
        app,
        CaseEvent,
        CaseEvent.case_id == uuid.UUID(case_id),
        CaseEvent.action == "start_investigation",
    )
    assert steps == 1


def test_a_stale_etag_is_a_conflict_with_the_servers_state_and_redo_works(
    app: Flask, world: Org, api: Api, make_phone: Callable[..., Phone]
) -> None:
    officer = world.user("a1.officer")
    case = api.case(officer)
    phone = make_phone()
    phone.worker.start()
    phone.sign_in(officer)
    phone.wait_for(lambda: phone.state.case(case["id"]) and phone.event("cache"))
    seen = phone.state.case(case["id"])
    assert seen is not None and seen["case"]["status"] == "accepted"
    started = api.step(case["id"], officer, "start_investigation")
    assert started.status_code == 200, started.get_json()

    item = phone.state.request_step(case["id"], "notify", NOTICE, "已告知", seen["etag"])
    phone.wait_settled()

    conflict = phone.outbox.get(item.id)
    assert conflict is not None and conflict.state == "conflict"
    assert conflict.server_state is not None
    assert conflict.server_state["problem"]["status"] == 412
    assert conflict.server_state["case"]["status"] == "investigating"
    assert conflict.server_state["etag"] == api.etag(case["id"], officer)
    assert phone.state.sync_status().conflicts == 1

    phone.state.redo(item.id, conflict.payload)
    phone.wait_settled()

    done = phone.outbox.get(item.id)
    assert done is not None and done.state == "done", done
    assert api.get(f"/api/v1/cases/{case['id']}", officer).get_json()["status"] == "notified"


def test_an_access_token_that_expired_while_offline_is_refreshed(
    app: Flask,
    world: Org,
    database_url: str,
    tmp_path: Path,
    make_phone: Callable[..., Phone],
) -> None:
    officer = world.user("a1.officer")
    stale_app = make_app(database_url, tmp_path, ACCESS_TOKEN_LIFETIME=timedelta(minutes=-5))
    login = stale_app.test_client().post(
        "/api/v1/auth/login", json={"username": officer.username, "password": PASSWORD}
    )
    pair = login.get_json()
    with stale_app.app_context():
        db.engine.dispose()
    phone = make_phone()
    for key, value in (
        (USERNAME, officer.username),
        (USER, json.dumps(pair["user"])),
        (ACCESS_TOKEN, pair["access_token"]),
        (REFRESH_TOKEN, pair["refresh_token"]),
    ):
        phone.store.set_setting(key, value)
    item = phone.state.file_report(report())
    phone.restart()
    phone.worker.start()

    items = phone.wait_settled()

    assert items[0].state == "done", items[0].error
    assert phone.event("auth_required") is None
    assert phone.store.get_setting(REFRESH_TOKEN) not in (None, pair["refresh_token"])
    assert count(app, Incident, Incident.id == uuid.UUID(item.payload["incident_id"])) == 1


def test_a_sign_in_ended_by_the_server_asks_for_sign_in_and_keeps_the_items(
    app: Flask, world: Org, api: Api, make_phone: Callable[..., Phone]
) -> None:
    officer = world.user("a1.officer")
    pair = api.login(officer)
    ended = api.client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert ended.status_code == 204
    phone = make_phone()
    phone.store.set_setting(USERNAME, officer.username)
    phone.store.set_setting(ACCESS_TOKEN, pair["access_token"])
    phone.store.set_setting(REFRESH_TOKEN, pair["refresh_token"])
    item = phone.state.file_report(report())
    phone.restart()
    phone.worker.start()

    phone.wait_for(lambda: phone.event("auth_required"))
    waiting = phone.outbox.get(item.id)
    assert waiting is not None and waiting.state == "waiting"
    assert not phone.state.signed_in

    assert phone.sign_in(officer).kind == "signed_in"
    assert [i.state for i in phone.wait_settled()] == ["done"]


def test_an_evidence_upload_resumes_from_the_stored_url_after_a_restart(
    app: Flask, world: Org, api: Api, make_phone: Callable[..., Phone], tmp_path: Path
) -> None:
    officer = world.user("a1.officer")
    case = api.case(officer)
    phone = make_phone(chunk_size=64 * 1024)
    phone.worker.start()
    phone.sign_in(officer)
    phone.wait_for(lambda: phone.state.case(case["id"]))

    def stop_a_quarter_in(event: SyncEvent) -> None:
        if event.kind == "progress" and event.detail and event.detail["progress"] >= 0.25:
            phone.worker.stop()

    phone.listeners.append(stop_a_quarter_in)
    source = tmp_path / "scene.jpg"
    content = os.urandom(1024 * 1024)
    source.write_bytes(content)
    item = phone.state.capture_evidence(
        case["id"], source, "other", "人民路1号", 31.2304, 121.4737, "现场记录"
    )
    source.unlink()
    phone.wait_for(
        lambda: any(
            e.kind == "item" and e.item_id == item.id and (e.detail or {})["state"] == "waiting"
            for e in phone.events
        )
    )
    phone.worker.stop()
    stopped = phone.outbox.get(item.id)
    assert stopped is not None and stopped.state == "waiting"
    assert stopped.upload_url is not None and 0.25 <= stopped.progress < 1.0

    phone.listeners.clear()
    phone.restart()
    phone.events.clear()
    phone.worker.start()
    items = phone.wait_settled()

    assert items[0].state == "done", items[0].error
    first = next(e for e in phone.events if e.kind == "progress")
    assert first.detail is not None and first.detail["offset"] == stopped.progress * len(content)
    evidence = items[0].server_state["evidence"] if items[0].server_state else {}
    assert evidence["sha256"] == hashlib.sha256(content).hexdigest()
    assert evidence["upload_id"] == upload_id_of(stopped.upload_url)
    assert evidence["signed_fields"]["latitude"] == "31.230400"
    assert count(app, Evidence, Evidence.case_id == uuid.UUID(case["id"])) == 1
    phone.wait_for(lambda: not any((phone.data_dir / "files").iterdir()))


def test_a_refused_item_fails_with_the_problem_detail_and_is_kept(
    app: Flask, world: Org, api: Api, make_phone: Callable[..., Phone]
) -> None:
    officer = world.user("a1.officer")
    case = api.case(officer)
    phone = make_phone()
    phone.worker.start()
    phone.sign_in(officer)
    bad = {"case_id": case["id"], "action": "start_investigation", "payload": {"bogus": "x"}}
    item = phone.outbox.enqueue("transition", bad, title="bad step")
    phone.worker.wake()
    phone.wait_settled()

    failed = phone.outbox.get(item.id)
    assert failed is not None and failed.state == "failed" and failed.attempts == 1
    assert failed.error and failed.server_state is not None
    assert failed.server_state["problem"]["status"] == 422
    assert phone.state.sync_status().failed == 1
    with pytest.raises(UnsentItems):
        phone.state.sign_out()

    phone.state.redo(item.id, {**bad, "payload": {}})
    phone.wait_settled()
    done = phone.outbox.get(item.id)
    assert done is not None and done.state == "done", done.error


def test_signing_out_wipes_cached_cases_and_keeps_the_device_key(
    app: Flask, world: Org, api: Api, make_phone: Callable[..., Phone]
) -> None:
    officer = world.user("a1.officer")
    case = api.case(officer)
    phone = make_phone()
    phone.worker.start()
    phone.sign_in(officer)
    phone.wait_for(lambda: phone.state.case(case["id"]))
    assert case["id"] in {c["id"] for c in phone.state.my_cases()}
    key = phone.device.public_key_text()

    phone.state.sign_out()

    assert phone.state.my_cases() == [] and phone.state.case(case["id"]) is None
    assert not phone.state.signed_in
    assert phone.device.public_key_text() == key


def test_a_leader_decides_a_cached_approval_and_a_second_decision_conflicts(
    app: Flask, world: Org, api: Api, make_phone: Callable[..., Phone]
) -> None:
    officer, leader = world.user("a1.officer"), world.user("a1.leader")
    case = api.case(officer)
    assert api.step(case["id"], officer, "start_investigation").status_code == 200
    transfer = {"receiving_agency": "市场监督管理局", "reason": "不属于公安管辖"}
    assert api.step(case["id"], officer, "transfer", transfer).get_json()["outcome"] == "pending"
    phone = make_phone()
    phone.worker.start()
    phone.sign_in(leader)
    phone.wait_for(
        lambda: [a for a in phone.state.pending_approvals() if a["case_id"] == case["id"]]
    )
    approval = next(a for a in phone.state.pending_approvals() if a["case_id"] == case["id"])

    first = phone.state.decide(approval["id"], "approve", "同意移送")
    assert approval["id"] not in {a["id"] for a in phone.state.pending_approvals()}
    second = phone.state.decide(approval["id"], "return", "重复决定")
    phone.wait_settled()

    done, conflict = phone.outbox.get(first.id), phone.outbox.get(second.id)
    assert done is not None and done.state == "done", done.error
    assert api.get(f"/api/v1/cases/{case['id']}", officer).get_json()["status"] == "transferred"
    assert conflict is not None and conflict.state == "conflict"
    assert conflict.server_state is not None
    assert conflict.server_state["approval"]["status"] != "pending"
