"""A hand-computed statistics fixture: a fresh organisation (city; districts a with stations
a1, a2, and b with station b1) and rows with controlled times in and around ISO week
2026-W47 (Monday 2026-11-16 to Sunday 2026-11-22, Asia/Shanghai; in UTC
2026-11-15T16:00Z to 2026-11-22T16:00Z), the week before, and the same week of 2025.

The expected figures of ``STATS_W47`` are computed by hand from the rows below.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from backend.cases.models import Case
from backend.devices.models import Device
from backend.documents.models import Document, DocumentSignature
from backend.evidence.models import Evidence, EvidenceKind
from backend.extensions import db
from backend.inspection.models import Problem, ProblemStatus
from backend.supervision.models import CaseWarning
from shared.enums import CaseType, DocumentStatus, SignerRole, WarningStatus

from conftest import Org, build_org

_seq = itertools.count(1)
DIGEST = "0" * 64


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class StatsWorld:
    org: Org
    cases: dict[str, uuid.UUID]


def case(
    world: Org,
    unit: str,
    created: str,
    *,
    case_type: CaseType = CaseType.ADMINISTRATIVE,
    is_open: bool = True,
    due: str | None = None,
) -> Case:
    handler = world.user(f"{unit}.officer" if f"{unit}.officer" in world.users else f"{unit}.legal")
    created_at = t(created)
    row = Case(
        number=f"ST{uuid.uuid4().hex[:16]}",
        unit_id=world.unit(unit).id,
        year=created_at.year,
        seq=next(_seq),
        case_type=case_type,
        status="accepted" if is_open else "closed",
        is_open=is_open,
        title="统计测试案件",
        handler_id=handler.id,
        due_at=t(due) if due else None,
        created_at=created_at,
        updated_at=created_at,
    )
    db.session.add(row)
    db.session.flush()
    return row


def warning(
    row: Case, created: str, *, acknowledged: str | None = None, resolved: str | None = None
) -> None:
    status = WarningStatus.OPEN
    if acknowledged:
        status = WarningStatus.ACKNOWLEDGED
    if resolved:
        status = WarningStatus.RESOLVED
    db.session.add(
        CaseWarning(
            rule_id="test.rule",
            case_id=row.id,
            key=uuid.uuid4().hex,
            unit_id=row.unit_id,
            handler_id=row.handler_id,
            case_number=row.number,
            kind="warning",
            severity="normal",
            status=status,
            created_at=t(created),
            changed_at=t(created),
            acknowledged_at=t(acknowledged) if acknowledged else None,
            resolved_at=t(resolved) if resolved else None,
        )
    )


def device(row: Case) -> Device:
    item = Device(
        device_id=f"stats-{uuid.uuid4().hex[:12]}",
        user_id=row.handler_id,
        unit_id=row.unit_id,
        name="统计测试设备",
        public_key="x" * 43,
    )
    db.session.add(item)
    db.session.flush()
    return item


def evidence(row: Case, dev: Device, captured: str, created: str) -> None:
    db.session.add(
        Evidence(
            case_id=row.id,
            kind=EvidenceKind.PHOTO,
            sha256=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            size=1,
            content_type="image/png",
            filename="a.png",
            upload_id=uuid.uuid4(),
            captured_at=t(captured),
            place="现场",
            device_pk=dev.id,
            device_id=dev.device_id,
            signed_fields={},
            device_signature="s",
            content_hash=DIGEST,
            created_by=row.handler_id,
            created_at=t(created),
        )
    )


def document(row: Case, dev: Device, status: DocumentStatus, signed: list[str]) -> None:
    doc = Document(
        case_id=row.id,
        kind="transcript",
        template="transcript",
        title="询问笔录",
        status=status,
        content={},
        request_hash=DIGEST,
        created_by=row.handler_id,
    )
    db.session.add(doc)
    db.session.flush()
    for role, at in zip((SignerRole.PARTY, SignerRole.OFFICER), signed, strict=False):
        db.session.add(
            DocumentSignature(
                document_id=doc.id,
                role=role,
                signer_name="王某",
                strokes=[],
                strokes_sha256=DIGEST,
                image_png=b"png",
                image_sha256=DIGEST,
                signed_at=t(at),
                content_sha256=DIGEST,
                device_pk=dev.id,
                device_id=dev.device_id,
                device_signature="s",
                submitted_by=row.handler_id,
                request_hash=uuid.uuid4().hex,
            )
        )


def problem(world: Org, row: Case, created: str, *, closed: bool = False) -> None:
    unit = next(k for k, u in world.units.items() if u.id == row.unit_id)
    db.session.add(
        Problem(
            unit_id=row.unit_id,
            case_id=row.id,
            category="other",
            description="问题",
            responsible_id=row.handler_id,
            deadline=t(created) + timedelta(days=7),
            status=ProblemStatus.CLOSED if closed else ProblemStatus.OPEN,
            filed_by=world.user(f"{unit}.legal").id,
            created_at=t(created),
            closed_at=t(created) + timedelta(days=1) if closed else None,
        )
    )


def build_stats_world(prefix: str) -> StatsWorld:
    """The fixture; call inside an app context. Commits."""
    org = build_org(prefix)
    admin, criminal = CaseType.ADMINISTRATIVE, CaseType.CRIMINAL
    c1 = case(org, "a1", "2026-11-17T02:00:00", due="2026-11-20T00:00:00")
    c2 = case(org, "a1", "2026-11-18T02:00:00", is_open=False)
    c3 = case(org, "a1", "2026-11-19T02:00:00", case_type=criminal)
    c4 = case(org, "a2", "2026-11-20T02:00:00", case_type=criminal, is_open=False)
    # Sunday 23:59 local: still in W47.
    c5 = case(org, "a2", "2026-11-22T15:59:00")
    # Sunday 23:59 local of the week before: W46, open and overdue in W47.
    c6 = case(org, "a2", "2026-11-15T15:59:00", due="2026-11-18T00:00:00")
    c7 = case(org, "a", "2026-11-18T05:00:00")
    c8 = case(org, "b1", "2026-11-17T05:00:00", due="2026-11-30T00:00:00")
    c9 = case(org, "b1", "2026-11-21T05:00:00", case_type=admin, is_open=False)
    # Next week (W48): counted nowhere in W47.
    case(org, "b1", "2026-11-22T16:00:00")
    # The same week of 2025.
    old = [
        case(org, unit, "2025-11-18T03:00:00", is_open=False) for unit in ("a1", "a1", "b1", "b1")
    ]

    warning(
        c1, "2026-11-17T03:00:00", acknowledged="2026-11-17T04:00:00", resolved="2026-11-18T00:00"
    )
    warning(c1, "2026-11-18T03:00:00", acknowledged="2026-11-18T04:00:00")
    warning(c1, "2026-11-19T03:00:00", resolved="2026-11-19T05:00:00")
    warning(c1, "2026-11-20T03:00:00")
    warning(c8, "2026-11-20T03:00:00")
    warning(c6, "2026-11-15T10:00:00")  # W46
    for _ in range(3):
        warning(old[0], "2025-11-18T04:00:00")

    dev = device(c1)
    evidence(c1, dev, "2026-11-17T08:00:00", "2026-11-17T10:00:00")  # 2 h: on time
    evidence(c1, dev, "2026-11-17T04:00:00", "2026-11-18T10:00:00")  # 30 h: late
    evidence(c1, dev, "2026-11-18T10:00:00", "2026-11-19T10:00:00")  # exactly 24 h: on time
    evidence(c8, dev, "2026-11-20T09:00:00", "2026-11-20T10:00:00")  # 1 h: on time
    evidence(c1, dev, "2026-11-10T09:00:00", "2026-11-10T10:00:00")  # W46

    document(c2, dev, DocumentStatus.SIGNED, ["2026-11-18T06:00:00", "2026-11-18T06:05:00"])
    document(c1, dev, DocumentStatus.SIGNED, ["2026-11-19T06:00:00"])
    document(c1, dev, DocumentStatus.DRAFT, [])

    problem(org, c1, "2026-11-17T06:00:00", closed=True)
    problem(org, c1, "2026-11-18T06:00:00", closed=True)
    problem(org, c1, "2026-11-19T06:00:00")
    problem(org, c8, "2026-11-19T06:00:00")
    for _ in range(18):
        problem(org, old[0], "2025-11-19T06:00:00")
    db.session.commit()
    names = ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9")
    rows = (c1, c2, c3, c4, c5, c6, c7, c8, c9)
    return StatsWorld(org, {name: row.id for name, row in zip(names, rows, strict=True)})


# Hand-computed from the rows above, for the city, week 2026-W47.
CITY_W47_TOTALS = {
    "cases": {
        "registered": 8,
        "closed": 3,
        "closure_rate": 0.375,
        "by_type": {"administrative": 6, "criminal": 2},
        "by_state": {"accepted": 5, "closed": 3},
        "open": 6,
        "overdue": 2,
    },
    "warnings": {"sent": 5, "acknowledged": 2, "resolved": 2, "handled": 3, "handling_rate": 0.6},
    "evidence": {"uploaded": 4, "on_time": 3, "on_time_rate": 0.75},
    "problems": {"found": 4, "rectified": 2, "rectification_rate": 0.5},
    "signatures": {"online": 3},
    "online_handling": {"cases": 1, "rate": 0.125},
}
