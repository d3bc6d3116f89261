"""Inspections (巡查), the problems they find and their rectification (整改), and the
case-handling area register (办案区)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import JSONDict, Timestamp, UTCDateTime, UUIDPk, str_enum
from backend.extensions import db


class InspectionResult(StrEnum):
    OK = "ok"
    PROBLEMS_FOUND = "problems_found"


class ProblemStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"
    CLOSED = "closed"


class RectificationKind(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"


class AreaPurpose(StrEnum):
    """Why a person is in the case-handling area; the first two start a questioning period."""

    QUESTIONING = "questioning"
    CONTINUED_QUESTIONING = "continued_questioning"
    OTHER = "other"


PROBLEM_CATEGORIES: tuple[dict[str, str], ...] = (
    {"code": "late_acceptance", "zh": "受案不及时", "en": "Late acceptance"},
    {"code": "irregular_record", "zh": "笔录不规范", "en": "Irregular interview record"},
    {"code": "incomplete_evidence", "zh": "证据不全", "en": "Incomplete evidence"},
    {"code": "overdue", "zh": "超期", "en": "Time limit exceeded"},
    {"code": "wrong_law", "zh": "法律适用错误", "en": "Law wrongly applied"},
    {"code": "document_defect", "zh": "文书瑕疵", "en": "Defective document"},
    {"code": "other", "zh": "其他", "en": "Other"},
)
"""Problem categories, in report order."""

CATEGORY_CODES = tuple(category["code"] for category in PROBLEM_CATEGORIES)


class KeyIncident(db.Model):
    """An incident a legal officer or leader marked as key (标注重点警情)."""

    __tablename__ = "key_incidents"
    __table_args__ = (sa.Index("ix_key_incidents_unit_created", "unit_id", "created_at", "id"),)

    id: Mapped[UUIDPk]
    incident_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("incidents.id"), unique=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"))
    reason: Mapped[str] = mapped_column(sa.Text)
    marked_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]


class Inspection(db.Model):
    """The result of inspecting one case or one incident."""

    __tablename__ = "inspections"
    __table_args__ = (
        sa.CheckConstraint("(case_id IS NULL) <> (incident_id IS NULL)", name="case_or_incident"),
        sa.Index("ix_inspections_unit_created", "unit_id", "created_at", "id"),
        sa.Index("ix_inspections_case", "case_id"),
        sa.Index("ix_inspections_incident", "incident_id"),
    )

    id: Mapped[UUIDPk]
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("cases.id"))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("incidents.id"))
    result: Mapped[InspectionResult] = mapped_column(str_enum(InspectionResult, 16))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    inspector_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]


class Problem(db.Model):
    """A problem found in a case or incident, followed until its rectification is accepted."""

    __tablename__ = "problems"
    __table_args__ = (
        sa.CheckConstraint("(case_id IS NULL) <> (incident_id IS NULL)", name="case_or_incident"),
        sa.Index("ix_problems_unit_created", "unit_id", "created_at", "id"),
        sa.Index("ix_problems_responsible_created", "responsible_id", "created_at", "id"),
        sa.Index("ix_problems_status_deadline", "status", "deadline"),
        sa.Index("ix_problems_case", "case_id"),
    )

    id: Mapped[UUIDPk]
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("cases.id"))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("incidents.id"))
    inspection_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("inspections.id"))
    category: Mapped[str] = mapped_column(sa.String(32))
    description: Mapped[str] = mapped_column(sa.Text)
    responsible_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[ProblemStatus] = mapped_column(
        str_enum(ProblemStatus, 16), default=ProblemStatus.OPEN
    )
    filed_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Rectification(db.Model):
    """One step of a problem's rectification: a fix submitted, accepted or returned."""

    __tablename__ = "problem_rectifications"
    __table_args__ = (sa.Index("ix_problem_rectifications_problem", "problem_id", "created_at"),)

    id: Mapped[UUIDPk]
    problem_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("problems.id"))
    kind: Mapped[RectificationKind] = mapped_column(str_enum(RectificationKind, 16))
    actor_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    evidence_ids: Mapped[list[Any]] = mapped_column(JSONDict, default=list)
    document_ids: Mapped[list[Any]] = mapped_column(JSONDict, default=list)
    created_at: Mapped[Timestamp]


class AreaEntry(db.Model):
    """A person brought into a unit's case-handling area, and when they left."""

    __tablename__ = "handling_area_entries"
    __table_args__ = (
        sa.Index("ix_handling_area_entries_unit_entered", "unit_id", "entered_at", "id"),
        sa.Index("ix_handling_area_entries_unit_inside", "unit_id", "exited_at"),
        sa.Index("ix_handling_area_entries_case", "case_id"),
    )

    id: Mapped[UUIDPk]
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("cases.id"))
    person_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("case_persons.id"))
    name: Mapped[str] = mapped_column(sa.String(120))
    id_number: Mapped[str | None] = mapped_column(sa.String(32))
    purpose: Mapped[AreaPurpose] = mapped_column(str_enum(AreaPurpose, 32))
    reason: Mapped[str] = mapped_column(sa.Text)
    room: Mapped[str] = mapped_column(sa.String(64))
    escort_ids: Mapped[list[Any]] = mapped_column(JSONDict, default=list)
    detention_possible: Mapped[bool] = mapped_column(default=False)
    many_or_identity_unknown: Mapped[bool] = mapped_column(default=False)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_note: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    exited_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]
    content_hash: Mapped[str] = mapped_column(sa.String(64))
