"""Three-tier statistics, weekly bulletins and monthly assessments.

Statistics of a unit cover the unit and every unit below it, with one row per child unit
(and one for what is recorded at the unit itself). Every indicator is one set-based query
grouped by the child unit a row belongs to: a unit's ``path`` is ``/root/…/unit/``, so the
first ``len(parent.path) + 33`` characters of any descendant's path are its child's path.

Definitions (periods are half-open, ``[start, end)``, in UTC, from local dates in
Asia/Shanghai):

* **registered** cases: cases whose ``created_at`` (acceptance, 受案) lies in the period,
  counted by case type and by current state; **closed**: those of them no longer open;
  **closure rate** = closed / registered.
* **open** cases: cases registered before the end of the period and still open now;
  **overdue**: those of them whose ``due_at`` lies before ``min(end, now)``.
* **warnings sent**: warnings raised in the period; **acknowledged** and **resolved**: those
  of them acknowledged (``acknowledged_at`` set) or resolved by the time of computation;
  **handled**: acknowledged or resolved.
* **evidence on time**: evidence items uploaded (``created_at``) in the period whose upload
  came at most ``STATS_EVIDENCE_ON_TIME_HOURS`` (default 24) hours after ``captured_at``.
* **problems found**: problems filed by inspections (巡查) in the period, by the unit they were
  filed against; **rectified**: those of them closed, their rectification (整改) accepted, by
  the time of computation; **rectification rate** = rectified / found.
* **signatures online**: document signatures made in the period (``signed_at``). Every
  signature the platform holds was drawn on a registered device and submitted through the
  API, so all of them are online signatures; paper signatures are not recorded.
* **online-handling rate**: of the cases registered in the period, the share handled
  online, that is with at least one document signed through the platform and no document
  left as a draft. Every step of a case runs on the platform (the state machine records it
  as an event), so its documents are what can be done on paper instead.

Rates are ``null`` when their denominator is 0.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from backend.cases.models import Case
from backend.common import utcnow
from backend.documents.models import Document, DocumentSignature
from backend.errors import NotFound, Unprocessable
from backend.evidence.models import Evidence
from backend.extensions import db
from backend.inspection.models import Problem as InspectionProblem
from backend.inspection.models import ProblemStatus
from backend.jobs import service as jobs
from backend.org.models import Unit, User
from backend.org.service import get_unit, visible_unit_ids
from backend.stats.models import Assessment, Bulletin
from backend.supervision.legaltime import DEFAULT_ZONE, local_midnight
from backend.supervision.models import CaseWarning as W
from shared.enums import CaseType, DocumentStatus, Role

STATS_ROLES = (Role.CASE_MANAGER, Role.LEADER, Role.LEGAL_OFFICER)
CHILD_SEGMENT = 33  # a unit id's 32 hex digits and the closing "/"
WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
ASSESSMENT_FILE = Path(__file__).resolve().parents[2] / "shared" / "assessment.toml"
COUNTERS = (
    "registered",
    "closed",
    "open",
    "overdue",
    "warnings_sent",
    "warnings_acknowledged",
    "warnings_resolved",
    "warnings_handled",
    "evidence_uploaded",
    "evidence_on_time",
    "signatures_online",
    "online_cases",
    "problems_found",
    "problems_rectified",
)


# Periods


def parse_week(week: str) -> tuple[date, date]:
    """The Monday of an ISO week such as ``2026-W47`` and the Monday after it."""
    match = WEEK.match(week)
    if not match:
        raise Unprocessable("A week is written like 2026-W47.")
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError as exc:
        raise Unprocessable(f"{week} is not a week of that year.") from exc
    return monday, monday + timedelta(days=7)


def week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def same_week_last_year(monday: date) -> date:
    """The Monday of the same ISO week one year earlier (week 52 for a missing week 53)."""
    year, week, _ = monday.isocalendar()
    last_week_of_year = date(year - 1, 12, 28).isocalendar()[1]
    return date.fromisocalendar(year - 1, min(week, last_week_of_year), 1)


def parse_month(month: str) -> tuple[date, date]:
    match = MONTH.match(month)
    if not match or not 1 <= int(match[2]) <= 12:
        raise Unprocessable("A month is written like 2026-11.")
    first = date(int(match[1]), int(match[2]), 1)
    return first, _next_month(first)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _previous_month(first: date) -> date:
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def local_today(now: datetime) -> date:
    return now.astimezone(DEFAULT_ZONE).date()


def bounds(first: date, after_last: date) -> tuple[datetime, datetime]:
    return local_midnight(first), local_midnight(after_last)


# Statistics


def unit_info(unit: Unit) -> dict[str, Any]:
    return {"id": unit.id, "code": unit.code, "name": unit.name, "tier": unit.tier.value}


def stats_unit(user: User, unit_id: uuid.UUID | None) -> Unit:
    """The unit whose statistics ``user`` asks for: one of their subtree, else 404."""
    return get_unit(user, unit_id) if unit_id else user.unit


def statistics(
    root: Unit, start: datetime, end: datetime, now: datetime | None = None
) -> dict[str, Any]:
    """The indicators of ``root``'s subtree for ``[start, end)``: totals, the unit's own
    rows, and one entry per child unit."""
    counters = _count(root, start, end, now or utcnow())
    children = db.session.scalars(
        sa.select(Unit).where(Unit.parent_id == root.id).order_by(Unit.code)
    ).all()
    total: dict[str, Any] = _empty()
    for bucket in counters.values():
        _add(total, bucket)
    return {
        "unit": unit_info(root),
        "from": start,
        "to": end,
        "evidence_on_time_hours": _on_time_hours(),
        "totals": indicators(total),
        "own": indicators(counters.get(root.path, _empty())),
        "children": [
            {"unit": unit_info(child), "indicators": indicators(counters.get(child.path, _empty()))}
            for child in children
        ],
    }


def _on_time_hours() -> int:
    return int(current_app.config["STATS_EVIDENCE_ON_TIME_HOURS"])


def _empty() -> dict[str, Any]:
    counter: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
    counter["by_type"] = defaultdict(int)
    counter["by_state"] = defaultdict(int)
    return counter


def _add(total: dict[str, Any], bucket: dict[str, Any]) -> None:
    for key in COUNTERS:
        total[key] += bucket[key]
    for key in ("by_type", "by_state"):
        for name, count in bucket[key].items():
            total[key][name] += count


def rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def indicators(c: dict[str, Any]) -> dict[str, Any]:
    by_type = {t.value: c["by_type"].get(t.value, 0) for t in CaseType}
    return {
        "cases": {
            "registered": c["registered"],
            "closed": c["closed"],
            "closure_rate": rate(c["closed"], c["registered"]),
            "by_type": by_type,
            "by_state": dict(sorted(c["by_state"].items())),
            "open": c["open"],
            "overdue": c["overdue"],
        },
        "warnings": {
            "sent": c["warnings_sent"],
            "acknowledged": c["warnings_acknowledged"],
            "resolved": c["warnings_resolved"],
            "handled": c["warnings_handled"],
            "handling_rate": rate(c["warnings_handled"], c["warnings_sent"]),
        },
        "evidence": {
            "uploaded": c["evidence_uploaded"],
            "on_time": c["evidence_on_time"],
            "on_time_rate": rate(c["evidence_on_time"], c["evidence_uploaded"]),
        },
        "problems": {
            "found": c["problems_found"],
            "rectified": c["problems_rectified"],
            "rectification_rate": rate(c["problems_rectified"], c["problems_found"]),
        },
        "signatures": {"online": c["signatures_online"]},
        "online_handling": {
            "cases": c["online_cases"],
            "rate": rate(c["online_cases"], c["registered"]),
        },
    }


def _count(root: Unit, start: datetime, end: datetime, now: datetime) -> dict[str, dict[str, Any]]:
    bucket = sa.func.substr(Unit.path, 1, sa.literal_column(str(len(root.path) + CHILD_SEGMENT)))
    in_subtree = Unit.path.startswith(root.path)
    counters: dict[str, dict[str, Any]] = defaultdict(_empty)

    def one(column: str, stmt: sa.Select[Any]) -> None:
        for path, count in db.session.execute(stmt):
            counters[path][column] += int(count or 0)

    def from_cases(*columns: Any) -> sa.Select[Any]:
        return (
            sa.select(bucket, *columns)
            .select_from(Case)
            .join(Unit, Unit.id == Case.unit_id)
            .where(in_subtree)
        )

    registered = (Case.created_at >= start, Case.created_at < end)
    stmt = from_cases(Case.case_type, Case.status, Case.is_open, sa.func.count()).where(*registered)
    for path, case_type, status, is_open, count in db.session.execute(
        stmt.group_by(bucket, Case.case_type, Case.status, Case.is_open)
    ):
        counter = counters[path]
        counter["registered"] += count
        counter["closed"] += 0 if is_open else count
        counter["by_type"][case_type.value] += count
        counter["by_state"][status] += count

    overdue = sa.case((Case.due_at < min(end, now), 1), else_=0)
    for path, open_count, overdue_count in db.session.execute(
        from_cases(sa.func.count(), sa.func.sum(overdue))
        .where(Case.is_open.is_(True), Case.created_at < end)
        .group_by(bucket)
    ):
        counters[path]["open"] += open_count
        counters[path]["overdue"] += int(overdue_count or 0)

    signed = sa.exists(
        sa.select(DocumentSignature.id)
        .join(Document, Document.id == DocumentSignature.document_id)
        .where(Document.case_id == Case.id)
    )
    draft = sa.exists(
        sa.select(Document.id).where(
            Document.case_id == Case.id, Document.status == DocumentStatus.DRAFT
        )
    )
    one(
        "online_cases",
        from_cases(sa.func.count()).where(*registered, signed, ~draft).group_by(bucket),
    )

    acknowledged = sa.case((W.acknowledged_at.is_not(None), 1), else_=0)
    resolved = sa.case((W.resolved_at.is_not(None), 1), else_=0)
    handled = sa.case(
        (sa.or_(W.acknowledged_at.is_not(None), W.resolved_at.is_not(None)), 1), else_=0
    )
    for path, sent, acks, resolves, handles in db.session.execute(
        sa.select(
            bucket,
            sa.func.count(),
            sa.func.sum(acknowledged),
            sa.func.sum(resolved),
            sa.func.sum(handled),
        )
        .select_from(W)
        .join(Unit, Unit.id == W.unit_id)
        .where(in_subtree, W.created_at >= start, W.created_at < end)
        .group_by(bucket)
    ):
        counter = counters[path]
        counter["warnings_sent"] += sent
        counter["warnings_acknowledged"] += int(acks or 0)
        counter["warnings_resolved"] += int(resolves or 0)
        counter["warnings_handled"] += int(handles or 0)

    on_time = sa.case((_within_hours(Evidence.created_at, Evidence.captured_at), 1), else_=0)
    for path, uploaded, in_time in db.session.execute(
        sa.select(bucket, sa.func.count(), sa.func.sum(on_time))
        .select_from(Evidence)
        .join(Case, Case.id == Evidence.case_id)
        .join(Unit, Unit.id == Case.unit_id)
        .where(in_subtree, Evidence.created_at >= start, Evidence.created_at < end)
        .group_by(bucket)
    ):
        counters[path]["evidence_uploaded"] += uploaded
        counters[path]["evidence_on_time"] += int(in_time or 0)

    rectified = sa.case((InspectionProblem.status == ProblemStatus.CLOSED, 1), else_=0)
    for path, found, closed in db.session.execute(
        sa.select(bucket, sa.func.count(), sa.func.sum(rectified))
        .select_from(InspectionProblem)
        .join(Unit, Unit.id == InspectionProblem.unit_id)
        .where(
            in_subtree,
            InspectionProblem.created_at >= start,
            InspectionProblem.created_at < end,
        )
        .group_by(bucket)
    ):
        counters[path]["problems_found"] += found
        counters[path]["problems_rectified"] += int(closed or 0)

    one(
        "signatures_online",
        sa.select(bucket, sa.func.count())
        .select_from(DocumentSignature)
        .join(Document, Document.id == DocumentSignature.document_id)
        .join(Case, Case.id == Document.case_id)
        .join(Unit, Unit.id == Case.unit_id)
        .where(in_subtree, DocumentSignature.signed_at >= start, DocumentSignature.signed_at < end)
        .group_by(bucket),
    )
    return counters


def _within_hours(later: Any, earlier: Any) -> Any:
    hours = _on_time_hours()
    if db.session.get_bind().dialect.name == "postgresql":
        return later <= earlier + sa.literal_column(f"interval '{hours} hours'")
    return sa.func.julianday(later) - sa.func.julianday(earlier) <= hours / 24


# Comparisons and the bulletin's sentences


def percent_change(current: int, base: int) -> float | None:
    """(current − base) / base in percent, one decimal rounded half up; null when base is 0."""
    if base == 0:
        return None
    change = Decimal(current - base) * 100 / Decimal(base)
    return float(change.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def change_phrase(kind: str, current: int, base: int) -> str:
    """``同比下降77.6%``, ``环比上升5.0%``, ``同比持平``; ``上年同期为0`` when there is no base."""
    change = percent_change(current, base)
    if change is None:
        return f"{kind}持平" if current == 0 else f"{'上年同期' if kind == '同比' else '上期'}为0"
    if change == 0:
        return f"{kind}持平"
    return f"{kind}{'上升' if change > 0 else '下降'}{abs(change):.1f}%"


def pct_text(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


COMPARED: tuple[tuple[str, str, str], ...] = (
    ("cases_registered", "cases", "registered"),
    ("cases_closed", "cases", "closed"),
    ("cases_overdue", "cases", "overdue"),
    ("warnings_sent", "warnings", "sent"),
    ("problems_found", "problems", "found"),
    ("evidence_uploaded", "evidence", "uploaded"),
    ("signatures_online", "signatures", "online"),
)


def comparisons(
    current: dict[str, Any], previous: dict[str, Any], last_year: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    result = {}
    for name, group, key in COMPARED:
        now, before, year_ago = current[group][key], previous[group][key], last_year[group][key]
        result[name] = {
            "current": now,
            "previous": before,
            "last_year": year_ago,
            "change_pct": percent_change(now, before),
            "yoy_pct": percent_change(now, year_ago),
        }
    return result


def sentences(totals: dict[str, Any], compared: dict[str, dict[str, Any]]) -> list[str]:
    def both(name: str) -> str:
        item = compared[name]
        return (
            f"{change_phrase('环比', item['current'], item['previous'])}，"
            f"{change_phrase('同比', item['current'], item['last_year'])}"
        )

    cases, warnings, evidence = totals["cases"], totals["warnings"], totals["evidence"]
    problems = totals["problems"]
    return [
        f"受理案件{cases['registered']}起，{both('cases_registered')}；其中行政案件"
        f"{cases['by_type']['administrative']}起，刑事案件{cases['by_type']['criminal']}起。",
        f"办结案件{cases['closed']}起，办结率{pct_text(cases['closure_rate'])}；"
        f"超期未结案件{cases['overdue']}起，{both('cases_overdue')}。",
        f"平台发送预警信息{warnings['sent']}条，{both('warnings_sent')}；已签收"
        f"{warnings['acknowledged']}条，已消除{warnings['resolved']}条，"
        f"处置率{pct_text(warnings['handling_rate'])}。",
        f"巡查发现问题{problems['found']}个，{both('problems_found')}；已整改"
        f"{problems['rectified']}个，整改率{pct_text(problems['rectification_rate'])}。",
        f"上传证据{evidence['uploaded']}件，{both('evidence_uploaded')}；按时上传"
        f"{evidence['on_time']}件，按时上传率{pct_text(evidence['on_time_rate'])}。",
        f"网上签名捺印{totals['signatures']['online']}份，{both('signatures_online')}；"
        f"网上办案率{pct_text(totals['online_handling']['rate'])}。",
    ]


# Weekly bulletins


def build_bulletin_data(unit: Unit, monday: date, now: datetime) -> dict[str, Any]:
    start, end = bounds(monday, monday + timedelta(days=7))
    current = statistics(unit, start, end, now)
    previous = statistics(unit, *bounds(monday - timedelta(days=7), monday), now)["totals"]
    year_ago = same_week_last_year(monday)
    last_year = statistics(unit, *bounds(year_ago, year_ago + timedelta(days=7)), now)["totals"]
    compared = comparisons(current["totals"], previous, last_year)
    return jsonable(
        {
            "title": f"{unit.name}执法监督工作周通报",
            "week": week_label(monday),
            "first_day": monday,
            "last_day": monday + timedelta(days=6),
            "generated_at": now,
            "statistics": current,
            "previous": previous,
            "last_year": last_year,
            "last_year_week": week_label(year_ago),
            "comparisons": compared,
            "sentences": sentences(current["totals"], compared),
        }
    )


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date | uuid.UUID):
        return str(value)
    return value


def ensure_bulletin(
    unit: Unit, week: str, by: User | None, now: datetime | None = None
) -> tuple[Bulletin, bool]:
    """The bulletin of ``unit`` for ``week``, generated if there is none yet.

    A generated bulletin is a snapshot and is never regenerated; the second return value
    says whether this call created it.
    """
    monday, next_monday = parse_week(week)
    now = now or utcnow()
    if local_midnight(next_monday) > now:
        raise Unprocessable(f"{week} has not ended yet.")
    existing = db.session.scalar(
        sa.select(Bulletin).where(Bulletin.unit_id == unit.id, Bulletin.week == week)
    )
    if existing is not None:
        return existing, False
    start, end = bounds(monday, next_monday)
    bulletin = Bulletin(
        unit_id=unit.id,
        week=week,
        starts_at=start,
        ends_at=end,
        data=build_bulletin_data(unit, monday, now),
        generated_by=by.id if by else None,
        created_at=now,
    )
    db.session.add(bulletin)
    db.session.flush()
    return bulletin, True


def get_bulletin(user: User, bulletin_id: uuid.UUID) -> Bulletin:
    bulletin = db.session.get(Bulletin, bulletin_id)
    if bulletin is None or bulletin.unit_id not in visible_unit_ids(user):
        raise NotFound("No such bulletin.")
    return bulletin


def list_bulletins(unit: Unit) -> list[Bulletin]:
    return list(
        db.session.scalars(
            sa.select(Bulletin)
            .where(Bulletin.unit_id == unit.id)
            .order_by(Bulletin.starts_at.desc())
            .limit(200)
        )
    )


def last_full_week(now: datetime) -> str:
    today = local_today(now)
    return week_label(today - timedelta(days=today.weekday() + 7))


def weekly_bulletins(now: datetime | None = None) -> str:
    """Generate the bulletin of the last full ISO week for every unit that lacks one."""
    now = now or utcnow()
    week = last_full_week(now)
    done = set(db.session.scalars(sa.select(Bulletin.unit_id).where(Bulletin.week == week)))
    units = db.session.scalars(sa.select(Unit).order_by(Unit.path)).all()
    created = 0
    for unit in units:
        if unit.id not in done:
            ensure_bulletin(unit, week, None, now)
            created += 1
    return f"{week}: {created} bulletins generated, {len(done)} already there"


jobs.periodic("stats.weekly_bulletins", every=timedelta(days=7))(weekly_bulletins)


# Monthly assessments


def load_weights(path: Path = ASSESSMENT_FILE) -> dict[str, float]:
    """The indicator weights of the monthly assessment, from ``shared/assessment.toml``."""
    weights = tomllib.loads(path.read_text("utf-8"))["weights"]
    unknown = set(weights) - set(ASSESSMENT_RATES)
    if unknown or any(not isinstance(w, int | float) or w < 0 for w in weights.values()):
        raise ValueError(f"{path}: weights are non-negative numbers of {sorted(ASSESSMENT_RATES)}")
    return {name: float(weight) for name, weight in weights.items()}


def _overdue_free(ind: dict[str, Any]) -> float | None:
    overdue = rate(ind["cases"]["overdue"], ind["cases"]["open"])
    return None if overdue is None else round(1 - overdue, 4)


ASSESSMENT_RATES: dict[str, Any] = {
    "closure_rate": lambda ind: ind["cases"]["closure_rate"],
    "warning_handling_rate": lambda ind: ind["warnings"]["handling_rate"],
    "evidence_on_time_rate": lambda ind: ind["evidence"]["on_time_rate"],
    "online_handling_rate": lambda ind: ind["online_handling"]["rate"],
    "overdue_free_rate": _overdue_free,
    "rectification_rate": lambda ind: ind["problems"]["rectification_rate"],
}


def score(rates: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """100 × Σ wᵢ·rᵢ / Σ wᵢ over the indicators that have a rate; null when none has."""
    present = {name: r for name, r in rates.items() if r is not None and weights.get(name)}
    total = sum(weights[name] for name in present)
    if not total:
        return None
    value = Decimal(sum(weights[n] * r for n, r in present.items()) * 100 / total)
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def build_assessment_data(unit: Unit, first: date, now: datetime) -> dict[str, Any]:
    weights = load_weights()
    current = statistics(unit, *bounds(first, _next_month(first)), now)
    rows = []
    for child in current["children"]:
        rates = {name: get(child["indicators"]) for name, get in ASSESSMENT_RATES.items()}
        rows.append({"unit": child["unit"], "rates": rates, "score": score(rates, weights)})
    ranked = sorted((r for r in rows if r["score"] is not None), key=lambda r: -r["score"])
    for row in rows:
        row["rank"] = next((i + 1 for i, r in enumerate(ranked) if r is row), None)
    return jsonable(
        {
            "title": f"{unit.name}执法质量月度考评",
            "month": f"{first:%Y-%m}",
            "generated_at": now,
            "weights": weights,
            "formula": "score = 100 × Σ(weight × rate) / Σ weight, over the indicators with a "
            "rate (an indicator without data is left out)",
            "unit": unit_info(unit),
            "rows": sorted(rows, key=lambda r: (r["rank"] is None, r["rank"] or 0)),
            "statistics": current,
        }
    )


def ensure_assessment(
    unit: Unit, month: str, by: User | None, now: datetime | None = None
) -> tuple[Assessment, bool]:
    first, after = parse_month(month)
    now = now or utcnow()
    if local_midnight(after) > now:
        raise Unprocessable(f"{month} has not ended yet.")
    existing = db.session.scalar(
        sa.select(Assessment).where(Assessment.unit_id == unit.id, Assessment.month == month)
    )
    if existing is not None:
        return existing, False
    start, end = bounds(first, after)
    assessment = Assessment(
        unit_id=unit.id,
        month=month,
        starts_at=start,
        ends_at=end,
        data=build_assessment_data(unit, first, now),
        generated_by=by.id if by else None,
        created_at=now,
    )
    db.session.add(assessment)
    db.session.flush()
    return assessment, True


def get_assessment(user: User, assessment_id: uuid.UUID) -> Assessment:
    assessment = db.session.get(Assessment, assessment_id)
    if assessment is None or assessment.unit_id not in visible_unit_ids(user):
        raise NotFound("No such assessment.")
    return assessment


def monthly_assessments(now: datetime | None = None) -> str:
    """Assess the child units of every unit that has children, for the last full month."""
    now = now or utcnow()
    month = f"{_previous_month(local_today(now).replace(day=1)):%Y-%m}"
    done = set(db.session.scalars(sa.select(Assessment.unit_id).where(Assessment.month == month)))
    parents = db.session.scalars(
        sa.select(Unit).where(
            Unit.id.in_(sa.select(Unit.parent_id).where(Unit.parent_id.is_not(None)))
        )
    ).all()
    created = 0
    for unit in parents:
        if unit.id not in done:
            ensure_assessment(unit, month, None, now)
            created += 1
    return f"{month}: {created} assessments generated, {len(done)} already there"


jobs.periodic("stats.monthly_assessments", every=timedelta(days=1))(monthly_assessments)
