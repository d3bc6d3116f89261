"""Resumable uploads: one row per tus upload; the bytes live in a partial file under UPLOAD_DIR."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import Timestamp, UTCDateTime, UUIDPk
from backend.extensions import db


class Upload(db.Model):
    """A file an officer sends for one case, resumable until ``offset == length``.

    ``offset`` is the number of bytes received and kept; ``hash_state`` is the
    running SHA-256 after exactly those bytes, so that whichever worker process
    receives the next chunk continues the hash without reading the file again.
    ``sha256`` is set when the last byte arrives, together with ``completed_at``.
    Evidence finalisation sets ``consumed_at``; ``purged_at`` records that the
    partial file has been removed after that.
    """

    __tablename__ = "uploads"
    __table_args__ = (sa.Index("ix_uploads_case_consumed", "case_id", "consumed_at"),)

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    length: Mapped[int] = mapped_column(sa.BigInteger)
    offset: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    hash_state: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    filetype: Mapped[str | None] = mapped_column(sa.String(255))
    metadata_header: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[Timestamp]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def complete(self) -> bool:
        return self.offset == self.length
