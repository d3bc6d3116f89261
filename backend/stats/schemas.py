"""Request and response schemas of the statistics, bulletin and assessment API."""

from __future__ import annotations

from datetime import date
from typing import Any

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema

WEEK = validate.Regexp(
    r"^20\d{2}-W(0[1-9]|[1-4]\d|5[0-3])$", error="A week of 2000-2099, like 2026-W47."
)
MONTH = validate.Regexp(r"^20\d{2}-(0[1-9]|1[0-2])$", error="A month of 2000-2099, like 2026-11.")
DAYS = validate.Range(date(2000, 1, 1), date(2099, 12, 31), error="A day of 2000-2099.")
RATE = {"allow_none": True, "metadata": {"description": "0 to 1; null when nothing to count"}}
FORMATS = ("json", "html")


class StatsQuerySchema(Schema):
    unit_id = ma.fields.UUID(
        load_default=None, metadata={"description": "A unit of your subtree; default yours"}
    )
    from_ = ma.fields.Date(
        data_key="from",
        load_default=None,
        validate=DAYS,
        metadata={"description": "First day (Asia/Shanghai), default 6 days before `to`"},
    )
    to = ma.fields.Date(
        load_default=None,
        validate=DAYS,
        metadata={"description": "Last day, inclusive; default today"},
    )

    @ma.validates_schema
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        first, last = data.get("from_"), data.get("to")
        if first and last and (last < first or (last - first).days > 366 * 5):
            raise ma.ValidationError("`to` is on or after `from`, at most five years later.")


class UnitRefSchema(Schema):
    id = ma.fields.UUID()
    code = ma.fields.String()
    name = ma.fields.String()
    tier = ma.fields.String()


class CaseIndicatorsSchema(Schema):
    registered = ma.fields.Integer(metadata={"description": "Accepted in the period"})
    closed = ma.fields.Integer(metadata={"description": "Of those, closed by now"})
    closure_rate = ma.fields.Float(**RATE)
    by_type = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    by_state = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    open = ma.fields.Integer(metadata={"description": "Registered before the end, still open"})
    overdue = ma.fields.Integer(metadata={"description": "Open and past their due time"})


class WarningIndicatorsSchema(Schema):
    sent = ma.fields.Integer(metadata={"description": "Warnings raised in the period"})
    acknowledged = ma.fields.Integer()
    resolved = ma.fields.Integer()
    handled = ma.fields.Integer(metadata={"description": "Acknowledged or resolved"})
    handling_rate = ma.fields.Float(**RATE)


class EvidenceIndicatorsSchema(Schema):
    uploaded = ma.fields.Integer()
    on_time = ma.fields.Integer(metadata={"description": "Uploaded within N hours of capture"})
    on_time_rate = ma.fields.Float(**RATE)


class ProblemIndicatorsSchema(Schema):
    found = ma.fields.Integer(metadata={"description": "Filed by inspections in the period"})
    rectified = ma.fields.Integer(metadata={"description": "Of those, closed by now"})
    rectification_rate = ma.fields.Float(**RATE)


class SignatureIndicatorsSchema(Schema):
    online = ma.fields.Integer(metadata={"description": "Signatures made through the platform"})


class OnlineIndicatorsSchema(Schema):
    cases = ma.fields.Integer(metadata={"description": "Registered cases handled online"})
    rate = ma.fields.Float(**RATE)


class IndicatorsSchema(Schema):
    cases = ma.fields.Nested(CaseIndicatorsSchema)
    warnings = ma.fields.Nested(WarningIndicatorsSchema)
    evidence = ma.fields.Nested(EvidenceIndicatorsSchema)
    problems = ma.fields.Nested(ProblemIndicatorsSchema)
    signatures = ma.fields.Nested(SignatureIndicatorsSchema)
    online_handling = ma.fields.Nested(OnlineIndicatorsSchema)


class ChildStatsSchema(Schema):
    unit = ma.fields.Nested(UnitRefSchema)
    indicators = ma.fields.Nested(IndicatorsSchema)


class StatsSchema(Schema):
    unit = ma.fields.Nested(UnitRefSchema)
    from_ = ma.fields.String(
        data_key="from", attribute="from", metadata={"description": "Start (UTC), inclusive"}
    )
    to = ma.fields.String(metadata={"description": "End (UTC), exclusive"})
    evidence_on_time_hours = ma.fields.Integer()
    totals = ma.fields.Nested(IndicatorsSchema, metadata={"description": "The whole subtree"})
    own = ma.fields.Nested(IndicatorsSchema, metadata={"description": "The unit itself"})
    children = ma.fields.List(ma.fields.Nested(ChildStatsSchema))


class ComparisonSchema(Schema):
    current = ma.fields.Integer()
    previous = ma.fields.Integer()
    last_year = ma.fields.Integer()
    change_pct = ma.fields.Float(allow_none=True, metadata={"description": "vs previous week"})
    yoy_pct = ma.fields.Float(allow_none=True, metadata={"description": "vs same week last year"})


class BulletinDataSchema(Schema):
    title = ma.fields.String()
    week = ma.fields.String()
    first_day = ma.fields.String()
    last_day = ma.fields.String()
    generated_at = ma.fields.String()
    statistics = ma.fields.Nested(StatsSchema)
    previous = ma.fields.Nested(IndicatorsSchema)
    last_year = ma.fields.Nested(IndicatorsSchema)
    last_year_week = ma.fields.String()
    comparisons = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(ComparisonSchema))
    sentences = ma.fields.List(ma.fields.String())


class BulletinSchema(Schema):
    id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    week = ma.fields.String()
    created_at = ma.fields.DateTime()
    generated_by = ma.fields.UUID(allow_none=True, metadata={"description": "null: the job"})
    data = ma.fields.Nested(BulletinDataSchema)


class BulletinSummarySchema(Schema):
    id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    week = ma.fields.String()
    created_at = ma.fields.DateTime()
    title = ma.fields.Function(lambda b: b.data["title"])


class BulletinCreateSchema(Schema):
    unit_id = ma.fields.UUID(required=True)
    week = ma.fields.String(required=True, validate=WEEK, metadata={"example": "2026-W47"})


class FormatQuerySchema(Schema):
    format = ma.fields.String(
        load_default=None,
        validate=validate.OneOf(FORMATS),
        metadata={"description": "html for a printable page; default by Accept, else JSON"},
    )


class AssessmentRowSchema(Schema):
    unit = ma.fields.Nested(UnitRefSchema)
    rates = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(allow_none=True))
    score = ma.fields.Float(allow_none=True)
    rank = ma.fields.Integer(allow_none=True)


class AssessmentDataSchema(Schema):
    title = ma.fields.String()
    month = ma.fields.String()
    generated_at = ma.fields.String()
    weights = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float())
    formula = ma.fields.String()
    unit = ma.fields.Nested(UnitRefSchema)
    rows = ma.fields.List(ma.fields.Nested(AssessmentRowSchema))
    statistics = ma.fields.Nested(StatsSchema)


class AssessmentSchema(Schema):
    id = ma.fields.UUID()
    unit_id = ma.fields.UUID()
    month = ma.fields.String()
    created_at = ma.fields.DateTime()
    generated_by = ma.fields.UUID(allow_none=True, metadata={"description": "null: the job"})
    data = ma.fields.Nested(AssessmentDataSchema)


class AssessmentCreateSchema(Schema):
    unit_id = ma.fields.UUID(required=True)
    month = ma.fields.String(required=True, validate=MONTH, metadata={"example": "2026-11"})
