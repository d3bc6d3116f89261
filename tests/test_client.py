"""The typed API client against a real HTTP server (werkzeug, threaded) on the test app."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from backend.extensions import db
from shared.client import (
    TOKEN_EXPIRED,
    Approval,
    AuthError,
    ConflictError,
    FieldcaseClient,
    ForbiddenError,
    Incident,
    NotFoundError,
    PreconditionFailed,
    RateLimited,
    ServerError,
    TokenPair,
    ValidationError,
)
from shared.enums import CaseType, Decision, PersonRole, Role, UnitTier

from conftest import PASSWORD, Api, Org, OrgUser, make_app
from support_workflow import sign_notification_record

WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
PROBLEM = "urn:fieldcase:problem:"


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free local port in a background thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="module")
def base_url(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


Connect = Callable[..., FieldcaseClient]


@pytest.fixture
def connect(base_url: str) -> Iterator[Connect]:
    """Make clients of the test server, signed in as ``user`` when one is given."""
    clients: list[FieldcaseClient] = []

    def make(user: OrgUser | None = None, **options: Any) -> FieldcaseClient:
        client = FieldcaseClient(base_url, **options)
        clients.append(client)
        if user is not None:
            client.login(user.username, PASSWORD)
        return client

    yield make
    for client in clients:
        client.close()


class Recorder:
    """A requests session that keeps every response, to look at the headers sent and received."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.responses: list[requests.Response] = []
        self.session.hooks["response"].append(self._keep)

    def _keep(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.responses.append(response)

    def sent(self, method: str, path_part: str) -> list[requests.PreparedRequest]:
        return [
            r.request
            for r in self.responses
            if r.request.method == method and path_part in (r.request.path_url or "")
        ]


def file_incident(client: FieldcaseClient, **fields: Any) -> Incident:
    values: dict[str, Any] = {
        "occurred_at": WHEN,
        "place": "人民路1号",
        "category": "治安",
        "summary": "两人在夜市互殴。",
        "reporter": {"name": "张伟", "phone": "13812345678", "id_number": "110101199001011234"},
        **fields,
    }
    return client.create_incident(**values)


def new_case_id(client: FieldcaseClient, title: str = "测试案件") -> str:
    incident = file_incident(client)
    return client.accept_incident(
        incident["id"], case_type=CaseType.ADMINISTRATIVE, title=title
    ).case["id"]


def pending_approval(client: FieldcaseClient, case_id: str) -> Approval:
    matches = [a for a in client.iter_approvals(status="pending") if a["case_id"] == case_id]
    assert len(matches) == 1, matches
    return matches[0]


# Sign-in


def test_login_me_and_logout(connect: Connect, world: Org) -> None:
    user = world.user("a1.officer")
    seen: list[TokenPair | None] = []
    client = connect(device_id="test-phone-1", on_tokens=seen.append)

    pair = client.login(user.username, PASSWORD)

    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] > 0
    assert pair["user"]["id"] == str(user.id)
    assert seen == [pair]
    assert (client.access_token, client.refresh_token) == (
        pair["access_token"],
        pair["refresh_token"],
    )
    me = client.me()
    assert me["username"] == user.username
    assert me["roles"] == ["officer"]
    assert me["unit"]["id"] == str(user.unit_id)
    assert me["unit"]["tier"] == "station"

    restored = connect()
    restored.set_tokens(pair["access_token"], pair["refresh_token"])
    assert restored.me()["id"] == me["id"]

    client.logout()

    assert seen[-1] is None
    assert (client.access_token, client.refresh_token) == (None, None)
    with pytest.raises(AuthError) as signed_out:
        client.me()
    assert signed_out.value.type == PROBLEM + "unauthorized"
    # The restored copy of the ended sign-in is refused, and not refreshed: it has not expired.
    with pytest.raises(AuthError) as ended:
        restored.me()
    assert ended.value.type == PROBLEM + "session-ended"
    assert restored.refresh_token == pair["refresh_token"]


def test_wrong_password_and_lockout(connect: Connect) -> None:
    client = connect()
    username = f"nobody.{uuid.uuid4().hex[:8]}"
    for _ in range(5):
        with pytest.raises(AuthError) as wrong:
            client.login(username, "not the password")
        assert wrong.value.type == PROBLEM + "authentication-failed"
        assert wrong.value.status == 401
    with pytest.raises(RateLimited) as locked:
        client.login(username, "not the password")
    assert locked.value.type == PROBLEM + "account-locked"
    assert locked.value.retry_after is not None
    assert locked.value.retry_after > 0
    assert client.access_token is None


def test_expired_access_token_is_refreshed_once(
    database_url: str, tmp_path: Any, world: Org
) -> None:
    """Tokens are checked with a 5 s leeway, so this app issues them already expired
    (instead of the test sleeping), then switches to a normal lifetime."""
    user = world.user("a1.officer")
    expiring = make_app(database_url, tmp_path, ACCESS_TOKEN_LIFETIME=timedelta(seconds=-30))
    seen: list[TokenPair | None] = []
    try:
        with serving(expiring) as url, FieldcaseClient(url, on_tokens=seen.append) as client:
            first = client.login(user.username, PASSWORD)

            # The refreshed token is expired too: one refresh, one retry, then the error.
            with pytest.raises(AuthError) as expired:
                client.me()
            assert expired.value.type == TOKEN_EXPIRED
            assert len(seen) == 2
            assert client.refresh_token != first["refresh_token"]

            # Concurrent requests that find the token expired share one refresh.
            expiring.config["ACCESS_TOKEN_LIFETIME"] = timedelta(minutes=5)
            with ThreadPoolExecutor(max_workers=4) as pool:
                found = list(pool.map(lambda _: client.me()["id"], range(4)))
            assert found == [str(user.id)] * 4
            assert len(seen) == 3
            refreshed = seen[-1]
            assert refreshed is not None
            assert client.access_token == refreshed["access_token"]
            assert refreshed["user"]["id"] == str(user.id)
    finally:
        with expiring.app_context():
            db.engine.dispose()


# The case workflow


def test_administrative_case_from_report_to_closure(connect: Connect, world: Org, api: Api) -> None:
    recorder = Recorder()
    officer = connect(world.user("a1.officer"), session=recorder.session)
    legal = connect(world.user("a1.legal"))
    leader = connect(world.user("a1.leader"))

    incident = file_incident(officer, latitude=39.9, longitude=116.4, source="walk_in")
    assert incident["status"] == "reported"
    assert incident["reporter_name"] == "张伟"
    assert incident["unit_id"] == str(world.user("a1.officer").unit_id)
    case, etag = officer.accept_incident(
        incident["id"], case_type=CaseType.ADMINISTRATIVE, title="夜市互殴"
    )
    assert case["status"] == "accepted"
    assert case["incident_id"] == incident["id"]
    assert case["due_at"] is not None
    assert officer.get_incident(incident["id"])["case_id"] == case["id"]
    assert officer.get_case(case["id"]) == (case, etag)
    assert "start_investigation" in {a["name"] for a in officer.list_actions(case["id"])}

    started = officer.request_step(case["id"], "start_investigation", etag=etag)
    assert started["outcome"] == "applied"
    assert started["request"] is None
    assert started["case"]["status"] == "investigating"
    assert started["etag"] != etag
    assert started["etag"] == officer.get_case(case["id"]).etag

    suspect = officer.add_person(
        case["id"], role=PersonRole.SUSPECT, name="李四", id_number="110101199202023456"
    )
    assert suspect["masked"] is True
    assert suspect["id_number"] == "1101**********3456"
    shown = officer.reveal_person(case["id"], suspect["id"], "制作询问笔录，核对身份")
    assert shown["masked"] is False
    assert shown["id_number"] == "110101199202023456"
    assert {p["role"] for p in officer.list_persons(case["id"])} == {"reporter", "suspect"}

    # The decision needs the party's signed notification record (告知笔录); the
    # client has no document methods, so it is made through the test client.
    sign_notification_record(api, world, world.user("a1.officer"), case["id"])

    facts = {"facts": "殴打他人", "reasons_and_basis": "治安管理处罚法", "hearing_requested": False}
    notified = officer.request_step(case["id"], "notify", facts)  # reads the ETag itself
    assert notified["case"]["status"] == "notified"
    offered = {a["name"]: a for a in officer.list_actions(case["id"])}
    assert offered["submit_decision"]["requires_signed"] == ["notification_record"]
    assert offered["submit_decision"]["missing_signed"] == []

    submitted = officer.request_step(
        case["id"],
        "submit_decision",
        {"penalty": "fine", "penalty_detail": "罚款二百元"},
        comment="请审核",
        etag=notified["etag"],
    )
    assert submitted["outcome"] == "pending"
    assert submitted["case"]["status"] == "legal_review"
    assert submitted["request"] is not None
    assert submitted["request"]["action"] == "submit_decision"
    assert officer.list_actions(case["id"]) == []

    review = pending_approval(legal, case["id"])
    assert review["role"] == "legal_officer"
    assert review["request"]["id"] == submitted["request"]["id"]
    assert legal.get_approval(review["id"])["status"] == "pending"
    reviewed = legal.decide(review["id"], Decision.APPROVE, "同意")
    assert reviewed["outcome"] == "pending"
    assert reviewed["case"]["status"] == "leader_approval"

    decided = leader.decide(pending_approval(leader, case["id"])["id"], "approve")
    assert decided["outcome"] == "applied"
    assert decided["case"]["status"] == "decided"
    assert decided["etag"] == officer.get_case(case["id"]).etag
    assert legal.get_approval(review["id"])["status"] == "approved"

    executed = officer.request_step(
        case["id"],
        "execute",
        {"served_at": datetime(2026, 3, 5, 10, 0, tzinfo=UTC)},
        etag=decided["etag"],
    )
    closed = officer.request_step(case["id"], "close", etag=executed["etag"])
    assert closed["case"]["status"] == "closed"
    assert closed["case"]["is_open"] is False
    assert closed["case"]["due_at"] is None
    with pytest.raises(ConflictError) as over:
        officer.request_step(case["id"], "close")
    assert over.value.type == PROBLEM + "case-closed"

    events = officer.list_events(case["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["to_state"] for e in events if e["type"] == "transition"] == [
        "accepted",
        "investigating",
        "notified",
        "decided",
        "executed",
        "closed",
    ]
    assert officer.list_events(case["id"], after=len(events) - 1) == events[-1:]

    # Every POST that changes data carried an Idempotency-Key; reading identity data did not.
    posts = recorder.sent("POST", "/api/v1/")
    for request in posts:
        path = request.path_url or ""
        stored = not path.endswith(("/auth/login", "/reveal"))
        assert ("Idempotency-Key" in request.headers) is stored, path
    transitions = recorder.sent("POST", "/transitions")
    assert len(transitions) == 6
    assert all(t.headers["If-Match"] for t in transitions)


def test_step_inputs_and_request_fields_are_validated(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"))
    case_id = new_case_id(officer)
    officer.request_step(case_id, "start_investigation")

    with pytest.raises(ValidationError) as inputs:
        officer.request_step(case_id, "notify", {"facts": "殴打他人"})
    assert inputs.value.status == 422
    assert set(inputs.value.errors["json"]["payload"]) == {"reasons_and_basis", "hearing_requested"}

    with pytest.raises(ValidationError) as fields:
        file_incident(officer, reporter={"name": "张伟", "phone": "not a phone"})
    assert list(fields.value.errors["json"]["reporter"]) == ["phone"]


def test_stale_etag_is_refused_with_the_current_one(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"))
    case_id = new_case_id(officer)
    _, etag = officer.get_case(case_id)
    officer.request_step(case_id, "start_investigation", etag=etag)

    facts = {"facts": "殴打他人", "reasons_and_basis": "治安管理处罚法", "hearing_requested": True}
    with pytest.raises(PreconditionFailed) as stale:
        officer.request_step(case_id, "notify", facts, etag=etag)

    current = officer.get_case(case_id)
    assert stale.value.status == 412
    assert stale.value.current_etag == current.etag
    assert current.case["status"] == "investigating"
    retried = officer.request_step(case_id, "notify", facts, etag=stale.value.current_etag)
    assert retried["case"]["status"] == "notified"


def test_get_case_if_changed(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"))
    case_id = new_case_id(officer)
    _, etag = officer.get_case(case_id)

    assert officer.get_case_if_changed(case_id, etag) is None

    step = officer.request_step(case_id, "start_investigation", etag=etag)
    changed = officer.get_case_if_changed(case_id, etag)
    assert changed is not None
    assert changed.etag == step["etag"]
    assert changed.case["status"] == "investigating"


def test_errors_map_to_their_classes(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"))
    other_district = connect(world.user("b1.officer"))
    legal = connect(world.user("a1.legal"))
    case_id = new_case_id(officer)

    with pytest.raises(NotFoundError) as missing:
        officer.get_case(uuid.uuid4())
    assert missing.value.status == 404
    assert missing.value.type == PROBLEM + "not-found"
    assert missing.value.request_id
    with pytest.raises(NotFoundError):
        other_district.get_case(case_id)
    with pytest.raises(ForbiddenError) as forbidden:
        officer.list_approvals(status="pending")
    assert forbidden.value.status == 403
    with pytest.raises(ForbiddenError):
        officer.list_users()
    with pytest.raises(ForbiddenError):
        legal.request_step(case_id, "start_investigation")
    with pytest.raises(ValueError):
        officer.get_case("../users")


def test_server_errors_and_network_failures() -> None:
    down = Response("<html>维护中</html>", status=503, mimetype="text/html")
    with (
        serving(down) as url,
        FieldcaseClient(url) as client,
        pytest.raises(ServerError) as failed,
    ):
        client.list_workflows()
    assert failed.value.status == 503
    assert failed.value.title == "Service Unavailable"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with (
        FieldcaseClient(f"http://127.0.0.1:{closed_port}", timeout=5) as client,
        pytest.raises(requests.ConnectionError),
    ):
        client.list_workflows()


# Idempotency and offline resends


def test_resend_with_the_same_key_replays_the_incident(connect: Connect, world: Org) -> None:
    recorder = Recorder()
    officer = connect(world.user("a1.officer"), session=recorder.session)
    key = str(uuid.uuid4())
    summary = f"重发测试 {key}"

    first = file_incident(officer, summary=summary, idempotency_key=key)
    again = file_incident(officer, summary=summary, idempotency_key=key)

    assert again == first
    assert [i["id"] for i in officer.iter_incidents(limit=200) if i["summary"] == summary] == [
        first["id"]
    ]
    created, replayed = [r for r in recorder.responses if r.request.method == "POST"][-2:]
    assert created.request.headers["Idempotency-Key"] == key
    assert "Idempotent-Replayed" not in created.headers
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.request.body == created.request.body

    with pytest.raises(ValidationError) as reused:
        file_incident(officer, summary=summary + "（改）", idempotency_key=key)
    assert reused.value.status == 422
    assert reused.value.type == PROBLEM + "idempotency-key-reuse"
    assert reused.value.errors == {}


def test_resent_step_with_its_key_is_not_applied_twice(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"))
    case_id = new_case_id(officer)
    key = str(uuid.uuid4())
    _, etag = officer.get_case(case_id)

    first = officer.request_step(case_id, "start_investigation", etag=etag, idempotency_key=key)
    # The outbox resends with the ETag it stored: the stored answer comes back.
    again = officer.request_step(case_id, "start_investigation", etag=etag, idempotency_key=key)

    assert again == first
    transitions = [e for e in officer.list_events(case_id) if e["type"] == "transition"]
    assert [e["action"] for e in transitions] == ["accept", "start_investigation"]


def test_client_ids_make_resends_harmless(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"))
    incident_id, case_id, person_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    # Each call has a fresh Idempotency-Key: the client ids alone prevent duplicates.
    incident = file_incident(officer, incident_id=incident_id)
    assert incident["id"] == str(incident_id)
    assert file_incident(officer, incident_id=incident_id) == incident

    accepted = officer.accept_incident(
        incident_id, case_type="administrative", title="离线受案", case_id=case_id
    )
    assert accepted.case["id"] == str(case_id)
    assert (
        officer.accept_incident(
            incident_id, case_type="administrative", title="离线受案", case_id=case_id
        )
        == accepted
    )

    person = officer.add_person(case_id, role="witness", name="王五", person_id=person_id)
    assert officer.add_person(case_id, role="witness", name="王五", person_id=person_id) == person
    assert [p["id"] for p in officer.list_persons(case_id)].count(str(person_id)) == 1

    with pytest.raises(ConflictError):
        file_incident(officer, incident_id=incident_id, summary="另一份内容")


def test_closing_an_incident(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"))
    incident = file_incident(officer)

    closed = officer.close_incident(incident["id"], "经核实不属于案件")

    assert closed["status"] == "closed_not_case"
    assert closed["closed_reason"] == "经核实不属于案件"
    assert closed["id"] in {i["id"] for i in officer.iter_incidents(status="closed_not_case")}
    with pytest.raises(ConflictError):
        officer.accept_incident(incident["id"], case_type=CaseType.CRIMINAL, title="晚了")


# Lists


def test_iter_cases_follows_the_cursor(connect: Connect, world: Org) -> None:
    recorder = Recorder()
    officer = connect(world.user("a1.officer"), session=recorder.session)
    token = uuid.uuid4().hex[:12]
    ids = [new_case_id(officer, f"分页 {token} {n}") for n in range(5)]

    page = officer.list_cases(q=token, limit=2)
    assert len(page["items"]) == 2
    assert page["next_cursor"]

    before = len(recorder.sent("GET", "/api/v1/cases?"))
    found = [c["id"] for c in officer.iter_cases(q=token, limit=2)]
    assert sorted(found) == sorted(ids)
    assert len(recorder.sent("GET", "/api/v1/cases?")) - before == 3

    officer.request_step(ids[0], "start_investigation")
    assert [c["id"] for c in officer.iter_cases(q=token, status="investigating")] == [ids[0]]
    assert len(list(officer.iter_cases(q=token, status=["accepted", "investigating"]))) == 5
    assert len(list(officer.iter_cases(q=token, open=True, case_type="administrative"))) == 5
    assert list(officer.iter_cases(q=token, case_type=CaseType.CRIMINAL)) == []
    handler = world.user("a1.officer").id
    assert len(list(officer.iter_cases(q=token, handler_id=handler, limit=3))) == 5


def test_workflows_are_described(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"))

    workflows = {w["case_type"]: w for w in officer.list_workflows()}

    assert set(workflows) == {"administrative", "criminal"}
    administrative = workflows["administrative"]
    assert administrative["initial"] == "reported"
    submit = next(a for a in administrative["actions"] if a["name"] == "submit_decision")
    assert submit["from"] == ["notified"]
    assert submit["to"] == "decided"
    assert [s["role"] for s in submit["approvals"]] == ["legal_officer", "leader"]
    assert submit["requires_signed"] == ["notification_record"]


# Organisation


def test_admin_manages_units_and_users(connect: Connect, world: Org) -> None:
    admin = connect(world.user("a.admin"))
    code = "T" + uuid.uuid4().hex[:8].upper()

    station = admin.create_unit(
        code=code, name="新派出所", tier=UnitTier.STATION, parent_id=world.unit("a").id
    )
    assert station["parent_id"] == str(world.unit("a").id)
    assert station["tier"] == "station"
    renamed = admin.update_unit(station["id"], name_en="New station")
    assert renamed["name_en"] == "New station"
    assert renamed in admin.list_units()
    assert admin.get_unit(station["id"]) == renamed

    user = admin.create_user(
        username=f"{code.lower()}.officer",
        display_name="新民警",
        password=PASSWORD,
        unit_id=station["id"],
        roles=[Role.OFFICER],
    )
    assert admin.list_users(unit_id=station["id"]) == [user]
    newcomer = connect()
    newcomer.login(user["username"], PASSWORD)
    assert newcomer.me()["unit"] == renamed

    disabled = admin.update_user(user["id"], active=False)

    assert disabled["active"] is False
    assert admin.get_user(user["id"]) == disabled
    with pytest.raises(AuthError):
        newcomer.me()
