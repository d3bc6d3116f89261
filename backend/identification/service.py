"""Double-blind identification (辨认) in a remote session.

The presiding investigators build lineups (one target among fillers, with the
reason to suspect and the filler criteria), interview each identifier, and
assign a lineup; the server draws that identifier's positions with a CSPRNG.
The identifier then works alone on a police tablet with a participant token:
instructions, the members (all at once, or one at a time, each answered
before the next), the choice, and at once the confidence statement. Every step
is an event of the session's hash-chained log, and the record (辨认笔录) is
written from that log after the session has ended, with the log's final hash.

The order is enforced by ``Track.stage``; the administrator of the session
never receives a member, a position or a choice: every event kind here is
withheld from them (``BLIND_EVENT_KINDS``) and their only endpoint reports each
identifier's step.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from backend.cases import service as cases
from backend.cases.models import Case, CasePerson
from backend.common import utcnow
from backend.devices.models import Device
from backend.documents import service as documents
from backend.documents.models import Document, DocumentSignature
from backend.errors import Conflict, Forbidden, NotFound, Problem, Unprocessable
from backend.evidence.models import CustodyEventType, Evidence, EvidenceKind, EvidenceStatus
from backend.evidence.service import record_custody
from backend.evidence.store import ByteRange, StoreError, get_store
from backend.extensions import db
from backend.identification.models import ACTIVE_STAGES, Lineup, LineupMember, Stage, Track
from backend.org.models import Unit, User
from backend.sessions import service as sessions
from backend.sessions.models import (
    ParticipantRole,
    RemoteSession,
    SessionEvent,
    SessionKind,
    SessionParticipant,
    SessionRecording,
    SessionState,
)
from shared.enums import DocumentStatus, PersonRole, SignerRole
from shared.identification import PRESENTATIONS, LineupKind, instructions_sha256, load_rules
from shared.sessions import kind_spec
from shared.templates import CHINA_STANDARD_TIME, content_sha256, load_catalogue

RECORD_KIND = "identification_record"
ORDER = "identification-order"
"""Problem slug of a step taken out of its order."""

# Log event kinds (``SessionEvent.kind``); all are withheld from the administrator.
LINEUP_CREATED = "lineup_created"
INTERVIEW = "identification_interview"
REUSE_REFUSED = "filler_reuse_refused"
ASSIGNED = "lineup_assigned"
INSTRUCTED = "instructions_acknowledged"
SHOWN = "members_shown"
RESPONSE = "member_response"
CHOICE = "choice_made"
CONFIDENCE = "confidence_stated"
STOPPED = "identification_stopped"
EVENT_KINDS = frozenset(
    {
        LINEUP_CREATED,
        INTERVIEW,
        REUSE_REFUSED,
        ASSIGNED,
        INSTRUCTED,
        SHOWN,
        RESPONSE,
        CHOICE,
        CONFIDENCE,
        STOPPED,
    }
)

STEP_OF_STAGE = {
    Stage.ASSIGNED: "instructions",
    Stage.VIEWING: "lineup",
    Stage.CHOICE: "choice",
    Stage.CONFIDENCE: "confidence",
}


class FillersReused(Conflict):
    """A lineup with fillers this identifier has already seen in the case (AR art. 104).

    The refusal itself is kept (logged and flagged), so the failed request's
    changes are committed.
    """

    slug = "fillers-reused"
    keep_changes = True


def _out_of_order(detail: str) -> Conflict:
    return Conflict(detail, slug=ORDER)


def _invalid(field: str, message: str, **extensions: Any) -> Unprocessable:
    return Unprocessable(message, errors={"json": {field: [message]}}, **extensions)


# Sessions, presiding investigators and identifiers


def get_identification_session(
    user: User, session_id: uuid.UUID, *, for_update: bool = False
) -> RemoteSession:
    """An identification session of a case in the user's units (404 otherwise)."""
    session = sessions.get_session(user, session_id, for_update=for_update)
    if session.kind != SessionKind.IDENTIFICATION:
        raise NotFound("No such identification session.")
    return session


def _active(participant: SessionParticipant) -> bool:
    return participant.revoked_at is None


def _identifiers(session: RemoteSession) -> list[SessionParticipant]:
    return sessions.participants(session, ParticipantRole.IDENTIFIER)


def _identifier(session: RemoteSession, participant_id: uuid.UUID) -> SessionParticipant:
    participant = next((p for p in _identifiers(session) if p.id == participant_id), None)
    if participant is None:
        raise NotFound("No such identifier in this session.")
    if not _active(participant):
        raise Conflict("This identifier's access has been revoked.", slug="participant-revoked")
    return participant


def person_key(person: CasePerson) -> str:
    """A person across cases: by their resident ID number (hashed) where it is known."""
    if person.id_number:
        digest = hashlib.sha256(f"fieldcase-person:{person.id_number.upper()}".encode())
        return f"resident:{digest.hexdigest()}"
    return f"person:{person.id}"


def identifier_key(participant: SessionParticipant) -> str:
    """The identifier across sessions: their ID number or case person, else their name
    (a name counts within one case only)."""
    if participant.person_id is not None:
        return person_key(db.session.get_one(CasePerson, participant.person_id))
    return "name:" + _normalised(participant.name)[:72]


def _normalised(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def presentation_of(session: RemoteSession) -> str:
    default = kind_spec(SessionKind.IDENTIFICATION).settings["presentation"].default
    return str((session.settings or {}).get("presentation") or default)


def _case(session: RemoteSession) -> Case:
    return db.session.get_one(Case, session.case_id)


def _track_of(participant: SessionParticipant) -> Track | None:
    return db.session.scalar(sa.select(Track).where(Track.participant_id == participant.id))


def _tracks(session: RemoteSession) -> list[Track]:
    return list(db.session.scalars(sa.select(Track).where(Track.session_id == session.id)))


# Lineups


def _member_keys(member: LineupMember, evidence: Evidence | None) -> list[str]:
    keys = [f"text:{hashlib.sha256(_normalised(member.description).encode()).hexdigest()}"]
    if member.person_id is not None:
        keys.append(f"person:{member.person_id}")
    if evidence is not None:
        keys += [f"evidence:{evidence.id}", f"photo:{evidence.sha256}"]
    return keys


def _member_evidence(
    case: Case, kind: LineupKind, index: int, raw: dict[str, Any]
) -> Evidence | None:
    field = f"members.{index}.evidence_id"
    if not kind.photo:
        if raw.get("evidence_id") is not None:
            raise _invalid(field, "Only photo lineups show evidence photos.")
        return None
    if raw.get("evidence_id") is None:
        raise _invalid(field, "Each member of a photo lineup is a photo (evidence of the case).")
    evidence = db.session.get(Evidence, raw["evidence_id"])
    if evidence is None or evidence.case_id != case.id:
        raise _invalid(field, "No such evidence in this case.")
    if evidence.kind != EvidenceKind.PHOTO or evidence.status != EvidenceStatus.HELD:
        raise _invalid(field, "Must be a photo the case still holds.")
    return evidence


def _member_person(
    case: Case, kind: LineupKind, index: int, raw: dict[str, Any]
) -> CasePerson | None:
    field = f"members.{index}.person_id"
    if raw.get("person_id") is None:
        if kind.person and raw["is_target"]:
            raise _invalid(field, "The target of a lineup of persons is a suspect of the case.")
        return None
    if not kind.person:
        raise _invalid(field, "A lineup of objects has no persons.")
    person = db.session.get(CasePerson, raw["person_id"])
    if person is None or person.case_id != case.id:
        raise _invalid(field, "No such person in this case.")
    if raw["is_target"] and person.role != PersonRole.SUSPECT:
        raise _invalid(field, "The target must be a suspect of the case.")
    if not raw["is_target"] and person.role == PersonRole.SUSPECT:
        raise _invalid(field, "A filler must not be a suspect: one suspect per lineup.")
    return person


def create_lineup(user: User, session: RemoteSession, data: dict[str, Any]) -> Lineup:
    """A lineup: exactly one target, at least the legal minimum of members, the reason
    to suspect and the filler criteria, logged before it can be shown to anyone."""
    sessions.require_presiding(session, user)
    sessions.ensure_state(session, SessionState.SCHEDULED, SessionState.IN_PROGRESS)
    case = _case(session)
    rules = load_rules()
    kind = rules.kinds[data["kind"]]
    members = data["members"]
    if sum(m["is_target"] for m in members) != 1:
        raise _invalid("members", "A lineup has exactly one target (the suspect or the object).")
    basis = rules.minimum_basis[case.case_type]
    if len(members) < kind.minimum:
        raise Unprocessable(
            f"A lineup of {kind.label.en.lower()} needs at least {kind.minimum} members, "
            f"the target included ({basis}).",
            slug="lineup-too-small",
            errors={"json": {"members": [f"At least {kind.minimum} ({basis})."]}},
            law=basis.law,
            article=basis.article,
            minimum=kind.minimum,
        )
    lineup = Lineup(
        id=uuid.uuid4(),
        session_id=session.id,
        case_id=case.id,
        kind=kind.id,
        suspicion_reason=data["suspicion_reason"],
        filler_criteria=data["filler_criteria"],
        target_key="",
        created_by=user.id,
        created_at=utcnow(),
    )
    seen: dict[str, int] = {}
    formats: set[str] = set()
    for index, raw in enumerate(members):
        evidence = _member_evidence(case, kind, index, raw)
        if evidence is not None:
            formats.add(evidence.content_type)
        person = _member_person(case, kind, index, raw)
        member = LineupMember(
            id=uuid.uuid4(),
            ordinal=index,
            is_target=raw["is_target"],
            person_id=person.id if person else None,
            evidence_id=evidence.id if evidence else None,
            description=raw["description"],
            keys=[],
        )
        member.keys = _member_keys(member, evidence)
        for key in member.keys:
            if key in seen:
                raise _invalid(
                    f"members.{index}",
                    f"The same member as members.{seen[key]}: describe each member so that "
                    "it can be told apart, and use each person or photo once.",
                )
            seen[key] = index
        if member.is_target:
            lineup.target_key = (
                person_key(person)
                if person is not None
                else next((k for k in member.keys if k.startswith("evidence:")), member.keys[0])
            )
        lineup.members.append(member)
    if len(formats) > 1:
        raise _invalid(
            "members",
            "The photos are of different formats (" + ", ".join(sorted(formats)) + "); "
            "use one format for all, so that no photo stands out.",
        )
    db.session.add(lineup)
    db.session.flush()
    sessions.append_event(session, LINEUP_CREATED, _lineup_payload(lineup), user=user)
    return lineup


def _lineup_payload(lineup: Lineup) -> dict[str, Any]:
    return {
        "lineup_id": str(lineup.id),
        "kind": lineup.kind,
        "suspicion_reason": lineup.suspicion_reason,
        "filler_criteria": lineup.filler_criteria,
        "members": [
            {
                "member_id": str(m.id),
                "is_target": m.is_target,
                "person_id": str(m.person_id) if m.person_id else None,
                "evidence_id": str(m.evidence_id) if m.evidence_id else None,
                "description": m.description,
            }
            for m in lineup.members
        ],
    }


def list_lineups(user: User, session: RemoteSession) -> list[Lineup]:
    sessions.require_presiding(session, user)
    return list(
        db.session.scalars(
            sa.select(Lineup)
            .where(Lineup.session_id == session.id)
            .order_by(Lineup.created_at, Lineup.id)
        )
    )


def _lineup(session: RemoteSession, lineup_id: uuid.UUID) -> Lineup:
    lineup = db.session.get(Lineup, lineup_id)
    if lineup is None or lineup.session_id != session.id:
        raise _invalid("lineup_id", "No such lineup in this session.")
    return lineup


# The presiding investigators' part of an identifier's procedure


def _busy_track(session: RemoteSession, but: SessionParticipant) -> Track | None:
    return next(
        (t for t in _tracks(session) if t.participant_id != but.id and t.stage in ACTIVE_STAGES),
        None,
    )


def record_interview(
    user: User, session: RemoteSession, participant_id: uuid.UUID, data: dict[str, Any]
) -> Track:
    """The pre-lineup interview: the identifier's description and viewing conditions,
    recorded first. It opens the identifier's procedure, and only one identifier's
    procedure is open at a time (CR art. 259: identifiers are handled individually)."""
    sessions.require_presiding(session, user)
    identifier = _identifier(session, participant_id)
    sessions.ensure_state(session, SessionState.IN_PROGRESS)
    if _track_of(identifier) is not None:
        raise _out_of_order("This identifier's pre-lineup interview is already recorded.")
    if _busy_track(session, identifier) is not None:
        raise Conflict(
            "Another identifier's procedure is in progress; identifiers are handled one at "
            "a time (CR art. 259).",
            slug="identifier-busy",
        )
    now = utcnow()
    track = Track(
        id=uuid.uuid4(),
        session_id=session.id,
        case_id=session.case_id,
        participant_id=identifier.id,
        identifier_key=identifier_key(identifier),
        stage=Stage.INTERVIEWED,
        interviewed_at=now,
        positions=[],
        responses=[],
        repeat_of=[],
        shown=0,
        refused_reuse=0,
    )
    db.session.add(track)
    db.session.flush()
    sessions.append_event(
        session,
        INTERVIEW,
        {k: v for k, v in data.items() if v is not None},
        user=user,
        subject=identifier,
    )
    return track


def _earlier_tracks(track: Track, *, any_case: bool = False) -> list[Track]:
    """This identifier's earlier procedures that were shown a lineup: in the case, or
    (``any_case``, for an identifier known by ID number) in any case."""
    query = sa.select(Track).where(
        Track.identifier_key == track.identifier_key,
        Track.lineup_id.is_not(None),
        Track.id != track.id,
    )
    if not (any_case and track.identifier_key.startswith("resident:")):
        query = query.where(Track.case_id == track.case_id)
    return list(db.session.scalars(query))


def _reused_fillers(lineup: Lineup, earlier: Iterable[Track]) -> list[dict[str, Any]]:
    """The new lineup's fillers this identifier has been shown before in the case."""
    shown: dict[str, uuid.UUID] = {}
    for track in earlier:
        previous = db.session.get_one(Lineup, track.lineup_id)
        for member in previous.members:
            for key in member.keys:
                shown.setdefault(key, track.session_id)
    reused = []
    for member in lineup.members:
        if member.is_target:
            continue
        grounds = [key.partition(":")[0] for key in member.keys if key in shown]
        if grounds:
            reused.append(
                {
                    "member_id": str(member.id),
                    "grounds": sorted(set(grounds)),
                    "earlier_session_id": str(shown[next(k for k in member.keys if k in shown)]),
                }
            )
    return reused


def assign_lineup(
    user: User, session: RemoteSession, participant_id: uuid.UUID, lineup_id: uuid.UUID
) -> Track:
    """Give the interviewed identifier a lineup in positions drawn for them alone.

    Refused (409, kept in the log and flagged) when a filler was already shown to
    this identifier in the case (AR art. 104); flagged when the identifier has
    already been shown a lineup with the same target (a repeat identification).
    """
    sessions.require_presiding(session, user)
    identifier = _identifier(session, participant_id)
    sessions.ensure_state(session, SessionState.IN_PROGRESS)
    track = _track_of(identifier)
    if track is None:
        raise _out_of_order("Record the pre-lineup interview before assigning a lineup.")
    if track.stage != Stage.INTERVIEWED:
        raise _out_of_order("This identifier already has a lineup.")
    lineup = _lineup(session, lineup_id)
    earlier = _earlier_tracks(track)
    reused = _reused_fillers(lineup, earlier)
    if reused:
        track.refused_reuse += 1
        sessions.append_event(
            session,
            REUSE_REFUSED,
            {"lineup_id": str(lineup.id), "reused": reused},
            user=user,
            subject=identifier,
        )
        basis = load_rules().reuse_basis
        raise FillersReused(
            f"{len(reused)} filler(s) of this lineup were already shown to this identifier "
            f"in this case; fillers must not be reused ({basis}).",
            law=basis.law,
            article=basis.article,
        )
    repeats = [
        t
        for t in _earlier_tracks(track, any_case=True)
        if db.session.get_one(Lineup, t.lineup_id).target_key == lineup.target_key
    ]
    positions = [str(m.id) for m in lineup.members]
    secrets.SystemRandom().shuffle(positions)
    track.lineup_id = lineup.id
    track.positions = positions
    track.presentation = presentation_of(session)
    track.repeat_of = [str(t.session_id) for t in repeats]
    track.stage = Stage.ASSIGNED
    db.session.flush()
    sessions.append_event(
        session,
        ASSIGNED,
        {
            "lineup_id": str(lineup.id),
            "presentation": track.presentation,
            "positions": [{"position": n, "member_id": m} for n, m in enumerate(positions, 1)],
            "repeat_identification": bool(repeats),
            "repeat_of_sessions": track.repeat_of,
        },
        user=user,
        subject=identifier,
    )
    return track


def identifier_overview(user: User, session: RemoteSession) -> list[dict[str, Any]]:
    """For the presiding investigators: each identifier's step and flags."""
    sessions.require_presiding(session, user)
    tracks = {t.participant_id: t for t in _tracks(session)}
    return [
        _overview_entry(session, number, participant, tracks.get(participant.id))
        for number, participant in enumerate(_identifiers(session), 1)
    ]


def _overview_entry(
    session: RemoteSession, number: int, participant: SessionParticipant, track: Track | None
) -> dict[str, Any]:
    return {
        "participant_id": participant.id,
        "label": _label(number),
        "name": participant.name,
        "step": step(session, track),
        "lineup_id": track.lineup_id if track else None,
        "repeat_identification": bool(track and track.repeat_of),
        "refused_reuse": track.refused_reuse if track else 0,
        "record_document_id": track.record_document_id if track else None,
    }


def _label(number: int) -> str:
    return f"辨认人{number}"


# The identifier's part (participant token)


def step(session: RemoteSession, track: Track | None) -> str:
    """What the identifier does next, as the witness client shows it."""
    if track is not None and track.stage in (Stage.DONE, Stage.STOPPED):
        return "record" if _awaits_party_signature(track) else "done"
    if session.state in (SessionState.COMPLETED, SessionState.ABORTED):
        return "done"
    if track is None or session.state != SessionState.IN_PROGRESS:
        return "waiting"
    return STEP_OF_STAGE.get(track.stage, "waiting")


def _awaits_party_signature(track: Track) -> bool:
    document = _record_document(track)
    return (
        document is not None
        and document.status == DocumentStatus.FINALIZED
        and all(s.role != SignerRole.PARTY for s in document.signatures)
    )


def _record_document(track: Track) -> Document | None:
    if track.record_document_id is None:
        return None
    return db.session.get(Document, track.record_document_id)


@dataclass
class Procedure:
    """An identifier's session and track, loaded for one participant request."""

    session: RemoteSession
    participant: SessionParticipant
    track: Track | None

    @property
    def lineup(self) -> Lineup | None:
        if self.track is None or self.track.lineup_id is None:
            return None
        return db.session.get_one(Lineup, self.track.lineup_id)

    def require(self, *stages: Stage) -> Track:
        """The track in one of ``stages`` of an identification in progress; 409 otherwise."""
        sessions.ensure_state(self.session, SessionState.IN_PROGRESS)
        track = self.track
        if track is None or track.stage not in stages:
            raise _out_of_order(_order_detail(track, stages))
        return track


def _order_detail(track: Track | None, wanted: tuple[Stage, ...]) -> str:
    if track is None or track.stage == Stage.INTERVIEWED:
        return "The identification has not started for you yet."
    if track.stage == Stage.ASSIGNED:
        return "Acknowledge the instructions first."
    if track.stage == Stage.CONFIDENCE:
        return "State how sure you are first."
    if track.stage == Stage.CHOICE and Stage.VIEWING in wanted:
        return "Every member has been shown; make your choice."
    if track.stage == Stage.VIEWING:
        return "Look at the members (and answer each one) before you choose."
    return "Your identification is complete."


def procedure(participant: SessionParticipant, *, for_update: bool = False) -> Procedure:
    """The identifier's own procedure: a token reaches its participant's track only."""
    session = sessions.participant_session(participant, for_update=for_update)
    return Procedure(session, participant, _track_of(participant))


def state(proc: Procedure) -> dict[str, Any]:
    track, lineup = proc.track, proc.lineup
    current = step(proc.session, track)
    view: dict[str, Any] = {
        "step": current,
        "presentation": (track.presentation if track and track.presentation else None)
        or presentation_of(proc.session),
        "lineup_kind": lineup.kind if lineup else None,
        "member_count": len(lineup.members) if lineup else 0,
        "instructions": None,
    }
    if lineup is not None and track is not None and track.presentation:
        view["instructions"] = load_rules().instructions(lineup.kind, track.presentation).as_dict()
    return view


def acknowledge_instructions(proc: Procedure) -> dict[str, Any]:
    track = proc.require(Stage.ASSIGNED)
    lineup = proc.lineup
    assert lineup is not None and track.presentation is not None
    text = load_rules().instructions(lineup.kind, track.presentation)
    track.stage = Stage.VIEWING
    db.session.flush()
    sessions.append_event(
        proc.session,
        INSTRUCTED,
        {"zh": text.zh, "en": text.en, "sha256": instructions_sha256(text)},
        participant=proc.participant,
        subject=proc.participant,
    )
    return state(proc)


def _member_views(lineup: Lineup, positions: Iterable[int]) -> list[dict[str, Any]]:
    photo = load_rules().kinds[lineup.kind].photo
    return [{"position": n, "has_image": photo, "label": str(n)} for n in positions]


def show_members(proc: Procedure) -> dict[str, Any]:
    """The members the identifier may see now: all of them (simultaneous), or the
    next unanswered one (sequential). The first showing is logged with its time."""
    track = proc.require(Stage.VIEWING, Stage.CHOICE)
    lineup = proc.lineup
    assert lineup is not None
    count = len(track.positions)
    if track.presentation == "simultaneous":
        if track.shown == 0:
            _mark_shown(proc, track, list(range(1, count + 1)))
            track.stage = Stage.CHOICE
            db.session.flush()
        return {"members": _member_views(lineup, range(1, count + 1)), "remaining": 0}
    answered = len(track.responses)
    if answered == count:
        return {"members": [], "remaining": 0}
    position = answered + 1
    if track.shown < position:
        _mark_shown(proc, track, [position])
    return {"members": _member_views(lineup, [position]), "remaining": count - answered}


def _mark_shown(proc: Procedure, track: Track, positions: list[int]) -> None:
    track.shown = positions[-1]
    track.shown_at = utcnow()
    sessions.append_event(
        proc.session,
        SHOWN,
        {"positions": positions},
        participant=proc.participant,
        subject=proc.participant,
    )


def _visible_positions(track: Track) -> set[int]:
    if track.presentation == "simultaneous":
        return set(range(1, track.shown + 1))
    current = len(track.responses) + 1
    return {current} if track.stage == Stage.VIEWING and track.shown == current else set()


@dataclass(frozen=True)
class MemberImage:
    content_type: str
    stream: ByteRange
    length: int


def member_image(proc: Procedure, position: int) -> MemberImage:
    """The photo at a position the identifier is being shown; the showing is a link
    in the photo's chain of custody."""
    track = proc.require(Stage.VIEWING, Stage.CHOICE)
    lineup = proc.lineup
    assert lineup is not None
    if not load_rules().kinds[lineup.kind].photo:
        raise NotFound("This lineup has no photos.")
    if position not in _visible_positions(track):
        raise NotFound("No member is shown at this position.")
    member = db.session.get_one(LineupMember, uuid.UUID(track.positions[position - 1]))
    evidence = db.session.get_one(Evidence, member.evidence_id)
    if evidence.status != EvidenceStatus.HELD:
        raise Problem("The photo has been disposed of.", status=410, slug="evidence-disposed")
    try:
        stream = get_store().open_range(evidence.sha256, 0, evidence.size)
    except StoreError as exc:
        raise Problem(
            "The stored photo is missing; the integrity sweep reports it.",
            status=500,
            slug="evidence-file-missing",
        ) from exc
    record_custody(
        evidence,
        CustodyEventType.VIEWED,
        db.session.get_one(User, proc.session.created_by),
        purpose="辨认：向辨认人出示 / shown to an identifier",
        details={"session_id": str(proc.session.id), "participant_id": str(proc.participant.id)},
    )
    return MemberImage(evidence.content_type, stream, evidence.size)


def _latency_ms(since: datetime | None, now: datetime) -> int | None:
    if since is None:
        return None
    return max(0, int((now - since).total_seconds() * 1000))


def respond(proc: Procedure, data: dict[str, Any]) -> dict[str, Any]:
    """Sequential mode: the answer to the member shown now; the next is shown only after."""
    track = proc.require(Stage.VIEWING, Stage.CHOICE)
    if track.presentation != "sequential":
        raise Conflict(
            "Members are answered one by one only in sequential presentation.",
            slug="presentation-mode",
        )
    if track.stage == Stage.CHOICE:
        raise _out_of_order("Every member has been answered; make your choice.")
    current = len(track.responses) + 1
    if track.shown < current:
        raise _out_of_order("The next member has not been shown yet.")
    if data["position"] != current:
        raise _out_of_order(f"Answer the member shown now (position {current}).")
    now = utcnow()
    latency = _latency_ms(track.shown_at, now)
    track.responses = [*track.responses, {"position": current, "answer": data["answer"]}]
    if len(track.responses) == len(track.positions):
        track.stage = Stage.CHOICE
        track.shown_at = now
    db.session.flush()
    sessions.append_event(
        proc.session,
        RESPONSE,
        {"position": current, "answer": data["answer"], "latency_ms": latency},
        participant=proc.participant,
        subject=proc.participant,
    )
    return state(proc)


def choose(proc: Procedure, data: dict[str, Any]) -> dict[str, Any]:
    """The identifier's choice; the confidence statement must follow at once."""
    track = proc.require(Stage.CHOICE)
    outcome, position = data["outcome"], data.get("position")
    if outcome == "selected":
        if position is None or not 1 <= position <= len(track.positions):
            raise _invalid("position", f"Name the position chosen, 1 to {len(track.positions)}.")
        yes = {r["position"] for r in track.responses if r["answer"] == "yes"}
        if track.presentation == "sequential" and position not in yes:
            raise _invalid("position", "Choose a member you answered “yes” to.")
    elif position is not None:
        raise _invalid("position", "Only a selection names a position.")
    now = utcnow()
    latency = _latency_ms(track.shown_at, now)
    track.choice = {"outcome": outcome, "position": position}
    track.chosen_at = now
    track.stage = Stage.CONFIDENCE
    db.session.flush()
    sessions.append_event(
        proc.session,
        CHOICE,
        {"outcome": outcome, "position": position, "latency_ms": latency},
        participant=proc.participant,
        subject=proc.participant,
    )
    return state(proc)


def state_confidence(proc: Procedure, data: dict[str, Any]) -> dict[str, Any]:
    """The confidence statement in the identifier's own words and on a 0–100 scale."""
    track = proc.require(Stage.CONFIDENCE)
    latency = _latency_ms(track.chosen_at, utcnow())
    track.stage = Stage.DONE
    db.session.flush()
    sessions.append_event(
        proc.session,
        CONFIDENCE,
        {"statement": data["statement"], "scale": data["scale"], "latency_ms": latency},
        participant=proc.participant,
        subject=proc.participant,
    )
    return state(proc)


def progress(session: RemoteSession) -> dict[str, Any]:
    """The administrator's view: each identifier's step, and nothing else."""
    tracks = {t.participant_id: t for t in _tracks(session)}
    return {
        "identifiers": [
            {"participant_id": p.id, "label": _label(n), "step": step(session, tracks.get(p.id))}
            for n, p in enumerate(_identifiers(session), 1)
        ]
    }


def user_progress(user: User, session: RemoteSession) -> dict[str, Any]:
    """Progress for the session's administrator (a user) or presiding investigators."""
    takes_part = sessions.presiding_of(session, user) is not None or any(
        p.user_id == user.id for p in _present(session, ParticipantRole.ADMINISTRATOR)
    )
    if not takes_part:
        raise Forbidden("Only the administrator and the presiding investigators follow this.")
    return progress(session)


# Session hooks


def start_check(session: RemoteSession) -> None:
    """An identification starts only with a valid presentation mode and an
    administrator who is not also a presiding investigator (double-blind)."""
    if presentation_of(session) not in PRESENTATIONS:
        raise Unprocessable(
            "settings.presentation must be simultaneous or sequential.",
            slug="identification-settings",
        )
    presiding = {p.user_id for p in sessions.participants(session, ParticipantRole.PRESIDING)}
    for administrator in sessions.participants(session, ParticipantRole.ADMINISTRATOR):
        if administrator.user_id is not None and administrator.user_id in presiding:
            raise Conflict(
                "The administrator must not be a presiding investigator: they must not know "
                "the suspect.",
                slug="administrator-not-blind",
            )


def complete_check(session: RemoteSession) -> None:
    """No identifier is left midway, one has finished, and a 见证人 attested or the
    whole session is recorded (CR art. 194)."""
    tracks = _tracks(session)
    midway = [t for t in tracks if t.stage in ACTIVE_STAGES and t.stage != Stage.INTERVIEWED]
    if midway:
        raise Conflict(
            "An identifier's procedure is not finished; finish it or abort the session.",
            slug="identification-unfinished",
        )
    if not any(t.stage == Stage.DONE for t in tracks):
        raise Conflict(
            "No identifier has completed the procedure; abort the session instead.",
            slug="identification-unfinished",
        )
    if not _witnesses(session) and not _full_recordings(session):
        raise Conflict(
            "Without a 见证人 the whole identification must be recorded: link a full "
            "recording first (CR art. 194).",
            slug="recording-required",
        )


def _witnesses(session: RemoteSession) -> list[SessionParticipant]:
    return _present(session, ParticipantRole.WITNESS)


def _full_recordings(session: RemoteSession) -> list[SessionRecording]:
    return [r for r in sessions.recordings(session) if r.full]


def on_end(session: RemoteSession, user: User) -> None:
    """Close every unfinished procedure in the log and record each identifier's
    rules-engine fact ``identification`` (with the reuse and repeat flags)."""
    case = _case(session)
    now = utcnow()
    spec_fact = kind_spec(SessionKind.IDENTIFICATION).fact
    interviews = {
        e.subject_participant_id: e.payload for e in sessions.events(session) if e.kind == INTERVIEW
    }
    for track in _tracks(session):
        identifier = db.session.get_one(SessionParticipant, track.participant_id)
        if track.stage in ACTIVE_STAGES:
            sessions.append_event(
                session,
                STOPPED,
                {"stage": str(track.stage), "session_state": str(session.state)},
                user=user,
                subject=identifier,
            )
            track.stage = Stage.STOPPED
        if track.lineup_id is None and not track.refused_reuse:
            continue
        lineup = db.session.get(Lineup, track.lineup_id) if track.lineup_id else None
        payload = {
            "kind": spec_fact,
            "subject": str(identifier.person_id) if identifier.person_id else "",
            "started_at": track.interviewed_at.astimezone(UTC).isoformat(),
            "ended_at": now.astimezone(UTC).isoformat(),
            "data": {
                "session_id": str(session.id),
                "participant_id": str(identifier.id),
                "remote": True,
                "lineup_kind": lineup.kind if lineup else None,
                "presentation": track.presentation,
                "completed": track.stage == Stage.DONE,
                "outcome": (track.choice or {}).get("outcome"),
                "officers": len(sessions.participants(session, ParticipantRole.PRESIDING)),
                "witness_present": bool(_witnesses(session)),
                "av_recorded": bool(_full_recordings(session)),
                "fillers_reused": track.refused_reuse > 0,
                "repeat_identification": bool(track.repeat_of),
                "prior_exposure": bool(interviews.get(identifier.id, {}).get("prior_exposure")),
            },
        }
        cases.append_event(case, "fact_recorded", user, payload=payload)
    db.session.flush()


def _register() -> None:
    sessions.register_kind(
        SessionKind.IDENTIFICATION,
        start_check=start_check,
        complete_check=complete_check,
        on_end=on_end,
    )
    sessions.BLIND_EVENT_KINDS.update(EVENT_KINDS)


_register()


# The record (辨认笔录)


def _time(value: datetime | None) -> str:
    """A moment to the millisecond, in China Standard Time, as the record prints it."""
    if value is None:
        return ""
    local = value.astimezone(CHINA_STANDARD_TIME)
    return local.strftime("%Y年%m月%d日%H时%M分%S秒") + f"{local.microsecond // 1000:03d}毫秒"


PRESENTATION_LABELS = {"simultaneous": "同时出示", "sequential": "逐一出示"}
OUTCOME_LABELS = {"selected": "指认", "not_present": "嫌疑对象不在其中", "dont_know": "不能确定"}
ANSWER_LABELS = {"yes": "是", "no": "不是"}


def generate_records(user: User, session: RemoteSession) -> tuple[list[Document], bool]:
    """One finalised record per identifier shown a lineup, written from the ended
    session's log with its final hash; a second call returns the same records."""
    sessions.require_presiding(session, user)
    sessions.ensure_state(session, SessionState.COMPLETED, SessionState.ABORTED)
    check = sessions.verify_log(session)
    if not check.ok or check.head != session.log_head:
        raise Conflict(
            "The session log does not verify; no record can be written from it.",
            slug="log-broken",
            first_bad_seq=check.first_bad_seq,
        )
    case = _case(session)
    tracks = [t for t in _tracks(session) if t.lineup_id is not None]
    if not tracks:
        raise Conflict("No identifier was shown a lineup; there is nothing to record.")
    events = sessions.events(session)
    records, created = [], False
    for track in sorted(tracks, key=lambda t: t.interviewed_at):
        document = _record_document(track)
        if document is None:
            document = _write_record(user, session, case, track, events)
            track.record_document_id, created = document.id, True
        records.append(document)
    if len(records) == 1:
        session.record_document_id = records[0].id
    db.session.flush()
    return records, created


def _write_record(
    user: User, session: RemoteSession, case: Case, track: Track, events: list[SessionEvent]
) -> Document:
    cases.ensure_open(case)
    template = load_catalogue().template(case.case_type, RECORD_KIND)
    assert template is not None
    content = record_content(session, case, track, events)
    now = utcnow()
    document = Document(
        id=uuid.uuid4(),
        case_id=case.id,
        kind=RECORD_KIND,
        template=template.id,
        person_id=None,
        title=content["title"],
        status=DocumentStatus.FINALIZED,
        person_is_minor=bool(_present(session, ParticipantRole.GUARDIAN)),
        needs_interpreter=bool(_present(session, ParticipantRole.INTERPRETER)),
        needs_witness=bool(_witnesses(session)),
        content=content,
        content_sha256=content_sha256(content),
        request_hash=cases.content_hash({"session_id": session.id.hex, "track": track.id.hex}),
        created_by=user.id,
        created_at=now,
        updated_at=now,
        finalized_at=now,
        finalized_by=user.id,
    )
    db.session.add(document)
    db.session.flush()
    payload = {"document_id": str(document.id), "kind": RECORD_KIND}
    cases.append_event(case, "document_created", user, payload=payload)
    cases.append_event(
        case,
        "document_finalized",
        user,
        payload={**payload, "content_sha256": document.content_sha256},
    )
    return document


def _present(session: RemoteSession, role: ParticipantRole) -> list[SessionParticipant]:
    return sessions.participants(session, role, active_only=True)


def _names(participants: Iterable[SessionParticipant]) -> str:
    return "、".join(p.name for p in participants) or "无"


def record_content(
    session: RemoteSession, case: Case, track: Track, events: list[SessionEvent]
) -> dict[str, Any]:
    """The record's content, every entry taken from the log events."""
    identifier = db.session.get_one(SessionParticipant, track.participant_id)
    own = [e for e in events if e.subject_participant_id == identifier.id]
    created = next(
        e
        for e in events
        if e.kind == LINEUP_CREATED and e.payload["lineup_id"] == str(track.lineup_id)
    )
    assigned = next(e for e in own if e.kind == ASSIGNED)
    members = {m["member_id"]: m for m in created.payload["members"]}
    positions = {p["position"]: members[p["member_id"]] for p in assigned.payload["positions"]}
    lineup_kind = load_rules().kinds[created.payload["kind"]]
    choice = next((e for e in own if e.kind == CHOICE), None)
    confidence = next((e for e in own if e.kind == CONFIDENCE), None)
    witnesses = _present(session, ParticipantRole.WITNESS)
    header = {
        "case_number": case.number,
        "unit_name": db.session.get_one(Unit, case.unit_id).name,
        "session_id": str(session.id),
        "started_at": _time(session.started_at),
        "ended_at": _time(session.ended_at),
        "sites": "；".join(f"{s.get('name', '')}" for s in session.sites or []),
        "presiding": _names(_present(session, ParticipantRole.PRESIDING)),
        "administrator": _names(_present(session, ParticipantRole.ADMINISTRATOR)),
        "identifier": identifier.name,
        "witness": _names(witnesses) if witnesses else "无（全程录像）",
        "lineup_kind": lineup_kind.label.zh,
        "presentation": PRESENTATION_LABELS[assigned.payload["presentation"]],
        "outcome": _outcome_text(own, positions, session),
        "log_head": session.log_head,
    }
    sections = {
        "basis": f"辨认理由：{created.payload['suspicion_reason']}\n"
        f"陪衬选择标准：{created.payload['filler_criteria']}\n"
        f"（{_time(created.at)}记入日志第{created.seq}号，早于向辨认人出示。）",
        "interview": _interview_text(own),
        "composition": _composition_text(positions, lineup_kind.minimum, assigned),
        "instructions": _instructions_text(own),
        "procedure": "\n".join(f"{_time(e.at)}（日志第{e.seq}号）：{_describe(e)}" for e in own),
        "result": _result_text(choice, confidence, positions),
        "participants": _participants_text(session, identifier),
        "recordings": _recordings_text(events),
        "flags": _flags_text(session, track, own),
        "log": f"本笔录由平台依据远程辨认会话日志生成。日志共{session.event_count}条，"
        f"逐条哈希链接；最终哈希值（SHA-256）：{session.log_head}。"
        f"会话结束签名：{session.closing_signature or '无'}。",
    }
    template = load_catalogue().template(case.case_type, RECORD_KIND)
    assert template is not None
    return {
        "kind": RECORD_KIND,
        "title": template.title,
        "header": {f.key: header.get(f.key, "") for f in template.header},
        "sections": [
            {"key": s.key, "heading": s.label.zh, "text": sections[s.key]}
            for s in template.sections
        ],
    }


def _member_text(member: dict[str, Any]) -> str:
    role = "嫌疑对象" if member["is_target"] else "陪衬"
    photo = f"，照片证据{member['evidence_id']}" if member["evidence_id"] else ""
    return f"{member['description']}（{role}{photo}）"


def _outcome_text(
    own: list[SessionEvent], positions: dict[int, dict[str, Any]], session: RemoteSession
) -> str:
    choice = next((e for e in own if e.kind == CHOICE), None)
    chosen = ""
    if choice is not None:
        outcome, position = choice.payload["outcome"], choice.payload["position"]
        chosen = f"辨认人表示{OUTCOME_LABELS[outcome]}"
        if outcome == "selected":
            hit = "嫌疑对象" if positions[position]["is_target"] else "陪衬"
            chosen = f"辨认人指认第{position}号，该号为{hit}"
    if any(e.kind == STOPPED for e in own):
        ended = "会话中止：" + (session.abort_reason or "") if session.abort_reason else "会话结束"
        unfinished = f"辨认未完成（{ended}）"
        return f"{unfinished}；中止前{chosen}，未陈述确信程度" if chosen else unfinished
    return chosen


def _interview_text(own: list[SessionEvent]) -> str:
    interview = next(e for e in own if e.kind == INTERVIEW)
    labels = {
        "description": "辨认人对辨认对象特征的陈述",
        "viewing_conditions": "当时的观察条件",
        "distance": "距离",
        "lighting": "光线",
        "duration": "持续时间",
        "prior_exposure": "事后是否见过嫌疑对象或其影像",
        "notes": "其他",
    }
    lines = [
        f"{label}：{interview.payload[key]}"
        for key, label in labels.items()
        if interview.payload.get(key)
    ]
    return "\n".join([*lines, f"（{_time(interview.at)}记入日志第{interview.seq}号。）"])


def _composition_text(
    positions: dict[int, dict[str, Any]], minimum: int, assigned: SessionEvent
) -> str:
    lines = [f"第{n}号：{_member_text(positions[n])}" for n in sorted(positions)]
    return "\n".join(
        [
            f"共{len(positions)}名（件），法定最少{minimum}名（件）。"
            "排列位置由服务器以密码学安全随机数为本辨认人单独生成"
            f"（{_time(assigned.at)}，日志第{assigned.seq}号）。",
            *lines,
        ]
    )


def _instructions_text(own: list[SessionEvent]) -> str:
    acknowledged = next((e for e in own if e.kind == INSTRUCTED), None)
    if acknowledged is None:
        return "辨认人未确认辨认前告知，未出示辨认对象。"
    return (
        f"{acknowledged.payload['zh']}\n辨认人于{_time(acknowledged.at)}确认已知悉上述告知"
        f"（日志第{acknowledged.seq}号，文本SHA-256：{acknowledged.payload['sha256']}）。"
    )


def _latency(payload: dict[str, Any]) -> str:
    latency = payload.get("latency_ms")
    return "" if latency is None else f"，反应时间{latency}毫秒"


def _describe(event: SessionEvent) -> str:
    p = event.payload
    if event.kind == INTERVIEW:
        return "辨认前询问记录完毕"
    if event.kind == REUSE_REFUSED:
        return (
            f"拟使用的辨认对象中{len(p['reused'])}名陪衬此前已向本辨认人出示，系统拒绝（AR第104条）"
        )
    if event.kind == ASSIGNED:
        return f"分配辨认对象组，出示方式：{PRESENTATION_LABELS[p['presentation']]}"
    if event.kind == INSTRUCTED:
        return "辨认人确认辨认前告知"
    if event.kind == SHOWN:
        return "出示第" + "、".join(str(n) for n in p["positions"]) + "号"
    if event.kind == RESPONSE:
        return f"辨认人对第{p['position']}号回答：{ANSWER_LABELS[p['answer']]}{_latency(p)}"
    if event.kind == CHOICE:
        chosen = f"第{p['position']}号" if p["position"] else ""
        return f"辨认人作出选择：{OUTCOME_LABELS[p['outcome']]}{chosen}{_latency(p)}"
    if event.kind == CONFIDENCE:
        return f"辨认人陈述确信程度（{p['scale']}/100）{_latency(p)}"
    if event.kind == STOPPED:
        return "会话结束时本辨认人的程序尚未完成"
    return event.kind


def _result_text(
    choice: SessionEvent | None,
    confidence: SessionEvent | None,
    positions: dict[int, dict[str, Any]],
) -> str:
    if choice is None:
        return "辨认人未作出选择。"
    p = choice.payload
    chosen = (
        f"第{p['position']}号：{_member_text(positions[p['position']])}" if p["position"] else ""
    )
    lines = [f"选择：{OUTCOME_LABELS[p['outcome']]}{chosen}（{_time(choice.at)}{_latency(p)}）"]
    if confidence is None:
        lines.append("辨认人未陈述确信程度。")
    else:
        c = confidence.payload
        lines += [
            f"确信程度（辨认人原话）：“{c['statement']}”",
            f"确信程度（0–100）：{c['scale']}（{_time(confidence.at)}{_latency(c)}）",
        ]
    return "\n".join(lines)


ROLE_LABELS = {
    ParticipantRole.PRESIDING: "主持辨认侦查人员",
    ParticipantRole.ADMINISTRATOR: "辨认组织人员",
    ParticipantRole.IDENTIFIER: "辨认人",
    ParticipantRole.INTERPRETER: "翻译人员",
    ParticipantRole.GUARDIAN: "监护人",
    ParticipantRole.WITNESS: "见证人",
}


def _participants_text(session: RemoteSession, identifier: SessionParticipant) -> str:
    """Everyone but the other identifiers (each identifier is handled alone)."""
    sites = {s.get("key"): s.get("name", "") for s in session.sites or []}
    lines = []
    for participant in sorted(
        (
            p
            for role in ROLE_LABELS
            if role != ParticipantRole.IDENTIFIER
            for p in sessions.participants(session, role)
        ),
        key=lambda p: (list(ROLE_LABELS).index(p.role), p.created_at),
    ):
        site = f"，{sites.get(participant.site, participant.site)}" if participant.site else ""
        revoked = "（已撤销）" if participant.revoked_at else ""
        lines.append(f"{ROLE_LABELS[participant.role]}：{participant.name}{site}{revoked}")
    site = f"，{sites.get(identifier.site, identifier.site)}" if identifier.site else ""
    lines.append(f"辨认人：{identifier.name}{site}")
    lines.append(
        "盲态：辨认组织人员不是主持辨认侦查人员，平台未向其提供辨认对象的组成、嫌疑对象、"
        "排列位置或辨认人的选择；辨认人独立进行辨认，看不到其他辨认人的程序和结果。"
    )
    return "\n".join(lines)


def _recordings_text(events: list[SessionEvent]) -> str:
    """The recordings linked in the log, with the hash each had when linked."""
    lines = []
    for event in (e for e in events if e.kind == "recording_linked"):
        linked = event.payload
        evidence = db.session.get_one(Evidence, uuid.UUID(linked["evidence_id"]))
        scope = "全程" if linked["full"] else "部分"
        site = f"，{linked['site']}" if linked.get("site") else ""
        lines.append(
            f"{scope}录像：证据{evidence.id}（{evidence.filename}，SHA-256 {linked['sha256']}）"
            f"{site}（日志第{event.seq}号）"
        )
    return "\n".join(lines) or "无"


def _flags_text(session: RemoteSession, track: Track, own: list[SessionEvent]) -> str:
    lines = []
    if track.repeat_of:
        lines.append(
            "重复辨认：本辨认人此前已对同一嫌疑对象进行过辨认（会话"
            + "、".join(track.repeat_of)
            + "）。"
        )
    exposure = next(e for e in own if e.kind == INTERVIEW).payload.get("prior_exposure")
    if exposure:
        lines.append(f"辨认前接触：辨认人陈述事后见过嫌疑对象或其影像（{exposure}）。")
    refused = [e for e in own if e.kind == REUSE_REFUSED]
    if refused:
        lines.append(f"陪衬重复使用：{len(refused)}次拟重复使用陪衬被系统拒绝（AR第104条）。")
    if session.state == SessionState.ABORTED:
        lines.append(f"会话中止：{session.abort_reason or ''}")
    if not _witnesses(session):
        lines.append("无见证人，依法全程录像（CR第194条）。")
    return "\n".join(lines) or "无"


def record_lines(document: Document) -> list[str]:
    """The record as the text lines the identifier reads before signing."""
    case_type, _, kind = document.template.partition(".")
    template = load_catalogue().template(case_type, kind)
    assert template is not None
    labels = {f.key: f.label.zh for f in template.header}
    content = document.content
    lines = [content["title"]]
    lines += [f"{labels.get(k, k)}：{v}" for k, v in content["header"].items()]
    for section in content["sections"]:
        lines.append(f"【{section['heading']}】")
        lines += section["text"].split("\n")
    return lines


def record_view(proc: Procedure) -> dict[str, Any]:
    document = _record_document(proc.track) if proc.track else None
    if document is None or document.status == DocumentStatus.DRAFT:
        return {"available": False, "document_id": None, "content_sha256": None, "lines": []}
    return {
        "available": True,
        "document_id": document.id,
        "content_sha256": document.content_sha256,
        "lines": record_lines(document),
    }


def sign_record(proc: Procedure, data: dict[str, Any]) -> DocumentSignature:
    """The identifier signs their record as the party, on a presiding investigator's
    enrolled tablet: the device's owner submits, as with any signature."""
    if proc.track is None or proc.track.record_document_id is None:
        raise _out_of_order("Your record has not been written yet.")
    device = db.session.scalar(sa.select(Device).where(Device.device_id == data["device_id"]))
    presiding = {p.user_id for p in _present(proc.session, ParticipantRole.PRESIDING)}
    if device is None or device.user_id not in presiding:
        raise Problem(
            "Sign on a tablet enrolled by a presiding investigator of this identification.",
            status=422,
            slug="device-not-enrolled",
        )
    owner = db.session.get_one(User, device.user_id)
    case = db.session.get_one(Case, proc.session.case_id, with_for_update=True)
    document = db.session.get_one(Document, proc.track.record_document_id, populate_existing=True)
    signature, _ = documents.add_signature(
        owner,
        case,
        document,
        {
            "id": None,
            "signer_role": SignerRole.PARTY,
            "signer_name": proc.participant.name,
            "signer_user_id": None,
            "signer_id_number": None,
            "strokes": data["strokes"],
            "image_png": data["image_png"],
            "fingerprint_png": data.get("fingerprint_png"),
            "signed_at": data["signed_at"],
            "content_sha256": data["content_sha256"],
            "device_id": data["device_id"],
            "device_signature": data["device_signature"],
        },
    )
    return signature


def records(user: User, session: RemoteSession) -> list[Document]:
    sessions.require_presiding(session, user)
    return [
        document
        for track in sorted(_tracks(session), key=lambda t: t.interviewed_at)
        if (document := _record_document(track)) is not None
    ]
