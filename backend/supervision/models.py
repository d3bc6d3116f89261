"""Case facts, the deadlines measured from them, and the warnings the rules raise."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import JSONDict, Timestamp, UTCDateTime, UUIDPk, str_enum
from backend.extensions import db
from shared.enums import WarningStatus

UNRESOLVED = sa.text("status <> 'resolved'")


class CaseFact(db.Model):
    """A fact the law measures time from (a detention, a summons, an acceptance...).

    Derived from the case's events; ``ended_at`` closes an interval fact such as
    an appraisal or a hearing, whose time some periods do not count.
    """

    __tablename__ = "case_facts"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "event_seq", "kind", name="uq_case_facts_event_kind"),
        sa.Index("ix_case_facts_case_kind", "case_id", "kind", "started_at"),
        sa.Index("ix_case_facts_kind_started", "kind", "started_at"),
    )

    id: Mapped[UUIDPk]
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    event_seq: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(48))
    subject: Mapped[str] = mapped_column(sa.String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    created_at: Mapped[Timestamp]


class Deadline(db.Model):
    """When a deadline rule's period, measured from one fact, runs out (and warns)."""

    __tablename__ = "deadlines"
    __table_args__ = (
        sa.UniqueConstraint("rule_id", "fact_id", name="uq_deadlines_rule_fact"),
        sa.Index("ix_deadlines_rule_warn", "rule_id", "warn_at"),
        sa.Index("ix_deadlines_rule_due", "rule_id", "due_at"),
        sa.Index("ix_deadlines_case", "case_id"),
    )

    id: Mapped[UUIDPk]
    rule_id: Mapped[str] = mapped_column(sa.String(64))
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    fact_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("case_facts.id"))
    subject: Mapped[str] = mapped_column(sa.String(64), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseWarning(db.Model):
    """A rule that fired for a case: one unresolved warning per rule, case and deadline."""

    __tablename__ = "warnings"
    __table_args__ = (
        sa.Index(
            "uq_warnings_unresolved",
            "rule_id",
            "case_id",
            "key",
            unique=True,
            sqlite_where=UNRESOLVED,
            postgresql_where=UNRESOLVED,
        ),
        sa.Index("ix_warnings_unit_created", "unit_id", "created_at", "id"),
        sa.Index("ix_warnings_handler_created", "handler_id", "created_at", "id"),
        sa.Index("ix_warnings_changed", "changed_at", "id"),
        sa.Index("ix_warnings_status_escalate", "status", "escalate_at"),
        sa.Index("ix_warnings_rule_status", "rule_id", "status"),
        sa.Index("ix_warnings_case", "case_id"),
    )

    id: Mapped[UUIDPk]
    rule_id: Mapped[str] = mapped_column(sa.String(64))
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    key: Mapped[str] = mapped_column(sa.String(64))
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("units.id"))
    handler_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    case_number: Mapped[str] = mapped_column(sa.String(48))
    kind: Mapped[str] = mapped_column(sa.String(16))
    severity: Mapped[str] = mapped_column(sa.String(16))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[WarningStatus] = mapped_column(
        str_enum(WarningStatus, 16), default=WarningStatus.OPEN
    )
    to_legal: Mapped[bool] = mapped_column(default=False)
    to_leader: Mapped[bool] = mapped_column(default=False)
    to_centre: Mapped[bool] = mapped_column(default=False)
    level: Mapped[int] = mapped_column(default=0)
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[Timestamp]
    changed_at: Mapped[Timestamp]
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_note: Mapped[str | None] = mapped_column(sa.Text)
