"""Helpers for document tests: images, a signing device, filled drafts and full signing.

A notification record (行政处罚告知笔录) is made, filled, finalised and fully
signed through the API like this (see ``signed_notification_record``):

1. ``POST /api/v1/cases/{case_id}/documents`` ``{"kind": "notification_record",
   "person_id": <a suspect of the case>}`` → 201, ``ETag``;
2. ``PATCH /api/v1/documents/{id}`` with ``If-Match: <ETag>`` and the header's
   required ``notified_at`` and the sections ``facts``, ``basis``,
   ``proposed_penalty``, ``statement`` → 200, new ``ETag``;
3. ``POST /api/v1/documents/{id}/finalize`` with ``If-Match`` → 200, ``content_sha256``;
4. ``POST /api/v1/documents/{id}/signatures`` three times, from an enrolled device of
   the submitting officer: ``officer`` and ``second_officer`` (two different officers
   of the case's units, ``signer_user_id`` and their display names) and ``party``
   (the person's name) → the last answers with the document ``signed``.
"""

from __future__ import annotations

import base64
import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import signing
from shared.templates import SIGNATURE_PURPOSE, signature_fields

from conftest import Api, OrgUser

STROKES = [[[10, 10, 0], [20, 25, 16], [30, 22, 33]], [[40, 12, 400], [44, 30, 420]]]
SUSPECT = {"role": "suspect", "name": "李强", "id_number": "110101198505051234"}
MINOR_ID_NUMBER = "110101201501011234"  # born 2015-01-01


def png_bytes(width: int = 24, height: int = 8, shade: int = 0) -> bytes:
    """A real greyscale PNG, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(
        b"\x00" + bytes((x * 7 + y * 13 + shade) % 256 for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes() -> bytes:
    """A real JPEG (a small grey square)."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("L", (16, 16), color=128).save(buffer, format="JPEG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Device:
    """An enrolled device of an officer, which signs signature submissions."""

    api: Api
    owner: OrgUser
    device_id: str
    key: Ed25519PrivateKey
    pk: str

    def body(
        self,
        document: dict[str, Any],
        role: str,
        name: str,
        *,
        user: OrgUser | None = None,
        id_number: str | None = None,
        content_sha256: str | None = None,
        image: bytes | None = None,
        fingerprint: bytes | None = None,
        signed_at: datetime | None = None,
        strokes: list[Any] | None = None,
        signature_id: str | None = None,
        key: Ed25519PrivateKey | None = None,
    ) -> dict[str, Any]:
        """A signature submission, signed with this device's key (or ``key``)."""
        image = png_bytes() if image is None else image
        strokes = STROKES if strokes is None else strokes
        signed_at = signed_at or datetime.now(UTC)
        shown = content_sha256 or document["content_sha256"]
        fields = signature_fields(
            document_id=document["id"],
            content_sha256=shown,
            signer_role=role,
            signer_name=name,
            signer_user_id=str(user.id) if user else None,
            signer_id_number=id_number,
            signed_at=signed_at,
            image_png=image,
            fingerprint=fingerprint,
            strokes=strokes,
            device_id=self.device_id,
        )
        body: dict[str, Any] = {
            "signer_role": role,
            "signer_name": name,
            "strokes": strokes,
            "image_png": b64(image),
            "signed_at": signed_at.isoformat(),
            "content_sha256": shown,
            "device_id": self.device_id,
            "device_signature": signing.sign(key or self.key, SIGNATURE_PURPOSE, fields),
        }
        if user is not None:
            body["signer_user_id"] = str(user.id)
        if id_number is not None:
            body["signer_id_number"] = id_number
        if fingerprint is not None:
            body["fingerprint_png"] = b64(fingerprint)
        if signature_id is not None:
            body["id"] = signature_id
        return body

    def sign(self, document: dict[str, Any], role: str, name: str, **kw: Any) -> Any:
        headers = kw.pop("headers", None)
        return self.api.post(
            f"/api/v1/documents/{document['id']}/signatures",
            self.owner,
            json=self.body(document, role, name, **kw),
            headers=headers,
        )


def enroll(api: Api, owner: OrgUser) -> Device:
    key = signing.new_private_key()
    device_id = f"phone-{uuid.uuid4().hex[:12]}"
    response = api.post(
        "/api/v1/devices",
        owner,
        json={
            "device_id": device_id,
            "name": "执法记录手机",
            "public_key": signing.public_key_text(key),
        },
    )
    assert response.status_code == 201, response.get_json()
    return Device(api, owner, device_id, key, response.get_json()["id"])


def display_name(user: OrgUser) -> str:
    """conftest names station staff ``"<unit> <role>"``, e.g. ``a1 officer``."""
    unit, _, role = user.username.split(".", 1)[1].partition(".")
    return f"{unit} {role}"


def add_person(api: Api, officer: OrgUser, case_id: str, **fields: Any) -> dict[str, Any]:
    response = api.post(f"/api/v1/cases/{case_id}/persons", officer, json={**SUSPECT, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create(
    api: Api, officer: OrgUser, case_id: str, kind: str, person_id: str, **extra: Any
) -> Any:
    return api.post(
        f"/api/v1/cases/{case_id}/documents",
        officer,
        json={"kind": kind, "person_id": person_id, **extra},
    )


def new_document(
    api: Api, officer: OrgUser, case_id: str, kind: str, person_id: str, **extra: Any
) -> tuple[dict[str, Any], str]:
    response = create(api, officer, case_id, kind, person_id, **extra)
    assert response.status_code == 201, response.get_json()
    return response.get_json(), response.headers["ETag"]


def patch(api: Api, officer: OrgUser, document_id: str, etag: str | None, body: Any) -> Any:
    headers = {"If-Match": etag} if etag else {}
    return api.patch(f"/api/v1/documents/{document_id}", officer, json=body, headers=headers)


def finalize(api: Api, officer: OrgUser, document_id: str, etag: str | None) -> Any:
    headers = {"If-Match": etag} if etag else {}
    return api.post(f"/api/v1/documents/{document_id}/finalize", officer, headers=headers)


def completion(document: dict[str, Any]) -> dict[str, Any]:
    """An edit that makes ``document`` complete enough to finalise."""
    content = document["content"]
    times = ("started_at", "ended_at", "notified_at", "seized_at")
    header = {key: "2026年03月01日10时00分" for key in times if key in content["header"]}
    edit: dict[str, Any] = {"header": header}
    if "qa" in content:
        edit["qa"] = [
            {**entry, "answer": "听清楚了。" if i == 0 else f"回答{i}。"}
            for i, entry in enumerate(content["qa"])
        ]
    elif "sections" in content:
        edit["sections"] = {
            s["key"]: s["text"] or f"{s['heading']}：已填写。" for s in content["sections"]
        }
    else:
        edit["items"] = [{"name": "手机", "quantity": "1部", "features": "黑色，屏幕破损"}]
    return edit


def finalized(api: Api, officer: OrgUser, document: dict[str, Any], etag: str) -> dict[str, Any]:
    """``document`` filled in and finalised."""
    response = patch(api, officer, document["id"], etag, completion(document))
    assert response.status_code == 200, response.get_json()
    response = finalize(api, officer, document["id"], response.headers["ETag"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def finalized_notification_record(
    api: Api, officer: OrgUser, case_id: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A finalised notification record about a new suspect; (document, person)."""
    case_id = case_id or api.case(officer)["id"]
    person = add_person(api, officer, case_id)
    document, etag = new_document(api, officer, case_id, "notification_record", person["id"])
    return finalized(api, officer, document, etag), person


def sign_required(
    device: Device,
    document: dict[str, Any],
    officers: tuple[OrgUser, OrgUser],
    party_name: str,
) -> list[Any]:
    """Sign as officer, second officer and party; the answers in order."""
    first, second = officers
    return [
        device.sign(document, "officer", display_name(first), user=first),
        device.sign(document, "second_officer", display_name(second), user=second),
        device.sign(document, "party", party_name),
    ]


def signed_notification_record(
    api: Api, officer: OrgUser, second: OrgUser, case_id: str | None = None
) -> dict[str, Any]:
    """A notification record signed by everyone it needs, as read back."""
    document, person = finalized_notification_record(api, officer, case_id)
    device = enroll(api, officer)
    for response in sign_required(device, document, (officer, second), person["name"]):
        assert response.status_code == 201, response.get_json()
    return api.get(f"/api/v1/documents/{document['id']}", officer).get_json()
