"""The audit trail's hash chain and signed checkpoints (checklist A5)."""

from __future__ import annotations

import base64
import itertools

import sqlalchemy as sa

from backend.audit import service as audit
from backend.audit.models import AuditEntry
from backend.auth import tokens
from backend.extensions import db


def test_every_row_links_to_the_one_before(api, world, app):
    officer = world.user("a1.officer")
    api.case(officer)
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()
        assert rows[0].prev_hash == audit.GENESIS
        for before, after in itertools.pairwise(rows):
            assert after.prev_hash == before.entry_hash
            assert after.entry_hash == audit.entry_hash(after.prev_hash, after)
        report = audit.verify_chain()
        assert report.first_bad_id is None and report.entries == len(rows)


def _bypass_append_only_guard() -> None:
    """What an attacker with database rights could do; rolled back by the test."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_entries_no_update"))
        db.session.execute(sa.text("DROP TRIGGER audit_entries_no_delete"))


def _middle_entry_id() -> int:
    ids = db.session.scalars(sa.select(AuditEntry.id).order_by(AuditEntry.id)).all()
    assert len(ids) >= 3
    return ids[len(ids) // 2]


def test_verify_names_an_altered_entry(api, world, app):
    api.get("/api/v1/me", world.user("a1.officer"))
    with app.app_context():
        victim = _middle_entry_id()
        _bypass_append_only_guard()
        db.session.execute(
            sa.update(AuditEntry).where(AuditEntry.id == victim).values(outcome="forged")
        )
        report = audit.verify_chain()
        db.session.rollback()
    assert report.first_bad_id == victim
    assert "content" in report.problem


def test_verify_names_the_entry_after_a_removed_one(api, world, app):
    api.get("/api/v1/me", world.user("a1.officer"))
    with app.app_context():
        victim = _middle_entry_id()
        successor = db.session.scalar(
            sa.select(sa.func.min(AuditEntry.id)).where(AuditEntry.id > victim)
        )
        _bypass_append_only_guard()
        db.session.execute(sa.delete(AuditEntry).where(AuditEntry.id == victim))
        report = audit.verify_chain()
        db.session.rollback()
    assert report.first_bad_id == successor
    assert "follow" in report.problem


def test_verify_command(app, api, world):
    api.get("/api/v1/me", world.user("a1.officer"))
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "The audit chain holds" in result.output


def test_a_forged_or_stale_checkpoint_is_reported(app, api, world):
    officer = world.user("a1.officer")
    api.get("/api/v1/me", officer)
    runner = app.test_cli_runner()
    signed = runner.invoke(args=["audit", "checkpoint"])
    assert signed.exit_code == 0 and "Signed entry" in signed.output
    with app.app_context():
        assert audit.verify_checkpoints() == []
        checkpoint = audit.write_checkpoint()
        db.session.flush()
        checkpoint.signature = base64.b64encode(tokens.sign(b"another head")).decode()
        db.session.flush()
        assert checkpoint.id in audit.verify_checkpoints()
        checkpoint.signature = "not base64!"
        db.session.flush()
        assert checkpoint.id in audit.verify_checkpoints()
        db.session.rollback()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
