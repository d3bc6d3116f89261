"""Evidence items, their append-only chain of custody, disposal requests and integrity alerts.

The bytes of an item live in the content-addressed store (``backend.evidence.store``),
named by their SHA-256; a row here describes one item of one case and points at
its bytes by that hash, so the same file finalised twice is stored once.
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
from backend.org.models import User
from shared.enums import ApprovalStatus

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class EvidenceKind(StrEnum):
    PHOTO = "photo"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    OTHER = "other"


class EvidenceStatus(StrEnum):
    HELD = "held"
    DISPOSED = "disposed"


class CustodyEventType(StrEnum):
    COLLECTED = "collected"
    UPLOADED = "uploaded"
    VERIFIED = "verified"
    VIEWED = "viewed"
    DOWNLOADED = "downloaded"
    EXPORTED = "exported"
    TRANSFERRED = "transferred"
    STORED = "stored"
    RETURNED = "returned"
    DISPOSED = "disposed"


class AlertKind(StrEnum):
    CORRUPTED = "corrupted"
    MISSING = "missing"


class Evidence(db.Model):
    """One item of evidence of a case, as finalised from a finished upload."""

    __tablename__ = "evidence"

    id: Mapped[UUIDPk]
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    kind: Mapped[EvidenceKind] = mapped_column(str_enum(EvidenceKind, 16))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content_type: Mapped[str] = mapped_column(sa.String(128))
    filename: Mapped[str] = mapped_column(sa.String(255))
    upload_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, unique=True)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    place: Mapped[str] = mapped_column(sa.String(300))
    latitude: Mapped[str | None] = mapped_column(sa.String(32))
    longitude: Mapped[str | None] = mapped_column(sa.String(32))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    device_pk: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("devices.id"))
    device_id: Mapped[str] = mapped_column(sa.String(64))
    signed_fields: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    device_signature: Mapped[str] = mapped_column(sa.String(128))
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[EvidenceStatus] = mapped_column(
        str_enum(EvidenceStatus, 16), default=EvidenceStatus.HELD
    )
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]

    disposals: Mapped[list[DisposalRequest]] = relationship(
        order_by="DisposalRequest.requested_at", lazy="selectin"
    )

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


class CustodyEvent(db.Model):
    """One link of an item's chain of custody; the database refuses changes."""

    __tablename__ = "custody_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    evidence_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("evidence.id"), index=True)
    event: Mapped[CustodyEventType] = mapped_column(str_enum(CustodyEventType, 16))
    at: Mapped[Timestamp]
    actor_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    place: Mapped[str | None] = mapped_column(sa.String(300))
    purpose: Mapped[str | None] = mapped_column(sa.String(500))
    location: Mapped[str | None] = mapped_column(sa.String(200))
    recipient: Mapped[str | None] = mapped_column(sa.String(200))
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)

    actor: Mapped[User] = relationship(lazy="joined")


class DisposalRequest(db.Model):
    """An officer's request to dispose of an item, decided once by a leader of its unit."""

    __tablename__ = "evidence_disposals"

    id: Mapped[UUIDPk]
    evidence_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("evidence.id"), index=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    requested_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    requested_at: Mapped[Timestamp]
    status: Mapped[ApprovalStatus] = mapped_column(
        str_enum(ApprovalStatus, 16), default=ApprovalStatus.PENDING
    )
    decided_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(sa.Text)


class EvidenceAlert(db.Model):
    """A stored file the integrity sweep found changed or gone."""

    __tablename__ = "evidence_alerts"
    __table_args__ = (sa.Index("ix_evidence_alerts_open", "resolved", "evidence_id", "kind"),)

    id: Mapped[UUIDPk]
    evidence_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("evidence.id"))
    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind, 16))
    found_at: Mapped[Timestamp]
    detail: Mapped[str] = mapped_column(sa.Text)
    resolved: Mapped[bool] = mapped_column(default=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    evidence: Mapped[Evidence] = relationship(lazy="joined")
