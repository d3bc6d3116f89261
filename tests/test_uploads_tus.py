"""tus 1.0.0 at /api/v1/uploads: each core rule and extension, bad input, and
the real tus client (tuspy) against gunicorn, with connections cut half-way,
a server killed mid-upload, and concurrent chunks.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from tusclient import client as tus_client

from backend.audit.models import AuditEntry
from backend.cases.models import Case
from backend.common import utcnow
from backend.errors import Conflict, NotFound
from backend.extensions import db
from backend.jobs import service as jobs
from backend.org.models import User
from backend.uploads import hashing, service
from backend.uploads.models import Upload

from conftest import Api, Org, OrgUser
from support_server import LiveServer, live_server_fixture
from support_uploads import (
    CHUNK,
    TUS,
    checksum,
    create,
    head,
    metadata,
    patch,
    tus_headers,
    upload_file,
)

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def upload_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(autouse=True)
def _upload_dir(app: Flask, upload_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process app and the live server write to the same folder."""
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(upload_root))


live_server = live_server_fixture(
    scope="module",
    workers=2,
    settings=lambda request, _: {
        "FIELDCASE_UPLOAD_DIR": str(request.getfixturevalue("upload_root"))
    },
)


@pytest.fixture
def officer(world: Org) -> OrgUser:
    return world.user("a1.officer")


@pytest.fixture
def case_id(api: Api, officer: OrgUser) -> str:
    return api.case(officer)["id"]


def row(app: Flask, upload_id: str | uuid.UUID) -> Upload | None:
    with app.app_context():
        upload = db.session.get(Upload, uuid.UUID(str(upload_id)))
        if upload is not None:
            db.session.expunge(upload)
        return upload


def file_of(app: Flask, upload_id: str | uuid.UUID) -> Path:
    with app.app_context():
        return service._path(uuid.UUID(str(upload_id)))


def upload_id_of(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


# Core protocol


def test_options_tells_version_extensions_limit_and_algorithms(api: Api, app: Flask) -> None:
    response = api.client.options("/api/v1/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Version"] == "1.0.0"
    assert int(response.headers["Tus-Max-Size"]) == app.config["UPLOAD_MAX_BYTES"]
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "checksum",
        "termination",
        "expiration",
    }
    assert set(response.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "sha256"}


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0"])
def test_a_missing_or_other_tus_version_is_412(
    api: Api, officer: OrgUser, case_id: str, version: str | None
) -> None:
    location = create(api, officer, case_id, 10).headers["Location"]
    headers = {"Authorization": f"Bearer {api.token(officer)}"}
    if version:
        headers["Tus-Resumable"] = version
    chunk_headers = headers | {"Upload-Offset": "0", "Content-Type": CHUNK}
    for response in (
        api.client.post("/api/v1/uploads", headers=headers | {"Upload-Length": "10"}),
        api.client.head(location, headers=headers),
        api.client.patch(location, headers=chunk_headers, data=b"x"),
        api.client.delete(location, headers=headers),
    ):
        assert response.status_code == 412
        assert response.headers["Tus-Version"] == "1.0.0"
        assert response.headers["Tus-Resumable"] == "1.0.0"
        assert response.content_type == PROBLEM
    assert head(api, officer, location).headers["Upload-Offset"] == "0"


def test_creation_then_head_describes_the_upload(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    before = utcnow()
    response = create(api, officer, case_id, 1234, filename="现场照片.jpg")
    assert response.status_code == 201, response.get_json()
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Upload-Offset"] == "0"
    location = response.headers["Location"]
    assert location.startswith("http://localhost/api/v1/uploads/")
    status = head(api, officer, location)
    assert status.status_code == 200
    assert status.headers["Upload-Offset"] == "0"
    assert status.headers["Upload-Length"] == "1234"
    assert status.headers["Cache-Control"] == "no-store"
    assert status.headers["Upload-Metadata"] == metadata(case_id=case_id, filename="现场照片.jpg")
    assert status.headers["Upload-Expires"] == response.headers["Upload-Expires"]
    upload = row(app, upload_id_of(location))
    assert upload is not None
    assert str(upload.case_id) == case_id and upload.user_id == officer.id
    assert upload.filename == "现场照片.jpg"
    assert upload.length == 1234 and upload.offset == 0
    assert upload.expires_at >= before + app.config["UPLOAD_EXPIRY"]
    assert file_of(app, upload.id).stat().st_size == 0


def test_chunks_append_and_the_last_one_records_the_sha256(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(300_000)
    location = create(api, officer, case_id, len(data)).headers["Location"]
    first = patch(api, officer, location, 0, data[:100_000])
    assert first.status_code == 204, first.get_json()
    assert first.headers["Upload-Offset"] == "100000"
    assert first.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in first.headers
    assert head(api, officer, location).headers["Upload-Offset"] == "100000"
    assert row(app, upload_id_of(location)).sha256 is None
    last = patch(api, officer, location, 100_000, data[100_000:])
    assert last.status_code == 204
    assert last.headers["Upload-Offset"] == str(len(data))
    upload = row(app, upload_id_of(location))
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.completed_at is not None
    assert file_of(app, upload.id).read_bytes() == data
    status = head(api, officer, location)
    assert status.headers["Upload-Offset"] == status.headers["Upload-Length"] == str(len(data))


def test_a_chunk_at_another_offset_is_409_and_changes_nothing(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    location = create(api, officer, case_id, 100).headers["Location"]
    assert patch(api, officer, location, 0, b"a" * 40).status_code == 204
    for offset in (0, 39, 41, 100):
        response = patch(api, officer, location, offset, b"b" * 10)
        assert response.status_code == 409, offset
        assert response.content_type == PROBLEM
    assert head(api, officer, location).headers["Upload-Offset"] == "40"
    assert file_of(app, upload_id_of(location)).read_bytes() == b"a" * 40


@pytest.mark.parametrize(
    "content_type", [None, "application/octet-stream", "text/plain", "multipart/form-data"]
)
def test_a_chunk_of_another_content_type_is_415(
    api: Api, officer: OrgUser, case_id: str, content_type: str | None
) -> None:
    location = create(api, officer, case_id, 10).headers["Location"]
    headers = tus_headers(api, officer, **{"Upload-Offset": "0"})
    if content_type:
        headers["Content-Type"] = content_type
    response = api.client.patch(location, headers=headers, data=b"0123456789")
    assert response.status_code == 415
    assert response.content_type == PROBLEM
    assert head(api, officer, location).headers["Upload-Offset"] == "0"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_a_chunk_with_a_matching_checksum_is_kept(
    api: Api, officer: OrgUser, case_id: str, algorithm: str
) -> None:
    data = os.urandom(5000)
    location = create(api, officer, case_id, len(data)).headers["Location"]
    response = patch(
        api, officer, location, 0, data, **{"Upload-Checksum": checksum(algorithm, data)}
    )
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "5000"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_a_chunk_whose_checksum_does_not_match_is_460_and_not_kept(
    api: Api, app: Flask, officer: OrgUser, case_id: str, algorithm: str
) -> None:
    data = os.urandom(8000)
    location = create(api, officer, case_id, len(data)).headers["Location"]
    assert patch(api, officer, location, 0, data[:3000]).status_code == 204
    corrupted = bytes([data[3000] ^ 0xFF]) + data[3001:6000]
    response = patch(
        api,
        officer,
        location,
        3000,
        corrupted,
        **{"Upload-Checksum": checksum(algorithm, data[3000:6000])},
    )
    assert response.status_code == 460
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.content_type == PROBLEM
    assert response.get_json()["status"] == 460
    assert head(api, officer, location).headers["Upload-Offset"] == "3000"
    assert file_of(app, upload_id_of(location)).stat().st_size == 3000
    # The right bytes then go in, and the whole-file hash ignores the dropped chunk.
    rest = data[3000:]
    response = patch(
        api, officer, location, 3000, rest, **{"Upload-Checksum": checksum(algorithm, rest)}
    )
    assert response.status_code == 204
    assert row(app, upload_id_of(location)).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "header", ["md5 XUFAKrxLKna5cZ2REBfFkg==", "sha256", "sha256 not*base64", "sha1 AAAA"]
)
def test_an_unsupported_or_malformed_checksum_is_400(
    api: Api, officer: OrgUser, case_id: str, header: str
) -> None:
    location = create(api, officer, case_id, 10).headers["Location"]
    response = patch(api, officer, location, 0, b"0123456789", **{"Upload-Checksum": header})
    assert response.status_code == 400
    assert head(api, officer, location).headers["Upload-Offset"] == "0"


def test_creation_with_upload_keeps_the_first_bytes(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(70_000)
    response = create(api, officer, case_id, len(data), body=data[:50_000])
    assert response.status_code == 201, response.get_json()
    assert response.headers["Upload-Offset"] == "50000"
    location = response.headers["Location"]
    assert head(api, officer, location).headers["Upload-Offset"] == "50000"
    assert patch(api, officer, location, 50_000, data[50_000:]).status_code == 204
    assert row(app, upload_id_of(location)).sha256 == hashlib.sha256(data).hexdigest()


def test_creation_with_the_whole_file_completes_it(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(1000)
    response = create(
        api, officer, case_id, len(data), body=data, **{"Upload-Checksum": checksum("sha1", data)}
    )
    assert response.status_code == 201
    assert "Upload-Expires" not in response.headers
    upload = row(app, upload_id_of(response.headers["Location"]))
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.completed_at is not None


def test_creation_with_a_body_of_another_type_is_415_and_creates_nothing(
    api: Api, app: Flask, officer: OrgUser, case_id: str, upload_root: Path
) -> None:
    before = set(upload_root.iterdir())
    response = create(
        api, officer, case_id, 10, body=b"0123456789", **{"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 415
    assert set(upload_root.iterdir()) == before


def test_termination_deletes_the_upload_and_its_file(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    location = create(api, officer, case_id, 100).headers["Location"]
    assert patch(api, officer, location, 0, b"x" * 50).status_code == 204
    path = file_of(app, upload_id_of(location))
    assert path.exists()
    response = api.client.delete(location, headers=tus_headers(api, officer))
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert not path.exists()
    assert row(app, upload_id_of(location)) is None
    assert head(api, officer, location).status_code == 404
    assert patch(api, officer, location, 50, b"x").status_code == 404


def test_expired_uploads_are_gone_and_purged(
    api: Api, app: Flask, officer: OrgUser, case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Time is injected through the configured lifetime: these uploads expire at once.
    monkeypatch.setitem(app.config, "UPLOAD_EXPIRY", timedelta(seconds=-1))
    expired = create(api, officer, case_id, 100).headers["Location"]
    monkeypatch.setitem(app.config, "UPLOAD_EXPIRY", timedelta(hours=72))
    live = create(api, officer, case_id, 100).headers["Location"]
    assert head(api, officer, expired).status_code == 410
    assert patch(api, officer, expired, 0, b"x").status_code == 410
    assert head(api, officer, live).status_code == 200

    result = app.test_cli_runner().invoke(args=["uploads", "purge-expired"])
    assert result.exit_code == 0, result.output
    assert "expired uploads deleted" in result.output
    assert row(app, upload_id_of(expired)) is None
    assert not file_of(app, upload_id_of(expired)).exists()
    assert row(app, upload_id_of(live)) is not None
    assert file_of(app, upload_id_of(live)).exists()


def test_a_chunk_extends_the_expiry(
    api: Api, app: Flask, officer: OrgUser, case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = create(api, officer, case_id, 100).headers["Location"]
    created = row(app, upload_id_of(location)).expires_at
    monkeypatch.setitem(app.config, "UPLOAD_EXPIRY", timedelta(days=30))
    response = patch(api, officer, location, 0, b"x" * 10)
    assert row(app, upload_id_of(location)).expires_at >= created + timedelta(days=27)
    assert (
        head(api, officer, location).headers["Upload-Expires"] == response.headers["Upload-Expires"]
    )


def test_the_purge_job_removes_files_of_finalised_uploads_and_keeps_their_rows(
    api: Api, app: Flask, world: Org, officer: OrgUser, case_id: str
) -> None:
    upload_id = upload_file(api, officer, case_id, b"evidence bytes")
    path = file_of(app, upload_id)
    with app.app_context():
        user = db.session.get_one(User, officer.id)
        upload = service.completed_upload(user, uuid.UUID(upload_id), uuid.UUID(case_id))
        service.mark_consumed(upload)
        db.session.commit()
    assert path.exists()
    with app.app_context():
        summary = jobs.run_job(jobs.JOBS["uploads.purge_expired"])
    assert "files of finalised uploads" in summary
    assert not path.exists()
    upload = row(app, upload_id)
    assert upload is not None and upload.purged_at is not None
    location = f"/api/v1/uploads/{upload_id}"
    assert patch(api, officer, location, 14, b"").status_code == 204
    assert patch(api, officer, location, 3, b"x").status_code == 409
    colleague = world.user("a1.officer2")
    assert patch(api, colleague, location, 14, b"").status_code == 404
    assert not path.exists()


def test_the_purge_job_is_registered_hourly() -> None:
    assert jobs.JOBS["uploads.purge_expired"].every == timedelta(hours=1)


def test_the_purge_removes_old_files_that_no_upload_names(app: Flask, upload_root: Path) -> None:
    orphan = upload_root / f"{uuid.uuid4().hex}.part"
    orphan.write_bytes(b"left behind by a failed commit")
    unrelated = upload_root / "README"
    unrelated.write_text("not an upload")
    with app.app_context():
        assert service.purge_expired().orphan_files == 0  # too young yet
        report = service.purge_expired(now=utcnow() + app.config["UPLOAD_EXPIRY"] * 2)
        db.session.rollback()
    assert report.orphan_files == 1
    assert not orphan.exists() and unrelated.exists()


# Authorization and the evidence interface


def test_another_users_upload_is_404(api: Api, world: Org, officer: OrgUser, case_id: str) -> None:
    location = create(api, officer, case_id, 10).headers["Location"]
    colleague = world.user("a1.officer2")
    assert head(api, colleague, location).status_code == 404
    assert patch(api, colleague, location, 0, b"0123456789").status_code == 404
    response = api.client.delete(location, headers=tus_headers(api, colleague))
    assert response.status_code == 404
    assert head(api, officer, location).headers["Upload-Offset"] == "0"


def test_a_case_of_another_unit_is_404(api: Api, world: Org) -> None:
    foreign_case = api.case(world.user("b1.officer"))["id"]
    response = create(api, world.user("a1.officer"), foreign_case, 10)
    assert response.status_code == 404
    assert response.content_type == PROBLEM


def test_a_closed_case_takes_no_uploads(api: Api, app: Flask, officer: OrgUser) -> None:
    case_id = api.case(officer)["id"]
    with app.app_context():
        db.session.execute(
            sa.update(Case)
            .where(Case.id == uuid.UUID(case_id))
            .values(status="closed", is_open=False)
        )
        db.session.commit()
    response = create(api, officer, case_id, 10)
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("case-closed")


def test_an_unknown_case_is_404(api: Api, officer: OrgUser) -> None:
    assert create(api, officer, str(uuid.uuid4()), 10).status_code == 404


@pytest.mark.parametrize("role", ["legal", "leader", "manager", "admin"])
def test_only_officers_upload(api: Api, world: Org, case_id: str, role: str) -> None:
    response = create(api, world.user(f"a1.{role}"), case_id, 10)
    assert response.status_code == 403


def test_without_a_token_is_401(api: Api, case_id: str) -> None:
    response = api.client.post(
        "/api/v1/uploads",
        headers=TUS | {"Upload-Length": "10", "Upload-Metadata": metadata(case_id=case_id)},
    )
    assert response.status_code == 401


def test_completed_upload_and_mark_consumed(
    api: Api, app: Flask, world: Org, officer: OrgUser, case_id: str
) -> None:
    done = uuid.UUID(upload_file(api, officer, case_id, b"abc"))
    unfinished = uuid.UUID(upload_id_of(create(api, officer, case_id, 10).headers["Location"]))
    with app.app_context():
        user = db.session.get_one(User, officer.id)
        colleague = db.session.get_one(User, world.user("a1.officer2").id)
        for who, upload_id, case, error in (
            (colleague, done, case_id, NotFound),
            (user, done, str(uuid.uuid4()), NotFound),
            (user, uuid.uuid4(), case_id, NotFound),
            (user, unfinished, case_id, Conflict),
        ):
            with pytest.raises(error):
                service.completed_upload(who, upload_id, uuid.UUID(case))
        upload = service.completed_upload(user, done, uuid.UUID(case_id))
        assert upload.sha256 == hashlib.sha256(b"abc").hexdigest()
        assert service.upload_path(upload).read_bytes() == b"abc"
        assert upload.filetype is None and upload.filename == "photo.jpg"
        service.mark_consumed(upload)
        db.session.commit()
        with pytest.raises(Conflict):
            service.completed_upload(user, done, uuid.UUID(case_id))
        db.session.rollback()
    location = f"/api/v1/uploads/{done}"
    response = api.client.delete(location, headers=tus_headers(api, officer))
    assert response.status_code == 409
    assert head(api, officer, location).status_code == 200


def test_uploads_are_audited_with_their_id(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    location = create(api, officer, case_id, 10).headers["Location"]
    upload_id = upload_id_of(location)
    patch(api, officer, location, 0, b"0123456789", **{"X-Device-Id": "bodycam-7"})
    with app.app_context():
        entries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.object_id == upload_id).order_by(AuditEntry.id)
        ).all()
    assert [(e.object_type, e.action, e.status) for e in entries] == [
        ("upload", "uploads.create_upload", 201),
        ("upload", "uploads.upload_chunk", 204),
    ]
    # The chunk ends its transaction before the bytes stream in; the audit row
    # still names the authenticated actor, unit and device.
    chunk = entries[-1]
    assert (chunk.actor_id, chunk.actor_unit_id) == (officer.id, officer.unit_id)
    assert chunk.device_id == "bodycam-7"


def test_an_idempotency_key_does_not_replay_a_creation(
    api: Api, officer: OrgUser, case_id: str
) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = create(api, officer, case_id, 10, **key)
    second = create(api, officer, case_id, 10, **key)
    assert first.status_code == second.status_code == 201
    assert first.headers["Location"] != second.headers["Location"]
    assert "Idempotent-Replayed" not in second.headers


# Bad input


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\config", "config"),
        ("C:\\DCIM\\IMG_0001.JPG", "IMG_0001.JPG"),
        ("/var/evidence/../photo.jpg", "photo.jpg"),
        ("evil\x07name\x1f\x7f.jpg", "evilname.jpg"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("..hidden", "hidden"),
        ("  录音 2026-03-01.m4a  ", "录音 2026-03-01.m4a"),
    ],
)
def test_a_filename_keeps_only_a_safe_base_name(
    api: Api, app: Flask, officer: OrgUser, case_id: str, given: str, kept: str
) -> None:
    response = create(api, officer, case_id, 10, filename=given)
    assert response.status_code == 201, response.get_json()
    upload = row(app, upload_id_of(response.headers["Location"]))
    assert upload.filename == kept
    assert file_of(app, upload.id).parent == Path(app.config["UPLOAD_DIR"])


@pytest.mark.parametrize("given", ["../", "..", "/", "\\..\\", "\x00\x01", "a/b/", "x" * 256])
def test_a_filename_with_nothing_usable_is_400(
    api: Api, officer: OrgUser, case_id: str, given: str, upload_root: Path
) -> None:
    before = set(upload_root.iterdir())
    response = create(api, officer, case_id, 10, filename=given)
    assert response.status_code == 400
    assert response.content_type == PROBLEM
    assert set(upload_root.iterdir()) == before


@pytest.mark.parametrize(
    "header",
    [
        "case_id",  # no value
        "case_id not-base64!",
        "case_id {case_b64} extra",
        "case_id {case_b64},case_id {case_b64}",
        "case_id {case_b64},,filename cGhvdG8=",
        "case id {case_b64}",
        "case_id {case_b64},filename /w==",  # not UTF-8
        "case_id {case_b64},filename YQBi",  # NUL in the value
        "case_id {case_b64},filetype dGV4dA==",  # "text": not a media type
        "case_id bm90LWEtdXVpZA==",  # "not-a-uuid"
        "filename cGhvdG8uanBn",  # no case_id
        "",
        "case_id {case_b64}," + "x" * 4100,
    ],
)
def test_malformed_upload_metadata_is_400(
    api: Api, officer: OrgUser, case_id: str, header: str
) -> None:
    case_b64 = metadata(case_id=case_id).split(" ", 1)[1]
    response = api.client.post(
        "/api/v1/uploads",
        headers=tus_headers(
            api,
            officer,
            **{"Upload-Length": "10", "Upload-Metadata": header.format(case_b64=case_b64)},
        ),
    )
    assert response.status_code == 400, response.get_json()
    assert response.content_type == PROBLEM


def test_metadata_keys_without_a_value_and_other_keys_are_accepted(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    header = metadata(case_id=case_id, filetype="video/mp4", relativePath=None, name="a.mp4")
    response = api.client.post(
        "/api/v1/uploads",
        headers=tus_headers(api, officer, **{"Upload-Length": "10", "Upload-Metadata": header}),
    )
    assert response.status_code == 201, response.get_json()
    upload = row(app, upload_id_of(response.headers["Location"]))
    assert upload.filetype == "video/mp4" and upload.filename is None
    assert head(api, officer, response.headers["Location"]).headers["Upload-Metadata"] == header


@pytest.mark.parametrize("length", [None, "0", "-1", "ten", "1.5", " 10", "99999999999999999999"])
def test_a_missing_zero_or_malformed_upload_length_is_refused(
    api: Api, officer: OrgUser, case_id: str, length: str | None
) -> None:
    headers = {"Upload-Metadata": metadata(case_id=case_id)}
    if length is not None:
        headers["Upload-Length"] = length
    response = api.client.post("/api/v1/uploads", headers=tus_headers(api, officer, **headers))
    assert response.status_code == 400, response.get_json()


def test_a_file_over_the_limit_is_413(
    api: Api, app: Flask, officer: OrgUser, case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 1000)
    assert create(api, officer, case_id, 1000).status_code == 201
    response = create(api, officer, case_id, 1001)
    assert response.status_code == 413
    assert response.content_type == PROBLEM


def test_a_chunk_over_the_chunk_limit_is_413(
    api: Api, app: Flask, officer: OrgUser, case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "UPLOAD_CHUNK_MAX_BYTES", 100)
    location = create(api, officer, case_id, 1000).headers["Location"]
    assert patch(api, officer, location, 0, b"x" * 101).status_code == 413
    assert patch(api, officer, location, 0, b"x" * 100).status_code == 204
    assert create(api, officer, case_id, 1000, body=b"x" * 101).status_code == 413


def test_a_chunk_past_upload_length_is_413_and_not_kept(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    location = create(api, officer, case_id, 10).headers["Location"]
    assert patch(api, officer, location, 0, b"x" * 11).status_code == 413
    assert create(api, officer, case_id, 10, body=b"x" * 11).status_code == 413
    assert head(api, officer, location).headers["Upload-Offset"] == "0"


def test_the_case_cap_counts_evidence_and_pending_uploads(
    api: Api, app: Flask, officer: OrgUser, case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "CASE_EVIDENCE_MAX_BYTES", 1000)
    assert create(api, officer, case_id, 600).status_code == 201
    response = create(api, officer, case_id, 401)
    assert response.status_code == 413
    assert response.get_json()["type"].endswith("case-evidence-limit")
    assert create(api, officer, case_id, 400).status_code == 201
    assert create(api, officer, api.case(officer)["id"], 1000).status_code == 201


def test_a_finished_upload_takes_no_more_bytes(api: Api, officer: OrgUser, case_id: str) -> None:
    upload_id = upload_file(api, officer, case_id, b"0123456789")
    location = f"/api/v1/uploads/{upload_id}"
    assert patch(api, officer, location, 10, b"").status_code == 204
    assert patch(api, officer, location, 10, b"x").status_code == 413
    assert patch(api, officer, location, 5, b"x").status_code == 409


def test_a_lost_hash_state_is_recomputed_from_the_file(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    location = create(api, officer, case_id, len(data)).headers["Location"]
    assert patch(api, officer, location, 0, data[:2_500_000]).status_code == 204
    with app.app_context():
        db.session.execute(
            sa.update(Upload)
            .where(Upload.id == uuid.UUID(upload_id_of(location)))
            .values(hash_state=None)
        )
        db.session.commit()
    assert patch(api, officer, location, 2_500_000, data[2_500_000:]).status_code == 204
    assert row(app, upload_id_of(location)).sha256 == hashlib.sha256(data).hexdigest()


def test_without_an_exportable_hash_state_each_chunk_rehashes_the_file(
    api: Api, app: Flask, officer: OrgUser, case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashing, "_LIB", None)  # libcrypto missing: hashlib only
    data = os.urandom(2 * 1024 * 1024 + 5)
    upload_id = upload_file(api, officer, case_id, data, chunk=700_000)
    upload = row(app, upload_id)
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


def test_bytes_past_the_offset_from_a_dead_worker_are_dropped(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(1000)
    location = create(api, officer, case_id, len(data)).headers["Location"]
    assert patch(api, officer, location, 0, data[:400]).status_code == 204
    with file_of(app, upload_id_of(location)).open("ab") as partial:
        partial.write(b"garbage a killed worker wrote but never committed")
    assert head(api, officer, location).headers["Upload-Offset"] == "400"
    assert patch(api, officer, location, 400, data[400:]).status_code == 204
    assert file_of(app, upload_id_of(location)).read_bytes() == data
    assert row(app, upload_id_of(location)).sha256 == hashlib.sha256(data).hexdigest()


def test_a_chunk_for_an_unknown_upload_is_404_and_leaves_no_file(
    api: Api, app: Flask, officer: OrgUser
) -> None:
    unknown = uuid.uuid4()
    response = patch(api, officer, f"/api/v1/uploads/{unknown}", 0, b"x")
    assert response.status_code == 404
    assert not file_of(app, unknown).exists()


def test_a_lost_file_restarts_the_upload_at_zero(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(1000)
    location = create(api, officer, case_id, len(data)).headers["Location"]
    assert patch(api, officer, location, 0, data[:600]).status_code == 204
    file_of(app, upload_id_of(location)).unlink()  # lost in a crash of the machine
    assert head(api, officer, location).headers["Upload-Offset"] == "0"
    assert patch(api, officer, location, 600, data[600:]).status_code == 409
    assert patch(api, officer, location, 0, data).status_code == 204
    assert file_of(app, upload_id_of(location)).read_bytes() == data
    assert row(app, upload_id_of(location)).sha256 == hashlib.sha256(data).hexdigest()


def test_a_chunk_reads_and_writes_the_upload_row_once(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    location = create(api, officer, case_id, 100).headers["Location"]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "uploads" in statement:
            statements.append(statement.split(None, 1)[0].upper())

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        assert patch(api, officer, location, 0, b"x" * 40).status_code == 204
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert statements == ["SELECT", "UPDATE"]


def test_an_offset_moved_while_the_chunk_streamed_is_409(
    api: Api, app: Flask, officer: OrgUser, case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UPDATE expects the offset the chunk started from; it writes nothing otherwise."""
    location = create(api, officer, case_id, 100).headers["Location"]
    upload_id = uuid.UUID(upload_id_of(location))
    receive = service._receive

    def receive_while_the_row_moves(*args: Any) -> int:
        with db.engine.begin() as other:  # another writer, in its own transaction
            other.execute(sa.update(Upload).where(Upload.id == upload_id).values(offset=7))
        return receive(*args)

    monkeypatch.setattr(service, "_receive", receive_while_the_row_moves)
    response = patch(api, officer, location, 0, b"x" * 40)
    assert response.status_code == 409
    assert row(app, upload_id).offset == 7


def test_blocks_are_written_in_64_kib_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1 MiB blocks go to the file 64 KiB at a time (measured much cheaper; see ``_write``)."""
    sizes: list[int] = []
    pwrite = os.pwrite

    def recording(fd: int, data: Any, position: int) -> int:
        sizes.append(len(data))
        return pwrite(fd, data, position)

    monkeypatch.setattr(service.os, "pwrite", recording)
    block = os.urandom((1 << 20) + 5)
    path = tmp_path / "part"
    with path.open("w+b") as handle:
        service._write(handle.fileno(), memoryview(block), 3)
    assert sizes == [64 * 1024] * 16 + [5]
    assert path.read_bytes() == bytes(3) + block


def test_a_file_shorter_than_its_offset_resumes_where_the_bytes_end(
    api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(1000)
    location = create(api, officer, case_id, len(data)).headers["Location"]
    assert patch(api, officer, location, 0, data[:600]).status_code == 204
    os.truncate(file_of(app, upload_id_of(location)), 250)  # lost in a crash of the machine
    assert head(api, officer, location).headers["Upload-Offset"] == "250"
    assert patch(api, officer, location, 600, data[600:]).status_code == 409
    assert patch(api, officer, location, 250, data[250:]).status_code == 204
    assert row(app, upload_id_of(location)).sha256 == hashlib.sha256(data).hexdigest()


# A real tus client against gunicorn


def bearer(api: Api, user: OrgUser) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token(user)}"}


def uploader(
    server: LiveServer,
    api: Api,
    user: OrgUser,
    case_id: str,
    path: Path,
    *,
    url: str | None = None,
    chunk_size: int = 1 << 20,
    upload_checksum: bool = False,
) -> Any:
    client = tus_client.TusClient(server.url("/api/v1/uploads"), headers=bearer(api, user))
    return client.uploader(
        file_path=str(path),
        url=url,
        chunk_size=chunk_size,
        metadata={"case_id": case_id, "filename": path.name},
        upload_checksum=upload_checksum,
    )


def eventually(condition: Any, what: str, timeout: float = 30) -> Any:
    """Wait for ``condition()`` to hold (another process is working on it)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return result


class RawChunk:
    """A PATCH written by hand on a socket, to stop sending half-way."""

    def __init__(
        self,
        server: LiveServer,
        token: str,
        url: str,
        offset: int,
        length: int,
        **headers: str,
    ) -> None:
        self.request_id = uuid.uuid4().hex
        lines = [
            f"PATCH {urlsplit(url).path} HTTP/1.1",
            f"Host: 127.0.0.1:{server.port}",
            f"Authorization: Bearer {token}",
            "Tus-Resumable: 1.0.0",
            f"Upload-Offset: {offset}",
            f"Content-Type: {CHUNK}",
            f"Content-Length: {length}",
            f"X-Request-Id: {self.request_id}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self.sock = socket.create_connection(("127.0.0.1", server.port))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cut(self) -> None:
        self.sock.close()

    def status(self) -> int:
        with self.sock, self.sock.makefile("rb") as answer:
            return int(answer.readline().split()[1])


def audited_status(app: Flask, request_id: str) -> int | None:
    with app.app_context():
        return db.session.scalar(
            sa.select(AuditEntry.status).where(AuditEntry.request_id == request_id)
        )


def server_offset(server: LiveServer, api: Api, user: OrgUser, url: str) -> int:
    response = requests.head(url, headers=TUS | bearer(api, user), timeout=10)
    assert response.status_code == 200, response.status_code
    return int(response.headers["Upload-Offset"])


@pytest.fixture
def evidence_file(tmp_path: Path) -> Path:
    path = tmp_path / "bodycam.mp4"
    path.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    return path


def test_tuspy_uploads_a_file_through_gunicorn(
    live_server: LiveServer,
    api: Api,
    app: Flask,
    officer: OrgUser,
    case_id: str,
    evidence_file: Path,
) -> None:
    upload = uploader(live_server, api, officer, case_id, evidence_file, upload_checksum=True)
    upload.upload()
    data = evidence_file.read_bytes()
    stored = row(app, upload_id_of(upload.url))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.filename == "bodycam.mp4"
    assert file_of(app, stored.id).read_bytes() == data


def test_tuspy_resumes_after_the_connection_is_cut_half_way(
    live_server: LiveServer,
    api: Api,
    app: Flask,
    officer: OrgUser,
    case_id: str,
    evidence_file: Path,
) -> None:
    data = evidence_file.read_bytes()
    first = uploader(live_server, api, officer, case_id, evidence_file)
    first.upload(stop_at=1 << 20)
    chunk = RawChunk(live_server, api.token(officer), first.url, 1 << 20, 2 << 20)
    chunk.send(data[1 << 20 : (1 << 20) + 700_000])
    chunk.cut()
    eventually(lambda: audited_status(app, chunk.request_id), "the cut chunk's answer")
    assert server_offset(live_server, api, officer, first.url) == (1 << 20) + 700_000
    resumed = uploader(live_server, api, officer, case_id, evidence_file, url=first.url)
    assert resumed.offset == (1 << 20) + 700_000
    resumed.upload()
    assert row(app, upload_id_of(first.url)).sha256 == hashlib.sha256(data).hexdigest()


def test_a_cut_chunk_with_a_checksum_is_not_kept(
    live_server: LiveServer,
    api: Api,
    app: Flask,
    officer: OrgUser,
    case_id: str,
    evidence_file: Path,
) -> None:
    data = evidence_file.read_bytes()
    first = uploader(live_server, api, officer, case_id, evidence_file)
    first.upload(stop_at=1 << 20)
    piece = data[1 << 20 : 2 << 20]
    chunk = RawChunk(
        live_server,
        api.token(officer),
        first.url,
        1 << 20,
        len(piece),
        **{"Upload-Checksum": checksum("sha256", piece)},
    )
    chunk.send(piece[:300_000])
    chunk.cut()
    assert eventually(lambda: audited_status(app, chunk.request_id), "the answer") == 400
    assert server_offset(live_server, api, officer, first.url) == 1 << 20
    assert file_of(app, upload_id_of(first.url)).stat().st_size == 1 << 20
    resumed = uploader(
        live_server, api, officer, case_id, evidence_file, url=first.url, upload_checksum=True
    )
    resumed.upload()
    assert row(app, upload_id_of(first.url)).sha256 == hashlib.sha256(data).hexdigest()


def test_tuspy_resumes_after_the_server_is_killed_mid_upload(
    live_server: LiveServer,
    api: Api,
    app: Flask,
    officer: OrgUser,
    case_id: str,
    evidence_file: Path,
) -> None:
    data = evidence_file.read_bytes()
    first = uploader(live_server, api, officer, case_id, evidence_file)
    first.upload(stop_at=2 << 20)
    path = file_of(app, upload_id_of(first.url))
    chunk = RawChunk(live_server, api.token(officer), first.url, 2 << 20, 3 << 20)
    chunk.send(data[2 << 20 : (3 << 20) + 600_000])
    eventually(lambda: path.stat().st_size == 3 << 20, "the worker to write a block")
    live_server.restart(crash=True)
    chunk.cut()
    assert path.stat().st_size > 2 << 20  # bytes of the chunk the dead worker never committed
    assert server_offset(live_server, api, officer, first.url) == 2 << 20
    resumed = uploader(live_server, api, officer, case_id, evidence_file, url=first.url)
    resumed.upload()
    assert row(app, upload_id_of(first.url)).sha256 == hashlib.sha256(data).hexdigest()
    assert path.read_bytes() == data


def test_concurrent_chunks_to_one_upload_have_one_winner(
    live_server: LiveServer, api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(512 * 1024)
    created = requests.post(
        live_server.url("/api/v1/uploads"),
        headers=TUS
        | bearer(api, officer)
        | {"Upload-Length": str(len(data)), "Upload-Metadata": metadata(case_id=case_id)},
        timeout=10,
    )
    assert created.status_code == 201
    url = created.headers["Location"]
    headers = TUS | bearer(api, officer) | {"Upload-Offset": "0", "Content-Type": CHUNK}
    barrier = threading.Barrier(6)

    def send(_: int) -> int:
        barrier.wait()
        return requests.patch(url, headers=headers, data=data, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(send, range(6)))
    assert statuses == [204, 409, 409, 409, 409, 409]
    assert row(app, upload_id_of(url)).sha256 == hashlib.sha256(data).hexdigest()


def test_a_chunk_while_another_streams_is_409_busy(
    live_server: LiveServer, api: Api, app: Flask, officer: OrgUser, case_id: str
) -> None:
    data = os.urandom(3 << 20)
    response = create(api, officer, case_id, len(data))
    url = live_server.url(urlsplit(response.headers["Location"]).path)
    path = file_of(app, upload_id_of(url))
    first = RawChunk(live_server, api.token(officer), url, 0, len(data))
    first.send(data[:1_500_000])
    eventually(lambda: path.stat().st_size == 1 << 20, "the first chunk to stream")
    second = requests.patch(
        url,
        headers=TUS | bearer(api, officer) | {"Upload-Offset": "0", "Content-Type": CHUNK},
        data=data,
        timeout=10,
    )
    assert second.status_code == 409
    assert second.json()["type"].endswith("upload-busy")
    # No transaction is held while bytes stream: on SQLite another writer gets
    # the database at once (it would wait for its busy timeout and fail if not).
    assert api.incident(officer)["status"] == "reported"
    first.send(data[1_500_000:])
    assert first.status() == 204
    assert row(app, upload_id_of(url)).sha256 == hashlib.sha256(data).hexdigest()
