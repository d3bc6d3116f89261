"""What a device signs when it finalises an upload as evidence.

The device and the server derive the signed fields with the same function, so
they sign and check the same canonical form
(``shared.signing.canonical_form(EVIDENCE_PURPOSE, evidence_fields(...))``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

EVIDENCE_PURPOSE = "evidence"


def uuid_text(value: uuid.UUID | str) -> str:
    """A UUID as canonical text: lower case with hyphens."""
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def evidence_fields(case_id: uuid.UUID | str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The signed fields of a finalisation ``body`` for the case ``case_id``.

    ``body`` is the request body as sent (or as the server loaded it): ids as
    UUIDs or UUID text, ``kind`` as text or a string enum, ``captured_at``,
    ``latitude`` and ``longitude`` as the text sent. Absent optional fields are
    ``None``, and ``""`` for the description.
    """
    evidence_id = body.get("id")
    return {
        "case_id": uuid_text(case_id),
        "upload_id": uuid_text(body["upload_id"]),
        "sha256": body["sha256"],
        "kind": str(body["kind"]),
        "captured_at": body["captured_at"],
        "place": body["place"],
        "latitude": body.get("latitude"),
        "longitude": body.get("longitude"),
        "device_id": body["device_id"],
        "description": body.get("description") or "",
        "id": uuid_text(evidence_id) if evidence_id else None,
    }
