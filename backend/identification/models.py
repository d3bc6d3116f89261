"""Lineups, their members and each identifier's procedure (辨认).

The session log (``backend.sessions``) is the record of what happened; the
rows here are the projection the procedure is enforced with, updated in the
same transaction as the event that changes them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.common import JSONDict, Timestamp, UTCDateTime, UUIDPk, str_enum
from backend.extensions import db


class Stage(StrEnum):
    """Where one identifier's procedure stands; each stage only follows the one before."""

    INTERVIEWED = "interviewed"
    """The pre-lineup interview is recorded; no lineup yet."""
    ASSIGNED = "assigned"
    """A lineup is assigned and its positions drawn; the instructions wait."""
    VIEWING = "viewing"
    """Instructions acknowledged; the members are being shown."""
    CHOICE = "choice"
    CONFIDENCE = "confidence"
    DONE = "done"
    STOPPED = "stopped"
    """The session ended before the procedure did."""


ACTIVE_STAGES = frozenset(
    {Stage.INTERVIEWED, Stage.ASSIGNED, Stage.VIEWING, Stage.CHOICE, Stage.CONFIDENCE}
)


class Lineup(db.Model):
    """One target among fillers, with the reason to suspect and how the fillers were chosen."""

    __tablename__ = "identification_lineups"
    __table_args__ = (sa.Index("ix_identification_lineups_session", "session_id"),)

    id: Mapped[UUIDPk]
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("remote_sessions.id"))
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))
    suspicion_reason: Mapped[str] = mapped_column(sa.Text)
    filler_criteria: Mapped[str] = mapped_column(sa.Text)
    target_key: Mapped[str] = mapped_column(sa.String(80))
    """Who or what the target is (``resident:<hash of the ID number>``, ``person:<id>``,
    ``evidence:<id>``, ``text:<hash>``): a repeat identification is the same identifier
    with the same target key."""
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]

    members: Mapped[list[LineupMember]] = relationship(
        order_by=lambda: LineupMember.ordinal, lazy="selectin"
    )


class LineupMember(db.Model):
    __tablename__ = "identification_members"
    __table_args__ = (
        sa.UniqueConstraint("lineup_id", "ordinal", name="uq_identification_members"),
    )

    id: Mapped[UUIDPk]
    lineup_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("identification_lineups.id"))
    ordinal: Mapped[int]
    """Place in the list as submitted; never what an identifier sees."""
    is_target: Mapped[bool]
    person_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("case_persons.id"))
    evidence_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("evidence.id"))
    description: Mapped[str] = mapped_column(sa.Text)
    keys: Mapped[list[str]] = mapped_column(JSONDict)
    """What makes two members the same filler (AR art. 104): the case person,
    the evidence item, the photo's bytes, the normalised description."""


class Track(db.Model):
    """One identifier's procedure in one session."""

    __tablename__ = "identification_tracks"
    __table_args__ = (
        sa.UniqueConstraint("participant_id", name="uq_identification_tracks_participant"),
        sa.Index("ix_identification_tracks_identifier", "identifier_key", "case_id"),
        sa.Index("ix_identification_tracks_session", "session_id"),
    )

    id: Mapped[UUIDPk]
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("remote_sessions.id"))
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    participant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("session_participants.id"))
    identifier_key: Mapped[str] = mapped_column(sa.String(80))
    """The identifier across sessions: ``resident:<hash of the ID number>``,
    ``person:<id>`` or (within one case) ``name:<name>``."""
    stage: Mapped[Stage] = mapped_column(str_enum(Stage, 16), default=Stage.INTERVIEWED)
    interviewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lineup_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("identification_lineups.id"))
    presentation: Mapped[str | None] = mapped_column(sa.String(16))
    positions: Mapped[list[str]] = mapped_column(JSONDict, default=list)
    """Member ids in the order this identifier sees them (position 1 first)."""
    shown: Mapped[int] = mapped_column(default=0)
    """How many positions have been shown (all at once when simultaneous)."""
    shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responses: Mapped[list[dict[str, Any]]] = mapped_column(JSONDict, default=list)
    """Sequential mode: ``{"position", "answer"}`` in the order given."""
    choice: Mapped[dict[str, Any] | None] = mapped_column(JSONDict)
    chosen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    repeat_of: Mapped[list[str]] = mapped_column(JSONDict, default=list)
    """Earlier tracks with the same identifier and target (a flagged repeat)."""
    refused_reuse: Mapped[int] = mapped_column(default=0)
    """Lineups refused for this identifier because they reused fillers."""
    record_document_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("documents.id"))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
