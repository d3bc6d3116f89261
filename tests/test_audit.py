"""The audit trail (checklist A1-A4, and the reveal reason of Z5).

A1: every operation of the route table, once allowed and once denied (without a
token, by a role that may not use it, on another unit's object), leaves exactly
one row in ``audit_entries``, found by the response's ``X-Request-Id``.
A2: each row names UTC time, actor, unit, device, source address, action,
object, outcome and request id; a reveal keeps its reason; sign-ins are audited.
A3: the database refuses UPDATE, DELETE (and TRUNCATE on PostgreSQL) of audit
rows and case events.
A4: when the audit row cannot be written, nothing of the change is committed.

The route table, the bodies that are valid for an allowed caller and the
private organisation come from ``test_authorization_matrix``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event
from test_authorization_matrix import (
    ACCESS,
    PERSON_BODY,
    PROBLEM_JSON,
    ROLES,
    Operation,
    Site,
    api_operations,
    incident_body,
    operation,
    private_org,
    send,
)

from backend.audit.models import AUDIT_OUTCOMES, AuditEntry
from backend.auth.models import AuthSession
from backend.cases.models import Case, CaseEvent, CasePerson, Incident
from backend.extensions import db

from conftest import PASSWORD, Api, Org, OrgUser

DEVICE = "audit-test:device.1"
CLIENT_ADDRESS = "127.0.0.1"
OUTCOMES = {
    200: "success",
    201: "success",
    204: "success",
    401: "denied",
    403: "denied",
    404: "denied",
    409: "conflict",
    400: "invalid",
    405: "invalid",
    422: "invalid",
    500: "error",
}
CREATED_TYPES = {
    "cases.create_incident": "incident",
    "cases.accept_incident": "case",
    "cases.add_person": "person",
    "org.create_unit": "unit",
    "org.create_user": "user",
    "devices.enroll": "device",
    "documents.create_document": "document",
    "documents.add_signature": "document_signature",
    "evidence.finalise": "evidence",
    "uploads.create_upload": "upload",
    "stats.create_bulletin": "bulletin",
    "stats.create_assessment": "assessment",
    "inspection.inspect_case": "inspection",
    "inspection.inspect_incident": "inspection",
    "inspection.file_problem": "problem",
    "inspection.create_entry": "area_entry",
    "sessions.create_session": "session",
    "sessions.add_participant": "session_participant",
    "sessions.add_recording": "session_recording",
    "identification.create_lineup": "lineup",
    "identification.sign_record": "document_signature",
}
STATED_REASONS = {
    "cases.reveal_person": "核实当事人身份",
    "devices.revoke": "设备遗失",
    "evidence.get_content": "核对",
    "evidence.request_disposal": "依法销毁",
    "supervision.resolve_warning": "已处理",
    "inspection.mark_key_incident": "涉未成年人",
    "sessions.abort_session": "视频连接中断",
}
"""Operations whose row keeps the reason (or purpose) the caller stated, as the table sends it."""
PARAM_TYPES = {
    "device_pk": "device",
    "signature_id": "document_signature",
    "entry_id": "area_entry",
    "participant_id": "session_participant",
}
"""Path parameters whose object type in the audit is not their name without ``_id``
(a refused request, whose route never named its object, names it by the parameter)."""


@dataclass(frozen=True)
class Participant:
    """A remote-session participant as the audit names them: by id, with no unit."""

    id: uuid.UUID
    session_id: str
    unit_id: None = None


def participant_of(authorization: str) -> Participant:
    claims = jwt.decode(authorization.split(" ", 1)[1], options={"verify_signature": False})
    return Participant(uuid.UUID(claims["sub"]), claims["sid"])


@pytest.fixture(scope="module")
def org(app: Flask) -> Org:
    return private_org(app)[0]


@pytest.fixture(scope="module")
def mapi(app: Flask) -> Api:
    return private_org(app)[1]


@pytest.fixture(scope="module")
def sites(mapi: Api, org: Org) -> dict[str, Site]:
    return {name: Site(mapi, org, name).build_all() for name in ("a1", "b1")}


@pytest.fixture
def fresh_site(mapi: Api, org: Org) -> Site:
    return Site(mapi, org, "a1")


def audit_rows(app: Flask, request_id: str) -> list[dict[str, Any]]:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.request_id == request_id)
        ).all()
        result = [
            {c.name: getattr(row, c.name) for c in AuditEntry.__table__.columns} for row in rows
        ]
        db.session.rollback()
    return result


def the_row(app: Flask, response: Any) -> dict[str, Any]:
    """The one audit row of ``response``'s request."""
    request_id = response.headers.get("X-Request-Id")
    assert request_id, "every API response names its request"
    rows = audit_rows(app, request_id)
    assert len(rows) == 1, f"{len(rows)} audit rows for request {request_id}: {rows}"
    return rows[0]


def check_row(
    row: dict[str, Any],
    response: Any,
    *,
    started: datetime,
    actor: OrgUser | Participant | None,
    method: str,
    action: str,
    targets: set[tuple[str | None, str | None]],
    device: str | None = DEVICE,
    reason: str | None = None,
) -> None:
    """The row has every field checklist A2 asks for, with the values of this request."""
    at = row["at"]
    assert isinstance(at, datetime) and at.utcoffset() is not None, "time must be tz-aware"
    at = at.astimezone(UTC)
    assert started - timedelta(seconds=2) <= at <= datetime.now(UTC) + timedelta(seconds=2)
    assert row["actor_id"] == (actor.id if actor else None)
    assert row["actor_unit_id"] == (actor.unit_id if actor else None)
    assert row["device_id"] == device
    assert row["source_ip"] == CLIENT_ADDRESS
    assert row["method"] == method
    assert row["action"] == action
    assert (row["object_type"], row["object_id"]) in targets, (row, targets)
    assert row["status"] == response.status_code
    assert row["outcome"] in AUDIT_OUTCOMES
    assert row["outcome"] == OUTCOMES[response.status_code], row
    assert row["request_id"] == response.headers["X-Request-Id"]
    assert row["reason"] == reason


def targets_for(
    op: Operation,
    site: Site,
    response: Any,
    actor: OrgUser | Participant | None,
    *,
    foreign: bool = False,
) -> set[Any]:
    """The (object type, object id) pairs the row of this call may name."""
    ok = response.status_code < 400
    data = response.get_json(silent=True) if ok else None
    endpoint = op.endpoint
    if endpoint == "auth.login":
        return {("login", site.staff("officer").username)}
    if ok and endpoint == "uploads.create_upload":
        return {("upload", response.headers["Location"].rstrip("/").rpartition("/")[2])}
    if ok and endpoint in CREATED_TYPES:
        return {(CREATED_TYPES[endpoint], data["id"])}
    if ok and endpoint == "org.me":
        return {("user", str(actor.id))}
    if ok and endpoint == "auth.refresh":
        claims = jwt.decode(data["access_token"], options={"verify_signature": False})
        return {("session", claims["sid"])}
    if ok and endpoint == "cases.reveal_person":
        return {("person", site.person_id)}
    if ok and endpoint == "sessions.join":
        return {("session", data["session_id"])}
    if op.access.scope == "participant":
        # A participant acts in their session; a refused token names nothing.
        return {("session", actor.session_id)} if isinstance(actor, Participant) else {(None, None)}
    values = {name: site.param(name) for name in op.params}
    if op.access.own_path is not None and not foreign:
        values |= op.access.own_path(site)
    pairs = {
        (PARAM_TYPES.get(name, name.removesuffix("_id")), value) for name, value in values.items()
    } | {(name.removesuffix("_id"), value) for name, value in values.items()}
    return pairs or {(None, None)}


def check_logout_target(app: Flask, row: dict[str, Any], actor: OrgUser) -> None:
    assert row["object_type"] == "session"
    with app.app_context():
        session = db.session.get(AuthSession, uuid.UUID(row["object_id"]))
        assert session is not None and session.user_id == actor.id
        assert session.revoked_reason == "logout"
        db.session.rollback()


# A1 (and A2 for every row)


def test_the_table_covers_the_route_table(app: Flask) -> None:
    assert {op.endpoint for op in api_operations(app)} == ACCESS.keys()


@pytest.mark.parametrize("endpoint", sorted(ACCESS))
def test_every_operation_leaves_exactly_one_audit_row(
    app: Flask, mapi: Api, org: Org, sites: dict[str, Site], fresh_site: Site, endpoint: str
) -> None:
    op = operation(app, endpoint)
    access = op.access
    device = {"X-Device-Id": DEVICE}
    positive = org.user(access.positive)
    calls: list[tuple[str, Any, OrgUser | Participant | None, Site, datetime]] = []

    actor: OrgUser | Participant = positive
    if access.participant is not None:
        actor = participant_of(access.participant(fresh_site))
    started = datetime.now(UTC)
    response = send(app, mapi, op, fresh_site, positive, headers=device)
    assert response.status_code == access.status, response.get_json(silent=True)
    if endpoint == "sessions.join":
        data = response.get_json()
        actor = Participant(uuid.UUID(data["participant_id"]), data["session_id"])
    calls.append(("allowed", response, actor, fresh_site, started))

    if access.public:
        body = (
            {"username": positive.username, "password": "not the password"}
            if endpoint == "auth.login"
            else {"code": "00000000"}
            if endpoint == "sessions.join"
            else {"refresh_token": "not-a-token"}
        )
        started = datetime.now(UTC)
        response = mapi.post(op.rule, json=body, headers=device)
        assert response.status_code == 401, response.get_json()
        calls.append(("bad credentials", response, None, fresh_site, started))
    else:
        started = datetime.now(UTC)
        response = send(app, mapi, op, sites["a1"], None, headers=device)
        assert response.status_code == 401, response.get_json()
        calls.append(("no token", response, None, sites["a1"], started))
        refused_role = next((r for r in ROLES if r not in access.roles), None)
        if access.participant is not None:
            started = datetime.now(UTC)
            user_token = {**device, "Authorization": f"Bearer {mapi.token(positive)}"}
            response = send(app, mapi, op, sites["a1"], positive, headers=user_token)
            assert response.status_code == 401, response.get_json()
            calls.append(("user token", response, None, sites["a1"], started))
        elif refused_role:
            caller = org.user(f"a1.{refused_role}")
            started = datetime.now(UTC)
            response = send(app, mapi, op, sites["a1"], caller, headers=device)
            assert response.status_code == 403, response.get_json()
            calls.append(("role", response, caller, sites["a1"], started))
        if access.scope in ("object", "reference"):
            started = datetime.now(UTC)
            response = send(app, mapi, op, sites["b1"], positive, foreign=True, headers=device)
            assert response.status_code == access.refused, response.get_json()
            calls.append(("foreign object", response, positive, sites["b1"], started))

    for label, response, actor, site, started in calls:
        row = the_row(app, response)
        targets = targets_for(op, site, response, actor, foreign=label == "foreign object")
        reason = None
        if label == "allowed" and endpoint == "auth.logout":
            check_logout_target(app, row, actor)
            targets = {(row["object_type"], row["object_id"])}
        if label == "allowed" and endpoint in STATED_REASONS:
            reason = STATED_REASONS[endpoint]
        check_row(
            row,
            response,
            started=started,
            actor=actor,
            method=op.method,
            action=endpoint,
            targets=targets,
            reason=reason,
        )


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "action"),
    [
        ("GET", "/api/v1/no-such-thing", {}, 404, "unrouted"),
        ("DELETE", "/api/v1/cases", {}, 405, "unrouted"),
        ("MKCALENDAR", "/api/v1/cases", {}, 405, "unrouted"),
        ("GET", "/api/v1/cases", {"X-Device-Id": "bad device id"}, 400, "cases.list_cases"),
        ("GET", "/api/v1/cases", {"X-Device-Id": "d" * 200}, 400, "cases.list_cases"),
    ],
    ids=["unknown-route", "wrong-method", "odd-method", "bad-device", "long-device"],
)
def test_malformed_requests_leave_one_row_too(
    app: Flask,
    mapi: Api,
    org: Org,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    action: str,
) -> None:
    """Requests that fail before reaching a view are audited as well, and a header the
    service refuses is not copied into the row."""
    started = datetime.now(UTC)
    response = mapi.request(method, path, org.user("a1.officer"), headers=headers)
    assert response.status_code == status, response.get_json(silent=True)
    assert response.mimetype == PROBLEM_JSON
    row = the_row(app, response)
    assert row["action"] == action
    assert row["status"] == status
    assert row["device_id"] is None
    assert row["method"] == method[:8]
    assert row["at"].astimezone(UTC) >= started - timedelta(seconds=2)


def test_the_request_id_of_the_client_is_kept(app: Flask, mapi: Api, org: Org) -> None:
    mine = "client-" + uuid.uuid4().hex
    response = mapi.get("/api/v1/me", org.user("a1.officer"), headers={"X-Request-Id": mine})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == mine
    assert the_row(app, response)["request_id"] == mine
    bad = "no spaces allowed here"
    response = mapi.get("/api/v1/me", org.user("a1.officer"), headers={"X-Request-Id": bad})
    assert response.headers["X-Request-Id"] != bad
    assert the_row(app, response)["action"] == "org.me"


# A2 and Z5: the reason for revealing identity data


def test_a_reveal_keeps_its_reason(app: Flask, mapi: Api, org: Org, fresh_site: Site) -> None:
    officer, person_id = org.user("a1.officer"), fresh_site.person_id
    base = f"/api/v1/cases/{fresh_site.case_id}/persons"
    listed = mapi.get(base, officer)
    assert listed.status_code == 200
    masked = next(p for p in listed.get_json() if p["id"] == person_id)
    assert masked["masked"] is True and masked["id_number"] != PERSON_BODY["id_number"]
    assert the_row(app, listed)["reason"] is None

    reason = "办案需要：核实嫌疑人身份 " + uuid.uuid4().hex[:6]
    path = f"{base}/{person_id}/reveal"
    started = datetime.now(UTC)
    response = mapi.post(path, officer, json={"reason": reason}, headers={"X-Device-Id": DEVICE})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id_number"] == PERSON_BODY["id_number"]
    check_row(
        the_row(app, response),
        response,
        started=started,
        actor=officer,
        method="POST",
        action="cases.reveal_person",
        targets={("person", person_id)},
        reason=reason,
    )

    for body in ({}, {"reason": ""}, {"reason": "看看"}):
        response = mapi.post(path, officer, json=body)
        assert response.status_code == 422, body
        row = the_row(app, response)
        assert row["outcome"] == "invalid" and row["reason"] is None
    response = mapi.post(path, org.user("a1.manager"), json={"reason": reason})
    assert response.status_code == 403
    assert the_row(app, response)["outcome"] == "denied"


# A1 and A2: sign-ins


def test_sign_ins_are_audited_whether_they_succeed_or_fail(app: Flask, mapi: Api, org: Org) -> None:
    user = org.user("a1.officer2")
    headers = {"X-Device-Id": DEVICE}
    attempts = [
        ({"username": user.username, "password": "wrong password"}, 401, None, user.username),
        ({"username": user.username.upper(), "password": PASSWORD}, 200, user, user.username),
        ({"username": "nobody-" + uuid.uuid4().hex[:8], "password": PASSWORD}, 401, None, None),
    ]
    for body, status, actor, username in attempts:
        started = datetime.now(UTC)
        response = mapi.post("/api/v1/auth/login", json=body, headers=headers)
        assert response.status_code == status, response.get_json()
        check_row(
            the_row(app, response),
            response,
            started=started,
            actor=actor,
            method="POST",
            action="auth.login",
            targets={("login", username or body["username"])},
        )


# A3: append-only


@pytest.fixture
def rows_to_tamper(app: Flask, mapi: Api, org: Org, fresh_site: Site) -> dict[str, int]:
    """The id of an audit row and of a case event, both just written."""
    response = mapi.get(f"/api/v1/cases/{fresh_site.case_id}", org.user("a1.officer"))
    with app.app_context():
        audit_id = db.session.scalar(
            sa.select(AuditEntry.id).where(
                AuditEntry.request_id == response.headers["X-Request-Id"]
            )
        )
        event_id = db.session.scalar(
            sa.select(sa.func.max(CaseEvent.id)).where(
                CaseEvent.case_id == uuid.UUID(fresh_site.case_id)
            )
        )
        db.session.rollback()
    assert audit_id and event_id
    return {"audit_entries": audit_id, "case_events": event_id}


def table_state(app: Flask, table: str, row_id: int) -> tuple[Any, ...]:
    """How many rows ``table`` has, and the row ``row_id``."""
    with app.app_context():
        count = db.session.scalar(sa.text(f"SELECT count(*) FROM {table}"))
        row = db.session.execute(sa.text(f"SELECT * FROM {table} WHERE id = :id"), {"id": row_id})
        state = (count, tuple(row.one()))
        db.session.rollback()
    return state


def refused(app: Flask, statement: str, **params: Any) -> str:
    """Run ``statement``; it must fail in the database. Returns the error message."""
    with app.app_context():
        try:
            db.session.execute(sa.text(statement), params)
            db.session.flush()
        except sa.exc.DBAPIError as error:
            return str(error.orig)
        finally:
            db.session.rollback()
    pytest.fail(f"the database accepted: {statement}")


@pytest.mark.parametrize(
    ("table", "column"), [("audit_entries", "outcome"), ("case_events", "comment")]
)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET {column} = 'tampered' WHERE id = :id",
        "UPDATE {table} SET {column} = 'tampered'",
        "DELETE FROM {table} WHERE id = :id",
        "DELETE FROM {table}",
    ],
    ids=["update-one", "update-all", "delete-one", "delete-all"],
)
def test_the_database_refuses_to_change_history(
    app: Flask, rows_to_tamper: dict[str, int], table: str, column: str, statement: str
) -> None:
    row_id = rows_to_tamper[table]
    before = table_state(app, table, row_id)
    message = refused(app, statement.format(table=table, column=column), id=row_id)
    assert "append-only" in message
    assert table_state(app, table, row_id) == before


@pytest.mark.parametrize("table", ["audit_entries", "case_events"])
def test_postgres_refuses_to_truncate_history(
    app: Flask, rows_to_tamper: dict[str, int], table: str
) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has no TRUNCATE (its DELETE is refused above)")
    row_id = rows_to_tamper[table]
    before = table_state(app, table, row_id)
    assert "append-only" in refused(app, f"TRUNCATE {table}")
    assert table_state(app, table, row_id) == before


# A4: fail closed


@contextmanager
def audit_writes_fail() -> Iterator[None]:
    """Make every audit insert fail until the block ends."""

    def refuse(*_: Any) -> None:
        raise RuntimeError("the audit store is unavailable")

    event.listen(AuditEntry, "before_insert", refuse)
    try:
        yield
    finally:
        event.remove(AuditEntry, "before_insert", refuse)


def assert_failed_closed(app: Flask, response: Any) -> None:
    assert response.status_code == 500
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == 500 and "Traceback" not in response.get_data(as_text=True)
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert audit_rows(app, response.headers["X-Request-Id"]) == []


def test_no_incident_is_kept_when_its_audit_row_cannot_be_written(
    app: Flask, mapi: Api, org: Org
) -> None:
    officer = org.user("a1.officer")
    incident_id = str(uuid.uuid4())
    mapi.token(officer)
    with audit_writes_fail():
        response = mapi.post("/api/v1/incidents", officer, json=incident_body(id=incident_id))
    assert_failed_closed(app, response)
    with app.app_context():
        assert db.session.get(Incident, uuid.UUID(incident_id)) is None
        db.session.rollback()
    assert mapi.get(f"/api/v1/incidents/{incident_id}", officer).status_code == 404
    # Once the audit trail works again, so does the same request.
    response = mapi.post("/api/v1/incidents", officer, json=incident_body(id=incident_id))
    assert response.status_code == 201, response.get_json()
    assert the_row(app, response)["object_id"] == incident_id


def test_no_step_is_kept_when_its_audit_row_cannot_be_written(
    app: Flask, mapi: Api, org: Org, fresh_site: Site
) -> None:
    officer = org.user("a1.officer")
    case_id = uuid.UUID(fresh_site.case_id)

    def case_state() -> tuple[Any, ...]:
        with app.app_context():
            case = db.session.get_one(Case, case_id)
            count = sa.select(sa.func.count())
            events = db.session.scalar(count.where(CaseEvent.case_id == case_id))
            persons = db.session.scalar(count.where(CasePerson.case_id == case_id))
            state = (case.version, case.status, case.updated_at, events, persons)
            db.session.rollback()
        return state

    etag = fresh_site.etag()
    before = case_state()
    with audit_writes_fail():
        step = mapi.post(
            f"/api/v1/cases/{case_id}/transitions",
            officer,
            headers={"If-Match": etag},
            json={"action": "start_investigation", "payload": {}},
        )
        person = mapi.post(f"/api/v1/cases/{case_id}/persons", officer, json=PERSON_BODY)
    assert_failed_closed(app, step)
    assert_failed_closed(app, person)
    assert case_state() == before
    assert fresh_site.etag() == etag


def test_a_long_stated_reason_is_shortened_in_the_audit_row_and_kept_by_its_domain(
    app: Flask, api: Api, world: Org
) -> None:
    """A reason may be longer than the audit column (2,000 characters for a key incident)."""
    officer, legal = world.user("a1.officer"), world.user("a1.legal")
    incident = api.incident(officer)
    reason = "涉及未成年人，" * 300
    response = api.post(
        f"/api/v1/incidents/{incident['id']}/key", legal, json={"reason": reason[:2000]}
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["reason"] == reason[:2000]
    row = the_row(app, response)
    assert len(row["reason"]) == 500 and reason.startswith(row["reason"][:-1])
    assert row["reason"].endswith("…")
