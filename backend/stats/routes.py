"""Statistics, weekly bulletins (周通报) and monthly assessments (月考评)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app, request
from flask.wrappers import Response

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.common import utcnow
from backend.documents.pdf import FontMissing
from backend.errors import Problem, Unprocessable
from backend.org.service import get_unit
from backend.stats import render, service
from backend.stats.models import Assessment, Bulletin
from backend.stats.schemas import (
    AssessmentCreateSchema,
    AssessmentSchema,
    BulletinCreateSchema,
    BulletinSchema,
    BulletinSummarySchema,
    FormatQuerySchema,
    StatsQuerySchema,
    StatsSchema,
)

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/v1",
    description="Statistics, weekly bulletins (周通报) and monthly assessments (月考评)",
)

ROLES = sorted(service.STATS_ROLES)
BINARY = {"type": "string", "format": "binary"}
HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}


@blp.route("/stats")
@roles_required(*ROLES)
@blp.arguments(StatsQuerySchema, location="query")
@blp.response(200, StatsSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_stats(query: dict[str, Any]) -> dict[str, Any]:
    """Indicators of a unit and everything below it for a period of local days, with one
    entry per child unit. Definitions: ``backend/stats/service.py``."""
    user = current_user()
    unit = service.stats_unit(user, query["unit_id"])
    last = query["to"] or service.local_today(utcnow())
    first = query["from_"] or last - timedelta(days=6)
    if last < first:
        raise Unprocessable("`to` is before `from`.")
    start, end = service.bounds(first, last + timedelta(days=1))
    return service.jsonable(service.statistics(unit, start, end))


def _wants_html(query: dict[str, Any]) -> bool:
    if query["format"]:
        return query["format"] == "html"
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _font() -> str:
    try:
        return render.cjk_font(current_app.config["PDF_FONT"])
    except FontMissing as exc:
        raise Problem(
            "no CJK font installed; set FIELDCASE_PDF_FONT", status=503, slug="pdf-font-missing"
        ) from exc


def _html(report: render.Report) -> Response:
    return Response(render.render_html(report), mimetype="text/html")


def _pdf(report: render.Report, font: str, filename: str) -> Response:
    response = Response(render.render_pdf(report, font), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{filename}.pdf"'
    return response


@blp.route("/bulletins", methods=["POST"])
@roles_required(*ROLES)
@blp.arguments(BulletinCreateSchema)
@blp.response(201, BulletinSchema)
@blp.alt_response(200, schema=BulletinSchema, description="Already generated: that bulletin")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="No such week, or not over")
def create_bulletin(data: dict[str, Any]) -> tuple[Bulletin, int]:
    """Generate the weekly bulletin of a unit of your subtree for a finished ISO week.

    A bulletin is a snapshot: asking again for the same unit and week returns the one
    generated before (200)."""
    user = current_user()
    bulletin, created = service.ensure_bulletin(get_unit(user, data["unit_id"]), data["week"], user)
    audit.target("bulletin", bulletin.id)
    return bulletin, 201 if created else 200


@blp.route("/bulletins/<uuid:bulletin_id>")
@roles_required(*ROLES)
@blp.arguments(FormatQuerySchema, location="query")
@blp.response(200, BulletinSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="No CJK font (HTML only)")
@blp.doc(responses={200: HTML})
def get_bulletin(query: dict[str, Any], bulletin_id: uuid.UUID) -> Any:
    """A bulletin as JSON, or as an HTML page with its charts (``?format=html`` or
    ``Accept: text/html``)."""
    bulletin = service.get_bulletin(current_user(), bulletin_id)
    audit.target("bulletin", bulletin.id)
    if _wants_html(query):
        return _html(render.bulletin_report(bulletin.data, _font()))
    return bulletin


@blp.route("/bulletins/<uuid:bulletin_id>/pdf")
@roles_required(*ROLES)
@blp.response(
    200,
    BINARY,
    content_type="application/pdf",
    description="The bulletin for printing, with its charts",
    headers={"Content-Disposition": {"schema": {"type": "string"}}},
)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="No CJK font installed")
def get_bulletin_pdf(bulletin_id: uuid.UUID) -> Response:
    bulletin = service.get_bulletin(current_user(), bulletin_id)
    audit.target("bulletin", bulletin.id)
    font = _font()
    return _pdf(render.bulletin_report(bulletin.data, font), font, f"bulletin-{bulletin.week}")


@blp.route("/units/<uuid:unit_id>/bulletins")
@roles_required(*ROLES)
@blp.response(200, BulletinSummarySchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_unit_bulletins(unit_id: uuid.UUID) -> list[Bulletin]:
    """A unit's bulletins, newest week first (at most 200)."""
    return service.list_bulletins(get_unit(current_user(), unit_id))


@blp.route("/assessments", methods=["POST"])
@roles_required(*ROLES)
@blp.arguments(AssessmentCreateSchema)
@blp.response(201, AssessmentSchema)
@blp.alt_response(200, schema=AssessmentSchema, description="Already generated: that one")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="No such month, or not over")
def create_assessment(data: dict[str, Any]) -> tuple[Assessment, int]:
    """Score the child units of a unit of your subtree for a finished month; weights and
    formula: ``shared/assessment.toml``. Asking again returns the earlier one (200)."""
    user = current_user()
    assessment, created = service.ensure_assessment(
        get_unit(user, data["unit_id"]), data["month"], user
    )
    audit.target("assessment", assessment.id)
    return assessment, 201 if created else 200


@blp.route("/assessments/<uuid:assessment_id>")
@roles_required(*ROLES)
@blp.arguments(FormatQuerySchema, location="query")
@blp.response(200, AssessmentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="No CJK font (HTML only)")
@blp.doc(responses={200: HTML})
def get_assessment(query: dict[str, Any], assessment_id: uuid.UUID) -> Any:
    """An assessment as JSON, or as an HTML page (``?format=html`` or ``Accept: text/html``)."""
    assessment = service.get_assessment(current_user(), assessment_id)
    audit.target("assessment", assessment.id)
    if _wants_html(query):
        return _html(render.assessment_report(assessment.data, _font()))
    return assessment


@blp.route("/assessments/<uuid:assessment_id>/pdf")
@roles_required(*ROLES)
@blp.response(
    200,
    BINARY,
    content_type="application/pdf",
    description="The assessment for printing, with its chart",
    headers={"Content-Disposition": {"schema": {"type": "string"}}},
)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="No CJK font installed")
def get_assessment_pdf(assessment_id: uuid.UUID) -> Response:
    assessment = service.get_assessment(current_user(), assessment_id)
    audit.target("assessment", assessment.id)
    font = _font()
    report = render.assessment_report(assessment.data, font)
    return _pdf(report, font, f"assessment-{assessment.month}")
