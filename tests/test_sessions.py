"""Remote sessions: scheduling, participants, the state machine, one-time codes and
participant tokens, the hash-chained log and its closing signature, and the
interrogation and meeting rules (notices, transcript, rules-engine facts)."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from flask import Flask, g

from backend.audit.models import AuditEntry
from backend.auth import tokens
from backend.auth.access import participant_route
from backend.common import utcnow
from backend.errors import Conflict, Forbidden, Unauthorized, Unprocessable
from backend.extensions import db
from backend.org import service as org
from backend.org.models import Unit, User
from backend.sessions import service
from backend.sessions.models import (
    ParticipantRole,
    RemoteSession,
    SessionEvent,
    SessionKind,
    SessionParticipant,
)
from shared.enums import Role

from conftest import PASSWORD, Api, Org, OrgUser
from support_documents import SUSPECT, add_person, new_document
from support_evidence import EvidenceMaker, configure_local_store, enrol, mp4_bytes
from support_sessions import (
    SessionSetup,
    bearer,
    client_address,
    create_session,
    criminal_case,
    identification_session,
    interrogation_session,
    join,
    meeting_session,
    new_session,
)

PROBLEM = "application/problem+json"


def problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == PROBLEM
    body = response.get_json()
    if slug is not None:
        assert body["type"].endswith(":" + slug), body
    return body


def facts(api: Api, user: OrgUser, case_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/cases/{case_id}/supervision", user)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["facts"]


# Scheduling


def test_a_session_is_scheduled_with_its_sites_settings_and_first_log_entry(api, world):
    setup = identification_session(api, world, settings={"presentation": "sequential"})
    session = setup.get()
    assert session["state"] == "scheduled"
    assert session["kind"] == "identification"
    assert session["case_id"] == setup.case["id"]
    assert session["settings"] == {"presentation": "sequential"}
    assert [s["key"] for s in session["sites"]] == ["centre", "jail"]
    assert [p["role"] for p in session["participants"]] == ["presiding", "presiding"]
    assert session["closing_signature"] is None
    events = setup.events()
    assert [e["kind"] for e in events] == ["scheduled", "participant_added", "participant_added"]
    assert events[0]["prev_hash"] == "0" * 64
    assert session["log_head"] == events[-1]["hash"]
    assert session["event_count"] == 3
    listed = api.get(f"/api/v1/cases/{setup.case['id']}/sessions", setup.officer).get_json()
    assert [s["id"] for s in listed["items"]] == [setup.id]
    defaults = new_session(api, world, "identification", presiding=False).get()
    assert defaults["settings"] == {"presentation": "simultaneous"}


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"kind": "lineup"}, 422),
        ({"scheduled_end": "2026-01-01T00:00:00+00:00"}, 422),
        ({"scheduled_start": "2026-03-01T08:00:00"}, 422),
        ({"settings": {"presentation": "one_by_one"}}, 422),
        ({"settings": {"colour": "red"}}, 422),
        ({"video_link": "http://video.example.internal/room"}, 422),
        ({"video_link": "javascript:alert(1)"}, 422),
        ({"sites": []}, 422),
        ({"sites": [{"key": "a", "name": "甲", "kind": "station"}] * 2}, 422),
        ({"sites": [{"key": "a", "name": "甲", "kind": "moon"}]}, 422),
        ({"case_id": str(uuid.uuid4())}, 404),
        ({"extra": 1}, 422),
    ],
)
def test_bad_schedules_are_refused_and_create_nothing(api, world, change, status):
    officer = world.user("a1.officer")
    case = criminal_case(api, world)
    fields = {k: v for k, v in change.items() if k not in ("case_id", "kind")}
    case_id = change.get("case_id", case["id"])
    kind = change.get("kind", "identification")
    problem(create_session(api, officer, case_id, kind, **fields), status)
    listed = api.get(f"/api/v1/cases/{case['id']}/sessions", officer).get_json()
    assert listed["items"] == []


def test_who_may_schedule_and_see_a_session(api, world):
    case = criminal_case(api, world)
    officer = world.user("a1.officer")
    problem(create_session(api, world.user("a1.legal"), case["id"], "meeting"), 403)
    problem(create_session(api, world.user("b1.officer"), case["id"], "meeting"), 404)
    administrative = api.case(officer)
    problem(create_session(api, officer, administrative["id"], "meeting"), 422, "session-kind")
    problem(create_session(api, officer, administrative["id"], "interrogation"), 422)
    setup = new_session(api, world, "meeting", case=case)
    assert api.get(setup.url(), world.user("a1.legal")).status_code == 200
    assert api.get(setup.url(), world.user("a.leader")).status_code == 200
    problem(api.get(setup.url(), world.user("b1.officer")), 404)
    problem(api.get(setup.url("/events"), world.user("b1.legal")), 404)
    problem(api.get(setup.url("/log/verify"), world.user("b1.officer")), 404)
    problem(api.get(setup.url(), world.user("a1.admin")), 403)
    problem(api.get(f"/api/v1/cases/{case['id']}/sessions", world.user("b1.officer")), 404)
    problem(api.get(f"/api/v1/sessions/{uuid.uuid4()}", officer), 404)


# Participants


def test_presiding_investigators_are_distinct_active_officers_of_the_case_units(api, world, app):
    setup = new_session(api, world, "meeting", presiding=False)
    add = lambda **body: setup.post("/participants", json=body)  # noqa: E731
    problem(add(role="presiding", user_id=str(world.user("b1.officer").id)), 422)
    problem(add(role="presiding", user_id=str(world.user("a1.legal").id)), 422)
    problem(add(role="presiding", user_id=str(uuid.uuid4())), 422)
    problem(add(role="presiding", name="张警官"), 422, "participant-user")
    problem(add(role="lawyer", name="陈律师", user_id=str(setup.second.id)), 422)
    problem(add(role="identifier", name="王芳"), 422, "participant-role")
    problem(add(role="lawyer", name="陈律师", site="moon"), 422, "participant-site")
    problem(add(role="lawyer"), 422, "participant-name")
    problem(add(role="suspect", name="李强"), 422, "participant-person")
    witness = add_person(api, setup.officer, setup.case["id"], role="witness", name="周到")
    problem(add(role="suspect", person_id=witness["id"]), 422, "participant-person")
    problem(add(role="suspect", person_id=str(uuid.uuid4())), 404)
    problem(add(role="presiding", user_id=str(setup.officer.id), extra=True), 422)
    assert setup.get()["participants"] == []
    setup.add("presiding", user_id=str(setup.officer.id))
    problem(add(role="presiding", user_id=str(setup.officer.id)), 409)
    setup.add("presiding", user_id=str(setup.second.id))
    presiding = setup.get()["participants"]
    assert [p["name"] for p in presiding] == ["a1 officer", "a1 officer2"]
    with app.app_context():
        retired = org.create_user(
            username=f"retired{uuid.uuid4().hex[:8]}",
            display_name="退休民警",
            password=PASSWORD,
            unit=db.session.get_one(Unit, world.unit("a1").id),
            roles={Role.OFFICER},
        )
        retired.active = False
        db.session.commit()
        retired_id = str(retired.id)
    problem(add(role="presiding", user_id=retired_id), 422, "participant-user")


def test_only_officers_add_participants_and_only_presiding_ones_run_the_session(
    api, world, multi_role_user
):
    setup, _, lawyer = meeting_session(api, world)
    body = {"role": "interpreter", "name": "翻译"}
    problem(api.post(setup.url("/participants"), world.user("a1.legal"), json=body), 403)
    problem(api.post(setup.url("/participants"), world.user("b1.officer"), json=body), 404)
    # an officer of the unit who does not preside cannot run the session
    outsider = multi_role_user
    for suffix in (
        "/start",
        f"/participants/{lawyer['id']}/code",
        f"/participants/{lawyer['id']}/revoke",
    ):
        problem(api.post(setup.url(suffix), outsider), 403)
    problem(api.post(setup.url("/abort"), outsider, json={"reason": "x"}), 403)
    problem(api.post(setup.url("/start"), world.user("a1.legal")), 403)
    problem(api.post(setup.url("/start"), world.user("b1.officer")), 404)
    assert setup.get()["state"] == "scheduled"


# The state machine


def test_start_needs_two_presiding_investigators_and_the_kinds_required_roles(api, world):
    setup = new_session(api, world, "meeting", presiding=False)
    setup.add("presiding", user_id=str(setup.officer.id))
    problem(setup.post("/start"), 422, "session-presiding")
    setup.add("presiding", user_id=str(setup.second.id))
    problem(setup.post("/start"), 422, "session-participants")
    person = add_person(api, setup.officer, setup.case["id"], **SUSPECT)
    setup.add("suspect", person_id=person["id"])
    lawyer = setup.add("lawyer", name="陈律师")
    setup.post(f"/participants/{lawyer['id']}/revoke")
    problem(setup.post("/start"), 422, "session-participants")
    assert setup.get()["state"] == "scheduled"
    setup.add("lawyer", name="孙律师")
    started = setup.start()
    assert started["state"] == "in_progress"
    assert started["started_at"] is not None


def test_states_move_only_forward_and_wrong_moves_are_409(api, world):
    setup, _, lawyer = meeting_session(api, world)
    problem(setup.post("/complete"), 409, "session-state")
    setup.start()
    problem(setup.post("/start"), 409, "session-state")
    done = setup.complete()
    assert done["state"] == "completed"
    assert done["ended_at"] is not None and done["closing_signature"]
    head, count = done["log_head"], done["event_count"]
    problem(setup.post("/start"), 409, "session-state")
    problem(setup.post("/complete"), 409, "session-state")
    problem(setup.post("/abort", json={"reason": "晚了"}), 409, "session-state")
    problem(setup.post("/participants", json={"role": "interpreter", "name": "翻译"}), 409)
    problem(setup.post(f"/participants/{lawyer['id']}/code"), 409)
    after = setup.get()
    assert (after["log_head"], after["event_count"], after["state"]) == (head, count, "completed")


def test_an_aborted_session_keeps_a_complete_log_signed_off(api, world, app):
    setup, _, lawyer = meeting_session(api, world)
    headers = setup.headers(lawyer["id"])
    problem(setup.post("/abort", json={"reason": ""}), 422)
    problem(setup.post("/abort", json={}), 422)
    aborted = setup.abort("律师未能接入视频")
    assert aborted["state"] == "aborted" and aborted["abort_reason"] == "律师未能接入视频"
    events = setup.events()
    assert [e["kind"] for e in events] == [
        "scheduled",
        "participant_added",
        "participant_added",
        "participant_added",
        "participant_added",
        "code_issued",
        "participant_joined",
        "aborted",
    ]
    assert events[-1]["payload"]["reason"] == "律师未能接入视频"
    verified = api.get(setup.url("/log/verify"), setup.officer).get_json()
    assert verified == {
        "ok": True,
        "count": 8,
        "head": events[-1]["hash"],
        "first_bad_seq": None,
        "closing_signature_valid": True,
    }
    problem(api.get("/api/v1/participant/session", headers=headers), 401, "session-ended")
    with app.app_context():
        session = db.session.get_one(RemoteSession, uuid.UUID(setup.id))
        with pytest.raises(Conflict, match="log is closed"):
            service.append_event(session, "late", {})
        token = headers["Authorization"].removeprefix("Bearer ")
        with pytest.raises(Unauthorized, match="ended"):
            service.authenticate_participant(token, after_end=True)
        db.session.rollback()
    problem(setup.post("/abort", json={"reason": "again"}), 409, "session-state")


def test_after_completion_a_token_reaches_only_routes_open_after_the_end(api, world, app):
    setup, _, lawyer = meeting_session(api, world)
    headers = setup.headers(lawyer["id"])
    setup.start()
    setup.complete()
    problem(api.client.get("/api/v1/participant/session", headers=headers), 401, "session-ended")
    with app.app_context():
        token = headers["Authorization"].removeprefix("Bearer ")
        assert service.authenticate_participant(token, after_end=True).id == uuid.UUID(lawyer["id"])


# The log


def test_each_event_links_to_the_one_before_and_the_database_refuses_changes(api, world, app):
    setup = identification_session(api, world)
    events = setup.events()
    for before, event in itertools.pairwise(events):
        assert event["prev_hash"] == before["hash"]
        assert event["seq"] == before["seq"] + 1
    with app.app_context():
        for statement in (
            sa.update(SessionEvent)
            .where(SessionEvent.session_id == uuid.UUID(setup.id))
            .values(kind="edited"),
            sa.delete(SessionEvent).where(SessionEvent.session_id == uuid.UUID(setup.id)),
        ):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"):
                db.session.execute(statement)
            db.session.rollback()
    assert [e["kind"] for e in setup.events()] == [e["kind"] for e in events]


def test_verification_finds_an_altered_event_a_moved_head_and_a_forged_signature(api, world, app):
    setup, _, _ = meeting_session(api, world)
    setup.start()
    setup.complete()
    with app.app_context():
        session = db.session.get_one(RemoteSession, uuid.UUID(setup.id))
        assert service.verify_log(session).ok
        with db.session.no_autoflush:
            third = db.session.scalars(
                sa.select(SessionEvent).filter_by(session_id=session.id, seq=3)
            ).one()
            third.payload = {**third.payload, "forged": True}
            check = service.verify_log(session)
        assert (check.ok, check.first_bad_seq, check.count) == (False, 3, 2)
        db.session.rollback()
        session = db.session.get_one(RemoteSession, uuid.UUID(setup.id))
        good_head = session.log_head
        session.log_head = "f" * 64
        check = service.verify_log(session)
        assert (check.ok, check.first_bad_seq, check.head) == (
            False,
            session.event_count + 1,
            good_head,
        )
        db.session.rollback()
        session = db.session.get_one(RemoteSession, uuid.UUID(setup.id))
        signature = session.closing_signature
        session.closing_signature = "A" * 86 + "=="
        assert service.verify_log(session).closing_signature_valid is False
        session.closing_signature = "not base64!"
        assert service.verify_log(session).closing_signature_valid is False
        session.closing_signature = signature
        assert service.verify_log(session).closing_signature_valid is True
        db.session.rollback()


def test_the_administrator_gets_the_blind_view_of_the_log(
    api, world, app, multi_role_user, monkeypatch
):
    setup = identification_session(api, world)
    administrator = setup.add("administrator", user_id=str(multi_role_user.id))
    monkeypatch.setattr(service, "BLIND_EVENT_KINDS", {"secret_assigned"})
    monkeypatch.setattr(service, "BLIND_PAYLOAD_KEYS", {"position"})
    with app.app_context():
        session = db.session.get_one(RemoteSession, uuid.UUID(setup.id))
        service.append_event(session, "secret_assigned", {"target": 4})
        service.append_event(session, "member_shown", {"position": 4, "shown": True})
        db.session.commit()
    full = setup.events()
    assert [e["kind"] for e in full][-2:] == ["secret_assigned", "member_shown"]
    blind = setup.events(multi_role_user)
    assert "secret_assigned" not in [e["kind"] for e in blind]
    shown = next(e for e in blind if e["kind"] == "member_shown")
    assert shown["payload"] == {"shown": True}
    assert all(e["hash"] is None and e["prev_hash"] is None for e in blind)
    response = api.get(setup.url("/events"), multi_role_user).get_json()
    assert response["head"] is None
    assert api.get(setup.url(), multi_role_user).get_json()["log_head"] is None
    assert api.get(setup.url("/log/verify"), multi_role_user).get_json()["head"] is None
    text = str(api.get(setup.url(), multi_role_user).get_json()) + str(response)
    assert "target" not in text and "position" not in text
    assert administrator["user_id"] == str(multi_role_user.id)


# One-time codes and participant tokens


def test_a_code_joins_once_and_yields_a_token_for_that_session_and_role(api, world, app):
    setup = identification_session(api, world)
    witness = setup.add("witness", name="赵敏", site="centre")
    code_response = setup.post(f"/participants/{witness['id']}/code")
    assert code_response.status_code == 201
    code = code_response.get_json()["code"]
    assert len(code) == 8 and code.isdigit()
    with app.app_context():
        stored = db.session.get_one(SessionParticipant, uuid.UUID(witness["id"]))
        assert stored.code_hash != code and code not in stored.code_hash
    joined = join(api, code)
    assert joined.status_code == 200, joined.get_json()
    body = joined.get_json()
    assert body["token_type"] == "Bearer"
    assert (body["session_id"], body["participant_id"], body["role"], body["kind"]) == (
        setup.id,
        witness["id"],
        "witness",
        "identification",
    )
    lifetime = datetime.fromisoformat(body["expires_at"]) - utcnow()
    assert timedelta(hours=1, minutes=55) < lifetime <= service.TOKEN_LIFETIME
    mine = api.client.get("/api/v1/participant/session", headers=bearer(body["access_token"]))
    assert mine.status_code == 200
    assert mine.get_json() == {
        "session_id": setup.id,
        "kind": "identification",
        "state": "scheduled",
        "role": "witness",
        "name": "赵敏",
        "scheduled_start": setup.session["scheduled_start"],
        "scheduled_end": setup.session["scheduled_end"],
    }
    problem(join(api, code), 401, "invalid-code")
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "participant+jwt"


def test_codes_are_only_for_joinable_roles_and_expire(api, world, app, multi_role_user):
    setup = identification_session(api, world)
    presiding = setup.get()["participants"][0]
    problem(setup.post(f"/participants/{presiding['id']}/code"), 409, "participant-is-user")
    problem(setup.post(f"/participants/{presiding['id']}/revoke"), 409)
    problem(setup.post(f"/participants/{uuid.uuid4()}/code"), 404)
    other = identification_session(api, world)
    stranger = other.add("identifier")
    problem(setup.post(f"/participants/{stranger['id']}/code"), 404)
    identifier = setup.add("identifier")
    code = setup.code(identifier["id"])
    with app.app_context():
        row = db.session.get_one(SessionParticipant, uuid.UUID(identifier["id"]))
        row.code_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    problem(join(api, code), 401, "invalid-code")
    fresh = setup.code(identifier["id"])
    assert join(api, fresh).status_code == 200
    problem(join(api, "1234567"), 401)
    problem(join(api, "abcdefgh"), 401)
    # the administrator may be a named person or an officer; either joins with a code
    named = setup.add("administrator", name="辅警小刘")
    assert join(api, setup.code(named["id"])).get_json()["role"] == "administrator"
    officer = setup.add("administrator", user_id=str(multi_role_user.id))
    problem(
        setup.post(
            "/participants",
            json={"role": "identifier", "name": "王芳", "user_id": str(setup.second.id)},
        ),
        422,
    )
    problem(
        setup.post(
            "/participants", json={"role": "administrator", "user_id": str(setup.second.id)}
        ),
        409,
    )
    assert officer["name"] == "三职合一"
    assert join(api, setup.code(officer["id"])).status_code == 200


def test_a_new_code_ends_the_earlier_code_and_token(api, world):
    setup = identification_session(api, world)
    identifier = setup.add("identifier")
    first = setup.code(identifier["id"])
    second = setup.code(identifier["id"])
    problem(join(api, first), 401)
    token = join(api, second).get_json()["access_token"]
    assert api.client.get("/api/v1/participant/session", headers=bearer(token)).status_code == 200
    third = setup.code(identifier["id"])
    problem(api.client.get("/api/v1/participant/session", headers=bearer(token)), 401)
    assert join(api, third).status_code == 200


def test_wrong_codes_are_rate_limited_per_client(api, world, app):
    setup = identification_session(api, world)
    identifier = setup.add("identifier")
    code = setup.code(identifier["id"])
    address = client_address()
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    for _ in range(app.config["RATE_LIMIT_PARTICIPANT_JOIN_PER_MINUTE"]):
        problem(join(api, wrong, address), 401, "invalid-code")
    limited = problem(join(api, code, address), 429)
    assert limited["type"].endswith("too-many-requests")
    assert join(api, code).status_code == 200  # another client is not held up


def test_a_participant_token_reaches_nothing_outside_its_session(api, world, app):
    setup = identification_session(api, world)
    _, headers = setup.joined("identifier")
    assert api.client.get("/api/v1/participant/session", headers=headers).status_code == 200
    for method, path in (
        ("GET", "/api/v1/cases"),
        ("GET", f"/api/v1/cases/{setup.case['id']}"),
        ("GET", setup.url()),
        ("GET", setup.url("/events")),
        ("POST", setup.url("/start")),
        ("GET", "/api/v1/me"),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/sessions"),
    ):
        response = api.client.open(path, method=method, headers=headers, json={})
        problem(response, 401)
    # a user's access token is refused where participant tokens are expected
    user_token = api.token(setup.officer)
    problem(api.client.get("/api/v1/participant/session", headers=bearer(user_token)), 401)
    assert setup.get()["state"] == "scheduled"


def test_participant_tokens_die_with_revocation_expiry_other_sessions_and_the_end(api, world, app):
    setup, _, lawyer = meeting_session(api, world)
    other = identification_session(api, world)
    interpreter, interpreter_headers = setup.joined("interpreter", name="翻译")
    lawyer_headers = setup.headers(lawyer["id"])
    outsider, _ = other.joined("identifier")
    me = "/api/v1/participant/session"

    revoked = setup.post(f"/participants/{interpreter['id']}/revoke")
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    problem(api.client.get(me, headers=interpreter_headers), 401, "participant-revoked")
    problem(setup.post(f"/participants/{interpreter['id']}/code"), 409, "participant-revoked")
    assert setup.post(f"/participants/{interpreter['id']}/revoke").status_code == 200

    with app.app_context():
        row = db.session.get_one(SessionParticipant, uuid.UUID(lawyer["id"]))
        past = utcnow() - timedelta(hours=3)
        expired, claims = tokens.issue(
            tokens.PARTICIPANT, row.id, row.session_id, past, timedelta(hours=1)
        )
        row.token_jti = claims.jti
        db.session.commit()
    problem(api.client.get(me, headers=bearer(expired)), 401, "token-expired")

    with app.app_context():
        row = db.session.get_one(SessionParticipant, uuid.UUID(lawyer["id"]))
        now = utcnow()
        # right participant and jti, but the token names another session
        crossed, claims = tokens.issue(
            tokens.PARTICIPANT, row.id, uuid.UUID(other.id), now, timedelta(minutes=5)
        )
        row.token_jti, row.token_expires_at = claims.jti, claims.expires_at
        db.session.commit()
        foreign, _ = tokens.issue(
            tokens.PARTICIPANT,
            uuid.UUID(outsider["id"]),
            uuid.UUID(setup.id),
            now,
            timedelta(minutes=5),
        )
        as_access, _ = tokens.issue(
            tokens.ACCESS, row.id, row.session_id, now, timedelta(minutes=5)
        )
    problem(api.client.get(me, headers=bearer(crossed)), 401, "invalid-token")
    problem(api.client.get(me, headers=bearer(foreign)), 401, "invalid-token")
    problem(api.client.get(me, headers=bearer(as_access)), 401)

    assert api.client.get(me, headers=lawyer_headers).status_code == 401
    lawyer_headers = bearer(setup.join(lawyer["id"]))
    assert api.client.get(me, headers=lawyer_headers).status_code == 200
    setup.start()
    assert api.client.get(me, headers=lawyer_headers).get_json()["state"] == "in_progress"
    setup.abort()
    problem(api.client.get(me, headers=lawyer_headers), 401, "session-ended")


def test_a_participant_request_is_audited_under_the_participant_and_the_session(api, world, app):
    setup = identification_session(api, world)
    identifier, headers = setup.joined("identifier")
    response = api.client.get("/api/v1/participant/session", headers=headers)
    request_id = response.headers["X-Request-Id"]
    denied = api.client.get("/api/v1/cases", headers=headers)
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry).filter_by(request_id=request_id)).one()
        assert (entry.actor_id, entry.object_type, entry.object_id) == (
            uuid.UUID(identifier["id"]),
            "session",
            setup.id,
        )
        assert entry.actor_unit_id is None and entry.outcome == "success"
        refused = db.session.scalars(
            sa.select(AuditEntry).filter_by(request_id=denied.headers["X-Request-Id"])
        ).one()
        assert refused.actor_id is None and refused.outcome == "denied"
        joins = db.session.scalars(
            sa.select(AuditEntry).filter_by(
                action="sessions.join", object_id=setup.id, outcome="success"
            )
        ).all()
        assert [j.actor_id for j in joins] == [uuid.UUID(identifier["id"])]


# Interrogation and meetings


@pytest.fixture
def maker(api: Api, world: Org, app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    configure_local_store(monkeypatch, app, tmp_path)
    officer = world.user("a1.officer")
    return EvidenceMaker(api, officer, enrol(api, officer))


def test_a_remote_interrogation_needs_its_rights_notice_and_transcript_and_records_facts(
    api, world, maker
):
    setup, person, suspect = interrogation_session(api, world, settings={"major_case": True})
    setup.add("guardian", name="李父", site="jail")
    problem(
        setup.post("/notices", json={"notice": "rights", "participant_id": suspect["id"]}),
        409,
        "session-state",
    )
    setup.start()
    problem(setup.post("/complete"), 422, "session-notice")
    presiding = setup.get()["participants"][0]
    problem(
        setup.post("/notices", json={"notice": "rights", "participant_id": presiding["id"]}),
        422,
        "session-notice",
    )
    problem(
        setup.post("/notices", json={"notice": "caution", "participant_id": suspect["id"]}),
        422,
        "session-notice",
    )
    given = setup.post("/notices", json={"notice": "rights", "participant_id": suspect["id"]})
    assert given.status_code == 201, given.get_json()
    problem(setup.post("/notices", json={"notice": "rights", "participant_id": suspect["id"]}), 409)
    problem(setup.post("/complete"), 422, "session-record")

    other_case = criminal_case(api, world)
    other_person = add_person(api, setup.officer, other_case["id"])
    foreign, _ = new_document(
        api, setup.officer, other_case["id"], "interrogation_record", other_person["id"]
    )
    wrong_kind, _ = new_document(api, setup.officer, setup.case["id"], "seizure_list", person["id"])
    transcript, _ = new_document(
        api, setup.officer, setup.case["id"], "interrogation_record", person["id"]
    )
    problem(setup.post("/documents", json={"document_id": foreign["id"]}), 422)
    problem(setup.post("/documents", json={"document_id": wrong_kind["id"]}), 422)
    problem(setup.post("/documents", json={"document_id": str(uuid.uuid4())}), 404)
    linked = setup.post("/documents", json={"document_id": transcript["id"]})
    assert linked.status_code == 200 and linked.get_json()["record_document_id"] == transcript["id"]
    problem(setup.post("/documents", json={"document_id": transcript["id"]}), 409)

    video = maker.add(setup.case["id"], mp4_bytes(), "interrogation.mp4", kind="video")
    elsewhere = maker.add(other_case["id"], mp4_bytes(5000), "other.mp4", kind="video")
    problem(setup.post("/recordings", json={"evidence_id": elsewhere["id"], "full": True}), 422)
    problem(
        setup.post("/recordings", json={"evidence_id": video["id"], "full": True, "site": "moon"}),
        422,
    )
    recording = setup.post(
        "/recordings", json={"evidence_id": video["id"], "full": True, "site": "jail"}
    )
    assert recording.status_code == 201, recording.get_json()
    problem(setup.post("/recordings", json={"evidence_id": video["id"], "full": False}), 409)

    done = setup.complete()
    assert [r["evidence_id"] for r in done["recordings"]] == [video["id"]]
    recorded = {f["kind"]: f for f in facts(api, setup.officer, setup.case["id"])}
    assert recorded["counsel_rights_notified"]["subject"] == person["id"]
    interrogated = recorded["interrogated"]
    assert interrogated["subject"] == person["id"]
    assert interrogated["started_at"] == done["started_at"]
    assert interrogated["ended_at"] == done["ended_at"]
    assert interrogated["data"] == {
        "officers": 2,
        "av_recorded": True,
        "minor": False,
        "guardian_present": True,
        "officer_signatures": 0,
        "major_case": True,
        "interpreter_present": False,
        "session_id": setup.id,
        "remote": True,
    }
    kinds = [e["kind"] for e in setup.events()]
    assert kinds[-5:] == [
        "started",
        "notice_given",
        "document_linked",
        "recording_linked",
        "completed",
    ]


def test_recordings_and_transcripts_are_linked_only_while_the_session_runs(api, world, maker):
    setup, person, _ = interrogation_session(api, world)
    video = maker.add(setup.case["id"], mp4_bytes(), "early.mp4", kind="video")
    transcript, _ = new_document(
        api, setup.officer, setup.case["id"], "interrogation_record", person["id"]
    )
    problem(setup.post("/recordings", json={"evidence_id": video["id"], "full": True}), 409)
    problem(setup.post("/documents", json={"document_id": transcript["id"]}), 409)
    meeting, _, _ = meeting_session(api, world)
    meeting.start()
    problem(
        meeting.post("/documents", json={"document_id": transcript["id"]}), 409, "session-record"
    )


def test_a_completed_lawyer_meeting_records_its_fact_and_an_aborted_one_none(api, world):
    setup, suspect, _ = meeting_session(api, world)
    setup.start()
    done = setup.complete()
    met = [f for f in facts(api, setup.officer, setup.case["id"]) if f["kind"] == "lawyer_meeting"]
    assert len(met) == 1
    with_person = setup.get()["participants"]
    person_id = next(p["person_id"] for p in with_person if p["id"] == suspect["id"])
    assert met[0]["subject"] == person_id
    assert met[0]["data"] == {"lawyers": 1, "session_id": setup.id, "remote": True}
    assert met[0]["ended_at"] == done["ended_at"]
    aborted, _, _ = meeting_session(api, world)
    aborted.start()
    aborted.abort()
    assert not [
        f for f in facts(api, aborted.officer, aborted.case["id"]) if f["kind"] == "lawyer_meeting"
    ]


def test_kind_hooks_can_refuse_to_start_and_complete(api, world, monkeypatch):
    calls: list[str] = []

    def refuse_start(session: RemoteSession) -> None:
        raise Unprocessable("no lineup", slug="test-start")

    def on_end(session: RemoteSession, user: User) -> None:
        calls.append(session.state.value)
        service.append_event(session, "kind_closed", {"by": str(user.id)})

    original = service.KIND_HOOKS.get(SessionKind.MEETING)
    monkeypatch.setitem(service.KIND_HOOKS, SessionKind.MEETING, original)
    service.register_kind("meeting", start_check=refuse_start, on_end=on_end)
    setup, _, _ = meeting_session(api, world)
    problem(setup.post("/start"), 422, "test-start")
    assert setup.get()["state"] == "scheduled"
    service.register_kind("meeting", on_end=on_end)
    setup.start()
    setup.complete()
    assert calls == ["completed"]
    kinds = [e["kind"] for e in setup.events()]
    assert kinds[-2:] == ["kind_closed", "completed"]


def test_session_setup_factories_make_what_other_tests_build_on(api, world):
    setup: SessionSetup = identification_session(api, world)
    participant, headers = setup.joined("identifier")
    assert headers["Authorization"].startswith("Bearer ")
    assert setup.tokens[participant["id"]]
    interrogation, _, suspect = interrogation_session(api, world)
    assert suspect["role"] == "suspect"
    assert len([p for p in interrogation.get()["participants"] if p["role"] == "presiding"]) == 2


def test_participant_routes_check_the_participants_role(app):
    @participant_route(ParticipantRole.IDENTIFIER)
    def identifiers_only() -> str:
        return "ok"

    assert identifiers_only.participant is True
    assert identifiers_only.participant_after_end is False
    assert identifiers_only._apidoc["access"] == {"participant_roles": ["identifier"]}
    with app.test_request_context():
        g.participant = SessionParticipant(role=ParticipantRole.IDENTIFIER)
        assert identifiers_only() == "ok"
        g.participant = SessionParticipant(role=ParticipantRole.ADMINISTRATOR)
        with pytest.raises(Forbidden):
            identifiers_only()
