"""Remote sessions: scheduling, participants, one-time codes, the hash-chained log.

The session log is the evidence of what happened: every step appends an event
whose hash covers the previous hash, and when the session completes or aborts
the service key signs the final head (the *closing signature*). After that the
log is sealed: nothing more is appended, so a record printed from it carries
its final hash.

Kind-specific code (identification in ``backend.identification``; interrogation
and meetings below) plugs in through ``register_kind`` instead of being called
from here, which keeps the import graph one-way.

Lock order for writers: the case row, then the session row.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from backend.auth import tokens
from backend.auth.service import check_rate_limit
from backend.cases import service as cases
from backend.cases.models import Case
from backend.common import utcnow
from backend.documents import service as documents
from backend.documents.models import Document, DocumentSignature
from backend.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from backend.evidence import service as evidence_service
from backend.extensions import db
from backend.org.models import User
from backend.org.service import visible_unit_ids
from backend.sessions.models import (
    GENESIS,
    ParticipantRole,
    RemoteSession,
    SessionEvent,
    SessionKind,
    SessionParticipant,
    SessionRecording,
    SessionState,
)
from shared.enums import PersonRole, Role, SignerRole
from shared.sessions import KindSpec, kind_spec
from shared.signing import canonical_form

ENDED = (SessionState.COMPLETED, SessionState.ABORTED)
OPEN = (SessionState.SCHEDULED, SessionState.IN_PROGRESS)
USER_ROLES = (ParticipantRole.PRESIDING, ParticipantRole.ADMINISTRATOR)
"""Roles a user of the platform may take: presiding investigators always do; an
administrator may be an officer or a named person. Roles listed as joinable in
``shared/sessions.toml`` (never presiding) get one-time codes."""

CODE_DIGITS = 8
CODE_PATTERN = re.compile(rf"^[0-9]{{{CODE_DIGITS}}}$")
CODE_LIFETIME = timedelta(hours=24)
CODE_MIN_LIFETIME = timedelta(minutes=30)
"""A code issued when the scheduled end is near (or past, the session running late)."""
TOKEN_LIFETIME = timedelta(hours=2)
TOKEN_GRACE_AFTER_END = timedelta(hours=2)
MAX_SESSION_LENGTH = timedelta(hours=24)

EVENT_PURPOSE = "fieldcase-session-event"

BLIND_EVENT_KINDS: set[str] = set()
"""Event kinds a blind viewer (the administrator) never receives; kind modules add to it."""
BLIND_PAYLOAD_KEYS: set[str] = set()
"""Payload keys stripped from the events a blind viewer does receive."""


# Kind hooks


@dataclass(frozen=True)
class KindHooks:
    start_check: Callable[[RemoteSession], None] | None = None
    complete_check: Callable[[RemoteSession], None] | None = None
    on_end: Callable[[RemoteSession, User], None] | None = None
    redact: Callable[[RemoteSession, User], bool] | None = None


KIND_HOOKS: dict[SessionKind, KindHooks] = {}


def register_kind(
    kind: SessionKind | str,
    *,
    start_check: Callable[[RemoteSession], None] | None = None,
    complete_check: Callable[[RemoteSession], None] | None = None,
    on_end: Callable[[RemoteSession, User], None] | None = None,
    redact: Callable[[RemoteSession, User], bool] | None = None,
) -> None:
    """Plug kind-specific checks into the common state machine.

    ``start_check`` / ``complete_check`` raise a Problem to refuse; ``on_end``
    runs when the session completes or aborts (``session.state`` tells which),
    before the final event and the closing signature; ``redact`` says whether a
    user gets the blind view (default: the session's administrator does).
    """
    KIND_HOOKS[SessionKind(kind)] = KindHooks(start_check, complete_check, on_end, redact)


def _hooks(session: RemoteSession) -> KindHooks:
    return KIND_HOOKS.get(session.kind, KindHooks())


def spec_of(session: RemoteSession) -> KindSpec:
    return kind_spec(session.kind.value)


# Loading with object-level authorization


def get_session(user: User, session_id: uuid.UUID, *, for_update: bool = False) -> RemoteSession:
    """A session whose case the user may read; 404 otherwise.

    Writers lock the case row, then the session row (read again under the lock).
    """
    session = db.session.get(RemoteSession, session_id)
    if session is None:
        raise NotFound("No such session.")
    cases.get_case(user, session.case_id, for_update=for_update)
    if for_update:
        session = db.session.get(
            RemoteSession, session_id, with_for_update=True, populate_existing=True
        )
        if session is None:
            raise NotFound("No such session.")
    return session


def participant_session(
    participant: SessionParticipant, *, for_update: bool = False
) -> RemoteSession:
    """The session of an authenticated participant (participant routes), locked for writers."""
    if for_update:
        db.session.get(Case, _case_id_of(participant), with_for_update=True)
    return db.session.get_one(
        RemoteSession,
        participant.session_id,
        with_for_update=for_update or None,
        populate_existing=for_update,
    )


def _case_id_of(participant: SessionParticipant) -> uuid.UUID:
    return db.session.scalars(
        sa.select(RemoteSession.case_id).where(RemoteSession.id == participant.session_id)
    ).one()


def list_sessions(user: User, case_id: uuid.UUID) -> list[RemoteSession]:
    case = cases.get_case(user, case_id)
    return list(
        db.session.scalars(
            sa.select(RemoteSession)
            .where(RemoteSession.case_id == case.id)
            .order_by(RemoteSession.scheduled_start, RemoteSession.id)
        )
    )


def participants(
    session: RemoteSession, role: ParticipantRole | None = None, *, active_only: bool = False
) -> list[SessionParticipant]:
    """The session's participants in the order they were added (revoked ones too, unless
    ``active_only``)."""
    query = sa.select(SessionParticipant).where(SessionParticipant.session_id == session.id)
    if role is not None:
        query = query.where(SessionParticipant.role == role)
    if active_only:
        query = query.where(SessionParticipant.revoked_at.is_(None))
    return list(
        db.session.scalars(query.order_by(SessionParticipant.created_at, SessionParticipant.id))
    )


def get_participant(session: RemoteSession, participant_id: uuid.UUID) -> SessionParticipant:
    participant = db.session.get(SessionParticipant, participant_id)
    if participant is None or participant.session_id != session.id:
        raise NotFound("No such participant in this session.")
    return participant


def recordings(session: RemoteSession) -> list[SessionRecording]:
    return list(
        db.session.scalars(
            sa.select(SessionRecording)
            .where(SessionRecording.session_id == session.id)
            .order_by(SessionRecording.added_at, SessionRecording.id)
        )
    )


def ensure_state(session: RemoteSession, *states: SessionState) -> None:
    if session.state not in states:
        wanted = ", ".join(s.value for s in states)
        raise Conflict(
            f"The session is {session.state.value}; this needs it {wanted}.",
            slug="session-state",
        )


def presiding_of(session: RemoteSession, user: User) -> SessionParticipant | None:
    return db.session.scalar(
        sa.select(SessionParticipant).where(
            SessionParticipant.session_id == session.id,
            SessionParticipant.role == ParticipantRole.PRESIDING,
            SessionParticipant.user_id == user.id,
        )
    )


def require_presiding(session: RemoteSession, user: User) -> SessionParticipant:
    """The user's presiding participant row; 403 for anyone else."""
    presiding = presiding_of(session, user)
    if presiding is None:
        raise Forbidden("Only the session's presiding investigators may do this.")
    return presiding


def is_blind(session: RemoteSession, user: User) -> bool:
    """Whether the user gets the blind view of the session (the administrator does)."""
    redact = _hooks(session).redact
    if redact is not None:
        return redact(session, user)
    return (
        db.session.scalar(
            sa.select(SessionParticipant.id).where(
                SessionParticipant.session_id == session.id,
                SessionParticipant.role == ParticipantRole.ADMINISTRATOR,
                SessionParticipant.user_id == user.id,
            )
        )
        is not None
    )


# The log


def _plain(value: Any) -> Any:
    """JSON values for the payload: ids and times as text; floats are refused when hashed."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def event_fields(event: SessionEvent) -> dict[str, Any]:
    """The fields an event's hash covers."""
    return {
        "session_id": str(event.session_id),
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(),
        "kind": event.kind,
        "actor_user_id": _text(event.actor_user_id),
        "actor_participant_id": _text(event.actor_participant_id),
        "subject_participant_id": _text(event.subject_participant_id),
        "payload": event.payload,
    }


def event_hash(prev_hash: str, event: SessionEvent) -> str:
    """sha256 over the previous hash and the event's canonical form (``shared.signing``)."""
    form = canonical_form(EVENT_PURPOSE, event_fields(event))
    return hashlib.sha256(prev_hash.encode() + b"\n" + form).hexdigest()


def append_event(
    session: RemoteSession,
    kind: str,
    payload: dict[str, Any],
    *,
    user: User | None = None,
    participant: SessionParticipant | None = None,
    subject: SessionParticipant | None = None,
) -> SessionEvent:
    """Append to the session's log (the caller holds the session row locked).

    Refused (409) once the log is sealed by the closing signature.
    """
    if session.closing_signature is not None:
        raise Conflict("The session has ended; its log is closed.", slug="session-state")
    event = SessionEvent(
        session_id=session.id,
        seq=session.event_count + 1,
        at=utcnow(),
        kind=kind,
        actor_user_id=user.id if user else None,
        actor_participant_id=participant.id if participant else None,
        subject_participant_id=subject.id if subject else None,
        payload=_plain(payload),
        prev_hash=session.log_head,
    )
    event.hash = event_hash(event.prev_hash, event)
    db.session.add(event)
    session.event_count, session.log_head = event.seq, event.hash
    db.session.flush()
    return event


def events(session: RemoteSession) -> list[SessionEvent]:
    return list(
        db.session.scalars(
            sa.select(SessionEvent)
            .where(SessionEvent.session_id == session.id)
            .order_by(SessionEvent.seq)
        )
    )


EVENT_VIEW_FIELDS = (
    "session_id",
    "seq",
    "at",
    "kind",
    "actor_user_id",
    "actor_participant_id",
    "subject_participant_id",
    "payload",
    "prev_hash",
    "hash",
)


def visible_events(session: RemoteSession, user: User) -> list[dict[str, Any]]:
    """The log as the user may see it.

    A blind viewer gets neither the events of ``BLIND_EVENT_KINDS`` nor the keys of
    ``BLIND_PAYLOAD_KEYS``, and no hashes: from a hash and the rest of an event the
    few possible positions could be tried one by one.
    """
    blind = is_blind(session, user)
    shown = []
    for event in events(session):
        if blind and event.kind in BLIND_EVENT_KINDS:
            continue
        view = {name: getattr(event, name) for name in EVENT_VIEW_FIELDS}
        if blind:
            view["payload"] = {
                k: v for k, v in event.payload.items() if k not in BLIND_PAYLOAD_KEYS
            }
            view["prev_hash"] = view["hash"] = None
        shown.append(view)
    return shown


@dataclass(frozen=True)
class LogCheck:
    ok: bool
    count: int
    head: str
    first_bad_seq: int | None
    closing_signature_valid: bool | None = None
    """None while the session is open (no closing signature yet)."""


def _closing_message(session: RemoteSession) -> bytes:
    return f"fieldcase-session-close:{session.id}:{session.event_count}:{session.log_head}".encode()


def closing_signature_valid(session: RemoteSession) -> bool | None:
    if session.closing_signature is None:
        return None
    try:
        signature = base64.b64decode(session.closing_signature, validate=True)
    except binascii.Error:
        return False
    return tokens.signature_valid(signature, _closing_message(session))


def verify_log(session: RemoteSession) -> LogCheck:
    """Walk the log: sequence, links and hashes; then the session's head and count."""
    expected_prev = GENESIS
    count = 0
    for event in events(session):
        count += 1
        if (
            event.seq != count
            or event.prev_hash != expected_prev
            or event.hash != event_hash(event.prev_hash, event)
        ):
            return LogCheck(False, count - 1, expected_prev, event.seq)
        expected_prev = event.hash
    if count != session.event_count or expected_prev != session.log_head:
        return LogCheck(False, count, expected_prev, count + 1)
    return LogCheck(True, count, expected_prev, None, closing_signature_valid(session))


def _seal(session: RemoteSession) -> None:
    session.closing_signature = base64.b64encode(tokens.sign(_closing_message(session))).decode()
    db.session.flush()


# Scheduling


def _check_settings(spec: KindSpec, given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(spec.settings))
    if unknown:
        raise Unprocessable(
            f"Unknown settings for a {spec.key} session: {', '.join(unknown)}.",
            slug="session-settings",
        )
    settings = {}
    for name, setting in spec.settings.items():
        value = given.get(name, setting.default)
        if not setting.accepts(value):
            raise Unprocessable(f"The setting {name} is not allowed.", slug="session-settings")
        settings[name] = value
    return settings


def _site_keys(session: RemoteSession) -> set[str]:
    return {site["key"] for site in session.sites}


def create_session(user: User, data: dict[str, Any]) -> RemoteSession:
    if not user.has_role(Role.OFFICER):
        raise Forbidden("Only officers schedule remote sessions.")
    case = cases.get_case(user, data["case_id"], for_update=True)
    cases.ensure_open(case)
    kind = SessionKind(data["kind"])
    spec = kind_spec(kind.value)
    if case.case_type.value not in spec.case_types:
        raise Unprocessable(
            f"A {kind.value} session is not available in a {case.case_type.value} case.",
            slug="session-kind",
        )
    if data["scheduled_end"] <= data["scheduled_start"]:
        raise Unprocessable("A session must end after it starts.", slug="session-schedule")
    keys = [site["key"] for site in data["sites"]]
    if len(set(keys)) != len(keys):
        raise Unprocessable("Each site needs its own key.", slug="session-sites")
    session = RemoteSession(
        case_id=case.id,
        unit_id=case.unit_id,
        kind=kind,
        state=SessionState.SCHEDULED,
        scheduled_start=data["scheduled_start"],
        scheduled_end=data["scheduled_end"],
        sites=data["sites"],
        video_link=data.get("video_link"),
        settings=_check_settings(spec, data.get("settings") or {}),
        created_by=user.id,
        event_count=0,
        log_head=GENESIS,
    )
    db.session.add(session)
    db.session.flush()
    append_event(
        session,
        "scheduled",
        {
            "kind": kind.value,
            "case_id": case.id,
            "scheduled_start": session.scheduled_start,
            "scheduled_end": session.scheduled_end,
            "sites": session.sites,
            "video_link": session.video_link,
            "settings": session.settings,
        },
        user=user,
    )
    return session


def _officer_of_case(candidate: User | None, session: RemoteSession) -> User:
    if candidate is None or not candidate.active or not candidate.has_role(Role.OFFICER):
        raise Unprocessable(
            "Presiding investigators and administrators are active officers.",
            slug="participant-user",
        )
    if session.unit_id not in visible_unit_ids(candidate):
        raise Unprocessable(
            "The officer does not belong to the case's units.", slug="participant-user"
        )
    return candidate


def add_participant(user: User, session: RemoteSession, data: dict[str, Any]) -> SessionParticipant:
    """Add a participant: officers of the case's units as users, anyone else by name.

    Each user and each person of the case takes one part in a session.
    """
    if not user.has_role(Role.OFFICER):
        raise Forbidden("Only officers add participants.")
    ensure_state(session, *OPEN)
    spec = spec_of(session)
    role = ParticipantRole(data["role"])
    if role.value not in spec.allowed_roles:
        raise Unprocessable(
            f"A {session.kind.value} session has no {role.value}.", slug="participant-role"
        )
    site = data.get("site")
    if site is not None and site not in _site_keys(session):
        raise Unprocessable("No such site in this session.", slug="participant-site")
    user_id, person_id = data.get("user_id"), data.get("person_id")
    existing = participants(session)
    name = (data.get("name") or "").strip()
    if role == ParticipantRole.PRESIDING or user_id is not None:
        if role not in USER_ROLES or user_id is None or person_id is not None:
            raise Unprocessable(
                "Presiding investigators are users (user_id), administrators may be; "
                "other participants are not.",
                slug="participant-user",
            )
        member = _officer_of_case(db.session.get(User, user_id), session)
        if any(p.user_id == member.id for p in existing):
            raise Conflict("This officer already takes part in the session.")
        name = member.display_name
    if person_id is not None:
        person = cases.get_person(db.session.get_one(Case, session.case_id), person_id)
        if role == ParticipantRole.SUSPECT and person.role != PersonRole.SUSPECT:
            raise Unprocessable(
                "The person is not a suspect in the case.", slug="participant-person"
            )
        if any(p.person_id == person.id for p in existing):
            raise Conflict("This person already takes part in the session.")
        name = name or person.name
    elif role.value in spec.person_roles:
        raise Unprocessable(
            f"A {role.value} is a person of the case (person_id).", slug="participant-person"
        )
    if not name:
        raise Unprocessable("A participant needs a name.", slug="participant-name")
    participant = SessionParticipant(
        session_id=session.id,
        role=role,
        name=name,
        user_id=user_id,
        person_id=person_id,
        site=site,
        added_by=user.id,
    )
    db.session.add(participant)
    db.session.flush()
    append_event(
        session,
        "participant_added",
        {
            "participant_id": participant.id,
            "role": role.value,
            "site": site,
            "user_id": user_id,
            "person_id": person_id,
        },
        user=user,
        subject=participant,
    )
    return participant


# One-time codes and participant tokens


def _code_key() -> bytes:
    """A key for hashing codes, derived from the service key (Ed25519 signs deterministically),
    so a copy of the database alone does not let anyone try all codes."""
    return hashlib.sha256(tokens.sign(b"fieldcase-participant-code-key")).digest()


def code_digest(code: str) -> str:
    return hmac.new(_code_key(), code.encode(), hashlib.sha256).hexdigest()


def _ensure_joinable(session: RemoteSession, participant: SessionParticipant) -> None:
    if participant.role.value not in spec_of(session).joinable_roles:
        raise Conflict(
            "This participant signs in as a user, not with a code.", slug="participant-is-user"
        )


def issue_code(
    user: User, session: RemoteSession, participant: SessionParticipant
) -> tuple[str, datetime]:
    """A fresh one-time code for a participant of a joinable role; shown once.

    It replaces any earlier code and ends any token the participant holds.
    """
    require_presiding(session, user)
    ensure_state(session, *OPEN)
    _ensure_joinable(session, participant)
    if participant.revoked_at is not None:
        raise Conflict("This participant's access was withdrawn.", slug="participant-revoked")
    now = utcnow()
    expires_at = min(now + CODE_LIFETIME, max(session.scheduled_end, now + CODE_MIN_LIFETIME))
    while True:
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        digest = code_digest(code)
        taken = db.session.scalar(
            sa.select(SessionParticipant.id).where(SessionParticipant.code_hash == digest)
        )
        if taken is None:
            break
    participant.code_hash, participant.code_expires_at, participant.code_used_at = (
        digest,
        expires_at,
        None,
    )
    participant.token_jti = participant.token_expires_at = None
    append_event(
        session,
        "code_issued",
        {"participant_id": participant.id, "expires_at": expires_at},
        user=user,
        subject=participant,
    )
    return code, expires_at


def revoke(user: User, session: RemoteSession, participant: SessionParticipant) -> bool:
    """Withdraw a participant's code and token for good; False if already withdrawn."""
    require_presiding(session, user)
    _ensure_joinable(session, participant)
    if participant.revoked_at is not None:
        return False
    ensure_state(session, *OPEN)
    participant.revoked_at = utcnow()
    append_event(
        session,
        "participant_revoked",
        {"participant_id": participant.id},
        user=user,
        subject=participant,
    )
    return True


@dataclass(frozen=True)
class Joined:
    access_token: str
    expires_at: datetime
    participant: SessionParticipant
    session: RemoteSession


def join(code: str, client: str) -> Joined:
    """Exchange a one-time code for a participant token (used once; rate limited)."""
    now = utcnow()
    limit = current_app.config["RATE_LIMIT_PARTICIPANT_JOIN_PER_MINUTE"]
    check_rate_limit("participant-join", client, limit, now)
    refused = AuthenticationFailed("The code is not valid.", slug="invalid-code")
    if not CODE_PATTERN.match(code):
        raise refused
    participant = db.session.scalar(
        sa.select(SessionParticipant).where(SessionParticipant.code_hash == code_digest(code))
    )
    if participant is None:
        raise refused
    session = participant_session(participant, for_update=True)
    db.session.refresh(participant)
    expires_at = min(now + TOKEN_LIFETIME, session.scheduled_end + TOKEN_GRACE_AFTER_END)
    if (
        participant.code_used_at is not None
        or participant.revoked_at is not None
        or participant.code_expires_at is None
        or participant.code_expires_at <= now
        or session.state in ENDED
        or expires_at <= now
    ):
        raise refused
    participant.code_used_at = now
    token, claims = tokens.issue(
        tokens.PARTICIPANT, participant.id, session.id, now, expires_at - now
    )
    participant.token_jti, participant.token_expires_at = claims.jti, claims.expires_at
    append_event(
        session,
        "participant_joined",
        {"participant_id": participant.id, "expires_at": claims.expires_at},
        participant=participant,
        subject=participant,
    )
    return Joined(token, claims.expires_at, participant, session)


def authenticate_participant(token: str, *, after_end: bool = False) -> SessionParticipant:
    """The participant behind a participant token: current, not withdrawn, session live.

    ``after_end`` admits the token after its session completed (reading and signing
    the record); never after an abort.
    """
    claims = tokens.verify(token, tokens.PARTICIPANT)
    participant = db.session.get(SessionParticipant, claims.user_id)
    if (
        participant is None
        or participant.session_id != claims.session_id
        or participant.token_jti != claims.jti
    ):
        raise Unauthorized("The token is not valid.", slug="invalid-token")
    if participant.revoked_at is not None:
        raise Unauthorized("Your access to this session was withdrawn.", slug="participant-revoked")
    if participant.token_expires_at is None or participant.token_expires_at <= utcnow():
        raise Unauthorized("The token has expired.", slug="token-expired")
    session = db.session.get_one(RemoteSession, participant.session_id)
    if session.state == SessionState.ABORTED or (
        session.state == SessionState.COMPLETED and not after_end
    ):
        raise Unauthorized("The session has ended.", slug="session-ended")
    return participant


# The state machine


def _started_checks(session: RemoteSession) -> None:
    spec = spec_of(session)
    active = participants(session, active_only=True)
    presiding = [p for p in active if p.role == ParticipantRole.PRESIDING]
    if len(presiding) < spec.min_presiding:
        raise Unprocessable(
            f"At least {spec.min_presiding} investigators must preside.",
            slug="session-presiding",
        )
    missing = [r for r in spec.required_roles if all(p.role.value != r for p in active)]
    if missing:
        raise Unprocessable(
            f"The session needs: {', '.join(missing)}.", slug="session-participants"
        )


def start(user: User, session: RemoteSession) -> RemoteSession:
    presiding = require_presiding(session, user)
    ensure_state(session, SessionState.SCHEDULED)
    cases.ensure_open(db.session.get_one(Case, session.case_id))
    _started_checks(session)
    hooks = _hooks(session)
    if hooks.start_check is not None:
        hooks.start_check(session)
    session.state, session.started_at = SessionState.IN_PROGRESS, utcnow()
    append_event(
        session,
        "started",
        {"presiding": [p.id for p in participants(session, ParticipantRole.PRESIDING)]},
        user=user,
        participant=presiding,
    )
    return session


def _end(user: User, session: RemoteSession, state: SessionState, payload: dict[str, Any]) -> None:
    """Move to a final state, let the kind finish, log the end and seal the log."""
    presiding = presiding_of(session, user)
    session.state, session.ended_at = state, utcnow()
    hooks = _hooks(session)
    if hooks.on_end is not None:
        hooks.on_end(session, user)
    append_event(
        session,
        state.value,
        {**payload, "ended_at": session.ended_at},
        user=user,
        participant=presiding,
    )
    _seal(session)


def complete(user: User, session: RemoteSession) -> RemoteSession:
    require_presiding(session, user)
    ensure_state(session, SessionState.IN_PROGRESS)
    _started_checks(session)
    hooks = _hooks(session)
    if hooks.complete_check is not None:
        hooks.complete_check(session)
    _end(user, session, SessionState.COMPLETED, {})
    return session


def abort(user: User, session: RemoteSession, reason: str) -> RemoteSession:
    """End a session early; its log so far stays and is signed off like a completed one."""
    require_presiding(session, user)
    ensure_state(session, *OPEN)
    session.abort_reason = reason
    _end(user, session, SessionState.ABORTED, {"reason": reason})
    return session


# Recordings and the record


def add_recording(user: User, session: RemoteSession, data: dict[str, Any]) -> SessionRecording:
    """Link a recording uploaded as evidence of the same case (while the session runs)."""
    require_presiding(session, user)
    ensure_state(session, SessionState.IN_PROGRESS)
    item = evidence_service.get_evidence(user, data["evidence_id"])
    if item.case_id != session.case_id:
        raise Unprocessable("The recording is evidence of another case.", slug="recording-case")
    site = data.get("site")
    if site is not None and site not in _site_keys(session):
        raise Unprocessable("No such site in this session.", slug="recording-site")
    if any(r.evidence_id == item.id for r in recordings(session)):
        raise Conflict("This recording is already linked to the session.")
    recording = SessionRecording(
        session_id=session.id, evidence_id=item.id, full=data["full"], site=site, added_by=user.id
    )
    db.session.add(recording)
    db.session.flush()
    append_event(
        session,
        "recording_linked",
        {"evidence_id": item.id, "sha256": item.sha256, "full": recording.full, "site": site},
        user=user,
    )
    return recording


def link_document(user: User, session: RemoteSession, document_id: uuid.UUID) -> RemoteSession:
    """Link the transcript written with the documents feature (kinds whose record is linked)."""
    require_presiding(session, user)
    ensure_state(session, SessionState.IN_PROGRESS)
    spec = spec_of(session)
    if spec.record_mode != "linked":
        raise Conflict(
            f"A {session.kind.value} session's record is not linked by hand.",
            slug="session-record",
        )
    case, document = documents.get_document(user, document_id)
    if case.id != session.case_id or document.kind != spec.record_document_kind:
        raise Unprocessable(
            f"The record must be a {spec.record_document_kind} of the session's case.",
            slug="session-record",
        )
    if session.record_document_id is not None:
        raise Conflict("The session's record is already linked.", slug="session-record")
    session.record_document_id = document.id
    append_event(
        session,
        "document_linked",
        {
            "document_id": document.id,
            "kind": document.kind,
            "content_sha256": document.content_sha256,
        },
        user=user,
    )
    return session


# Notices (interrogation)


def notices_given(session: RemoteSession) -> set[tuple[str, uuid.UUID]]:
    return {
        (event.payload["notice"], uuid.UUID(event.payload["participant_id"]))
        for event in events(session)
        if event.kind == "notice_given"
    }


def _record_fact(
    user: User,
    session: RemoteSession,
    kind: str,
    subject: SessionParticipant | None,
    started_at: datetime,
    ended_at: datetime | None,
    data: dict[str, Any],
) -> None:
    """A rules-engine fact, built as ``backend.supervision.service.record_fact`` builds it."""
    case = db.session.get_one(Case, session.case_id)
    payload = {
        "kind": kind,
        "subject": str(subject.person_id) if subject and subject.person_id else "",
        "started_at": started_at.astimezone(UTC).isoformat(),
        "ended_at": ended_at.astimezone(UTC).isoformat() if ended_at else None,
        "data": {**data, "session_id": str(session.id), "remote": True},
    }
    cases.append_event(case, "fact_recorded", user, payload=payload)


def give_notice(
    user: User, session: RemoteSession, notice_key: str, participant_id: uuid.UUID
) -> SessionEvent:
    """Log that a notice was read to a participant and acknowledged (once each)."""
    presiding = require_presiding(session, user)
    ensure_state(session, SessionState.IN_PROGRESS)
    notice = spec_of(session).notice(notice_key)
    if notice is None:
        raise Unprocessable(
            f"A {session.kind.value} session has no {notice_key} notice.", slug="session-notice"
        )
    participant = get_participant(session, participant_id)
    if participant.role.value not in notice.roles or participant.revoked_at is not None:
        raise Unprocessable(
            f"The {notice_key} notice is for: {', '.join(notice.roles)}.", slug="session-notice"
        )
    if (notice.key, participant.id) in notices_given(session):
        raise Conflict("This notice was already given to this participant.")
    event = append_event(
        session,
        "notice_given",
        {"notice": notice.key, "participant_id": participant.id, "acknowledged": True},
        user=user,
        participant=presiding,
        subject=participant,
    )
    if notice.fact:
        _record_fact(user, session, notice.fact, participant, event.at, None, {})
    return event


def _notices_complete(session: RemoteSession) -> None:
    given = notices_given(session)
    for notice in spec_of(session).notices:
        if not notice.required:
            continue
        for participant in participants(session, active_only=True):
            if participant.role.value in notice.roles and (notice.key, participant.id) not in given:
                raise Unprocessable(
                    f"The {notice.name['en']} ({notice.name['zh']}) was not given to "
                    f"{participant.name}.",
                    slug="session-notice",
                )


def _interrogation_complete_check(session: RemoteSession) -> None:
    _notices_complete(session)
    if session.record_document_id is None:
        raise Unprocessable(
            "Link the interrogation transcript before completing.", slug="session-record"
        )


def _officer_signatures(session: RemoteSession) -> int:
    if session.record_document_id is None:
        return 0
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(DocumentSignature)
            .where(
                DocumentSignature.document_id == session.record_document_id,
                DocumentSignature.role.in_([SignerRole.OFFICER, SignerRole.SECOND_OFFICER]),
            )
        )
        or 0
    )


def _transcript_of_minor(session: RemoteSession) -> bool:
    if session.record_document_id is None:
        return False
    document = db.session.get(Document, session.record_document_id)
    return bool(document and document.person_is_minor)


def _record_suspect_facts(
    user: User,
    session: RemoteSession,
    started_at: datetime,
    active: list[SessionParticipant],
    data: dict[str, Any],
) -> None:
    """The kind's fact for each suspect of a completed session, over its whole span."""
    for suspect in (p for p in active if p.role == ParticipantRole.SUSPECT):
        _record_fact(
            user, session, spec_of(session).fact, suspect, started_at, session.ended_at, data
        )


def _interrogation_facts(session: RemoteSession, user: User) -> None:
    """On completion: one ``interrogated`` fact per suspect, with what the checks read."""
    if session.state != SessionState.COMPLETED or session.started_at is None:
        return
    active = participants(session, active_only=True)
    data = {
        "officers": sum(p.role == ParticipantRole.PRESIDING for p in active),
        "av_recorded": any(r.full for r in recordings(session)),
        "minor": bool(session.settings.get("minor")) or _transcript_of_minor(session),
        "guardian_present": any(p.role == ParticipantRole.GUARDIAN for p in active),
        "officer_signatures": _officer_signatures(session),
        "major_case": bool(session.settings.get("major_case")),
        "interpreter_present": any(p.role == ParticipantRole.INTERPRETER for p in active),
    }
    _record_suspect_facts(user, session, session.started_at, active, data)


def _meeting_facts(session: RemoteSession, user: User) -> None:
    """On completion: a ``lawyer_meeting`` fact per detainee met."""
    if session.state != SessionState.COMPLETED or session.started_at is None:
        return
    active = participants(session, active_only=True)
    data = {"lawyers": sum(p.role == ParticipantRole.LAWYER for p in active)}
    _record_suspect_facts(user, session, session.started_at, active, data)


register_kind(
    SessionKind.INTERROGATION,
    complete_check=_interrogation_complete_check,
    on_end=_interrogation_facts,
)
register_kind(SessionKind.MEETING, on_end=_meeting_facts)
