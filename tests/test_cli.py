"""Command-line tasks: migrations, the demo city, user creation."""

from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from backend.cases.models import Case
from backend.demo import DEMO_PASSWORD
from backend.extensions import db
from backend.org.models import Unit, User

from conftest import make_app


def test_migrations_upgrade_downgrade_and_upgrade_again(fresh_database, tmp_path):
    fresh = make_app(fresh_database, tmp_path)
    with fresh.app_context():
        directory = fresh.extensions["migrate"].directory
        upgrade(directory=directory)
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"cases", "audit_entries", "case_events", "approvals"} <= tables
        downgrade(directory=directory, revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade(directory=directory)
        assert "cases" in set(sa.inspect(db.engine).get_table_names())
        db.engine.dispose()


def test_db_upgrade_command_is_available(tmp_path):
    fresh = make_app("sqlite:///" + str(tmp_path / "cli.db"), tmp_path)
    runner = fresh.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    check = runner.invoke(args=["db", "check"])
    assert check.exit_code == 0, check.output
    with fresh.app_context():
        assert "users" in sa.inspect(db.engine).get_table_names()


def test_seed_demo_builds_the_demo_city_once(app, api, world):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo"])
    assert "nothing seeded" in result.output
    result = runner.invoke(args=["seed-demo", "--force"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        city = db.session.scalar(sa.select(Unit).where(Unit.code == "SZ"))
        units = db.session.scalars(sa.select(Unit).where(Unit.path.startswith(city.path))).all()
        assert sorted(u.tier for u in units).count("station") == 4
        assert len(units) == 7
        unit_ids = [u.id for u in units]
        users = db.session.scalars(sa.select(User).where(User.unit_id.in_(unit_ids))).all()
        roles = set().union(*(u.roles for u in users))
        assert roles == {"officer", "legal_officer", "leader", "case_manager", "admin"}
        cases = db.session.scalars(sa.select(Case).where(Case.unit_id.in_(unit_ids))).all()
        assert len(cases) == 20
        states = {c.status for c in cases}
        assert {"accepted", "investigating", "legal_review", "leader_approval", "closed"} <= states
        assert any(c.pending_request_id for c in cases)
    token = api.client.post(
        "/api/v1/auth/login", json={"username": "dc01.officer", "password": DEMO_PASSWORD}
    )
    assert token.status_code == 200


def test_create_user_command(app):
    runner = app.test_cli_runner()
    with app.app_context():
        code = db.session.scalars(sa.select(Unit.code)).first()
    result = runner.invoke(
        args=[
            "create-user",
            "--username",
            "cli.user",
            "--display-name",
            "命令行用户",
            "--unit-code",
            code,
            "--role",
            "officer",
            "--role",
            "legal_officer",
        ],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "cli.user"))
        assert user.roles == {"officer", "legal_officer"}
    bad = runner.invoke(
        args=[
            "create-user",
            "--username",
            "cli.other",
            "--display-name",
            "x",
            "--unit-code",
            "NO-SUCH-UNIT",
            "--role",
            "officer",
        ],
        input="a long enough password\na long enough password\n",
    )
    assert bad.exit_code != 0 and "no unit" in bad.output


def test_create_user_command_reports_a_weak_password(app):
    with app.app_context():
        code = db.session.scalars(sa.select(Unit.code)).first()
    result = app.test_cli_runner().invoke(
        args=[
            "create-user",
            "--username",
            "cli.weak",
            "--display-name",
            "x",
            "--unit-code",
            code,
            "--role",
            "officer",
        ],
        input="short\nshort\n",
    )
    assert result.exit_code == 1 and "at least" in result.output
