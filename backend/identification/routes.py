"""Double-blind identification: lineups, the identifier's procedure, the record.

The presiding investigators' endpoints take user tokens and are refused to
anyone who is not a presiding investigator of the session (the administrator
included). The identifier's and the administrator's endpoints under
``/participant/identification`` take the participant token of a one-time code.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, request

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_participant, current_user, participant_route, roles_required
from backend.documents.models import Document, DocumentSignature
from backend.documents.routes import SIGNATURE_BODY_MAX_BYTES
from backend.documents.schemas import DocumentSchema, SignatureSchema
from backend.identification import service
from backend.identification.models import Lineup
from backend.identification.schemas import (
    AssignSchema,
    ChoiceSchema,
    ConfidenceSchema,
    IdentifierSchema,
    IdentifierStateSchema,
    InstructionsSchema,
    InterviewSchema,
    LineupCreateSchema,
    LineupSchema,
    MembersSchema,
    PartySignatureSchema,
    ProgressSchema,
    RecordViewSchema,
    ResponseSchema,
)
from backend.sessions.models import ParticipantRole
from shared.enums import Role

blp = Blueprint(
    "identification",
    __name__,
    url_prefix="/api/v1",
    description="Double-blind witness identification (辨认)",
)

IDENTIFIER = ParticipantRole.IDENTIFIER
ME = "/participant/identification"
BINARY = {"type": "string", "format": "binary"}


@blp.url_value_preprocessor
def _raise_body_cap(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """The identifier's signature carries images, as a document signature does."""
    if endpoint == "identification.sign_record":
        request.max_content_length = SIGNATURE_BODY_MAX_BYTES


def _session(session_id: uuid.UUID, *, for_update: bool = False) -> Any:
    session = service.get_identification_session(current_user(), session_id, for_update=for_update)
    audit.target("session", session.id)
    return session


def _identifier(session: Any, participant_id: uuid.UUID) -> dict[str, Any]:
    return next(
        entry
        for entry in service.identifier_overview(current_user(), session)
        if entry["participant_id"] == participant_id
    )


# The presiding investigators


@blp.route("/sessions/<uuid:session_id>/lineups", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(LineupCreateSchema)
@blp.response(201, LineupSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT", description="The session has ended")
def create_lineup(data: dict[str, Any], session_id: uuid.UUID) -> Lineup:
    """A lineup: exactly one target, at least the legal minimum of members (live persons
    7, photos of persons 10, objects 5, photos of objects 10; 422 names the article), the
    reason to suspect and the filler criteria, logged before any identifier sees it.
    Presiding investigators of the session only."""
    lineup = service.create_lineup(current_user(), _session(session_id, for_update=True), data)
    audit.target("lineup", lineup.id)
    return lineup


@blp.route("/sessions/<uuid:session_id>/lineups")
@roles_required(Role.OFFICER)
@blp.response(200, LineupSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_lineups(session_id: uuid.UUID) -> list[Lineup]:
    """The session's lineups with their targets: presiding investigators only (the
    administrator is refused, 403)."""
    return service.list_lineups(current_user(), _session(session_id))


@blp.route("/sessions/<uuid:session_id>/identifiers")
@roles_required(Role.OFFICER)
@blp.response(200, IdentifierSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_identifiers(session_id: uuid.UUID) -> list[dict[str, Any]]:
    """Each identifier's step and flags, for the presiding investigators."""
    return service.identifier_overview(current_user(), _session(session_id))


@blp.route(
    "/sessions/<uuid:session_id>/identifiers/<uuid:participant_id>/interview", methods=["POST"]
)
@roles_required(Role.OFFICER)
@blp.arguments(InterviewSchema)
@blp.response(201, IdentifierSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(
    409, response="CONFLICT", description="Out of order, or another identifier's turn"
)
def record_interview(
    data: dict[str, Any], session_id: uuid.UUID, participant_id: uuid.UUID
) -> dict[str, Any]:
    """The pre-lineup interview, first step of an identifier's procedure; only one
    identifier's procedure is open at a time."""
    session = _session(session_id, for_update=True)
    service.record_interview(current_user(), session, participant_id, data)
    return _identifier(session, participant_id)


@blp.route("/sessions/<uuid:session_id>/identifiers/<uuid:participant_id>/lineup", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(AssignSchema)
@blp.response(200, IdentifierSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(
    409, response="CONFLICT", description="Out of order, or fillers reused (AR art. 104)"
)
def assign_lineup(
    data: dict[str, Any], session_id: uuid.UUID, participant_id: uuid.UUID
) -> dict[str, Any]:
    """Assign a lineup to the interviewed identifier; the server draws their positions
    with a CSPRNG. Fillers already shown to this identifier in the case are refused
    (409 ``fillers-reused``; the refusal stays in the log and flags the case); the same
    identifier and target again is flagged as a repeat identification."""
    session = _session(session_id, for_update=True)
    service.assign_lineup(current_user(), session, participant_id, data["lineup_id"])
    return _identifier(session, participant_id)


@blp.route("/sessions/<uuid:session_id>/record", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.response(201, DocumentSchema(many=True))
@blp.alt_response(200, schema=DocumentSchema(many=True), description="Written before")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT", description="The session has not ended")
def generate_records(session_id: uuid.UUID) -> tuple[list[Document], int]:
    """The identification records (辨认笔录), one per identifier shown a lineup, written
    from the ended session's log and finalised, with the log's final hash. They are
    signed through ``/documents/{id}/signatures`` by the presiding investigators and the
    见证人, and by the identifier through the participant endpoint. Asking again
    returns the same records (200)."""
    session = _session(session_id, for_update=True)
    records, created = service.generate_records(current_user(), session)
    return records, 201 if created else 200


@blp.route("/sessions/<uuid:session_id>/records")
@roles_required(Role.OFFICER)
@blp.response(200, DocumentSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_records(session_id: uuid.UUID) -> list[Document]:
    """The session's identification records, for the presiding investigators."""
    return service.records(current_user(), _session(session_id))


# The identifier


def _procedure(*, for_update: bool = False) -> service.Procedure:
    return service.procedure(current_participant(), for_update=for_update)


@blp.route(ME)
@participant_route(IDENTIFIER, after_end=True)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.response(200, IdentifierStateSchema)
def identifier_state() -> dict[str, Any]:
    """Where the identifier stands: the step, the presentation, the lineup's kind and
    size, and the instructions once a lineup is assigned. Never a member or a hint."""
    return service.state(_procedure())


@blp.route(f"{ME}/instructions", methods=["POST"])
@participant_route(IDENTIFIER)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.arguments(InstructionsSchema)
@blp.response(200, IdentifierStateSchema)
@blp.alt_response(409, response="CONFLICT", description="Not the step for it")
def acknowledge_instructions(_data: dict[str, Any]) -> dict[str, Any]:
    """The identifier acknowledges the instructions; no member is shown before."""
    return service.acknowledge_instructions(_procedure(for_update=True))


@blp.route(f"{ME}/members")
@participant_route(IDENTIFIER)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.response(200, MembersSchema)
@blp.alt_response(409, response="CONFLICT", description="Not the step for it")
def show_members() -> dict[str, Any]:
    """The members to look at now, by the identifier's own positions: all at once
    (simultaneous) or the next unanswered one (sequential). Showing is logged."""
    return service.show_members(_procedure(for_update=True))


@blp.route(f"{ME}/members/<int:position>/image")
@participant_route(IDENTIFIER)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.response(200, BINARY, content_type="image/*", description="The member's photo")
@blp.alt_response(404, response="NOT_FOUND", description="No photo shown at this position")
@blp.alt_response(410, response="GONE", description="The photo has been disposed of")
@blp.alt_response(409, response="CONFLICT", description="Not the step for it")
def member_image(position: int) -> Response:
    """The photo of a member being shown (photo lineups); a link in its chain of custody."""
    image = service.member_image(_procedure(for_update=True), position)
    response = Response(image.stream, mimetype=image.content_type, direct_passthrough=True)
    response.headers["Content-Length"] = str(image.length)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blp.route(f"{ME}/responses", methods=["POST"])
@participant_route(IDENTIFIER)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.arguments(ResponseSchema)
@blp.response(200, IdentifierStateSchema)
@blp.alt_response(409, response="CONFLICT", description="Not the member shown, or not sequential")
def respond(data: dict[str, Any]) -> dict[str, Any]:
    """Sequential presentation: yes or no to the member shown now, with its latency."""
    return service.respond(_procedure(for_update=True), data)


@blp.route(f"{ME}/choice", methods=["POST"])
@participant_route(IDENTIFIER)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.arguments(ChoiceSchema)
@blp.response(200, IdentifierStateSchema)
@blp.alt_response(409, response="CONFLICT", description="Not the step for it")
def choose(data: dict[str, Any]) -> dict[str, Any]:
    """The choice: a position, "not present" or "don't know"."""
    return service.choose(_procedure(for_update=True), data)


@blp.route(f"{ME}/confidence", methods=["POST"])
@participant_route(IDENTIFIER)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.arguments(ConfidenceSchema)
@blp.response(200, IdentifierStateSchema)
@blp.alt_response(409, response="CONFLICT", description="Not the step for it")
def state_confidence(data: dict[str, Any]) -> dict[str, Any]:
    """The confidence statement, in the identifier's own words and on a 0–100 scale,
    right after the choice: until it is given, nothing else answers."""
    return service.state_confidence(_procedure(for_update=True), data)


@blp.route(f"{ME}/record")
@participant_route(IDENTIFIER, after_end=True)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.response(200, RecordViewSchema)
def read_record() -> dict[str, Any]:
    """The identifier's record as text lines, once written and finalised."""
    return service.record_view(_procedure())


@blp.route(f"{ME}/record/signature", methods=["POST"])
@participant_route(IDENTIFIER, after_end=True)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.arguments(PartySignatureSchema)
@blp.response(201, SignatureSchema)
@blp.alt_response(409, response="CONFLICT", description="No record yet, signed, or changed")
def sign_record(data: dict[str, Any]) -> DocumentSignature:
    """The identifier signs their record as the party on a presiding investigator's
    enrolled tablet, which signs the submission (see ``SignatureCreateSchema``)."""
    proc = _procedure(for_update=True)
    signature = service.sign_record(proc, data)
    audit.target("document_signature", signature.id)
    return signature


# The administrator


@blp.route(f"{ME}/progress")
@participant_route(ParticipantRole.ADMINISTRATOR)
@blp.alt_response(403, response="FORBIDDEN", description="Another participant role")
@blp.response(200, ProgressSchema)
def progress() -> dict[str, Any]:
    """Each identifier's step, and nothing that could reveal the target."""
    return service.progress(_procedure().session)


@blp.route("/sessions/<uuid:session_id>/identification/progress")
@roles_required(Role.OFFICER)
@blp.response(200, ProgressSchema)
@blp.alt_response(404, response="NOT_FOUND")
def user_progress(session_id: uuid.UUID) -> dict[str, Any]:
    """The same for an administrator who signs in as a user (and for the presiding
    investigators): each identifier's step, nothing that could reveal the target."""
    return service.user_progress(current_user(), _session(session_id))
