"""Incidents, cases, the persons in them and the append-only case history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import JSONDict, Timestamp, UTCDateTime, UUIDPk, str_enum
from backend.extensions import db
from shared.enums import CaseType, IncidentStatus, PersonRole

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Incident(db.Model):
    """A report (警情); accepted as a case or closed as not a case."""

    __tablename__ = "incidents"

    id: Mapped[UUIDPk]
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    place: Mapped[str] = mapped_column(sa.String(300))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    source: Mapped[str] = mapped_column(sa.String(16))
    category: Mapped[str] = mapped_column(sa.String(64))
    summary: Mapped[str] = mapped_column(sa.Text)
    reporter_name: Mapped[str | None] = mapped_column(sa.String(120))
    reporter_phone: Mapped[str | None] = mapped_column(sa.String(32))
    reporter_id_number: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[IncidentStatus] = mapped_column(
        str_enum(IncidentStatus, 24), default=IncidentStatus.REPORTED
    )
    closed_reason: Mapped[str | None] = mapped_column(sa.Text)
    case_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]
    content_hash: Mapped[str] = mapped_column(sa.String(64))


class Case(db.Model):
    """The current state of a case: a projection of its event history."""

    __tablename__ = "cases"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "year", "seq", name="uq_cases_unit_year_seq"),
        sa.Index("ix_cases_unit_open_created", "unit_id", "is_open", "created_at", "id"),
        sa.Index("ix_cases_open_due", "is_open", "due_at"),
    )

    id: Mapped[UUIDPk]
    number: Mapped[str] = mapped_column(sa.String(48), unique=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"))
    year: Mapped[int]
    seq: Mapped[int]
    case_type: Mapped[CaseType] = mapped_column(str_enum(CaseType, 16))
    status: Mapped[str] = mapped_column(sa.String(40), index=True)
    is_open: Mapped[bool] = mapped_column(default=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    handler_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("incidents.id"))
    pending_request_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def etag(self) -> str:
        return f'"{self.id.hex}.{self.version}"'


class CaseNumberCounter(db.Model):
    """Last case number issued per unit and year; bumped inside the creating transaction."""

    __tablename__ = "case_number_counters"

    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class CasePerson(db.Model):
    __tablename__ = "case_persons"

    id: Mapped[UUIDPk]
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    role: Mapped[PersonRole] = mapped_column(str_enum(PersonRole, 16))
    name: Mapped[str] = mapped_column(sa.String(120))
    id_number: Mapped[str | None] = mapped_column(sa.String(32))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    address: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[Timestamp]
    content_hash: Mapped[str] = mapped_column(sa.String(64))


class CaseEvent(db.Model):
    """One entry of a case's append-only history; the database refuses changes."""

    __tablename__ = "case_events"
    __table_args__ = (sa.UniqueConstraint("case_id", "seq", name="uq_case_events_case_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(sa.String(40))
    at: Mapped[Timestamp]
    actor_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    action: Mapped[str | None] = mapped_column(sa.String(64))
    from_state: Mapped[str | None] = mapped_column(sa.String(40))
    to_state: Mapped[str | None] = mapped_column(sa.String(40))
    request_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
