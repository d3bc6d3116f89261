"""Helpers for the supervision tests: cases made through the services, facts at chosen times."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from backend.cases import service as cases
from backend.cases.models import Case
from backend.extensions import db
from backend.org.models import User
from backend.supervision import service
from backend.supervision.models import CaseWarning
from shared.enums import CaseType, WarningStatus

ZONE = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    """A wall-clock time in Asia/Shanghai ('2026-03-02 10:20'), as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE).astimezone(UTC)


@dataclass(frozen=True)
class F:
    """A fact to record: kind, local start time, data, subject."""

    kind: str
    at: str
    data: dict[str, Any] = field(default_factory=dict)
    subject: str = ""
    ended: str | None = None


def new_case(officer_id: uuid.UUID, case_type: str = "administrative") -> Case:
    officer = db.session.get_one(User, officer_id)
    incident, _ = cases.create_incident(
        officer,
        {
            "id": None,
            "occurred_at": local("2026-03-01 09:00"),
            "place": "人民路1号",
            "source": "walk_in",
            "category": "治安",
            "summary": "测试",
            "latitude": None,
            "longitude": None,
        },
    )
    case, _ = cases.accept_incident(
        officer, incident, case_type=CaseType(case_type), title="测试案件", case_id=None
    )
    return case


def record(case: Case, officer_id: uuid.UUID, *facts: F) -> None:
    officer = db.session.get_one(User, officer_id)
    for fact in facts:
        service.record_fact(
            officer,
            case,
            {
                "kind": fact.kind,
                "subject": fact.subject,
                "started_at": local(fact.at),
                "ended_at": local(fact.ended) if fact.ended else None,
                "data": fact.data,
            },
        )


def open_warnings(case_id: uuid.UUID, rule_id: str | None = None) -> list[CaseWarning]:
    query = sa.select(CaseWarning).where(
        CaseWarning.case_id == case_id, CaseWarning.status != WarningStatus.RESOLVED
    )
    if rule_id:
        query = query.where(CaseWarning.rule_id == rule_id)
    return list(db.session.scalars(query))


def fired(case_id: uuid.UUID, rule_id: str, now: datetime) -> bool:
    service.evaluate_case(case_id, now)
    return bool(open_warnings(case_id, rule_id))
