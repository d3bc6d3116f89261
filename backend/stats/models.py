"""Stored weekly bulletins and monthly assessments: snapshots of the statistics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import JSONDict, Timestamp, UTCDateTime, UUIDPk
from backend.extensions import db


class Bulletin(db.Model):
    """A weekly bulletin (周通报) of one unit for one ISO week, such as ``2026-W47``.

    ``data`` is the snapshot taken when it was generated: the week's statistics with a
    per-child breakdown, the previous week's and the same week last year's totals, and the
    sentences of the bulletin. Once generated it does not change.
    """

    __tablename__ = "bulletins"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "week", name="uq_bulletins_unit_week"),
        sa.Index("ix_bulletins_unit_starts", "unit_id", "starts_at"),
    )

    id: Mapped[UUIDPk]
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"))
    week: Mapped[str] = mapped_column(sa.String(8))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    generated_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]


class Assessment(db.Model):
    """A monthly assessment (月考评) of one unit's child units for one month, ``2026-11``."""

    __tablename__ = "assessments"
    __table_args__ = (sa.UniqueConstraint("unit_id", "month", name="uq_assessments_unit_month"),)

    id: Mapped[UUIDPk]
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"), index=True)
    month: Mapped[str] = mapped_column(sa.String(7))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    generated_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]
