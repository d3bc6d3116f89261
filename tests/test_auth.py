"""Authentication and sessions (checklist S1, S4, J4), through the real endpoints.

Sign-in, lockout, rate limits, refresh-token rotation and reuse detection,
concurrent refreshes, and the ways a session ends: logout, disabling the user
and a password change. Every test uses real tokens; nothing is mocked.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from backend.audit.models import AuditEntry
from backend.auth.models import AuthSession, LoginThrottle, RefreshToken
from backend.common import utcnow
from backend.errors import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX
from backend.extensions import db
from backend.org import service as org
from backend.org.models import Unit
from shared.enums import Role

from conftest import PASSWORD, OrgUser, make_app

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"
WRONG_PASSWORD = "not the password"


# Helpers


def new_address() -> str:
    """A client address no other test uses, so rate-limit windows do not mix."""
    return "10.{}.{}.{}".format(*(random.randint(1, 254) for _ in range(3)))


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with the given status (and, if named, type)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.get_json()
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_TYPE_PREFIX)
    if slug is not None:
        assert body["type"] == PROBLEM_TYPE_PREFIX + slug
    for secret in ("access_token", "refresh_token", "password"):
        assert secret not in body
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


def retry_after(response: Any, low: int, high: int) -> int:
    seconds = int(response.headers["Retry-After"])
    assert low <= seconds <= high, seconds
    return seconds


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(
    client: FlaskClient, username: str, password: str = PASSWORD, address: str | None = None
) -> Any:
    extra = {"environ_base": {"REMOTE_ADDR": address}} if address else {}
    return client.post(LOGIN, json={"username": username, "password": password}, **extra)


def sign_in(client: FlaskClient, user: OrgUser) -> dict[str, Any]:
    response = login(client, user.username)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def refresh(client: FlaskClient, token: str, address: str | None = None) -> Any:
    extra = {"environ_base": {"REMOTE_ADDR": address}} if address else {}
    return client.post(REFRESH, json={"refresh_token": token}, **extra)


def me(client: FlaskClient, access_token: str) -> Any:
    return client.get(ME, headers=bearer(access_token))


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def assert_session_ended(client: FlaskClient, pair: dict[str, Any]) -> None:
    """Neither token of the pair works any more."""
    assert_problem(me(client, pair["access_token"]), 401, "session-ended")
    assert_problem(refresh(client, pair["refresh_token"]), 401)


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


def create_member(app: Flask, unit_id: uuid.UUID, password: str = PASSWORD) -> OrgUser:
    """A user of one's own, so that lockouts and revocations touch no shared user."""
    with app.app_context():
        unit = db.session.get(Unit, unit_id)
        user = org.create_user(
            username=f"auth-{uuid.uuid4().hex[:12]}",
            display_name="Auth test user",
            password=password,
            unit=unit,
            roles={Role.OFFICER},
        )
        db.session.commit()
        return OrgUser(user.id, user.username, user.unit_id, frozenset({Role.OFFICER}))


def in_one_minute(scenario: Callable[[str], Any]) -> Any:
    """Run ``scenario`` (given a fresh client address) inside one rate-limit window.

    Rate limits count per calendar minute; should the minute roll over mid-way
    the scenario runs again from a new address.
    """
    for _ in range(3):
        window = utcnow().replace(second=0, microsecond=0)
        result = scenario(new_address())
        if utcnow().replace(second=0, microsecond=0) == window:
            return result
    pytest.fail("the minute rolled over during every attempt")


# Fixtures


@pytest.fixture
def member(app: Flask, world: Any) -> OrgUser:
    """A fresh officer of station A1."""
    return create_member(app, world.unit("a1").id)


def _extra_app(database_url: str, tmp_path: Any, **overrides: Any) -> Iterator[Flask]:
    extra = make_app(database_url, tmp_path, **overrides)
    yield extra
    with extra.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def limited_app(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The same database, with three logins and three refreshes a minute per address."""
    yield from _extra_app(
        database_url,
        tmp_path_factory.mktemp("limited"),
        RATE_LIMIT_LOGIN_PER_MINUTE=3,
        RATE_LIMIT_REFRESH_PER_MINUTE=3,
    )


@pytest.fixture(scope="module")
def no_grace_app(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The same database, without a grace window for refresh-token reuse."""
    yield from _extra_app(
        database_url, tmp_path_factory.mktemp("no-grace"), REFRESH_REUSE_GRACE=timedelta(0)
    )


# Sign-in


def test_login_issues_a_short_lived_token_pair(client: FlaskClient, world: Any) -> None:
    officer = world.user("a1.officer")
    response = login(client, officer.username, address=new_address())
    assert response.status_code == 200, response.get_json()
    assert response.headers["Content-Type"] == "application/json"
    pair = response.get_json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert pair["token_type"] == "Bearer"
    assert 0 < pair["expires_in"] <= 900
    assert pair["user"]["username"] == officer.username
    assert "password" not in pair["user"] and "password_hash" not in pair["user"]

    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "EdDSA"
    access, refresh_claims = claims(pair["access_token"]), claims(pair["refresh_token"])
    assert access["typ"] == "access" and refresh_claims["typ"] == "refresh"
    assert access["exp"] - access["iat"] == pair["expires_in"]
    assert access["sub"] == refresh_claims["sub"] == str(officer.id)
    assert access["sid"] == refresh_claims["sid"]
    assert access["jti"] != refresh_claims["jti"]

    profile = me(client, pair["access_token"])
    assert profile.status_code == 200, profile.get_json()
    assert profile.get_json()["username"] == officer.username
    assert profile.get_json()["id"] == str(officer.id)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer a.b.c"},
    ],
    ids=["none", "basic", "bearer-no-token", "bearer-blank", "bearer-garbage", "bearer-abc"],
)
def test_protected_route_without_a_valid_bearer_token(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    assert_problem(client.get(ME, headers=headers), 401)


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: FlaskClient, member: OrgUser
) -> None:
    address = new_address()
    wrong = login(client, member.username, WRONG_PASSWORD, address)
    unknown = login(client, f"nobody-{uuid.uuid4().hex[:12]}", WRONG_PASSWORD, address)
    answers = [
        assert_problem(response, 401, "authentication-failed") for response in (wrong, unknown)
    ]
    assert without_request_id(answers[0]) == without_request_id(answers[1])
    assert wrong.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]
    assert "Retry-After" not in wrong.headers and "Retry-After" not in unknown.headers


def test_five_failures_lock_the_account_until_the_lock_expires(
    app: Flask, client: FlaskClient, member: OrgUser
) -> None:
    name = member.username
    # Spelling variants of one user name share one failure count.
    for attempt, spelling in enumerate([name, name.upper(), f"  {name} ", name, name.title()]):
        if attempt == 4:
            before_lock = utcnow()
        assert_problem(login(client, spelling, WRONG_PASSWORD), 401, "authentication-failed")

    locked = login(client, name, PASSWORD)
    assert_problem(locked, 429, "account-locked")
    retry_after(locked, 595, 601)
    with app.app_context():
        throttle = db.session.get(LoginThrottle, name)
        assert throttle.locked_until >= before_lock + timedelta(minutes=10)
        sessions = db.session.scalar(
            sa.select(sa.func.count()).where(AuthSession.user_id == member.id)
        )
        assert sessions == 0
        # Let the lock run out without waiting for it.
        throttle.locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()

    pair = sign_in(client, member)
    assert me(client, pair["access_token"]).status_code == 200
    with app.app_context():
        throttle = db.session.get(LoginThrottle, name)
        assert (throttle.failures, throttle.locked_until) == (0, None)
        outcomes = db.session.scalars(
            sa.select(AuditEntry.outcome)
            .where(AuditEntry.action == "auth.login", AuditEntry.object_id == name)
            .order_by(AuditEntry.id)
        ).all()
    assert outcomes == ["denied"] * 5 + ["throttled", "success"]


def test_concurrent_guesses_get_no_more_than_five_tries(app: Flask, member: OrgUser) -> None:
    """Six wrong passwords at once, from six addresses: five are counted, one is locked out."""
    racers = 6
    start = threading.Barrier(racers)

    def guess(_: int) -> Any:
        own_client = app.test_client()
        start.wait(timeout=10)
        return login(own_client, member.username, WRONG_PASSWORD, new_address())

    with ThreadPoolExecutor(max_workers=racers) as pool:
        responses = list(pool.map(guess, range(racers)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * 5 + [429], [r.get_json() for r in responses]
    locked = next(r for r in responses if r.status_code == 429)
    assert_problem(locked, 429, "account-locked")
    assert_problem(login(app.test_client(), member.username), 429, "account-locked")


def test_unknown_user_names_lock_like_known_ones(client: FlaskClient) -> None:
    name = f"ghost-{uuid.uuid4().hex[:12]}"
    for _ in range(5):
        assert_problem(login(client, name, WRONG_PASSWORD), 401, "authentication-failed")
    locked = login(client, name, PASSWORD)
    assert_problem(locked, 429, "account-locked")
    retry_after(locked, 595, 601)


# Rate limits


def test_login_is_rate_limited_per_address(limited_app: Flask, world: Any) -> None:
    client = limited_app.test_client()
    officer = world.user("a2.officer")

    def scenario(address: str) -> tuple[list[Any], Any]:
        misses = [
            login(client, f"nobody-{uuid.uuid4().hex[:12]}", WRONG_PASSWORD, address)
            for _ in range(3)
        ]
        return misses, login(client, officer.username, PASSWORD, address)

    misses, limited = in_one_minute(scenario)
    for response in misses:
        assert_problem(response, 401)
    # Even the right password is refused once the address is over its limit.
    assert_problem(limited, 429, "too-many-requests")
    retry_after(limited, 1, 60)
    # Other addresses are not affected.
    assert login(client, officer.username, PASSWORD, new_address()).status_code == 200


def test_refresh_is_rate_limited_per_address(limited_app: Flask, world: Any) -> None:
    client = limited_app.test_client()
    response = login(client, world.user("a2.officer").username, address=new_address())
    assert response.status_code == 200, response.get_json()
    pair = response.get_json()

    def scenario(address: str) -> tuple[list[Any], Any]:
        misses = [refresh(client, "not-a-token", address) for _ in range(3)]
        return misses, refresh(client, pair["refresh_token"], address)

    misses, limited = in_one_minute(scenario)
    for response in misses:
        assert_problem(response, 401)
    assert_problem(limited, 429, "too-many-requests")
    retry_after(limited, 1, 60)
    # The refused request did not spend the refresh token.
    assert refresh(client, pair["refresh_token"], new_address()).status_code == 200


# Refresh-token rotation


def test_refresh_rotates_the_pair(client: FlaskClient, member: OrgUser) -> None:
    first = sign_in(client, member)
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.get_json()
    second = response.get_json()
    assert second["token_type"] == "Bearer"
    assert 0 < second["expires_in"] <= 900
    assert second["user"]["username"] == member.username
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    old, new = claims(first["refresh_token"]), claims(second["refresh_token"])
    assert new["sid"] == old["sid"] and new["jti"] != old["jti"]

    assert me(client, second["access_token"]).status_code == 200
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200, third.get_json()
    assert me(client, third.get_json()["access_token"]).status_code == 200


@pytest.mark.parametrize("how", ["no-grace-app", "used-at-moved-back"])
def test_reusing_a_rotated_refresh_token_revokes_the_family(
    request: pytest.FixtureRequest, app: Flask, member: OrgUser, how: str
) -> None:
    target = request.getfixturevalue("no_grace_app") if how == "no-grace-app" else app
    client = target.test_client()
    first = sign_in(client, member)
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.get_json()
    second = response.get_json()
    assert me(client, second["access_token"]).status_code == 200
    if how == "used-at-moved-back":
        with app.app_context():
            spent = db.session.get(RefreshToken, uuid.UUID(claims(first["refresh_token"])["jti"]))
            spent.used_at -= timedelta(minutes=5)
            db.session.commit()

    reused = refresh(client, first["refresh_token"])
    assert_problem(reused, 401, "refresh-token-reused")
    # The whole family is gone, including the pair the rotation handed out.
    assert_session_ended(client, second)
    assert_problem(me(client, first["access_token"]), 401, "session-ended")
    with app.app_context():
        session = db.session.get(AuthSession, uuid.UUID(claims(first["access_token"])["sid"]))
        assert session.revoked_at is not None
        assert session.revoked_reason == "refresh_token_reuse"
    # Other sign-ins of the same user are untouched.
    assert me(client, sign_in(client, member)["access_token"]).status_code == 200


def test_reuse_within_the_grace_window_is_a_conflict_and_the_family_survives(
    client: FlaskClient, member: OrgUser
) -> None:
    first = sign_in(client, member)
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.get_json()
    second = response.get_json()

    again = refresh(client, first["refresh_token"])
    assert_problem(again, 409, "conflict")

    assert me(client, second["access_token"]).status_code == 200
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200, third.get_json()
    assert me(client, third.get_json()["access_token"]).status_code == 200


@pytest.mark.parametrize("racers", [2, 8])
def test_concurrent_refreshes_with_one_token_have_exactly_one_winner(
    app: Flask, member: OrgUser, racers: int
) -> None:
    pair = sign_in(app.test_client(), member)
    address = new_address()
    start = threading.Barrier(racers)

    def race(_: int) -> Any:
        own_client = app.test_client()
        start.wait(timeout=10)
        return refresh(own_client, pair["refresh_token"], address)

    with ThreadPoolExecutor(max_workers=racers) as pool:
        responses = list(pool.map(race, range(racers)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * (racers - 1), [r.get_json() for r in responses]
    for loser in responses:
        if loser.status_code == 409:
            assert_problem(loser, 409, "conflict")
    winner = next(r.get_json() for r in responses if r.status_code == 200)
    # The family survived: the winner's pair works and rotates on.
    client = app.test_client()
    assert me(client, winner["access_token"]).status_code == 200
    assert refresh(client, winner["refresh_token"]).status_code == 200


# How sessions end (S4)


def test_logout_ends_this_session_at_once(client: FlaskClient, member: OrgUser) -> None:
    pair, other = sign_in(client, member), sign_in(client, member)
    assert me(client, pair["access_token"]).status_code == 200

    response = client.post(LOGOUT, headers=bearer(pair["access_token"]))
    assert response.status_code == 204, response.get_data(as_text=True)

    assert_session_ended(client, pair)
    assert_problem(client.post(LOGOUT, headers=bearer(pair["access_token"])), 401)
    # Only this sign-in ended.
    assert me(client, other["access_token"]).status_code == 200


def test_logout_needs_a_token(client: FlaskClient) -> None:
    assert_problem(client.post(LOGOUT), 401)


def test_disabling_a_user_ends_every_session_at_once(
    api: Any, client: FlaskClient, world: Any, member: OrgUser
) -> None:
    sessions = [sign_in(client, member), sign_in(client, member)]
    path = f"/api/v1/users/{member.id}"

    # An administrator of another branch cannot see the user, let alone disable them.
    assert_problem(api.patch(path, world.user("b.admin"), json={"active": False}), 404)
    assert me(client, sessions[0]["access_token"]).status_code == 200

    response = api.patch(path, world.user("a.admin"), json={"active": False})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["active"] is False
    for pair in sessions:
        assert_session_ended(client, pair)

    # A disabled user cannot sign in, and learns nothing from the answer.
    disabled = assert_problem(login(client, member.username), 401, "authentication-failed")
    wrong = assert_problem(login(client, member.username, WRONG_PASSWORD), 401)
    assert without_request_id(disabled) == without_request_id(wrong)

    # Enabling the user again does not bring the old sessions back.
    response = api.patch(path, world.user("city.admin"), json={"active": True})
    assert response.status_code == 200, response.get_json()
    assert_session_ended(client, sessions[0])
    assert me(client, sign_in(client, member)["access_token"]).status_code == 200


def test_password_change_ends_every_session(
    api: Any, client: FlaskClient, world: Any, member: OrgUser
) -> None:
    sessions = [sign_in(client, member), sign_in(client, member)]
    new_password = "a brand new passphrase"
    response = api.patch(
        f"/api/v1/users/{member.id}", world.user("a.admin"), json={"password": new_password}
    )
    assert response.status_code == 200, response.get_json()
    for pair in sessions:
        assert_session_ended(client, pair)
    assert_problem(login(client, member.username, PASSWORD), 401, "authentication-failed")
    fresh = login(client, member.username, new_password)
    assert fresh.status_code == 200, fresh.get_json()
    assert me(client, fresh.get_json()["access_token"]).status_code == 200
