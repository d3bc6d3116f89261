"""Remote sessions (远程辨认, 远程提讯, 远程会见), their participants and their event log.

A session's log is append-only and hash-chained: each event's hash covers the
previous event's hash and the event's canonical form, and the session row
keeps the head, so a record printed from the log can be checked against it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import JSONDict, Timestamp, UTCDateTime, UUIDPk, str_enum
from backend.extensions import db

GENESIS = "0" * 64


class SessionKind(StrEnum):
    IDENTIFICATION = "identification"
    INTERROGATION = "interrogation"
    MEETING = "meeting"


class SessionState(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ABORTED = "aborted"


class ParticipantRole(StrEnum):
    PRESIDING = "presiding"
    """A presiding investigator (主持侦查人员); at least two per session."""
    ADMINISTRATOR = "administrator"
    """Runs an identification without knowing the suspect (double-blind)."""
    IDENTIFIER = "identifier"
    """The witness or victim who identifies (辨认人)."""
    SUSPECT = "suspect"
    """The person interrogated, or the detainee a lawyer meets."""
    LAWYER = "lawyer"
    INTERPRETER = "interpreter"
    GUARDIAN = "guardian"
    WITNESS = "witness"
    """The attesting witness (见证人), not the identifier."""


class RemoteSession(db.Model):
    __tablename__ = "remote_sessions"
    __table_args__ = (sa.Index("ix_remote_sessions_case", "case_id", "scheduled_start"),)

    id: Mapped[UUIDPk]
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"))
    kind: Mapped[SessionKind] = mapped_column(str_enum(SessionKind, 16))
    state: Mapped[SessionState] = mapped_column(
        str_enum(SessionState, 16), default=SessionState.SCHEDULED
    )
    scheduled_start: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime] = mapped_column(UTCDateTime)
    sites: Mapped[list[dict[str, Any]]] = mapped_column(JSONDict)
    """Each site: ``{"key", "name", "kind"}``; kind is case_handling_centre,
    detention_house, station or other."""
    video_link: Mapped[str | None] = mapped_column(sa.String(500))
    """The external video call; media streaming stays outside the platform."""
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    """Kind-specific settings (an identification's presentation mode...)."""
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    abort_reason: Mapped[str | None] = mapped_column(sa.Text)
    record_document_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("documents.id"))
    event_count: Mapped[int] = mapped_column(default=0)
    log_head: Mapped[str] = mapped_column(sa.String(64), default=GENESIS)
    closing_signature: Mapped[str | None] = mapped_column(sa.String(128))
    """The service key's signature over the final log head, when the session ends."""
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class SessionParticipant(db.Model):
    """Someone taking part: a user, or a person joining with a one-time code."""

    __tablename__ = "session_participants"
    __table_args__ = (sa.Index("ix_session_participants_session", "session_id", "role"),)

    id: Mapped[UUIDPk]
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("remote_sessions.id"))
    role: Mapped[ParticipantRole] = mapped_column(str_enum(ParticipantRole, 16))
    name: Mapped[str] = mapped_column(sa.String(120))
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    person_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("case_persons.id"))
    site: Mapped[str | None] = mapped_column(sa.String(40))
    code_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    code_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_jti: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    added_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]


class SessionEvent(db.Model):
    """One entry of a session's log; the database refuses changes and deletions."""

    __tablename__ = "session_events"
    __table_args__ = (sa.UniqueConstraint("session_id", "seq", name="uq_session_events_seq"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("remote_sessions.id"))
    seq: Mapped[int]
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(sa.String(40))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_participant_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("session_participants.id")
    )
    subject_participant_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("session_participants.id")
    )
    """Whose track the event belongs to (one identifier's procedure), if anyone's."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class SessionRecording(db.Model):
    """A recording of the session, uploaded as evidence of the case."""

    __tablename__ = "session_recordings"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "evidence_id", name="uq_session_recordings_evidence"),
    )

    id: Mapped[UUIDPk]
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("remote_sessions.id"))
    evidence_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("evidence.id"))
    full: Mapped[bool]
    """Whether it covers the whole session (required where no 见证人 attests)."""
    site: Mapped[str | None] = mapped_column(sa.String(40))
    added_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    added_at: Mapped[Timestamp]
