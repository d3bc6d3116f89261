"""Evidence, its store and chain of custody."""

from __future__ import annotations

import re
import unicodedata
import uuid
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from flask import Response, g, request

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.cases import service as cases
from backend.evidence import service
from backend.evidence.models import CustodyEvent, DisposalRequest, Evidence, EvidenceAlert
from backend.evidence.schemas import (
    FINALISE_DOC,
    AlertQuerySchema,
    AlertSchema,
    ContentQuerySchema,
    CustodyCreateSchema,
    CustodyEventSchema,
    DisposalCreateSchema,
    DisposalDecisionSchema,
    DisposalSchema,
    EvidenceSchema,
    FinaliseSchema,
)
from shared.enums import CASE_READER_ROLES, Role

blp = Blueprint(
    "evidence",
    __name__,
    url_prefix="/api/v1",
    description="Evidence, its store and chain of custody",
)

BINARY = {"type": "string", "format": "binary"}
ANY_TYPE = "*/*"
CONTENT_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "The SHA-256, quoted"},
    "Accept-Ranges": {"schema": {"type": "string"}},
    "Content-Disposition": {"schema": {"type": "string"}},
}
CONTENT_PARAMETERS = [
    {
        "in": "header",
        "name": "Range",
        "schema": {"type": "string"},
        "description": "One range: `bytes=a-b`, `bytes=a-` or `bytes=-n`",
    },
    {
        "in": "header",
        "name": "If-Range",
        "schema": {"type": "string"},
        "description": "The ETag the range belongs to; another sends the whole file",
    },
    {
        "in": "header",
        "name": "If-None-Match",
        "schema": {"type": "string"},
        "description": "An ETag you hold; 304 if the file is the same",
    },
]
ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()-]")


@blp.route("/cases/<uuid:case_id>/evidence", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(FinaliseSchema)
@blp.response(201, EvidenceSchema)
@blp.alt_response(200, schema=EvidenceSchema, description="Resent with the same id and content")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(422, response=HTTPStatus(422).name)
@blp.doc(summary="Finalise an upload as evidence", description=FINALISE_DOC)
def finalise(data: dict[str, Any], case_id: uuid.UUID) -> tuple[Evidence, int]:
    user = current_user()
    evidence, created = service.finalise(user, case_id, data)
    audit.target("evidence", evidence.id)
    return evidence, 201 if created else 200


@blp.route("/cases/<uuid:case_id>/evidence")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, EvidenceSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_evidence(case_id: uuid.UUID) -> list[Evidence]:
    """The case's evidence, oldest first."""
    return service.list_evidence(cases.get_case(current_user(), case_id))


@blp.route("/evidence/alerts")
@roles_required(Role.CASE_MANAGER, Role.LEADER, Role.ADMIN)
@blp.arguments(AlertQuerySchema, location="query")
@blp.response(200, AlertSchema(many=True))
def list_alerts(query: dict[str, Any]) -> list[EvidenceAlert]:
    """Stored files of your units' evidence that the integrity sweep found corrupted
    or missing, newest first; an alert is resolved when a later sweep finds the file sound."""
    return service.list_alerts(current_user(), query["resolved"], query["limit"])


@blp.route("/evidence/<uuid:evidence_id>")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, EvidenceSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_evidence(evidence_id: uuid.UUID) -> Evidence:
    """An item's description: hashes, detected type, capture data, disposal requests."""
    return service.get_evidence(current_user(), evidence_id)


@blp.route("/evidence/<uuid:evidence_id>/content", parameters=CONTENT_PARAMETERS)
@roles_required(*sorted(CASE_READER_ROLES))
@blp.arguments(ContentQuerySchema, location="query")
@blp.response(
    200, BINARY, content_type=ANY_TYPE, description="The whole file", headers=CONTENT_HEADERS
)
@blp.alt_response(
    206,
    schema=BINARY,
    content_type=ANY_TYPE,
    description="The requested range",
    headers={**CONTENT_HEADERS, "Content-Range": {"schema": {"type": "string"}}},
)
@blp.alt_response(304, description="Not modified (If-None-Match)")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(410, response="GONE")
@blp.alt_response(416, response=HTTPStatus(416).name)
def get_content(query: dict[str, Any], evidence_id: uuid.UUID) -> Response:
    """The file, streamed from the store, with its detected content type.

    Every answer (200, 206, 304) adds one link to the chain of custody with the
    stated ``purpose``: ``viewed`` for ``disposition=inline``, ``downloaded``
    for ``disposition=attachment`` (the default); a player's range requests
    leave one each. ``ETag`` is the quoted SHA-256.
    """
    user = current_user()
    evidence = service.get_evidence(user, evidence_id)
    audit.target("evidence", evidence.id, reason=query["purpose"])
    download = service.open_content(
        user,
        evidence,
        range_header=request.headers.get("Range"),
        if_range=request.headers.get("If-Range"),
        if_none_match=request.headers.get("If-None-Match"),
        view=query["disposition"] == "inline",
        purpose=query["purpose"],
        device_id=g.get("device_id"),
    )
    headers = {
        "ETag": evidence.etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if download.stream is None:
        return Response(status=304, headers=headers)
    headers["Content-Disposition"] = content_disposition(query["disposition"], evidence.filename)
    headers["Content-Length"] = str(download.length)
    if download.status == 206:
        end = download.start + download.length - 1
        headers["Content-Range"] = f"bytes {download.start}-{end}/{evidence.size}"
    return Response(
        download.stream,
        status=download.status,
        headers=headers,
        mimetype=evidence.content_type,
        direct_passthrough=True,
    )


def content_disposition(disposition: str, filename: str) -> str:
    """The header with an ASCII fallback name and the full name in RFC 5987 form."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    fallback = ASCII_UNSAFE.sub("_", fallback).strip(" ._") or "evidence"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@blp.route("/evidence/<uuid:evidence_id>/custody")
@roles_required(*sorted(CASE_READER_ROLES))
@blp.response(200, CustodyEventSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_custody(evidence_id: uuid.UUID) -> list[CustodyEvent]:
    """The chain of custody in the order its links were recorded; it is append-only."""
    return service.list_custody(service.get_evidence(current_user(), evidence_id))


@blp.route("/evidence/<uuid:evidence_id>/custody", methods=["POST"])
@roles_required(Role.OFFICER, Role.CASE_MANAGER)
@blp.arguments(CustodyCreateSchema)
@blp.response(201, CustodyEventSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(422, response=HTTPStatus(422).name)
def add_custody(data: dict[str, Any], evidence_id: uuid.UUID) -> tuple[CustodyEvent, int]:
    """Record a hand-over: ``exported``, ``transferred`` (with ``recipient``), ``stored``
    (with ``location``, e.g. a smart case-file cabinet slot) or ``returned`` (with
    ``recipient``). Views, downloads and disposal are recorded by their own routes."""
    user = current_user()
    evidence = service.get_evidence(user, evidence_id, for_update=True)
    audit.target("evidence", evidence.id)
    return service.add_custody(user, evidence, data, g.get("device_id")), 201


@blp.route("/evidence/<uuid:evidence_id>/disposal", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(DisposalCreateSchema)
@blp.response(201, DisposalSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def request_disposal(data: dict[str, Any], evidence_id: uuid.UUID) -> tuple[DisposalRequest, int]:
    """Ask a leader of the unit to approve disposing of the item; one request pends at a time."""
    user = current_user()
    evidence = service.get_evidence(user, evidence_id, for_update=True)
    audit.target("evidence", evidence.id, reason=data["reason"])
    return service.request_disposal(user, evidence, data["reason"]), 201


@blp.route("/evidence/<uuid:evidence_id>/disposal/decision", methods=["POST"])
@roles_required(Role.LEADER)
@blp.arguments(DisposalDecisionSchema)
@blp.response(200, DisposalSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(422, response=HTTPStatus(422).name)
def decide_disposal(data: dict[str, Any], evidence_id: uuid.UUID) -> DisposalRequest:
    """Approve the pending disposal (the item is marked disposed and a ``disposed`` link
    is added; the stored original is write-once and stays) or return it with a comment."""
    user = current_user()
    evidence = service.get_evidence(user, evidence_id, for_update=True)
    audit.target("evidence", evidence.id)
    return service.decide_disposal(user, evidence, data["decision"], data["comment"])
