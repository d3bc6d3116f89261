"""Races that must have exactly one winner (checklist W2, W3, I1; gap-free numbers).

They run on both databases; the PostgreSQL pass is the one that matters for a
multi-process deployment, where requests really run in parallel.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from backend.audit import service as audit
from backend.audit.models import AuditEntry
from backend.cases.models import CaseEvent
from backend.extensions import db


def race(app, count: int, call: Callable[[Any, int], Any]) -> list[Any]:
    """Run ``call(client, i)`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        client = app.test_client()
        barrier.wait()
        return call(client, index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def bearer(api, user) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token(user)}"}


def test_twenty_concurrent_decisions_on_one_approval_apply_once(api, world, app):
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    case = api.case(officer, "criminal")
    api.step(case["id"], officer, "start_filing_review")
    assert api.step(case["id"], officer, "file_case", {"charge": "盗窃罪"}).status_code == 202
    approval = api.pending_approval(case["id"], legal)
    headers = bearer(api, legal)

    responses = race(
        app,
        20,
        lambda client, _: client.post(
            f"/api/v1/approvals/{approval['id']}/decision",
            headers=headers,
            json={"decision": "approve", "comment": "同意"},
        ),
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 19
    with app.app_context():
        approved = db.session.scalar(
            sa.select(sa.func.count()).where(
                CaseEvent.case_id == uuid.UUID(case["id"]), CaseEvent.type == "step_approved"
            )
        )
    assert approved == 1
    leader_stage = api.pending_approval(case["id"], world.user("a1.leader"))
    assert leader_stage["stage"] == 1


def test_twenty_concurrent_requests_with_one_etag_apply_once(api, world, app):
    officer = world.user("a1.officer")
    case = api.case(officer)
    etag = api.etag(case["id"], officer)
    headers = {**bearer(api, officer), "If-Match": etag}
    responses = race(
        app,
        20,
        lambda client, _: client.post(
            f"/api/v1/cases/{case['id']}/transitions",
            headers=headers,
            json={"action": "start_investigation", "payload": {}},
        ),
    )
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 200 and codes.count(200) == 1
    assert set(codes[1:]) <= {409, 412}
    events = api.get(f"/api/v1/cases/{case['id']}/events", officer).get_json()
    assert [e["to_state"] for e in events] == ["accepted", "investigating"]


def test_fifty_concurrent_case_creations_get_consecutive_numbers(api, world, app):
    officer = world.user("a2.officer")
    incidents = [api.incident(officer)["id"] for _ in range(50)]
    headers = bearer(api, officer)
    responses = race(
        app,
        50,
        lambda client, i: client.post(
            f"/api/v1/incidents/{incidents[i]}/accept",
            headers=headers,
            json={"case_type": "administrative", "title": f"并发 {i}"},
        ),
    )
    assert [r.status_code for r in responses] == [201] * 50
    numbers = sorted(int(r.get_json()["number"].rsplit("-", 1)[1]) for r in responses)
    assert numbers == list(range(numbers[0], numbers[0] + 50))


def test_concurrent_resends_with_one_idempotency_key_create_one_incident(api, world, app):
    officer = world.user("a1.officer")
    summary = f"并发重放 {uuid.uuid4()}"
    headers = {**bearer(api, officer), "Idempotency-Key": str(uuid.uuid4())}
    body = {
        "occurred_at": "2026-05-01T08:00:00+08:00",
        "place": "中山路1号",
        "category": "治安",
        "summary": summary,
    }
    responses = race(
        app, 10, lambda client, _: client.post("/api/v1/incidents", headers=headers, json=body)
    )
    codes = [r.status_code for r in responses]
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}
    assert len({r.get_json()["id"] for r in responses if r.status_code == 201}) == 1
    listed = api.get("/api/v1/incidents?limit=200", officer).get_json()["items"]
    assert [i["summary"] for i in listed].count(summary) == 1


def test_concurrent_resends_of_an_offline_incident_store_it_once(api, world, app):
    officer = world.user("a1.officer")
    incident_id = str(uuid.uuid4())
    headers = bearer(api, officer)
    body = {
        "id": incident_id,
        "occurred_at": "2026-05-01T08:00:00+08:00",
        "place": "中山路2号",
        "category": "治安",
        "summary": "离线重发",
    }
    responses = race(
        app, 10, lambda client, _: client.post("/api/v1/incidents", headers=headers, json=body)
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 9 + [201]
    assert {r.get_json()["id"] for r in responses} == {incident_id}


def test_concurrent_accepts_of_one_incident_make_one_case(api, world, app):
    officer = world.user("a1.officer")
    incident = api.incident(officer)
    headers = bearer(api, officer)
    responses = race(
        app,
        10,
        lambda client, i: client.post(
            f"/api/v1/incidents/{incident['id']}/accept",
            headers=headers,
            json={"case_type": "criminal", "title": f"抢先 {i}"},
        ),
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9
    accepted = api.get(f"/api/v1/incidents/{incident['id']}", officer).get_json()
    winner = next(r.get_json() for r in responses if r.status_code == 201)
    assert accepted["case_id"] == winner["id"]


def test_concurrent_requests_never_fork_the_audit_chain(api, world, app):
    headers = bearer(api, world.user("a1.legal"))
    responses = race(app, 20, lambda client, _: client.get("/api/v1/me", headers=headers))
    request_ids = [r.headers["X-Request-Id"] for r in responses]
    with app.app_context():
        rows = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.request_id.in_(request_ids))
        ).all()
        assert len(rows) == 20
        assert len({row.prev_hash for row in rows}) == 20
        assert audit.verify_chain().first_bad_id is None
