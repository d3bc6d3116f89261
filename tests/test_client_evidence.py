"""The typed client's uploads (tus, through tuspy), evidence, documents and signatures,
against a real HTTP server (werkzeug, threaded) on the test app."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from backend.extensions import db
from shared import signing
from shared.client import (
    TOKEN_EXPIRED,
    AuthError,
    ConflictError,
    ContentMismatch,
    FieldcaseClient,
    GoneError,
    NotFoundError,
    PayloadTooLarge,
    PreconditionFailed,
    TokenPair,
    UploadProgress,
    ValidationError,
    upload_id_of,
)
from shared.enums import Decision, PersonRole, SignerRole
from shared.evidence import EVIDENCE_PURPOSE, evidence_fields
from shared.templates import content_sha256

from conftest import PASSWORD, Api, Org, OrgUser, make_app
from support_documents import STROKES, completion, jpeg_bytes
from support_documents import png_bytes as signature_png
from support_evidence import png_bytes, signed_fields
from support_server import free_port, serving

PROBLEM = "urn:fieldcase:problem:"
CAPTURED_AT = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
CHUNK = 64 * 1024


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


class Stop(Exception):
    """Raised from ``on_progress`` to cut an upload short, as a closed app would."""


def stop_at(offset: int, urls: list[str]) -> Callable[[UploadProgress], None]:
    """An ``on_progress`` that keeps the URL (as an outbox does) and stops the upload
    once ``offset`` bytes are sent."""

    def hear(progress: UploadProgress) -> None:
        urls.append(progress.url)
        if progress.offset >= offset:
            raise Stop

    return hear


def photo(size: int, seed: int = 0) -> bytes:
    """A PNG (its type shows in its first bytes) followed by ``size`` varied bytes."""
    filler = b"".join(
        hashlib.sha256(f"{seed}:{n}".encode()).digest() for n in range(size // 32 + 1)
    )
    return png_bytes(seed=seed) + filler[:size]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def enrolled(client: FieldcaseClient) -> Ed25519PrivateKey:
    """A new key enrolled for the client's device id."""
    assert client.device_id is not None
    key = signing.new_private_key()
    client.enroll_device(
        device_id=client.device_id, name="执法记录仪", public_key=signing.public_key_text(key)
    )
    return key


def device_id() -> str:
    return f"phone-{uuid.uuid4().hex[:10]}"


def finalise(
    client: FieldcaseClient, case_id: str, url: str, data: bytes, key: Ed25519PrivateKey, **kw: Any
) -> Any:
    assert client.device_id is not None
    fields: dict[str, Any] = {
        "upload_id": upload_id_of(url),
        "kind": "photo",
        "sha256": sha256(data),
        "captured_at": CAPTURED_AT,
        "place": "人民路1号夜市",
        "device_id": client.device_id,
        "private_key": key,
        **kw,
    }
    return client.finalise_evidence(case_id, **fields)


# Uploads and evidence


def test_upload_finalise_download_and_custody(
    connect: Connect, world: Org, api: Api, tmp_path: Path
) -> None:
    user = world.user("a1.officer")
    officer = connect(user, device_id=device_id())
    leader = connect(world.user("a1.leader"))
    key = enrolled(officer)
    case_id = api.case(user)["id"]
    data = photo(3 * CHUNK + 1000)
    source = write(tmp_path, "现场照片.png", data)
    progress: list[UploadProgress] = []

    url = officer.upload_file(
        source, case_id=case_id, chunk_size=CHUNK, on_progress=progress.append
    )

    assert [p.offset for p in progress] == [0, CHUNK, 2 * CHUNK, 3 * CHUNK, len(data)]
    assert {(p.url, p.length) for p in progress} == {(url, len(data))}
    assert officer.upload_status(url) == (len(data), len(data))

    evidence_id = str(uuid.uuid4())
    extra = {"latitude": "30.2741", "longitude": "120.1551", "description": "现场照片"}
    evidence = finalise(officer, case_id, url, data, key, evidence_id=evidence_id, **extra)
    assert evidence["id"] == evidence_id
    assert (evidence["sha256"], evidence["size"]) == (sha256(data), len(data))
    assert evidence["content_type"] == "image/png"
    assert evidence["filename"] == "现场照片.png"
    assert evidence["upload_id"] == upload_id_of(url)
    assert (evidence["latitude"], evidence["description"]) == ("30.2741", "现场照片")
    assert evidence["device_id"] == officer.device_id
    # The client signed the documented form, which the server kept with the signature.
    body = {
        "upload_id": upload_id_of(url),
        "kind": "photo",
        "sha256": sha256(data),
        "captured_at": CAPTURED_AT.isoformat(),
        "place": "人民路1号夜市",
        "device_id": officer.device_id,
        "id": evidence_id,
        **extra,
    }
    assert evidence["signed_fields"] == signed_fields(case_id, body)
    assert evidence["signed_fields"] == evidence_fields(case_id, body)
    assert signing.verify(
        signing.public_key_text(key),
        EVIDENCE_PURPOSE,
        evidence["signed_fields"],
        evidence["device_signature"],
    )
    # A resend with the same evidence id returns the stored item.
    assert finalise(officer, case_id, url, data, key, evidence_id=evidence_id, **extra) == evidence
    assert officer.list_evidence(case_id) == [evidence]
    assert officer.get_evidence(evidence_id) == evidence

    assert (
        officer.evidence_content(evidence_id, purpose="核对", byte_range=(100, 1100))
        == (data[100:1100])
    )
    assert officer.evidence_content(evidence_id, purpose="核对", byte_range=(len(data) - 10, None))
    assert officer.evidence_content(evidence_id, purpose="查看", disposition="inline") == data
    saved = officer.download_evidence(evidence_id, tmp_path / "copy.png", purpose="移送检察院")
    assert saved == (tmp_path / "copy.png", len(data), sha256(data), "image/png")
    assert saved.path.read_bytes() == data
    assert not list(tmp_path.glob(".*.part"))

    stored = officer.record_custody(
        evidence_id, event="stored", place="派出所", purpose="入库保管", location="智能案卷柜 A-03"
    )
    assert (stored["event"], stored["location"]) == ("stored", "智能案卷柜 A-03")
    with pytest.raises(ValidationError):
        officer.record_custody(evidence_id, event="transferred", place="派出所", purpose="移交")
    chain = officer.custody(evidence_id)
    assert [(c["event"], c["purpose"]) for c in chain] == [
        ("collected", "evidence collection"),
        ("uploaded", "transfer from the field device to the evidence store"),
        ("verified", "integrity check on receipt"),
        ("downloaded", "核对"),
        ("downloaded", "核对"),
        ("viewed", "查看"),
        ("downloaded", "移送检察院"),
        ("stored", "入库保管"),
    ]
    assert chain[3]["details"]["bytes"] == f"100-1099/{len(data)}"
    assert {c["device_id"] for c in chain[3:]} == {officer.device_id}
    assert chain[0]["place"] == "人民路1号夜市"

    disposal = officer.request_disposal(evidence_id, "案件已结，依法销毁")
    assert disposal["status"] == "pending"
    with pytest.raises(ConflictError):
        officer.request_disposal(evidence_id, "再次申请")
    decided = leader.decide_disposal(evidence_id, Decision.APPROVE, "同意")
    assert (decided["id"], decided["status"]) == (disposal["id"], "approved")
    assert officer.get_evidence(evidence_id)["status"] == "disposed"
    with pytest.raises(GoneError) as gone:
        officer.evidence_content(evidence_id, purpose="查看")
    assert gone.value.type == PROBLEM + "evidence-disposed"
    assert officer.custody(evidence_id)[-1]["event"] == "disposed"


def test_an_interrupted_upload_resumes_from_its_url(
    connect: Connect, world: Org, api: Api, tmp_path: Path
) -> None:
    user = world.user("a1.officer")
    officer = connect(user, device_id=device_id())
    key = enrolled(officer)
    case_id = api.case(user)["id"]
    data = photo(4 * CHUNK, seed=1)
    source = write(tmp_path, "video.png", data)
    kept: list[str] = []

    with pytest.raises(Stop):
        officer.upload_file(
            source, case_id=case_id, chunk_size=CHUNK, on_progress=stop_at(2 * CHUNK, kept)
        )
    url = kept[0]
    assert officer.upload_status(url) == (2 * CHUNK, len(data))

    # After a restart: a new client, the stored URL and the same file.
    resumed = connect(user, device_id=officer.device_id)
    progress: list[UploadProgress] = []
    assert (
        resumed.upload_file(
            source, case_id=case_id, chunk_size=CHUNK, url=url, on_progress=progress.append
        )
        == url
    )
    assert [p.offset for p in progress] == [2 * CHUNK, 3 * CHUNK, 4 * CHUNK, len(data)]
    # Resuming a finished upload sends nothing.
    assert resumed.upload_file(source, case_id=case_id, url=url) == url

    evidence = finalise(resumed, case_id, url, data, key)
    assert evidence["sha256"] == sha256(data)
    assert resumed.evidence_content(evidence["id"], purpose="核对") == data

    # A URL belongs to its file: a file of another length is refused, nothing is sent.
    other: list[str] = []
    with pytest.raises(Stop):
        officer.upload_file(
            write(tmp_path, "b.png", photo(2 * CHUNK, seed=2)),
            case_id=case_id,
            chunk_size=CHUNK,
            on_progress=stop_at(CHUNK, other),
        )
    with pytest.raises(ValueError, match="bytes long"):
        officer.upload_file(source, case_id=case_id, url=other[0])
    assert officer.upload_status(other[0]).offset == CHUNK

    # A terminated upload is gone.
    officer.terminate_upload(other[0])
    with pytest.raises(NotFoundError):
        officer.upload_status(other[0])
    with pytest.raises(NotFoundError):
        officer.upload_file(source, case_id=case_id, url=other[0])


def test_upload_and_evidence_errors_are_typed(
    connect: Connect,
    world: Org,
    api: Api,
    app: Flask,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = world.user("a1.officer")
    officer = connect(user, device_id=device_id())
    key = enrolled(officer)
    case_id = api.case(user)["id"]
    data = photo(1000, seed=3)
    source = write(tmp_path, "p.png", data)

    # A case of another district is out of reach, for tus as for the rest.
    foreign = api.case(world.user("b1.officer"))["id"]
    with pytest.raises(NotFoundError):
        officer.upload_file(source, case_id=foreign)

    url = officer.upload_file(source, case_id=case_id)
    with pytest.raises(ValidationError) as mismatch:
        finalise(officer, case_id, url, data + b"x", key)
    assert mismatch.value.type == PROBLEM + "hash-mismatch"
    with pytest.raises(ValidationError):  # signed by a key this device did not enrol
        finalise(officer, case_id, url, data, signing.new_private_key())
    with pytest.raises(ValueError, match="UTC offset"):
        finalise(officer, case_id, url, data, key, captured_at=datetime(2026, 3, 1, 9, 30))
    assert finalise(officer, case_id, url, data, key)["sha256"] == sha256(data)

    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", len(data) - 1)
    with pytest.raises(PayloadTooLarge):
        officer.upload_file(source, case_id=case_id)

    with pytest.raises(ValueError, match="byte range"):
        officer.evidence_content(upload_id_of(url), purpose="x", byte_range=(5, 5))

    # The network failing is not an API answer: requests' own exception.
    with FieldcaseClient(f"http://127.0.0.1:{free_port()}") as nowhere:
        nowhere.set_tokens(officer.access_token, officer.refresh_token)
        with pytest.raises(requests.ConnectionError):
            nowhere.upload_file(source, case_id=case_id)


def test_a_damaged_download_is_not_kept(
    connect: Connect, world: Org, api: Api, app: Flask, tmp_path: Path
) -> None:
    user = world.user("a1.officer")
    officer = connect(user, device_id=device_id())
    key = enrolled(officer)
    case_id = api.case(user)["id"]
    data = photo(5000, seed=4)
    url = officer.upload_file(write(tmp_path, "p.png", data), case_id=case_id)
    evidence = finalise(officer, case_id, url, data, key)
    stored = [p for p in Path(app.config["EVIDENCE_DIR"]).rglob(sha256(data)) if p.is_file()]
    assert len(stored) == 1
    original = stored[0].read_bytes()
    stored[0].chmod(0o644)
    stored[0].write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        with pytest.raises(ContentMismatch):
            officer.download_evidence(evidence["id"], tmp_path / "copy.png", purpose="核对")
        assert not (tmp_path / "copy.png").exists()
        assert not list(tmp_path.glob(".*.part"))
    finally:
        stored[0].write_bytes(original)
        stored[0].chmod(0o444)


def test_expired_access_token_is_refreshed_during_an_upload(
    database_url: str, tmp_path: Path, world: Org, api: Api
) -> None:
    """The app issues tokens already expired (the check has a 5 s leeway) while
    ``ACCESS_TOKEN_LIFETIME`` is negative, instead of the test sleeping."""
    user = world.user("a1.officer")
    case_id = api.case(user)["id"]
    data = photo(3 * CHUNK, seed=5)
    source = write(tmp_path, "p.png", data)
    expiring = make_app(database_url, tmp_path, ACCESS_TOKEN_LIFETIME=timedelta(seconds=-30))
    seen: list[TokenPair | None] = []

    def expire_now(client: FieldcaseClient) -> None:
        """Give the client an access token that has already expired."""
        expiring.config["ACCESS_TOKEN_LIFETIME"] = timedelta(seconds=-30)
        client.refresh()
        expiring.config["ACCESS_TOKEN_LIFETIME"] = timedelta(minutes=5)

    try:
        with serving(expiring) as url, FieldcaseClient(url, on_tokens=seen.append) as client:
            client.login(user.username, PASSWORD)  # an expired access token
            expiring.config["ACCESS_TOKEN_LIFETIME"] = timedelta(minutes=5)

            def expire_after_first_chunk(progress: UploadProgress) -> None:
                if progress.offset == CHUNK:
                    expire_now(client)

            upload = client.upload_file(
                source, case_id=case_id, chunk_size=CHUNK, on_progress=expire_after_first_chunk
            )
            # login, refresh at creation, expire_now, refresh at the second chunk
            assert len(seen) == 4
            expire_now(client)
            assert client.upload_status(upload) == (len(data), len(data))  # HEAD: no body
            assert len(seen) == 6
            assert seen[-1] is not None and client.access_token == seen[-1]["access_token"]

            # A refreshed token that is expired too: one retry, then the error.
            expiring.config["ACCESS_TOKEN_LIFETIME"] = timedelta(seconds=-30)
            client.refresh()
            with pytest.raises(AuthError) as expired:
                client.upload_file(source, case_id=case_id)
            assert expired.value.type == TOKEN_EXPIRED
            assert len(seen) == 8
    finally:
        with expiring.app_context():
            db.engine.dispose()


# Documents and signatures


def test_notification_record_from_draft_to_signed_pdf(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"), device_id=device_id())
    colleague = connect(world.user("a1.officer2"))
    key = enrolled(officer)
    case_id = officer.accept_incident(
        officer.create_incident(
            occurred_at=CAPTURED_AT, place="人民路1号", category="治安", summary="两人互殴。"
        )["id"],
        case_type="administrative",
        title="夜市互殴",
    ).case["id"]
    person = officer.add_person(
        case_id, role=PersonRole.SUSPECT, name="李强", id_number="110101198505051234"
    )

    catalogue = officer.document_templates()
    kinds = {kind["id"]: kind for kind in catalogue["kinds"]}
    assert kinds["notification_record"]["signatures"] == ["officer", "second_officer", "party"]

    document_id = str(uuid.uuid4())
    draft, etag = officer.create_document(
        case_id, kind="notification_record", person_id=person["id"], document_id=document_id
    )
    assert (draft["id"], draft["status"]) == (document_id, "draft")
    assert draft["content"]["kind"] == "notification_record"
    resent = officer.create_document(
        case_id, kind="notification_record", person_id=person["id"], document_id=document_id
    )
    assert resent.document["id"] == document_id

    edited, edited_etag = officer.edit_document(document_id, etag, completion(draft))
    assert edited_etag != etag and edited["version"] > draft["version"]
    with pytest.raises(PreconditionFailed) as stale:
        officer.edit_document(document_id, etag, {"title": "别的标题"})
    assert stale.value.current_etag == edited_etag

    final, final_etag = officer.finalize_document(document_id, edited_etag)
    assert final["status"] == "finalized"
    assert final["content_sha256"] == content_sha256(final["content"])
    assert officer.get_document(document_id) == (final, final_etag)
    with pytest.raises(ConflictError):
        officer.edit_document(document_id, final_etag, {"title": "别的标题"})

    now = datetime.now(UTC)
    image = signature_png()
    common: dict[str, Any] = {
        "strokes": STROKES,
        "image_png": image,
        "signed_at": now,
        "device_id": officer.device_id,
        "private_key": key,
    }
    me, other = officer.me(), colleague.me()
    first = officer.sign_document(
        final,
        signer_role=SignerRole.OFFICER,
        signer_name=me["display_name"],
        signer_user_id=me["id"],
        **common,
    )
    assert (first["role"], first["content_sha256"]) == ("officer", final["content_sha256"])
    officer.sign_document(
        final,
        signer_role="second_officer",
        signer_name=other["display_name"],
        signer_user_id=other["id"],
        **common,
    )
    # What the party was shown is not what was finalised: refused.
    shown = {**final, "content": {**final["content"], "title": "被改动的笔录"}}
    with pytest.raises(ConflictError):
        officer.sign_document(shown, signer_role="party", signer_name="李强", **common)
    assert officer.get_document(document_id).document["status"] == "finalized"
    fingerprint = jpeg_bytes()
    party = officer.sign_document(
        final,
        signer_role="party",
        signer_name="李强",
        signer_id_number="110101198505051234",
        fingerprint=fingerprint,
        signature_id=uuid.uuid4(),
        **common,
    )
    assert party["fingerprint_type"] == "image/jpeg"
    assert party["signer_id_number"] != "110101198505051234"  # masked

    signed = officer.get_document(document_id).document
    assert (signed["status"], signed["missing_signatures"]) == ("signed", [])
    assert [s["role"] for s in officer.list_signatures(document_id)] == [
        "officer",
        "second_officer",
        "party",
    ]
    assert officer.signature_image(document_id, party["id"]) == image
    assert officer.signature_fingerprint(document_id, party["id"]) == fingerprint
    with pytest.raises(NotFoundError):
        officer.signature_fingerprint(document_id, first["id"])
    assert [d["id"] for d in officer.list_documents(case_id)] == [document_id]

    pdf = colleague.document_pdf(document_id)
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    verification = colleague.verify_document(document_id)
    assert verification["valid"] and verification["matches"]
    assert verification["content_sha256"] == final["content_sha256"]
    assert [s["covers_content"] for s in verification["signatures"]] == [True] * 3


def test_a_draft_is_not_signed_or_printed(connect: Connect, world: Org) -> None:
    officer = connect(world.user("a1.officer"), device_id=device_id())
    key = enrolled(officer)
    case_id = officer.accept_incident(
        officer.create_incident(
            occurred_at=CAPTURED_AT, place="人民路1号", category="治安", summary="纠纷。"
        )["id"],
        case_type="administrative",
        title="纠纷",
    ).case["id"]
    person = officer.add_person(case_id, role="suspect", name="王五")
    draft, _ = officer.create_document(case_id, kind="notification_record", person_id=person["id"])
    with pytest.raises(ConflictError):
        officer.document_pdf(draft["id"])
    with pytest.raises(ConflictError):
        officer.sign_document(
            draft,
            signer_role="party",
            signer_name="王五",
            strokes=STROKES,
            image_png=signature_png(),
            signed_at=datetime.now(UTC),
            device_id=officer.device_id or "",
            private_key=key,
        )
    with pytest.raises(ValueError, match="UTC offset"):
        officer.sign_document(
            draft,
            signer_role="party",
            signer_name="王五",
            strokes=STROKES,
            image_png=signature_png(),
            signed_at=datetime(2026, 3, 1, 10, 0),
            device_id=officer.device_id or "",
            private_key=key,
        )
