from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.config import MAX_PAGE_SIZE
from backend.devices.schemas import DEVICE_ID
from backend.evidence.models import AlertKind, CustodyEventType, EvidenceKind, EvidenceStatus
from shared.enums import ApprovalStatus, Decision

SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="Must be a SHA-256 in lower-case hex.")
MANUAL_EVENTS = (
    CustodyEventType.EXPORTED,
    CustodyEventType.TRANSFERRED,
    CustodyEventType.STORED,
    CustodyEventType.RETURNED,
)

FINALISE_DOC = """\
Finalise a finished upload as evidence of the case.

The device signs the submission with its enrolled Ed25519 key,
`shared.signing.sign(key, "evidence", fields)`: the signature covers the
canonical form (`shared.signing.canonical_form`) of exactly these fields,
all strings except where null is said:

- `case_id`: the case id of the path, as canonical UUID text (lower case, hyphens)
- `upload_id`: canonical UUID text
- `sha256`, `kind`, `place`, `device_id`: as sent
- `captured_at`: exactly the text sent
- `latitude`, `longitude`: the text sent, or null when not sent
- `description`: as sent, `""` when not sent
- `id`: the client-generated evidence id as canonical UUID text, or null when not sent

(the canonical form adds `"purpose": "evidence"`). The server checks that
`sha256` is the SHA-256 of the whole uploaded file (a mismatch is refused and
nothing is kept), detects the content type from the bytes and refuses a
`kind` the bytes contradict: `photo` must be an image; `audio` audio, or an
MP4/3GPP container, which phones use for audio-only recordings too; `video` a
video; `document` neither audio nor video; `other` anything. A resend with the
same `id` and content answers 200 with the stored item.
"""


LATITUDE = validate.Regexp(
    r"^-?(90(\.0{1,12})?|[1-8]?[0-9](\.[0-9]{1,12})?)$",
    error="Must be a latitude from -90 to 90 written as a decimal string.",
)
LONGITUDE = validate.Regexp(
    r"^-?(180(\.0{1,12})?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]{1,12})?)$",
    error="Must be a longitude from -180 to 180 written as a decimal string.",
)
# Instants that have a date in UTC too, whatever their offset (as ``occurred_at``)
INSTANT_BOUNDS = {
    "x-minimum": datetime.min.replace(tzinfo=UTC).isoformat(),
    "x-maximum": datetime.max.replace(tzinfo=UTC).isoformat(),
}


def aware_instant(text: str) -> datetime:
    """An ISO 8601 date-time with an offset, which has a date in UTC too."""
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ma.ValidationError("Must be an ISO 8601 date-time with a UTC offset.") from exc


class FinaliseSchema(Schema):
    id = ma.fields.UUID(
        load_default=None, metadata={"description": "Client-generated id (offline resends)"}
    )
    upload_id = ma.fields.UUID(required=True, metadata={"description": "The finished tus upload"})
    kind = ma.fields.Enum(EvidenceKind, by_value=True, required=True)
    sha256 = ma.fields.String(
        required=True, validate=SHA256, metadata={"description": "Computed on the device"}
    )
    captured_at = ma.fields.String(
        required=True,
        validate=[validate.Length(1, 64), aware_instant],
        metadata={
            "format": "date-time",
            "description": "When captured, with a UTC offset; signed as sent",
            **INSTANT_BOUNDS,
        },
    )
    place = Text(required=True, validate=validate.Length(1, 300))
    latitude = ma.fields.String(
        load_default=None, validate=LATITUDE, metadata={"example": "30.2741"}
    )
    longitude = ma.fields.String(
        load_default=None, validate=LONGITUDE, metadata={"example": "120.1551"}
    )
    device_id = ma.fields.String(required=True, validate=DEVICE_ID)
    description = Text(load_default="", validate=validate.Length(max=5000))
    device_signature = ma.fields.String(
        required=True,
        validate=validate.Length(1, 128),
        metadata={"description": "Detached Ed25519 signature, base64"},
    )

    @ma.post_load
    def parse_capture_time(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["captured_time"] = aware_instant(data["captured_at"])
        return data


class DisposalSchema(Schema):
    id = ma.fields.UUID()
    evidence_id = ma.fields.UUID()
    reason = ma.fields.String()
    requested_by = ma.fields.UUID()
    requested_at = ma.fields.DateTime()
    status = ma.fields.Enum(ApprovalStatus, by_value=True)
    decided_by = ma.fields.UUID(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)
    comment = ma.fields.String(allow_none=True)


class EvidenceSchema(Schema):
    id = ma.fields.UUID()
    case_id = ma.fields.UUID()
    kind = ma.fields.Enum(EvidenceKind, by_value=True)
    sha256 = ma.fields.String()
    size = ma.fields.Integer()
    content_type = ma.fields.String(metadata={"description": "Detected from the bytes"})
    filename = ma.fields.String()
    upload_id = ma.fields.UUID()
    captured_at = ma.fields.DateTime()
    place = ma.fields.String()
    latitude = ma.fields.String(allow_none=True)
    longitude = ma.fields.String(allow_none=True)
    description = ma.fields.String()
    device_id = ma.fields.String()
    signed_fields = ma.fields.Dict(metadata={"description": "What the device signed"})
    device_signature = ma.fields.String()
    status = ma.fields.Enum(EvidenceStatus, by_value=True)
    disposed_at = ma.fields.DateTime(allow_none=True)
    created_by = ma.fields.UUID()
    created_at = ma.fields.DateTime()
    disposals = ma.fields.List(
        ma.fields.Nested(DisposalSchema),
        metadata={"description": "Disposal requests, oldest first"},
    )


class ContentQuerySchema(Schema):
    disposition = ma.fields.String(
        load_default="attachment",
        validate=validate.OneOf(["inline", "attachment"]),
        metadata={
            "description": "inline: shown in the app, recorded as `viewed`; "
            "attachment (default): saved as a file, recorded as `downloaded`"
        },
    )
    purpose = Text(
        required=True,
        validate=validate.Length(1, 500),
        metadata={"description": "Why you open it; kept in the chain of custody"},
    )


class CustodyEventSchema(Schema):
    id = ma.fields.Integer()
    evidence_id = ma.fields.UUID()
    event = ma.fields.Enum(CustodyEventType, by_value=True)
    at = ma.fields.DateTime()
    actor_id = ma.fields.UUID()
    actor_name = ma.fields.String(attribute="actor.display_name")
    device_id = ma.fields.String(allow_none=True)
    place = ma.fields.String(allow_none=True)
    purpose = ma.fields.String(allow_none=True)
    location = ma.fields.String(allow_none=True)
    recipient = ma.fields.String(allow_none=True)
    details = ma.fields.Dict()


class CustodyCreateSchema(Schema):
    event = ma.fields.String(
        required=True, validate=validate.OneOf([str(event) for event in MANUAL_EVENTS])
    )
    place = Text(required=True, validate=validate.Length(1, 300))
    purpose = Text(required=True, validate=validate.Length(1, 500))
    location = Text(
        load_default=None,
        validate=validate.Length(1, 200),
        metadata={
            "description": "Physical location, e.g. a smart case-file cabinet slot; "
            "required for stored"
        },
    )
    recipient = Text(
        load_default=None,
        validate=validate.Length(1, 200),
        metadata={"description": "Who receives it; required for transferred and returned"},
    )


class DisposalCreateSchema(Schema):
    reason = Text(required=True, validate=validate.Length(1, 2000))


class DisposalDecisionSchema(Schema):
    decision = ma.fields.Enum(Decision, by_value=True, required=True)
    comment = Text(
        load_default=None,
        validate=validate.Length(max=5000),
        metadata={"description": "Required when returning the request"},
    )


class AlertSchema(Schema):
    id = ma.fields.UUID()
    evidence_id = ma.fields.UUID()
    case_id = ma.fields.UUID(attribute="evidence.case_id")
    sha256 = ma.fields.String(attribute="evidence.sha256")
    kind = ma.fields.Enum(AlertKind, by_value=True)
    found_at = ma.fields.DateTime()
    detail = ma.fields.String()
    resolved = ma.fields.Boolean()
    resolved_at = ma.fields.DateTime(allow_none=True)


class AlertQuerySchema(Schema):
    resolved = ma.fields.Boolean(
        load_default=False, metadata={"description": "false (default): open alerts"}
    )
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(1, MAX_PAGE_SIZE))
