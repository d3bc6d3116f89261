"""Finalising uploads as evidence, downloads, chain of custody and disposal."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from backend.evidence.models import CustodyEvent, Evidence
from backend.extensions import db
from backend.uploads.models import Upload
from shared import signing

from conftest import Api, Org
from support_evidence import (
    PROBLEM,
    EvidenceMaker,
    configure_local_store,
    configure_s3_store,
    enrol,
    evidence_body,
    mp4_bytes,
    png_bytes,
    s3_fixture,  # noqa: F401
    s3_server_fixture,  # noqa: F401
    sha256,
    text_bytes,
    upload,
)


@pytest.fixture
def store_dir(app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return configure_local_store(monkeypatch, app, tmp_path)


@pytest.fixture
def maker(api: Api, world: Org, store_dir: Path) -> EvidenceMaker:
    officer = world.user("a1.officer")
    return EvidenceMaker(api, officer, enrol(api, officer))


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def custody(api: Api, user: Any, evidence_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/evidence/{evidence_id}/custody", user)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def events(api: Api, user: Any, evidence_id: str) -> list[str]:
    return [entry["event"] for entry in custody(api, user, evidence_id)]


def content(api: Api, user: Any, evidence_id: str, query: str = "purpose=核对", **headers: str):
    return api.get(f"/api/v1/evidence/{evidence_id}/content?{query}", user, headers=headers)


def evidence_rows(app: Flask, **where: Any) -> list[Evidence]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Evidence).filter_by(**where)))


# Finalising


def test_finalised_upload_is_stored_by_hash_read_only_with_its_first_custody_links(
    api, world, maker, store_dir, app
):
    officer = world.user("a1.officer")
    case = api.case(officer)
    data = png_bytes(seed=1)
    item = maker.add(case["id"], data)

    digest = sha256(data)
    assert item["sha256"] == digest and item["size"] == len(data)
    assert item["content_type"] == "image/png" and item["kind"] == "photo"
    assert item["case_id"] == case["id"] and item["status"] == "held"
    assert item["latitude"] == "30.2741" and item["device_id"] == maker.device.device_id
    path = store_dir / digest[:2] / digest[2:4] / digest
    assert stored_files(store_dir) == [path]
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0

    chain = custody(api, officer, item["id"])
    assert [entry["event"] for entry in chain] == ["collected", "uploaded", "verified"]
    collected = chain[0]
    assert collected["place"] == "人民路1号夜市"
    assert collected["device_id"] == maker.device.device_id
    assert collected["at"].startswith("2026-03-01T01:30:00")  # CAPTURED_AT in UTC
    assert collected["actor_id"] == str(officer.id) and collected["actor_name"]
    assert chain[2]["details"]["sha256"] == digest

    history = api.get(f"/api/v1/cases/{case['id']}/events", officer).get_json()
    added = [e for e in history if e["type"] == "evidence_added"]
    assert [e["payload"]["evidence_id"] for e in added] == [item["id"]]
    listed = api.get(f"/api/v1/cases/{case['id']}/evidence", officer).get_json()
    assert [e["id"] for e in listed] == [item["id"]]
    fetched = api.get(f"/api/v1/evidence/{item['id']}", world.user("a1.legal")).get_json()
    assert fetched["signed_fields"]["sha256"] == digest and fetched["disposals"] == []

    with app.app_context():
        upload_id = item["upload_id"]
        assert db.session.get(Upload, uuid.UUID(upload_id)).consumed_at is not None
    again = maker.finalise(
        case["id"],
        evidence_body(case["id"], upload_id, data, maker.device),
    )
    assert again.status_code == 409 and again.content_type == PROBLEM


def test_hash_mismatch_is_refused_and_leaves_no_row_and_no_file(api, world, maker, store_dir, app):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    data = png_bytes(width=9, height=2, seed=2)  # bytes no other test stores
    upload_id = upload(api, officer, case_id, data, "photo.png")
    captured_hash = sha256(b"the bytes the phone captured")
    body = evidence_body(case_id, upload_id, data, maker.device, sha256=captured_hash)

    refused = maker.finalise(case_id, body)
    assert refused.status_code == 422 and refused.content_type == PROBLEM
    assert refused.get_json()["type"].endswith("hash-mismatch")
    assert evidence_rows(app, upload_id=uuid.UUID(upload_id)) == []
    assert evidence_rows(app, sha256=sha256(data)) == []
    assert evidence_rows(app, sha256=captured_hash) == []
    assert stored_files(store_dir) == []

    # The upload is not used up: the right hash still finalises it.
    good = maker.finalise(case_id, evidence_body(case_id, upload_id, data, maker.device))
    assert good.status_code == 201, good.get_json()


def test_the_same_file_finalised_twice_is_stored_once(api, world, maker, store_dir, app):
    officer = world.user("a1.officer")
    data = png_bytes(seed=3)
    first = maker.add(api.case(officer)["id"], data)
    second = maker.add(api.case(officer)["id"], data, filename="copy.png")

    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert len(stored_files(store_dir)) == 1
    verified = custody(api, officer, second["id"])[2]
    assert verified["event"] == "verified"
    assert verified["details"]["stored"] == "same content already stored"
    for item in (first, second):
        assert content(api, officer, item["id"]).data == data


def test_offline_resend_with_the_same_id_creates_nothing(api, world, maker, store_dir, app):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    data = png_bytes(seed=4)
    upload_id = upload(api, officer, case_id, data, "photo.png")
    client_id = str(uuid.uuid4())
    body = evidence_body(case_id, upload_id, data, maker.device, id=client_id)

    first, again = maker.finalise(case_id, body), maker.finalise(case_id, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"] == client_id
    assert len(evidence_rows(app, id=uuid.UUID(client_id))) == 1
    assert events(api, officer, client_id) == ["collected", "uploaded", "verified"]

    other = evidence_body(case_id, upload_id, data, maker.device, id=client_id, place="别处")
    changed = maker.finalise(case_id, other)
    assert changed.status_code == 409 and changed.content_type == PROBLEM


def test_content_type_comes_from_the_bytes_not_the_client(api, world, maker, store_dir):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    data = png_bytes(seed=5)
    item = maker.add(case_id, data, filename="../../notes.txt", filetype="text/plain")
    assert item["content_type"] == "image/png"
    assert item["filename"] == "notes.png"
    response = content(api, officer, item["id"])
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert 'filename="notes.png"' in response.headers["Content-Disposition"]

    unknown = maker.add(
        case_id, text_bytes(), filename="记录.txt", filetype="image/png", kind="document"
    )
    assert unknown["content_type"] == "application/octet-stream"
    disposition = content(api, officer, unknown["id"]).headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''%E8%AE%B0%E5%BD%95.txt" in disposition


def test_a_kind_the_bytes_contradict_is_refused(api, world, maker, store_dir, app):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    for data, kind in ((text_bytes("不是照片"), "photo"), (png_bytes(seed=6), "video")):
        upload_id = upload(api, officer, case_id, data, "x.jpg", "image/jpeg")
        response = maker.finalise(
            case_id, evidence_body(case_id, upload_id, data, maker.device, kind=kind)
        )
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["type"].endswith("kind-mismatch")
        assert evidence_rows(app, upload_id=uuid.UUID(upload_id)) == []
    assert stored_files(store_dir) == []

    video = maker.add(case_id, mp4_bytes(), filename="clip.mp4", kind="video")
    assert video["content_type"] == "video/mp4"
    # Phones record audio-only files in MP4 containers too.
    audio = maker.add(case_id, mp4_bytes(5000), filename="voice.m4a", kind="audio")
    assert audio["content_type"] == "video/mp4"


def test_device_signatures_are_checked(api, world, maker, store_dir, app):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    data = png_bytes(seed=7)
    upload_id = upload(api, officer, case_id, data, "photo.png")
    body = evidence_body(case_id, upload_id, data, maker.device)
    other_officer = world.user("a1.officer2")
    someone_elses = enrol(api, other_officer)

    forged = evidence_body(
        case_id, upload_id, data, maker.device, sign_with=signing.new_private_key()
    )
    over_other_content = {**body, "place": "另一个地方"}
    other_case = {
        **body,
        "device_signature": evidence_body(api.case(officer)["id"], upload_id, data, maker.device)[
            "device_signature"
        ],
    }
    not_base64 = {**body, "device_signature": "not a signature!"}
    not_my_device = evidence_body(case_id, upload_id, data, someone_elses)
    for attempt in (forged, over_other_content, other_case, not_base64, not_my_device):
        response = maker.finalise(case_id, attempt)
        assert response.status_code == 422, response.get_json()
        assert response.content_type == PROBLEM
    assert evidence_rows(app, upload_id=uuid.UUID(upload_id)) == []

    revoked = api.post(
        f"/api/v1/devices/{maker.device.pk}/revoke",
        world.user("a1.admin"),
        json={"reason": "设备丢失"},
    )
    assert revoked.status_code == 200, revoked.get_json()
    refused = maker.finalise(case_id, body)
    assert refused.status_code == 403 and refused.content_type == PROBLEM
    assert evidence_rows(app, upload_id=uuid.UUID(upload_id)) == []
    assert stored_files(store_dir) == []


def test_the_per_case_cap_is_enforced_when_finalising(
    api, world, maker, store_dir, app, monkeypatch
):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    first = png_bytes(seed=8)
    maker.add(case_id, first)
    data = png_bytes(seed=9)
    upload_id = upload(api, officer, case_id, data, "photo.png")
    monkeypatch.setitem(app.config, "CASE_EVIDENCE_MAX_BYTES", len(first) + len(data) - 1)
    response = maker.finalise(case_id, evidence_body(case_id, upload_id, data, maker.device))
    assert response.status_code == 413 and response.content_type == PROBLEM
    assert evidence_rows(app, upload_id=uuid.UUID(upload_id)) == []


def test_finalise_validates_its_input(api, world, maker, store_dir):
    officer = world.user("a1.officer")
    case_id = api.case(officer)["id"]
    data = png_bytes(seed=10)
    upload_id = upload(api, officer, case_id, data, "photo.png")
    body = evidence_body(case_id, upload_id, data, maker.device)
    for change in (
        {"latitude": 30.27},
        {"latitude": "91"},
        {"longitude": "abc"},
        {"captured_at": "2026-03-01T09:30:00"},
        {"sha256": sha256(data).upper()},
        {"kind": "hologram"},
        {"status": "disposed"},
        {"place": "人\x00"},
    ):
        response = maker.finalise(case_id, {**body, **change})
        assert response.status_code == 422, change
        assert response.get_json()["errors"], change
    unknown_upload = evidence_body(case_id, str(uuid.uuid4()), data, maker.device)
    assert maker.finalise(case_id, unknown_upload).status_code == 404
    leader = maker.finalise(case_id, body, user=world.user("a1.leader"))
    assert leader.status_code == 403


# Downloads


def test_range_requests_etag_and_not_modified(api, world, maker, store_dir):
    officer = world.user("a1.officer")
    data = mp4_bytes(3000)
    item = maker.add(api.case(officer)["id"], data, filename="clip.mp4", kind="video")
    size, etag = len(data), f'"{item["sha256"]}"'

    whole = content(api, officer, item["id"])
    assert whole.is_streamed, "sent as a stream, not built in memory"
    assert whole.status_code == 200 and whole.data == data
    assert whole.headers["ETag"] == etag and whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Content-Length"] == str(size)
    assert whole.mimetype == "video/mp4"

    for header, start, end in (
        ("bytes=0-9", 0, 9),
        ("bytes=2990-", 2990, size - 1),
        ("bytes=-5", size - 5, size - 1),
        ("bytes=100-999999", 100, size - 1),
    ):
        partial = content(api, officer, item["id"], Range=header)
        assert partial.status_code == 206, header
        assert partial.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert partial.data == data[start : end + 1]
        assert partial.headers["Content-Length"] == str(end - start + 1)

    outside = content(api, officer, item["id"], Range=f"bytes={size}-")
    assert outside.status_code == 416 and outside.content_type == PROBLEM
    assert outside.headers["Content-Range"] == f"bytes */{size}"

    for ignored in ("bytes=0-1,5-6", "bytes=abc", "items=0-5"):
        response = content(api, officer, item["id"], Range=ignored)
        assert (response.status_code, response.data) == (200, data), ignored
    stale = content(api, officer, item["id"], Range="bytes=0-9", **{"If-Range": '"other"'})
    assert (stale.status_code, stale.data) == (200, data)
    current = content(api, officer, item["id"], Range="bytes=0-9", **{"If-Range": etag})
    assert current.status_code == 206

    for tags in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        cached = content(api, officer, item["id"], **{"If-None-Match": tags})
        assert cached.status_code == 304 and cached.data == b"", tags
        assert cached.headers["ETag"] == etag
    assert content(api, officer, item["id"], **{"If-None-Match": '"other"'}).status_code == 200


def test_every_view_and_download_writes_one_custody_link(api, world, maker, store_dir):
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    data = png_bytes(seed=11)
    item = maker.add(api.case(officer)["id"], data)
    etag = f'"{item["sha256"]}"'

    assert content(api, legal, item["id"], "disposition=inline&purpose=审核证据").status_code == 200
    assert (
        content(api, officer, item["id"], "purpose=移送检察院", Range="bytes=0-3").status_code
        == 206
    )
    assert content(api, officer, item["id"], **{"If-None-Match": etag}).status_code == 304
    # Refused requests leave no link.
    assert content(api, officer, item["id"], "disposition=inline").status_code == 422
    assert content(api, officer, item["id"], Range="bytes=99999-").status_code == 416

    chain = custody(api, officer, item["id"])
    assert [e["event"] for e in chain] == [
        "collected",
        "uploaded",
        "verified",
        "viewed",
        "downloaded",
        "downloaded",
    ]
    viewed, ranged, cached = chain[3:]
    assert (viewed["actor_id"], viewed["purpose"]) == (str(legal.id), "审核证据")
    assert viewed["details"]["bytes"] == "all"
    assert ranged["purpose"] == "移送检察院"
    assert ranged["details"]["bytes"] == f"0-3/{len(data)}"
    assert cached["details"]["bytes"].startswith("none")


def test_readers_and_roles(api, world, maker, store_dir):
    officer = world.user("a1.officer")
    item = maker.add(api.case(officer)["id"], png_bytes(seed=12))
    for reader in ("a1.legal", "a1.leader", "a1.manager", "a.leader", "a.legal"):
        assert api.get(f"/api/v1/evidence/{item['id']}", world.user(reader)).status_code == 200
    admin = world.user("a1.admin")
    assert api.get(f"/api/v1/evidence/{item['id']}", admin).status_code == 403
    assert content(api, admin, item["id"]).status_code == 403


# Chain of custody


def test_hand_overs_are_recorded_with_their_details(api, world, maker, store_dir):
    officer, manager = world.user("a1.officer"), world.user("a1.manager")
    item = maker.add(api.case(officer)["id"], png_bytes(seed=13))
    path = f"/api/v1/evidence/{item['id']}/custody"

    stored = api.post(
        path,
        manager,
        json={
            "event": "stored",
            "place": "办案中心",
            "purpose": "入库保管",
            "location": "智能案卷柜 A-03-12",
        },
    )
    assert stored.status_code == 201, stored.get_json()
    assert stored.get_json()["location"] == "智能案卷柜 A-03-12"
    transferred = api.post(
        path,
        officer,
        json={
            "event": "transferred",
            "place": "区检察院",
            "purpose": "移送审查起诉",
            "recipient": "检察官 王某",
        },
    )
    assert transferred.status_code == 201, transferred.get_json()
    for body in (
        {"event": "exported", "place": "办案中心", "purpose": "刻录光盘"},
        {"event": "returned", "place": "派出所", "purpose": "发还", "recipient": "失主 李某"},
    ):
        assert api.post(path, officer, json=body).status_code == 201, body

    for bad in (
        {"event": "stored", "place": "办案中心", "purpose": "入库"},
        {"event": "transferred", "place": "检察院", "purpose": "移送"},
        {"event": "returned", "place": "派出所", "purpose": "发还"},
        {"event": "disposed", "place": "派出所", "purpose": "销毁"},
        {"event": "viewed", "place": "派出所", "purpose": "查看"},
        {"event": "exported", "purpose": "刻录光盘"},
    ):
        response = api.post(path, officer, json=bad)
        assert response.status_code == 422, bad
    assert api.post(path, world.user("a1.legal"), json=stored_body()).status_code == 403

    chain = custody(api, officer, item["id"])
    assert [e["event"] for e in chain][3:] == ["stored", "transferred", "exported", "returned"]
    assert chain[3]["actor_id"] == str(manager.id) and chain[3]["place"] == "办案中心"
    assert chain[4]["recipient"] == "检察官 王某" and chain[4]["purpose"] == "移送审查起诉"


def stored_body() -> dict[str, str]:
    return {"event": "stored", "place": "办案中心", "purpose": "入库", "location": "A-01"}


def test_custody_rows_cannot_be_changed_or_deleted(api, world, maker, store_dir, app):
    item = maker.add(api.case(world.user("a1.officer"))["id"], png_bytes(seed=14))
    evidence_id = uuid.UUID(item["id"])
    with app.app_context():
        for statement in (
            sa.update(CustodyEvent)
            .where(CustodyEvent.evidence_id == evidence_id)
            .values(place="篡改"),
            sa.delete(CustodyEvent).where(CustodyEvent.evidence_id == evidence_id),
        ):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                db.session.execute(statement)
            db.session.rollback()
        if db.engine.dialect.name == "postgresql":
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                db.session.execute(sa.text("TRUNCATE custody_events"))
            db.session.rollback()
        count = db.session.scalar(
            sa.select(sa.func.count()).where(CustodyEvent.evidence_id == evidence_id)
        )
        assert count == 3


# Disposal


def test_disposal_happens_only_after_a_leaders_approval(
    api, world, maker, store_dir, multi_role_user
):
    officer, leader = world.user("a1.officer"), world.user("a1.leader")
    case_id = api.case(officer)["id"]
    data = png_bytes(seed=15)
    item = maker.add(case_id, data)
    path = f"/api/v1/evidence/{item['id']}/disposal"

    requested = api.post(path, officer, json={"reason": "已结案，依法销毁"})
    assert requested.status_code == 201, requested.get_json()
    assert requested.get_json()["status"] == "pending"
    assert api.post(path, officer, json={"reason": "再次申请"}).status_code == 409
    assert api.get(f"/api/v1/evidence/{item['id']}", officer).get_json()["status"] == "held"
    assert content(api, officer, item["id"]).status_code == 200

    decide = f"{path}/decision"
    assert api.post(decide, officer, json={"decision": "approve"}).status_code == 403
    assert (
        api.post(decide, world.user("b1.leader"), json={"decision": "approve"}).status_code == 404
    )
    assert api.post(decide, leader, json={"decision": "return"}).status_code == 422
    returned = api.post(decide, leader, json={"decision": "return", "comment": "尚在上诉期"})
    assert returned.status_code == 200 and returned.get_json()["status"] == "returned"
    assert "disposed" not in events(api, officer, item["id"])
    assert api.post(decide, leader, json={"decision": "approve"}).status_code == 409

    # A leader who asked for the disposal cannot approve it.
    assert api.post(path, multi_role_user, json={"reason": "自己申请"}).status_code == 201
    own = api.post(decide, multi_role_user, json={"decision": "approve"})
    assert own.status_code == 403
    approved = api.post(decide, leader, json={"decision": "approve", "comment": "同意销毁"})
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"

    metadata = api.get(f"/api/v1/evidence/{item['id']}", officer).get_json()
    assert metadata["status"] == "disposed" and metadata["disposed_at"]
    assert [d["status"] for d in metadata["disposals"]] == ["returned", "approved"]
    chain = custody(api, officer, item["id"])
    assert chain[-1]["event"] == "disposed" and chain[-1]["actor_id"] == str(leader.id)
    assert chain[-1]["purpose"] == "自己申请"
    assert [e["event"] for e in chain].count("disposed") == 1
    history = api.get(f"/api/v1/cases/{case_id}/events", officer).get_json()
    assert "evidence_disposed" in [e["type"] for e in history]

    for headers in ({}, {"Range": "bytes=99999-"}, {"If-None-Match": f'"{item["sha256"]}"'}):
        gone = content(api, officer, item["id"], **headers)
        assert gone.status_code == 410 and gone.content_type == PROBLEM, headers
    assert (
        api.post(f"/api/v1/evidence/{item['id']}/custody", officer, json=stored_body()).status_code
        == 409
    )
    assert api.post(path, officer, json={"reason": "again"}).status_code == 409
    # The original is write-once: it stays in the store.
    assert [p.name for p in stored_files(store_dir)] == [item["sha256"]]


# Another unit's evidence


def test_another_units_evidence_is_not_found_on_every_route(api, world, store_dir):
    foreign_officer = world.user("b1.officer")
    foreign = EvidenceMaker(api, foreign_officer, enrol(api, foreign_officer))
    case_id = api.case(foreign_officer)["id"]
    data = png_bytes(seed=16)
    item = foreign.add(case_id, data)
    evidence = f"/api/v1/evidence/{item['id']}"

    for name in ("a1.officer", "a1.legal", "a1.leader", "a1.manager", "a.leader"):
        user = world.user(name)
        assert api.get(evidence, user).status_code == 404, name
        assert api.get(f"{evidence}/custody", user).status_code == 404, name
        assert content(api, user, item["id"]).status_code == 404, name
        assert api.get(f"/api/v1/cases/{case_id}/evidence", user).status_code == 404, name
    officer = world.user("a1.officer")
    assert api.post(f"{evidence}/custody", officer, json=stored_body()).status_code == 404
    assert (
        api.post(f"{evidence}/custody", world.user("a1.manager"), json=stored_body()).status_code
        == 404
    )
    assert api.post(f"{evidence}/disposal", officer, json={"reason": "x"}).status_code == 404
    decision = {"decision": "approve"}
    assert (
        api.post(
            f"{evidence}/disposal/decision", world.user("a1.leader"), json=decision
        ).status_code
        == 404
    )

    # Finalising into the foreign case, even with an upload of one's own.
    mine = EvidenceMaker(api, officer, enrol(api, officer))
    own_case = api.case(officer)["id"]
    upload_id = upload(api, officer, own_case, data, "photo.png")
    into_foreign = mine.finalise(case_id, evidence_body(case_id, upload_id, data, mine.device))
    assert into_foreign.status_code == 404
    # A foreign upload cannot be finalised into one's own case.
    foreign_upload = upload(api, foreign_officer, case_id, data, "photo.png")
    stolen = mine.finalise(own_case, evidence_body(own_case, foreign_upload, data, mine.device))
    assert stolen.status_code == 404

    assert [e["event"] for e in custody(api, foreign_officer, item["id"])] == [
        "collected",
        "uploaded",
        "verified",
    ]


# The S3 store behind the API


def test_evidence_in_an_s3_store_end_to_end(api, world, app, monkeypatch, tmp_path, s3):
    bucket = configure_s3_store(monkeypatch, app, tmp_path, s3)
    officer = world.user("a1.officer")
    maker = EvidenceMaker(api, officer, enrol(api, officer))
    case_id = api.case(officer)["id"]
    data = mp4_bytes(6000)

    upload_id = upload(api, officer, case_id, data, "clip.mp4")
    wrong = evidence_body(case_id, upload_id, data, maker.device, kind="video", sha256="0" * 64)
    assert maker.finalise(case_id, wrong).status_code == 422
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    first = maker.add(case_id, data, filename="clip.mp4", kind="video")
    second = maker.add(api.case(officer)["id"], data, filename="clip.mp4", kind="video")
    listing = s3.client().list_objects_v2(Bucket=bucket)
    digest = first["sha256"]
    key = f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    assert [o["Key"] for o in listing["Contents"]] == [key]

    partial = content(api, officer, second["id"], Range="bytes=1000-1999")
    assert partial.status_code == 206 and partial.data == data[1000:2000]
    assert partial.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert content(api, officer, first["id"]).data == data
