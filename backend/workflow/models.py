"""Requested steps and the approvals they wait for."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.cases.models import Case
from backend.common import JSONDict, Timestamp, UTCDateTime, UUIDPk, str_enum
from backend.extensions import db
from shared.enums import ApprovalStatus, RequestStatus, Role


class StepRequest(db.Model):
    """A handler's request to take a workflow action that needs approval."""

    __tablename__ = "step_requests"

    id: Mapped[UUIDPk]
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(64))
    from_state: Mapped[str] = mapped_column(sa.String(40))
    to_state: Mapped[str] = mapped_column(sa.String(40))
    requested_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    requested_at: Mapped[Timestamp]
    comment: Mapped[str | None] = mapped_column(sa.Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, 16), default=RequestStatus.PENDING
    )
    stage: Mapped[int] = mapped_column(default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Approval(db.Model):
    """One approval stage of a step request, decided once by one person."""

    __tablename__ = "approvals"
    __table_args__ = (
        sa.UniqueConstraint("request_id", "stage", name="uq_approvals_request_stage"),
        sa.Index("ix_approvals_status_role", "status", "role"),
        sa.Index("ix_approvals_queue", "unit_id", "status", "role", "created_at", "id"),
    )

    id: Mapped[UUIDPk]
    request_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("step_requests.id"))
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"), index=True)
    stage: Mapped[int]
    role: Mapped[Role] = mapped_column(str_enum(Role, 32))
    status: Mapped[ApprovalStatus] = mapped_column(
        str_enum(ApprovalStatus, 16), default=ApprovalStatus.PENDING
    )
    created_at: Mapped[Timestamp]
    decided_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(sa.Text)

    request: Mapped[StepRequest] = relationship(lazy="joined")
    case: Mapped[Case] = relationship(lazy="joined")
