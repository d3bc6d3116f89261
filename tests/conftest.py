"""Test fixtures: a real database (SQLite file or a fresh PostgreSQL database),
migrated with Alembic, a demo-like organisation, and real tokens.

``FIELDCASE_TEST_BACKEND=postgres`` runs the suite on PostgreSQL, in a database
made for the run (``FIELDCASE_TEST_POSTGRES_URL`` names the server) and dropped
at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from backend import create_app
from backend.extensions import db
from backend.org import service as org
from backend.org.models import Unit, User
from shared.enums import Role, UnitTier

PASSWORD = "correct horse battery"
BACKEND = os.environ.get("FIELDCASE_TEST_BACKEND", "sqlite")
POSTGRES_URL = os.environ.get(
    "FIELDCASE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_report_header() -> str:
    return f"fieldcase database backend: {BACKEND}"


@contextmanager
def database_on_backend(sqlite_file: Path, prefix: str) -> Iterator[str]:
    """An empty database on the backend under test: an SQLite file, or a
    PostgreSQL database made for the caller and dropped afterwards."""
    if BACKEND == "sqlite":
        yield "sqlite:///" + str(sqlite_file)
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with database_on_backend(
        tmp_path_factory.mktemp("db") / "fieldcase.db", "fieldcase_test"
    ) as url:
        yield url


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """An empty database on the backend under test, dropped afterwards."""
    with database_on_backend(tmp_path / "fresh.db", "fieldcase_fresh") as url:
        yield url


def signing_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def make_app(database_url: str, tmp_path: Any, **overrides: Any) -> Flask:
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JWT_PRIVATE_KEY": overrides.pop("JWT_PRIVATE_KEY", None) or SIGNING_KEY,
        "RATE_LIMIT_LOGIN_PER_MINUTE": 100_000,
        "RATE_LIMIT_REFRESH_PER_MINUTE": 100_000,
        "UPLOAD_DIR": str(Path(tmp_path) / "uploads"),
        "EVIDENCE_DIR": str(Path(tmp_path) / "evidence"),
        **overrides,
    }
    return create_app(config)


SIGNING_KEY = signing_key_pem()


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    application = make_app(database_url, tmp_path_factory.mktemp("instance"))
    with application.app_context():
        upgrade(directory=application.extensions["migrate"].directory)
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass(frozen=True)
class OrgUser:
    id: uuid.UUID
    username: str
    unit_id: uuid.UUID
    roles: frozenset[Role]


@dataclass(frozen=True)
class OrgUnit:
    id: uuid.UUID
    code: str


@dataclass
class Org:
    """A city with two districts: A (stations A1, A2) and B (station B1)."""

    units: dict[str, OrgUnit] = field(default_factory=dict)
    users: dict[str, OrgUser] = field(default_factory=dict)

    def user(self, name: str) -> OrgUser:
        return self.users[name]

    def unit(self, name: str) -> OrgUnit:
        return self.units[name]


STATION_STAFF = {
    "officer": {Role.OFFICER},
    "officer2": {Role.OFFICER},
    "legal": {Role.LEGAL_OFFICER},
    "leader": {Role.LEADER},
    "manager": {Role.CASE_MANAGER},
    "admin": {Role.ADMIN},
}
UPPER_STAFF = {
    "legal": {Role.LEGAL_OFFICER},
    "leader": {Role.LEADER},
    "manager": {Role.CASE_MANAGER},
    "admin": {Role.ADMIN},
}


TIER_NAMES = {UnitTier.DISTRICT: "分局", UnitTier.STATION: "派出所"}


def build_org(prefix: str) -> Org:
    """Create a fresh organisation; user names are ``<prefix>.<unit>.<role>``."""
    world = _OrmOrg()
    city = org.create_root_unit(code=f"{prefix}C", name="测试市公安局")
    world.units["city"] = city
    _staff(world, prefix, "city", city, UPPER_STAFF)
    admin = world.users["city.admin"]
    for district_key, stations in (("a", ("a1", "a2")), ("b", ("b1",))):
        district = _unit(world, admin, prefix, district_key, UnitTier.DISTRICT, city)
        _staff(world, prefix, district_key, district, UPPER_STAFF)
        for station_key in stations:
            station = _unit(world, admin, prefix, station_key, UnitTier.STATION, district)
            _staff(world, prefix, station_key, station, STATION_STAFF)
    db.session.commit()
    return Org(
        units={k: OrgUnit(u.id, u.code) for k, u in world.units.items()},
        users={k: OrgUser(u.id, u.username, u.unit_id, u.roles) for k, u in world.users.items()},
    )


def _unit(world: _OrmOrg, admin: User, prefix: str, key: str, tier: UnitTier, parent: Unit) -> Unit:
    unit = org.create_unit(
        admin,
        code=f"{prefix}{key}".upper(),
        name=TIER_NAMES[tier] + key,
        tier=tier,
        parent_id=parent.id,
    )
    world.units[key] = unit
    return unit


def _staff(world: _OrmOrg, prefix: str, key: str, unit: Unit, staff: dict[str, set[Role]]) -> None:
    for name, roles in staff.items():
        world.users[f"{key}.{name}"] = org.create_user(
            username=f"{prefix}.{key}.{name}",
            display_name=f"{key} {name}",
            password=PASSWORD,
            unit=unit,
            roles=roles,
        )


@dataclass
class _OrmOrg:
    units: dict[str, Unit] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


@pytest.fixture(scope="session")
def world(app: Flask) -> Org:
    """One organisation shared by the tests of a run (tests make their own cases)."""
    with app.app_context():
        return build_org("t" + uuid.uuid4().hex[:6])


class Api:
    """A thin JSON client over Flask's test client, signing in with real tokens.

    Pass a shared ``tokens`` dict to sign each user in once for several tests
    (access tokens last 15 minutes).
    """

    def __init__(self, client: FlaskClient, tokens: dict[uuid.UUID, str] | None = None) -> None:
        self.client = client
        self._tokens: dict[uuid.UUID, str] = {} if tokens is None else tokens

    def login(self, user: OrgUser, password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": password}
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def token(self, user: OrgUser) -> str:
        if user.id not in self._tokens:
            self._tokens[user.id] = self.login(user)["access_token"]
        return self._tokens[user.id]

    def request(
        self,
        method: str,
        path: str,
        user: OrgUser | None = None,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        all_headers = dict(headers or {})
        if user is not None:
            all_headers["Authorization"] = f"Bearer {self.token(user)}"
        return self.client.open(path, method=method, headers=all_headers, **kwargs)

    def get(self, path: str, user: OrgUser | None = None, **kw: Any) -> Any:
        return self.request("GET", path, user, **kw)

    def post(self, path: str, user: OrgUser | None = None, **kw: Any) -> Any:
        return self.request("POST", path, user, **kw)

    def patch(self, path: str, user: OrgUser | None = None, **kw: Any) -> Any:
        return self.request("PATCH", path, user, **kw)

    # Factories

    def incident(self, officer: OrgUser, **fields: Any) -> dict[str, Any]:
        body = {
            "occurred_at": datetime(2026, 3, 1, 9, 30, tzinfo=UTC).isoformat(),
            "place": "人民路1号",
            "category": "治安",
            "summary": "两人在夜市互殴。",
            "reporter": {"name": "张伟", "phone": "13812345678", "id_number": "110101199001011234"},
            **fields,
        }
        response = self.post("/api/v1/incidents", officer, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def case(self, officer: OrgUser, case_type: str = "administrative") -> dict[str, Any]:
        incident = self.incident(officer)
        response = self.post(
            f"/api/v1/incidents/{incident['id']}/accept",
            officer,
            json={"case_type": case_type, "title": "测试案件"},
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def etag(self, case_id: str, user: OrgUser) -> str:
        response = self.get(f"/api/v1/cases/{case_id}", user)
        assert response.status_code == 200, response.get_json()
        return response.headers["ETag"]

    def step(
        self,
        case_id: str,
        user: OrgUser,
        action: str,
        payload: dict[str, Any] | None = None,
        comment: str | None = None,
    ) -> Any:
        return self.post(
            f"/api/v1/cases/{case_id}/transitions",
            user,
            headers={"If-Match": self.etag(case_id, user)},
            json={"action": action, "payload": payload or {}, "comment": comment},
        )

    def pending_approval(self, case_id: str, user: OrgUser) -> dict[str, Any]:
        response = self.get("/api/v1/approvals?status=pending&limit=200", user)
        assert response.status_code == 200, response.get_json()
        matches = [a for a in response.get_json()["items"] if a["case_id"] == case_id]
        assert len(matches) == 1, matches
        return matches[0]

    def decide(
        self,
        approval_id: str,
        user: OrgUser,
        decision: str = "approve",
        comment: str | None = "同意",
    ) -> Any:
        return self.post(
            f"/api/v1/approvals/{approval_id}/decision",
            user,
            json={"decision": decision, "comment": comment},
        )


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


@pytest.fixture
def multi_role_user(app: Flask, world: Org) -> OrgUser:
    """A station-a1 user who is officer, legal officer and leader at once."""
    with app.app_context():
        user = org.create_user(
            username=f"multi{uuid.uuid4().hex[:10]}",
            display_name="三职合一",
            password=PASSWORD,
            unit=db.session.get_one(Unit, world.unit("a1").id),
            roles={Role.OFFICER, Role.LEGAL_OFFICER, Role.LEADER},
        )
        db.session.commit()
        return OrgUser(user.id, user.username, user.unit_id, user.roles)
