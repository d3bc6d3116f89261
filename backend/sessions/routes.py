"""Remote sessions: scheduling, participants, one-time codes, the log and its record.

Officers of the case's units schedule a session and add its participants; the
presiding investigators run it (codes, start, notices, recordings, the
transcript, complete or abort); every reader of the case sees it and its log,
except that the session's administrator gets the blind view. Participants who
are not users join with a one-time code under ``/participant``.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import g, request

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import (
    current_participant,
    current_user,
    participant_route,
    public,
    roles_required,
)
from backend.sessions import service
from backend.sessions.models import ParticipantRole, RemoteSession, SessionParticipant
from backend.sessions.schemas import (
    AbortSchema,
    CodeSchema,
    DocumentLinkSchema,
    JoinedSchema,
    JoinSchema,
    LogCheckSchema,
    NoticeCreateSchema,
    ParticipantCreateSchema,
    ParticipantSchema,
    ParticipantSessionSchema,
    RecordingCreateSchema,
    RecordingSchema,
    SessionCreateSchema,
    SessionEventListSchema,
    SessionListSchema,
    SessionSchema,
)
from shared.enums import CASE_READER_ROLES, Role

blp = Blueprint(
    "sessions",
    __name__,
    url_prefix="/api/v1",
    description="Remote identification, interrogation and lawyer meetings",
)

READERS = sorted(CASE_READER_ROLES)
COLUMNS = sa.inspect(RemoteSession).column_attrs


def _view(session: RemoteSession) -> dict[str, Any]:
    """The session with its participants and recordings; no log hashes in a blind view."""
    blind = service.is_blind(session, current_user())
    return {
        **{column.key: getattr(session, column.key) for column in COLUMNS},
        "log_head": None if blind else session.log_head,
        "closing_signature": None if blind else session.closing_signature,
        "participants": service.participants(session),
        "recordings": service.recordings(session),
    }


@blp.route("/sessions", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(SessionCreateSchema)
@blp.response(201, SessionSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def create_session(data: dict[str, Any]) -> dict[str, Any]:
    """Schedule a remote session in a case of your units (state ``scheduled``)."""
    session = service.create_session(current_user(), data)
    audit.target("session", session.id)
    return _view(session)


@blp.route("/cases/<uuid:case_id>/sessions")
@roles_required(*READERS)
@blp.response(200, SessionListSchema)
@blp.alt_response(404, response="NOT_FOUND")
def list_sessions(case_id: uuid.UUID) -> dict[str, Any]:
    """The remote sessions of a case of your units, by scheduled start."""
    audit.target("case", case_id)
    sessions = service.list_sessions(current_user(), case_id)
    return {"items": [_view(s) for s in sessions]}


@blp.route("/sessions/<uuid:session_id>")
@roles_required(*READERS)
@blp.response(200, SessionSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_session(session_id: uuid.UUID) -> dict[str, Any]:
    """A session of a case of your units, with its participants and recordings."""
    audit.target("session", session_id)
    return _view(service.get_session(current_user(), session_id))


@blp.route("/sessions/<uuid:session_id>/participants", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(ParticipantCreateSchema)
@blp.response(201, ParticipantSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def add_participant(data: dict[str, Any], session_id: uuid.UUID) -> SessionParticipant:
    """Add a participant before or during the session.

    Presiding investigators and the administrator are active officers of the case's
    units (``user_id``), each once; other participants are named people, persons of
    the case (``person_id``) where the kind requires it (a suspect), and join with a
    one-time code.
    """
    audit.target("session", session_id)
    user = current_user()
    participant = service.add_participant(
        user, service.get_session(user, session_id, for_update=True), data
    )
    audit.target("session_participant", participant.id)
    return participant


def _participant_of(
    session_id: uuid.UUID, participant_id: uuid.UUID
) -> tuple[RemoteSession, SessionParticipant]:
    audit.target("session_participant", participant_id)
    session = service.get_session(current_user(), session_id, for_update=True)
    return session, service.get_participant(session, participant_id)


@blp.route("/sessions/<uuid:session_id>/participants/<uuid:participant_id>/code", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.response(201, CodeSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def issue_code(session_id: uuid.UUID, participant_id: uuid.UUID) -> dict[str, Any]:
    """A one-time code for a participant who is not a user (presiding investigators).

    Shown once, used once, valid until the scheduled end (at least 30 minutes, at
    most 24 hours). A new code ends the participant's earlier code and token.
    """
    session, participant = _participant_of(session_id, participant_id)
    code, expires_at = service.issue_code(current_user(), session, participant)
    return {"participant_id": participant.id, "code": code, "expires_at": expires_at}


@blp.route(
    "/sessions/<uuid:session_id>/participants/<uuid:participant_id>/revoke", methods=["POST"]
)
@roles_required(Role.OFFICER)
@blp.response(200, ParticipantSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def revoke_participant(session_id: uuid.UUID, participant_id: uuid.UUID) -> SessionParticipant:
    """Withdraw a participant's code and token for good (presiding investigators)."""
    session, participant = _participant_of(session_id, participant_id)
    service.revoke(current_user(), session, participant)
    return participant


def _transition(session_id: uuid.UUID, reason: str | None = None) -> RemoteSession:
    """The session to change; the audit keeps a stated reason once the caller may act on it."""
    session = service.get_session(current_user(), session_id, for_update=True)
    audit.target("session", session_id, reason)
    return session


@blp.route("/sessions/<uuid:session_id>/start", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.response(200, SessionSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def start_session(session_id: uuid.UUID) -> dict[str, Any]:
    """Start a scheduled session: enough presiding investigators and the roles the kind needs."""
    return _view(service.start(current_user(), _transition(session_id)))


@blp.route("/sessions/<uuid:session_id>/complete", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.response(200, SessionSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def complete_session(session_id: uuid.UUID) -> dict[str, Any]:
    """Complete a running session; its log is sealed with the service key's signature.

    An interrogation needs its rights notices given and its transcript linked, and
    records the rules-engine fact ``interrogated``; a meeting records ``lawyer_meeting``.
    """
    return _view(service.complete(current_user(), _transition(session_id)))


@blp.route("/sessions/<uuid:session_id>/abort", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(AbortSchema)
@blp.response(200, SessionSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def abort_session(data: dict[str, Any], session_id: uuid.UUID) -> dict[str, Any]:
    """End a scheduled or running session early, with a reason; its log is sealed as is."""
    session = _transition(session_id, data["reason"])
    return _view(service.abort(current_user(), session, data["reason"]))


@blp.route("/sessions/<uuid:session_id>/events")
@roles_required(*READERS)
@blp.response(200, SessionEventListSchema)
@blp.alt_response(404, response="NOT_FOUND")
def list_events(session_id: uuid.UUID) -> dict[str, Any]:
    """The session's log in order, with each event's hash and the one before it.

    The session's administrator gets the blind view: no events or details that could
    tell which lineup member is the suspect, and no hashes.
    """
    audit.target("session", session_id)
    user = current_user()
    session = service.get_session(user, session_id)
    blind = service.is_blind(session, user)
    return {
        "events": service.visible_events(session, user),
        "count": session.event_count,
        "head": None if blind else session.log_head,
    }


@blp.route("/sessions/<uuid:session_id>/log/verify")
@roles_required(*READERS)
@blp.response(200, LogCheckSchema)
@blp.alt_response(404, response="NOT_FOUND")
def verify_log(session_id: uuid.UUID) -> dict[str, Any]:
    """Check the log's chain against the session's head and its closing signature."""
    audit.target("session", session_id)
    user = current_user()
    session = service.get_session(user, session_id)
    check = service.verify_log(session)
    return {
        "ok": check.ok,
        "count": check.count,
        "head": None if service.is_blind(session, user) else check.head,
        "first_bad_seq": check.first_bad_seq,
        "closing_signature_valid": check.closing_signature_valid,
    }


@blp.route("/sessions/<uuid:session_id>/recordings", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(RecordingCreateSchema)
@blp.response(201, RecordingSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def add_recording(data: dict[str, Any], session_id: uuid.UUID) -> Any:
    """Link a recording, uploaded as evidence of the same case, while the session runs."""
    session = _transition(session_id)
    recording = service.add_recording(current_user(), session, data)
    audit.target("session_recording", recording.id)
    return recording


@blp.route("/sessions/<uuid:session_id>/documents", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(DocumentLinkSchema)
@blp.response(200, SessionSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def link_document(data: dict[str, Any], session_id: uuid.UUID) -> dict[str, Any]:
    """Link the interrogation transcript (a document of the case) while the session runs."""
    session = _transition(session_id)
    return _view(service.link_document(current_user(), session, data["document_id"]))


@blp.route("/sessions/<uuid:session_id>/notices", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(NoticeCreateSchema)
@blp.response(201, SessionSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def give_notice(data: dict[str, Any], session_id: uuid.UUID) -> dict[str, Any]:
    """Log a notice read to a participant and acknowledged (an interrogation's rights notice).

    Each notice once per participant; the rights notice also records the fact
    ``counsel_rights_notified``.
    """
    session = _transition(session_id)
    service.give_notice(current_user(), session, data["notice"], data["participant_id"])
    return _view(session)


# Participants who are not users


@blp.route("/participant/join", methods=["POST"])
@public
@blp.arguments(JoinSchema)
@blp.response(200, JoinedSchema)
@blp.alt_response(401, response="UNAUTHORIZED")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def join(data: dict[str, Any]) -> dict[str, Any]:
    """Exchange a one-time code for a token scoped to one session and one role.

    The token is short-lived (two hours at most) and reaches only the participant
    endpoints. Attempts are rate limited per client.
    """
    joined = service.join(data["code"], request.remote_addr or "unknown")
    g.participant = joined.participant
    audit.target("session", joined.session.id)
    return {
        "access_token": joined.access_token,
        "token_type": "Bearer",
        "expires_at": joined.expires_at,
        "session_id": joined.session.id,
        "participant_id": joined.participant.id,
        "role": joined.participant.role,
        "kind": joined.session.kind,
    }


@blp.route("/participant/session")
@participant_route(*ParticipantRole)
@blp.response(200, ParticipantSessionSchema)
def participant_session() -> dict[str, Any]:
    """The session the participant token belongs to, and the participant's part in it."""
    participant = current_participant()
    session = service.participant_session(participant)
    audit.target("session", session.id)
    return {
        "session_id": session.id,
        "kind": session.kind,
        "state": session.state,
        "role": participant.role,
        "name": participant.name,
        "scheduled_start": session.scheduled_start,
        "scheduled_end": session.scheduled_end,
    }
