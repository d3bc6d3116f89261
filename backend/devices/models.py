"""Devices enrolled with the server, each with the public half of its signing key."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import Timestamp, UTCDateTime, UUIDPk
from backend.extensions import db


class Device(db.Model):
    """A phone or tablet of one user; what it submits is signed with its key."""

    __tablename__ = "devices"

    id: Mapped[UUIDPk]
    device_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    public_key: Mapped[str] = mapped_column(sa.String(64))
    enrolled_at: Mapped[Timestamp]
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    revoked_reason: Mapped[str | None] = mapped_column(sa.Text)

    @property
    def active(self) -> bool:
        return self.revoked_at is None
