"""Helpers for the evidence tests: finished tus uploads, enrolled devices, signed
finalisations, sample files whose type shows in their first bytes, and a real
S3-protocol server (moto in server mode) on loopback."""

from __future__ import annotations

import base64
import hashlib
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from moto.server import ThreadedMotoServer

from shared import signing

from conftest import Api, OrgUser

TUS = {"Tus-Resumable": "1.0.0"}
PROBLEM = "application/problem+json"
CAPTURED_AT = "2026-03-01T09:30:00+08:00"
BUCKET = "fieldcase-evidence-test"


# Sample files


def png_bytes(width: int = 4, height: int = 3, seed: int = 0) -> bytes:
    """A real PNG image (a flat colour; ``seed`` changes the colour and so the hash)."""
    row = b"\x00" + bytes([seed % 256, 80, 160]) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def mp4_bytes(size: int = 4096) -> bytes:
    """The start of an ISO base media file (``ftyp`` box, brand ``isom``) and filler."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    free = struct.pack(">I", size - len(ftyp)) + b"free"
    return (ftyp + free).ljust(size, b"\x00")


def text_bytes(text: str = "现场勘验记录\n") -> bytes:
    return text.encode("utf-8") * 8


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Uploads


def tus_metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def upload(
    api: Api,
    user: OrgUser,
    case_id: str,
    data: bytes,
    filename: str = "photo.jpg",
    filetype: str | None = None,
) -> str:
    """A finished upload, sent whole in the creation request (creation-with-upload)."""
    metadata = {"case_id": case_id, "filename": filename}
    if filetype:
        metadata["filetype"] = filetype
    response = api.post(
        "/api/v1/uploads",
        user,
        headers={
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": tus_metadata(**metadata),
            "Content-Type": "application/offset+octet-stream",
        },
        data=data,
    )
    assert response.status_code == 201, (response.status_code, response.get_data(as_text=True))
    assert int(response.headers["Upload-Offset"]) == len(data)
    return response.headers["Location"].rstrip("/").rpartition("/")[2]


# Devices and signed submissions


@dataclass(frozen=True)
class Device:
    device_id: str
    key: Ed25519PrivateKey
    pk: str


def enrol(api: Api, user: OrgUser) -> Device:
    key = signing.new_private_key()
    device_id = f"phone-{uuid.uuid4().hex[:10]}"
    response = api.post(
        "/api/v1/devices",
        user,
        json={
            "device_id": device_id,
            "name": "执法记录仪",
            "public_key": signing.public_key_text(key),
        },
    )
    assert response.status_code == 201, response.get_json()
    return Device(device_id, key, response.get_json()["id"])


def signed_fields(case_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The canonical dict of the finalise route's documentation."""
    return {
        "case_id": case_id,
        "upload_id": body["upload_id"],
        "sha256": body["sha256"],
        "kind": body["kind"],
        "captured_at": body["captured_at"],
        "place": body["place"],
        "latitude": body.get("latitude"),
        "longitude": body.get("longitude"),
        "device_id": body["device_id"],
        "description": body.get("description", ""),
        "id": body.get("id"),
    }


def evidence_body(
    case_id: str,
    upload_id: str,
    data: bytes,
    device: Device,
    *,
    sign_with: Ed25519PrivateKey | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A finalisation of ``upload_id`` signed by ``device`` (or by ``sign_with``)."""
    body: dict[str, Any] = {
        "upload_id": upload_id,
        "kind": "photo",
        "sha256": sha256(data),
        "captured_at": CAPTURED_AT,
        "place": "人民路1号夜市",
        "latitude": "30.2741",
        "longitude": "120.1551",
        "device_id": device.device_id,
        "description": "现场照片",
        **fields,
    }
    body["device_signature"] = signing.sign(
        sign_with or device.key, "evidence", signed_fields(case_id, body)
    )
    return body


@dataclass
class EvidenceMaker:
    """Finalises evidence for tests: a case, an upload and a signed body in one call."""

    api: Api
    officer: OrgUser
    device: Device

    def finalise(self, case_id: str, body: dict[str, Any], user: OrgUser | None = None) -> Any:
        return self.api.post(f"/api/v1/cases/{case_id}/evidence", user or self.officer, json=body)

    def add(
        self,
        case_id: str,
        data: bytes,
        filename: str = "photo.png",
        filetype: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        upload_id = upload(self.api, self.officer, case_id, data, filename, filetype)
        response = self.finalise(
            case_id, evidence_body(case_id, upload_id, data, self.device, **fields)
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()


def configure_local_store(monkeypatch: pytest.MonkeyPatch, app: Flask, root: Path) -> Path:
    """Uploads and the evidence store under ``root`` for one test."""
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(root / "uploads"))
    monkeypatch.setitem(app.config, "EVIDENCE_STORE", "local")
    monkeypatch.setitem(app.config, "EVIDENCE_DIR", str(root / "evidence"))
    return root / "evidence"


# S3 on loopback


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")

    def new_bucket(self) -> str:
        name = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
        self.client().create_bucket(Bucket=name)
        return name


def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, for the whole run."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield S3Server(f"http://{host}:{port}")
    server.stop()


@pytest.fixture(name="s3")
def s3_fixture(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server, with the dummy credentials boto3 needs in the environment."""
    s3_credentials(monkeypatch)
    return s3_server


def configure_s3_store(
    monkeypatch: pytest.MonkeyPatch, app: Flask, root: Path, server: S3Server
) -> str:
    """Uploads under ``root`` and evidence in a new bucket of ``server`` for one test."""
    bucket = server.new_bucket()
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(root / "uploads"))
    monkeypatch.setitem(app.config, "EVIDENCE_STORE", "s3")
    monkeypatch.setitem(app.config, "S3_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setitem(app.config, "S3_BUCKET", bucket)
    monkeypatch.setitem(app.config, "S3_REGION", "us-east-1")
    monkeypatch.setitem(app.config, "S3_PREFIX", "sha256/")
    return bucket
