"""The append-only audit trail; the database refuses updates and deletes.

Rows form a hash chain (checklist A5): each row's ``entry_hash`` covers the
previous row's hash and the row's own canonical form, so a removed or altered
row breaks the chain at that point. Signed checkpoints pin the chain's head.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import Timestamp
from backend.extensions import db


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    at: Mapped[Timestamp]
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, index=True)
    actor_unit_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    source_ip: Mapped[str | None] = mapped_column(sa.String(64))
    method: Mapped[str] = mapped_column(sa.String(8))
    action: Mapped[str] = mapped_column(sa.String(80))
    object_type: Mapped[str | None] = mapped_column(sa.String(32))
    object_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[int]
    request_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    entry_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.outcome}>"


AUDIT_OUTCOMES = ("success", "denied", "invalid", "conflict", "throttled", "error")


class AuditCheckpoint(db.Model):
    """The chain's head at one moment, signed with the service's Ed25519 key.

    ``entry_id`` has no foreign key on purpose: a reference would let PostgreSQL
    refuse a TRUNCATE of the audit trail for that reason instead of the
    append-only trigger, and ``audit verify`` checks the link anyway.
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    at: Mapped[Timestamp]
    entry_id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"))
    entry_hash: Mapped[str] = mapped_column(sa.String(64))
    signature: Mapped[str] = mapped_column(sa.String(128))
