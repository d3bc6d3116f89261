"""Idempotency-Key (checklist I1): replays, mismatches and in-flight requests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy.orm import Session

from backend.audit.models import AuditEntry
from backend.cases.models import Incident
from backend.extensions import db
from backend.idempotency.models import IdempotencyRecord
from backend.idempotency.service import request_fingerprint

BODY = {
    "occurred_at": "2026-05-01T08:00:00+08:00",
    "place": "解放路9号",
    "category": "噪音",
    "summary": "深夜噪音扰民。",
}


def _count_incidents(app, summary: str) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count(Incident.id)).where(Incident.summary == summary)
        )


def test_five_replays_make_one_record_and_return_the_same_response(api, world, app):
    officer = world.user("a1.officer")
    summary = f"重放测试 {uuid.uuid4()}"
    key = str(uuid.uuid4())
    responses = [
        api.post(
            "/api/v1/incidents",
            officer,
            json={**BODY, "summary": summary},
            headers={"Idempotency-Key": key},
        )
        for _ in range(5)
    ]
    assert [r.status_code for r in responses] == [201] * 5
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert "Idempotent-Replayed" not in responses[0].headers
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in responses[1:])
    assert _count_incidents(app, summary) == 1


def test_same_key_with_another_body_is_422_and_changes_nothing(api, world, app):
    officer = world.user("a1.officer")
    key = str(uuid.uuid4())
    first = f"原始 {uuid.uuid4()}"
    other = f"另一个 {uuid.uuid4()}"
    assert (
        api.post(
            "/api/v1/incidents",
            officer,
            json={**BODY, "summary": first},
            headers={"Idempotency-Key": key},
        ).status_code
        == 201
    )
    reused = api.post(
        "/api/v1/incidents",
        officer,
        json={**BODY, "summary": other},
        headers={"Idempotency-Key": key},
    )
    assert reused.status_code == 422
    assert reused.content_type == "application/problem+json"
    assert reused.get_json()["type"].endswith("idempotency-key-reuse")
    assert _count_incidents(app, other) == 0


def test_keys_are_scoped_per_user_and_endpoint(api, world, app):
    key = str(uuid.uuid4())
    summary = f"范围 {uuid.uuid4()}"
    for user in (world.user("a1.officer"), world.user("a1.officer2")):
        response = api.post(
            "/api/v1/incidents",
            user,
            json={**BODY, "summary": summary},
            headers={"Idempotency-Key": key},
        )
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
    assert _count_incidents(app, summary) == 2


def test_a_request_still_in_flight_gets_409(api, world, app):
    officer = world.user("a1.officer")
    key = str(uuid.uuid4())
    summary = f"进行中 {uuid.uuid4()}"
    body = {**BODY, "summary": summary}
    raw = json.dumps(body).encode()
    with app.app_context():
        db.session.add(
            IdempotencyRecord(
                user_id=officer.id,
                method="POST",
                path="/api/v1/incidents",
                key=key,
                request_hash=request_fingerprint("POST", "/api/v1/incidents", raw),
                expires_at=datetime(2099, 1, 1, tzinfo=UTC),
            )
        )
        db.session.commit()
    response = api.post(
        "/api/v1/incidents",
        officer,
        data=raw,
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("idempotency-in-flight")
    assert _count_incidents(app, summary) == 0


def test_a_claim_abandoned_by_a_dead_process_is_taken_over(api, world, app):
    """The server died between claiming the key and committing: a resend is done once."""
    officer = world.user("a1.officer")
    key = str(uuid.uuid4())
    summary = f"服务器中断 {uuid.uuid4()}"
    raw = json.dumps({**BODY, "summary": summary}).encode()
    with app.app_context():
        db.session.add(
            IdempotencyRecord(
                user_id=officer.id,
                method="POST",
                path="/api/v1/incidents",
                key=key,
                request_hash=request_fingerprint("POST", "/api/v1/incidents", raw),
                created_at=datetime.now(UTC) - app.config["IDEMPOTENCY_ABANDONED_AFTER"],
                expires_at=datetime(2099, 1, 1, tzinfo=UTC),
            )
        )
        db.session.commit()
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    first = api.post("/api/v1/incidents", officer, data=raw, headers=headers)
    again = api.post("/api/v1/incidents", officer, data=raw, headers=headers)
    assert first.status_code == 201, first.get_json()
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert _count_incidents(app, summary) == 1


def test_a_failed_request_releases_its_key(api, world, app):
    officer = world.user("a1.officer")
    key = str(uuid.uuid4())
    summary = f"失败后重试 {uuid.uuid4()}"
    bad = api.post(
        "/api/v1/incidents",
        officer,
        json={**BODY, "summary": summary, "latitude": 99},
        headers={"Idempotency-Key": key},
    )
    assert bad.status_code == 422
    good = api.post(
        "/api/v1/incidents",
        officer,
        json={**BODY, "summary": summary},
        headers={"Idempotency-Key": key},
    )
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good.headers


def test_transitions_honour_the_key(api, world, app):
    officer = world.user("a1.officer")
    case = api.case(officer)
    etag = api.etag(case["id"], officer)
    key = str(uuid.uuid4())
    headers = {"If-Match": etag, "Idempotency-Key": key}
    body = {"action": "start_investigation", "payload": {}}
    url = f"/api/v1/cases/{case['id']}/transitions"
    first = api.post(url, officer, json=body, headers=headers)
    replay = api.post(url, officer, json=body, headers=headers)
    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["ETag"] == first.headers["ETag"]
    events = api.get(f"/api/v1/cases/{case['id']}/events", officer).get_json()
    assert [e["to_state"] for e in events] == ["accepted", "investigating"]


def test_malformed_keys_are_refused(api, world):
    officer = world.user("a1.officer")
    for key in ("", "x" * 256, "bad key", "键"):
        response = api.post(
            "/api/v1/incidents", officer, json=BODY, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 400, key
        assert response.content_type == "application/problem+json"


def test_revealed_identity_data_is_never_stored_for_replay(api, world, app):
    officer = world.user("a1.officer")
    case = api.case(officer)
    person = api.get(f"/api/v1/cases/{case['id']}/persons", officer).get_json()[0]
    key = str(uuid.uuid4())
    url = f"/api/v1/cases/{case['id']}/persons/{person['id']}/reveal"
    for _ in range(2):
        response = api.post(
            url, officer, json={"reason": "核实报警人身份"}, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response.headers
    with app.app_context():
        stored = db.session.scalar(sa.select(sa.func.count()).where(IdempotencyRecord.key == key))
    assert stored == 0


def test_a_failed_commit_releases_the_key_and_is_audited(api, world, app):
    officer = world.user("a1.officer")
    key = str(uuid.uuid4())
    summary = f"提交失败 {uuid.uuid4()}"
    body = {**BODY, "summary": summary}
    failures: list[str] = []

    def refuse_first_incident_commit(session: Session) -> None:
        """Fail the request's own commit (its key was claimed by an earlier one)."""
        if has_request_context() and g.get("idempotency_record_id") and not failures:
            failures.append("refused")
            raise RuntimeError("the disk is full")

    sa.event.listen(Session, "before_commit", refuse_first_incident_commit)
    try:
        failed = api.post("/api/v1/incidents", officer, json=body, headers={"Idempotency-Key": key})
    finally:
        sa.event.remove(Session, "before_commit", refuse_first_incident_commit)
    assert failures == ["refused"]
    assert failed.status_code == 500
    assert failed.content_type == "application/problem+json"
    assert "disk" not in failed.get_data(as_text=True)
    assert _count_incidents(app, summary) == 0
    with app.app_context():
        entry = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.request_id == failed.headers["X-Request-Id"])
        ).one()
        assert (entry.status, entry.outcome) == (500, "error")
    retry = api.post("/api/v1/incidents", officer, json=body, headers={"Idempotency-Key": key})
    assert retry.status_code == 201
    assert _count_incidents(app, summary) == 1
