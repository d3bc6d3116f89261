"""Request and response schemas of the remote sessions API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.sessions.models import ParticipantRole, SessionKind, SessionState
from backend.sessions.service import CODE_DIGITS, MAX_SESSION_LENGTH

SESSION_TIME = validate.Range(
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2100, 1, 1, tzinfo=UTC),
    error="A session's time lies between 2000 and 2100.",
)
SITE_KINDS = ("case_handling_centre", "detention_house", "station", "other")
KEY = validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,39}$", error="Lowercase letters, digits, - or _.")


class SiteSchema(Schema):
    key = ma.fields.String(required=True, validate=KEY)
    name = Text(required=True, validate=validate.Length(1, 120))
    kind = ma.fields.String(required=True, validate=validate.OneOf(SITE_KINDS))


class SessionCreateSchema(Schema):
    case_id = ma.fields.UUID(required=True)
    kind = ma.fields.Enum(SessionKind, by_value=True, required=True)
    scheduled_start = ma.fields.AwareDateTime(required=True, validate=SESSION_TIME)
    scheduled_end = ma.fields.AwareDateTime(required=True, validate=SESSION_TIME)
    sites = ma.fields.List(
        ma.fields.Nested(SiteSchema),
        required=True,
        validate=validate.Length(1, 8),
        metadata={
            "description": "Where the participants are: a case-handling centre, a "
            "detention house..."
        },
    )
    video_link = Text(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=500), validate.URL(schemes={"https"}, require_tld=False)],
        metadata={"description": "The external video call (streaming stays outside)"},
    )
    settings = ma.fields.Dict(
        keys=ma.fields.String(validate=validate.Length(1, 40)),
        values=ma.fields.Raw(),
        load_default=dict,
        metadata={
            "description": "Kind-specific settings from shared/sessions.toml: identification "
            "`presentation` (simultaneous|sequential); interrogation `major_case`, `minor`"
        },
    )

    @ma.validates_schema
    def _schedule(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("scheduled_start"), data.get("scheduled_end")
        if start and end and not start < end <= start + MAX_SESSION_LENGTH:
            raise ma.ValidationError(
                "A session ends after it starts, within 24 hours.", "scheduled_end"
            )


class ParticipantCreateSchema(Schema):
    role = ma.fields.Enum(ParticipantRole, by_value=True, required=True)
    name = Text(load_default=None, allow_none=True, validate=validate.Length(1, 120))
    user_id = ma.fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "Presiding, administrator"}
    )
    person_id = ma.fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "A person of the case"}
    )
    site = ma.fields.String(load_default=None, allow_none=True, validate=KEY)


class ParticipantSchema(Schema):
    id = ma.fields.UUID()
    role = ma.fields.Enum(ParticipantRole, by_value=True)
    name = ma.fields.String()
    user_id = ma.fields.UUID(allow_none=True)
    person_id = ma.fields.UUID(allow_none=True)
    site = ma.fields.String(allow_none=True)
    code_expires_at = ma.fields.DateTime(allow_none=True)
    code_used_at = ma.fields.DateTime(allow_none=True)
    token_expires_at = ma.fields.DateTime(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class RecordingSchema(Schema):
    id = ma.fields.UUID()
    evidence_id = ma.fields.UUID()
    full = ma.fields.Boolean()
    site = ma.fields.String(allow_none=True)
    added_by = ma.fields.UUID()
    added_at = ma.fields.DateTime()


class SessionSchema(Schema):
    id = ma.fields.UUID()
    case_id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    kind = ma.fields.Enum(SessionKind, by_value=True)
    state = ma.fields.Enum(SessionState, by_value=True)
    scheduled_start = ma.fields.DateTime()
    scheduled_end = ma.fields.DateTime()
    sites = ma.fields.List(ma.fields.Nested(SiteSchema))
    video_link = ma.fields.String(allow_none=True)
    settings = ma.fields.Dict()
    created_by = ma.fields.UUID()
    created_at = ma.fields.DateTime()
    started_at = ma.fields.DateTime(allow_none=True)
    ended_at = ma.fields.DateTime(allow_none=True)
    abort_reason = ma.fields.String(allow_none=True)
    record_document_id = ma.fields.UUID(allow_none=True)
    event_count = ma.fields.Integer()
    log_head = ma.fields.String(
        allow_none=True, metadata={"description": "Hash of the last event; null in a blind view"}
    )
    closing_signature = ma.fields.String(
        allow_none=True,
        metadata={"description": "Service-key signature over the final head (base64)"},
    )
    participants = ma.fields.List(ma.fields.Nested(ParticipantSchema))
    recordings = ma.fields.List(ma.fields.Nested(RecordingSchema))


class SessionListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(SessionSchema))


class CodeSchema(Schema):
    participant_id = ma.fields.UUID()
    code = ma.fields.String(
        metadata={"description": f"{CODE_DIGITS} digits, shown once; used once"}
    )
    expires_at = ma.fields.DateTime()


class AbortSchema(Schema):
    reason = Text(required=True, validate=validate.Length(1, 2000))


class RecordingCreateSchema(Schema):
    evidence_id = ma.fields.UUID(required=True)
    full = ma.fields.Boolean(
        required=True, metadata={"description": "Whether it covers the whole session"}
    )
    site = ma.fields.String(load_default=None, allow_none=True, validate=KEY)


class DocumentLinkSchema(Schema):
    document_id = ma.fields.UUID(required=True)


class NoticeCreateSchema(Schema):
    notice = ma.fields.String(required=True, validate=KEY)
    participant_id = ma.fields.UUID(required=True)


class SessionEventSchema(Schema):
    session_id = ma.fields.UUID()
    seq = ma.fields.Integer()
    at = ma.fields.DateTime()
    kind = ma.fields.String()
    actor_user_id = ma.fields.UUID(allow_none=True)
    actor_participant_id = ma.fields.UUID(allow_none=True)
    subject_participant_id = ma.fields.UUID(allow_none=True)
    payload = ma.fields.Dict()
    prev_hash = ma.fields.String(allow_none=True)
    hash = ma.fields.String(allow_none=True)


class SessionEventListSchema(Schema):
    events = ma.fields.List(ma.fields.Nested(SessionEventSchema))
    count = ma.fields.Integer()
    head = ma.fields.String(allow_none=True)


class LogCheckSchema(Schema):
    ok = ma.fields.Boolean()
    count = ma.fields.Integer()
    head = ma.fields.String(allow_none=True)
    first_bad_seq = ma.fields.Integer(allow_none=True)
    closing_signature_valid = ma.fields.Boolean(
        allow_none=True, metadata={"description": "null while the session is open"}
    )


class JoinSchema(Schema):
    code = ma.fields.String(required=True, validate=validate.Length(1, 32))


class JoinedSchema(Schema):
    access_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_at = ma.fields.DateTime()
    session_id = ma.fields.UUID()
    participant_id = ma.fields.UUID()
    role = ma.fields.Enum(ParticipantRole, by_value=True)
    kind = ma.fields.Enum(SessionKind, by_value=True)


class ParticipantSessionSchema(Schema):
    session_id = ma.fields.UUID()
    kind = ma.fields.Enum(SessionKind, by_value=True)
    state = ma.fields.Enum(SessionState, by_value=True)
    role = ma.fields.Enum(ParticipantRole, by_value=True)
    name = ma.fields.String()
    scheduled_start = ma.fields.DateTime()
    scheduled_end = ma.fields.DateTime()
