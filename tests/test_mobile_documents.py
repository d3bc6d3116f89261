"""Transcripts and signatures from the field client against a real Fieldcase server:
a notification record made offline, filled, finalised and signed by two officers
and the party arrives once and is signed; a signature over content that changed
before it left the device is a conflict the officer sees, not a lost item."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from backend.documents.models import Document, DocumentSignature
from backend.extensions import db
from backend.org.models import User
from mobile.state import AppState
from shared.templates import content_sha256

from conftest import Org, OrgUser
from support_documents import STROKES, SUSPECT, jpeg_bytes, png_bytes
from support_mobile import Phone
from support_server import serving

SECTIONS = {
    "facts": "2026年3月1日在夜市与他人互殴。",
    "basis": "《治安管理处罚法》第四十三条。",
    "proposed_penalty": "拟处行政拘留五日。",
    "statement": "无异议，不要求听证。",
}
HEADER = {"notified_at": "2026-03-02 10:00", "place": "人民路派出所"}
REPORT = {
    "occurred_at": "2026-03-01T21:30:00+08:00",
    "place": "夜市",
    "category": "治安",
    "summary": "两人在夜市互殴。",
    "source": "patrol",
    "accept": {"case_type": "administrative", "title": "夜市斗殴"},
    "persons": [SUSPECT],
}


@pytest.fixture(scope="module")
def base_url(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture
def phone(tmp_path: Path, base_url: str) -> Iterator[Phone]:
    device = Phone(tmp_path / "phone", base_url)
    yield device
    device.close()


def display_name(app: Flask, user: OrgUser) -> str:
    with app.app_context():
        return db.session.get_one(User, user.id).display_name


def signed_in_offline(phone: Phone, officer: OrgUser) -> AppState:
    """Signed in (the catalogue cached), then the app restarts without a network."""
    phone.worker.start()
    assert phone.sign_in(officer).kind == "signed_in"
    phone.wait_for(lambda: phone.store.cached_templates() is not None)
    phone.restart()
    return phone.state


def offline_transcript(state: AppState) -> tuple[dict[str, Any], str]:
    """A report registered as a case with a suspect, and a notification record about
    the suspect started on it, all in the outbox; the transcript and the case id."""
    report = state.file_report(REPORT)
    case_id = report.payload["accept"]["case_id"]
    person = next(i for i in state.outbox.all() if i.kind == "person")
    assert "notification_record" in [k["id"] for k in state.transcript_kinds(case_id)]
    transcript = state.start_transcript(case_id, "notification_record", person.payload["person_id"])
    assert [s["key"] for s in transcript["sections"]] == list(SECTIONS)
    assert transcript["signers"] == ["officer", "second_officer", "party"]
    return transcript, case_id


def sign_all(
    state: AppState,
    item_id: str,
    app: Flask,
    officer: OrgUser,
    second: OrgUser,
    fingerprint: Path,
) -> dict[str, str]:
    """The officer, the second officer and the party sign on the device; ids by role."""
    signers = {
        "officer": (display_name(app, officer), str(officer.id)),
        "second_officer": (display_name(app, second), str(second.id)),
        "party": (SUSPECT["name"], None),
    }
    ids = {}
    for role, (name, user_id) in signers.items():
        item = state.sign(
            item_id,
            role,
            name,
            STROKES,
            png_bytes(shade=len(ids)),
            signer_user_id=user_id,
            fingerprint=fingerprint if role == "party" else None,
        )
        ids[role] = item.id
    return ids


def test_a_notification_record_made_offline_arrives_once_fully_signed(
    app: Flask, world: Org, phone: Phone, tmp_path: Path
) -> None:
    officer, second = world.user("a1.officer"), world.user("a1.officer2")
    state = signed_in_offline(phone, officer)
    transcript, case_id = offline_transcript(state)
    item = state.save_transcript(transcript["key"], header=HEADER, sections=SECTIONS)
    fingerprint = tmp_path / "thumb.jpg"
    fingerprint.write_bytes(jpeg_bytes())
    signatures = sign_all(state, item.id, app, officer, second, fingerprint)
    assert phone.outbox.counts()["waiting"] == 6  # report, person, transcript, 3 signatures

    phone.worker.start()
    items = phone.wait_settled()

    assert [i.state for i in items] == ["done"] * 6, [(i.kind, i.error) for i in items]
    document_id = uuid.UUID(item.payload["document_id"])
    with app.app_context():
        documents = db.session.scalars(
            sa.select(Document).where(Document.case_id == uuid.UUID(case_id))
        ).all()
        assert [d.id for d in documents] == [document_id]
        document = documents[0]
        assert document.status == "signed"
        assert document.content["header"]["notified_at"] == HEADER["notified_at"]
        texts = {s["key"]: s["text"] for s in document.content["sections"]}
        assert {key: texts[key] for key in SECTIONS} == SECTIONS
        rows = db.session.scalars(
            sa.select(DocumentSignature).where(DocumentSignature.document_id == document_id)
        ).all()
        assert sorted(str(s.id) for s in rows) == sorted(
            phone.outbox.get(i).payload["signature_id"] for i in signatures.values()
        )
        assert {s.role for s in rows} == {"officer", "second_officer", "party"}
        assert all(s.content_sha256 == content_sha256(document.content) for s in rows)
        party = next(s for s in rows if s.role == "party")
        assert party.fingerprint_sha256 is not None
        device_ids = {s.device_id for s in rows}
    assert device_ids == {phone.device.device_id_for(officer.username)}
    finalised = phone.outbox.get(item.id)
    assert finalised is not None and finalised.server_state is not None
    assert finalised.server_state["content_sha256"] == content_sha256(document.content)
    assert fingerprint.exists(), "the source photo is the officer's; only the copy is removed"
    assert not any(phone.state.files_dir.iterdir())


def test_a_signature_over_content_changed_before_sending_is_a_conflict_and_can_be_redone(
    app: Flask, world: Org, phone: Phone
) -> None:
    state = signed_in_offline(phone, world.user("a1.officer"))
    transcript, _ = offline_transcript(state)
    item = state.save_transcript(transcript["key"], header=HEADER, sections=SECTIONS)
    party = state.sign(item.id, "party", SUSPECT["name"], STROKES, png_bytes())
    changed = {**SECTIONS, "statement": "要求听证。"}
    again = state.save_transcript(transcript["key"], header=HEADER, sections=changed)
    assert again.id == item.id and again.payload["changes"]["sections"] == changed

    phone.worker.start()
    phone.wait_settled()

    conflict = phone.outbox.get(party.id)
    assert conflict is not None and conflict.state == "conflict", conflict
    assert conflict.server_state is not None
    shown = {s["key"]: s["text"] for s in conflict.server_state["document"]["content"]["sections"]}
    assert shown["statement"] == "要求听证。"
    assert phone.state.sync_status().conflicts == 1
    document_id = uuid.UUID(item.payload["document_id"])
    with app.app_context():
        assert db.session.get_one(Document, document_id).status == "finalized"
        signed = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(DocumentSignature)
            .where(DocumentSignature.document_id == document_id)
        )
        assert signed == 0

    redone = state.redo(party.id, {**conflict.payload, "shown": again.payload["changes"]})
    assert redone.state == "waiting"
    phone.wait_settled()
    assert phone.outbox.get(party.id).state == "done"  # type: ignore[union-attr]
    with app.app_context():
        assert db.session.get_one(Document, document_id).missing_signatures == [
            "officer",
            "second_officer",
        ]
