"""Evidence: finalising uploads, reading content, chain of custody, disposal, integrity sweeps."""

from __future__ import annotations

import logging
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import filetype
import sqlalchemy as sa
from flask import current_app, g
from werkzeug.http import parse_etags, parse_if_range_header, parse_range_header

from backend.cases import service as cases
from backend.cases.models import Case
from backend.common import utcnow
from backend.devices import service as devices
from backend.devices.models import Device
from backend.errors import Conflict, Forbidden, NotFound, Problem, Unprocessable
from backend.evidence.models import (
    AlertKind,
    CustodyEvent,
    CustodyEventType,
    DisposalRequest,
    Evidence,
    EvidenceAlert,
    EvidenceKind,
    EvidenceStatus,
)
from backend.evidence.store import (
    ByteRange,
    ContentMismatch,
    EvidenceStore,
    MissingContent,
    get_store,
)
from backend.extensions import db
from backend.jobs.service import periodic
from backend.org.models import User
from backend.org.service import visible_unit_ids
from backend.uploads import service as uploads
from backend.uploads.models import Upload
from shared.enums import ApprovalStatus, Decision, Role
from shared.evidence import EVIDENCE_PURPOSE, evidence_fields

log = logging.getLogger(__name__)

UNKNOWN_TYPE = "application/octet-stream"
SWEEP_BATCH = 200
AUDIO_CONTAINERS = frozenset({"video/mp4", "video/3gpp"})
"""Containers phones also write audio-only recordings in."""

ALERT_READER_ROLES = (Role.CASE_MANAGER, Role.LEADER, Role.ADMIN)


def case_evidence_bytes(case_id: uuid.UUID) -> int:
    """The sum of the sizes of the case's evidence files (for the per-case cap)."""
    total = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Evidence.size), 0)).where(
            Evidence.case_id == case_id
        )
    )
    return int(total or 0)


# Finalising an upload


def detect_content_type(path: Path) -> tuple[str, str | None]:
    """The media type and usual extension the file's first bytes show."""
    kind = filetype.guess(str(path))
    if kind is None:
        return UNKNOWN_TYPE, None
    return kind.mime, kind.extension


def kind_matches(kind: EvidenceKind, content_type: str) -> bool:
    family = content_type.partition("/")[0]
    if kind == EvidenceKind.PHOTO:
        return family == "image"
    if kind == EvidenceKind.AUDIO:
        return family == "audio" or content_type in AUDIO_CONTAINERS
    if kind == EvidenceKind.VIDEO:
        return family == "video"
    if kind == EvidenceKind.DOCUMENT:
        return family not in ("audio", "video")
    return True


def safe_filename(name: str | None, extension: str | None, fallback: str) -> str:
    """The client's file name without folders or control characters, with the
    extension of the detected type when one is known."""
    base = unicodedata.normalize("NFC", name or "").replace("\\", "/").rpartition("/")[2]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"*:<>?|').strip(" .")
    if extension:
        stem = base.rpartition(".")[0] if "." in base else base
        base = f"{stem or fallback}.{extension}"
    return (base or fallback)[-255:]


def _resent(user: User, case: Case, evidence_id: uuid.UUID | None, digest: str) -> Evidence | None:
    """The stored item when this is a resend of it; 409 when the id holds other content."""
    if evidence_id is None:
        return None
    stored = db.session.get(Evidence, evidence_id)
    if stored is None:
        return None
    if stored.case_id == case.id and stored.created_by == user.id and stored.content_hash == digest:
        return stored
    raise Conflict("Evidence with this id exists with other content.")


def finalise(user: User, case_id: uuid.UUID, data: dict[str, Any]) -> tuple[Evidence, bool]:
    """Turn a finished upload into an evidence item of the case (checklist E1, C2, I3).

    Nothing is kept when a check fails: the device signature, the hash, the
    per-case cap and the kind are checked before the file goes into the store.
    No transaction stays open while the file is copied into the store (on
    SQLite it would hold the database's write lock for the whole copy); the
    case and the upload are then locked again and the checks that may have
    changed meanwhile run again before the item is recorded.
    """
    if not user.has_role(Role.OFFICER):
        raise Forbidden("Only officers finalise evidence.")
    case = cases.get_case(user, case_id, for_update=True)
    fields = evidence_fields(case.id, data)
    digest = cases.content_hash(fields)
    resent = _resent(user, case, data["id"], digest)
    if resent is not None:
        return resent, False
    upload, _ = _acceptable_upload(user, case, data, fields)
    if upload.sha256 != data["sha256"]:
        raise Unprocessable(
            "The file's SHA-256 does not match the hash computed at capture; nothing was kept.",
            slug="hash-mismatch",
        )
    path = uploads.upload_path(upload)
    content_type, extension = detect_content_type(path)
    if not kind_matches(data["kind"], content_type):
        raise Unprocessable(
            f"The file's bytes are {content_type}, which is not {data['kind']} evidence.",
            slug="kind-mismatch",
        )
    db.session.rollback()
    try:
        newly_stored = get_store().put(data["sha256"], path)
    except ContentMismatch as exc:
        raise Unprocessable(
            "The uploaded file no longer matches its hash; nothing was kept.",
            slug="hash-mismatch",
        ) from exc
    except FileNotFoundError as exc:  # the upload expired and was purged meanwhile
        raise NotFound("No such upload.") from exc
    case = cases.get_case(user, case_id, for_update=True)
    resent = _resent(user, case, data["id"], digest)
    if resent is not None:  # a concurrent resend recorded it while the file was copied
        return resent, False
    upload, device = _acceptable_upload(user, case, data, fields)
    evidence_id = data["id"] or uuid.uuid4()
    evidence, created = cases.store_once(
        Evidence(
            id=evidence_id,
            case_id=case.id,
            kind=data["kind"],
            sha256=data["sha256"],
            size=upload.length,
            content_type=content_type,
            filename=safe_filename(upload.filename, extension, f"evidence-{evidence_id}"),
            upload_id=upload.id,
            captured_at=data["captured_time"],
            place=data["place"],
            latitude=data["latitude"],
            longitude=data["longitude"],
            description=data["description"],
            device_pk=device.id,
            device_id=data["device_id"],
            signed_fields=fields,
            device_signature=data["device_signature"],
            content_hash=digest,
            created_by=user.id,
        ),
        lambda stored: (
            stored.case_id == case.id
            and stored.created_by == user.id
            and stored.content_hash == digest
        ),
        "Evidence",
    )
    if not created:
        return evidence, False
    uploads.mark_consumed(upload)
    _record_receipt(user, evidence, upload, newly_stored=newly_stored)
    cases.append_event(
        case,
        "evidence_added",
        user,
        payload={
            "evidence_id": str(evidence.id),
            "kind": str(evidence.kind),
            "sha256": evidence.sha256,
            "size": evidence.size,
        },
    )
    return evidence, True


def _acceptable_upload(
    user: User, case: Case, data: dict[str, Any], fields: dict[str, Any]
) -> tuple[Upload, Device]:
    """The finished, unconsumed upload (locked), once the case is open, the
    device signature holds and the file fits the case's cap."""
    cases.ensure_open(case)
    upload = uploads.completed_upload(user, data["upload_id"], case.id)
    device = devices.verify_submission(
        user, data["device_id"], EVIDENCE_PURPOSE, fields, data["device_signature"]
    )
    limit = current_app.config["CASE_EVIDENCE_MAX_BYTES"]
    if case_evidence_bytes(case.id) + upload.length > limit:
        raise Problem(
            f"The case's evidence would exceed its limit of {limit} bytes.",
            status=413,
            slug="case-evidence-limit",
        )
    return upload, device


def _record_receipt(user: User, evidence: Evidence, upload: Upload, *, newly_stored: bool) -> None:
    """The first three links of the chain: collected, uploaded, verified."""
    record_custody(
        evidence,
        CustodyEventType.COLLECTED,
        user,
        at=evidence.captured_at,
        device_id=evidence.device_id,
        place=evidence.place,
        purpose="evidence collection",
        details={
            "latitude": evidence.latitude,
            "longitude": evidence.longitude,
            "description": evidence.description,
        },
    )
    record_custody(
        evidence,
        CustodyEventType.UPLOADED,
        user,
        at=upload.completed_at or utcnow(),
        device_id=evidence.device_id,
        purpose="transfer from the field device to the evidence store",
        details={
            "upload_id": str(upload.id),
            "size": evidence.size,
            "filename": evidence.filename,
            "upload_started_at": upload.created_at.isoformat(),
        },
    )
    record_custody(
        evidence,
        CustodyEventType.VERIFIED,
        user,
        device_id=evidence.device_id,
        purpose="integrity check on receipt",
        details={
            "sha256": evidence.sha256,
            "content_type": evidence.content_type,
            "device_signature": "valid",
            "store": current_app.config["EVIDENCE_STORE"],
            "stored": "new file" if newly_stored else "same content already stored",
        },
    )


# Reading


def evidence_query(user: User) -> sa.Select[tuple[Evidence]]:
    """Evidence of the cases in the user's units."""
    cases.require_case_reader(user)
    return (
        sa.select(Evidence)
        .join(Case, Case.id == Evidence.case_id)
        .where(Case.unit_id.in_(visible_unit_ids(user)))
    )


def get_evidence(user: User, evidence_id: uuid.UUID, *, for_update: bool = False) -> Evidence:
    query = evidence_query(user).where(Evidence.id == evidence_id)
    evidence = db.session.scalar(query.with_for_update(of=Evidence) if for_update else query)
    if evidence is None:
        raise NotFound("No such evidence.")
    return evidence


def list_evidence(case: Case) -> list[Evidence]:
    return list(
        db.session.scalars(
            sa.select(Evidence)
            .where(Evidence.case_id == case.id)
            .order_by(Evidence.created_at, Evidence.id)
        )
    )


@dataclass(frozen=True)
class Download:
    """What a content request is answered with: 200 (whole file), 206 (one
    range) or 304 (the client's copy is current, no bytes)."""

    status: int
    start: int
    length: int
    stream: ByteRange | None


def requested_span(
    size: int, sha256: str, range_header: str | None, if_range: str | None
) -> tuple[int, int, bool]:
    """(start, length, partial) of the one byte range asked for (RFC 9110).

    The whole file when there is no range, it is malformed, it asks for
    several ranges or ``If-Range`` names another version; 416 for a range
    outside the file.
    """
    whole = (0, size, False)
    if range_header is None:
        return whole
    if if_range is not None and parse_if_range_header(if_range).etag != sha256:
        return whole
    parsed = parse_range_header(range_header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return whole
    bounds = parsed.range_for_length(size)
    if bounds is None:
        raise Problem(
            f"The range is outside the file of {size} bytes.",
            status=416,
            slug="range-not-satisfiable",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return bounds[0], bounds[1] - bounds[0], True


def open_content(
    user: User,
    evidence: Evidence,
    *,
    range_header: str | None,
    if_range: str | None,
    if_none_match: str | None,
    view: bool,
    purpose: str,
    device_id: str | None,
) -> Download:
    """Open what the request asks for of the item's file and record the view
    or download in the chain of custody, whatever is sent (even nothing, 304).

    Disposed evidence is no longer handed out (410), though its original stays stored.
    """
    if evidence.status == EvidenceStatus.DISPOSED:
        raise Problem("The evidence has been disposed of.", status=410, slug="evidence-disposed")
    if parse_etags(if_none_match).contains_weak(evidence.sha256):
        download, served = Download(304, 0, 0, None), "none: the client's copy is current"
    else:
        start, length, partial = requested_span(
            evidence.size, evidence.sha256, range_header, if_range
        )
        whole = start == 0 and length == evidence.size
        served = "all" if whole else f"{start}-{start + length - 1}/{evidence.size}"
        try:
            stream = get_store().open_range(evidence.sha256, start, length)
        except MissingContent as exc:
            log.error("evidence %s: stored file %s is missing", evidence.id, evidence.sha256)
            raise Problem(
                "The stored file is missing; the integrity sweep reports it.",
                status=500,
                slug="evidence-file-missing",
            ) from exc
        download = Download(206 if partial else 200, start, length, stream)
    record_custody(
        evidence,
        CustodyEventType.VIEWED if view else CustodyEventType.DOWNLOADED,
        user,
        device_id=device_id,
        purpose=purpose,
        details={"bytes": served, "sha256": evidence.sha256},
    )
    return download


# Chain of custody


def record_custody(
    evidence: Evidence,
    event: CustodyEventType,
    actor: User,
    *,
    at: datetime | None = None,
    device_id: str | None = None,
    place: str | None = None,
    purpose: str | None = None,
    location: str | None = None,
    recipient: str | None = None,
    details: dict[str, Any] | None = None,
) -> CustodyEvent:
    """Append one link to the item's chain of custody (checklist E2)."""
    entry = CustodyEvent(
        evidence_id=evidence.id,
        event=event,
        at=at or utcnow(),
        actor_id=actor.id,
        device_id=device_id,
        place=place,
        purpose=purpose,
        location=location,
        recipient=recipient,
        request_id=g.get("request_id"),
        details=details or {},
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def list_custody(evidence: Evidence) -> list[CustodyEvent]:
    """The chain in the order its links were recorded."""
    return list(
        db.session.scalars(
            sa.select(CustodyEvent)
            .where(CustodyEvent.evidence_id == evidence.id)
            .order_by(CustodyEvent.id)
        )
    )


def _ensure_held(evidence: Evidence) -> None:
    if evidence.status == EvidenceStatus.DISPOSED:
        raise Conflict("The evidence has been disposed of.", slug="evidence-disposed")


NEEDS = {
    CustodyEventType.STORED: ("location", "Required when the item is stored."),
    CustodyEventType.TRANSFERRED: ("recipient", "Required when the item is handed over."),
    CustodyEventType.RETURNED: ("recipient", "Required when the item is returned."),
}


def add_custody(
    user: User, evidence: Evidence, data: dict[str, Any], device_id: str | None
) -> CustodyEvent:
    """Record a hand-over: exported, transferred (to a recipient), stored (at a
    physical location) or returned (to a recipient)."""
    if not user.has_role(Role.OFFICER, Role.CASE_MANAGER):
        raise Forbidden("Only officers and case managers record custody events.")
    event = CustodyEventType(data["event"])
    if event in NEEDS and not data[NEEDS[event][0]]:
        name, message = NEEDS[event]
        raise Unprocessable(message, errors={"json": {name: [message]}})
    _ensure_held(evidence)
    return record_custody(
        evidence,
        event,
        user,
        device_id=device_id,
        place=data["place"],
        purpose=data["purpose"],
        location=data["location"],
        recipient=data["recipient"],
    )


# Disposal, with a leader's approval


def pending_disposal(evidence: Evidence) -> DisposalRequest | None:
    return db.session.scalar(
        sa.select(DisposalRequest).where(
            DisposalRequest.evidence_id == evidence.id,
            DisposalRequest.status == ApprovalStatus.PENDING,
        )
    )


def request_disposal(user: User, evidence: Evidence, reason: str) -> DisposalRequest:
    """Ask a leader of the unit to approve disposing of the item."""
    if not user.has_role(Role.OFFICER):
        raise Forbidden("Only officers request disposal.")
    _ensure_held(evidence)
    if pending_disposal(evidence) is not None:
        raise Conflict("A disposal request is already pending.", slug="disposal-pending")
    request = DisposalRequest(evidence_id=evidence.id, reason=reason, requested_by=user.id)
    db.session.add(request)
    db.session.flush()
    cases.append_event(
        db.session.get_one(Case, evidence.case_id),
        "evidence_disposal_requested",
        user,
        comment=reason,
        payload={"evidence_id": str(evidence.id), "request_id": str(request.id)},
    )
    return request


def decide_disposal(
    user: User, evidence: Evidence, decision: Decision, comment: str | None
) -> DisposalRequest:
    """A leader approves (the item is disposed of) or returns the pending request.

    Only the record changes: the stored original is write-once and stays in the store.
    """
    if not user.has_role(Role.LEADER):
        raise Forbidden("Only leaders decide on disposal.")
    request = pending_disposal(evidence)
    if request is None:
        raise Conflict("No disposal request is pending.", slug="no-disposal-pending")
    if request.requested_by == user.id:
        raise Forbidden("You cannot decide on a disposal you requested.")
    if decision == Decision.RETURN and not (comment and comment.strip()):
        raise Unprocessable(
            "A returned request needs a comment.",
            errors={"json": {"comment": ["Required when returning."]}},
        )
    now = utcnow()
    approved = decision == Decision.APPROVE
    request.status = ApprovalStatus.APPROVED if approved else ApprovalStatus.RETURNED
    request.decided_by, request.decided_at, request.comment = user.id, now, comment
    case = db.session.get_one(Case, evidence.case_id)
    payload = {"evidence_id": str(evidence.id), "request_id": str(request.id)}
    if approved:
        evidence.status, evidence.disposed_at = EvidenceStatus.DISPOSED, now
        record_custody(
            evidence,
            CustodyEventType.DISPOSED,
            user,
            at=now,
            purpose=request.reason,
            details={
                "request_id": str(request.id),
                "requested_by": str(request.requested_by),
                "comment": comment,
                "stored_original": "kept (write-once)",
            },
        )
        cases.append_event(case, "evidence_disposed", user, comment=comment, payload=payload)
    else:
        cases.append_event(
            case, "evidence_disposal_returned", user, comment=comment, payload=payload
        )
    db.session.flush()
    return request


# Integrity alerts and the sweep (checklist E4)


def list_alerts(user: User, resolved: bool, limit: int) -> list[EvidenceAlert]:
    """Alerts about the evidence of the user's units, newest first."""
    if not user.has_role(*ALERT_READER_ROLES):
        raise Forbidden("Your role does not see integrity alerts.")
    return list(
        db.session.scalars(
            sa.select(EvidenceAlert)
            .join(Evidence, Evidence.id == EvidenceAlert.evidence_id)
            .join(Case, Case.id == Evidence.case_id)
            .where(
                Case.unit_id.in_(visible_unit_ids(user)),
                EvidenceAlert.resolved.is_(resolved),
            )
            .order_by(EvidenceAlert.found_at.desc(), EvidenceAlert.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Finding:
    sha256: str
    kind: AlertKind
    detail: str
    evidence_ids: tuple[uuid.UUID, ...]


@dataclass
class SweepReport:
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    new_alerts: int = 0
    resolved_alerts: int = 0
    unreferenced: int = 0

    def summary(self) -> str:
        return (
            f"checked {self.checked} stored files: {len(self.findings)} damaged or missing, "
            f"{self.new_alerts} new alerts, {self.resolved_alerts} alerts resolved, "
            f"{self.unreferenced} stored files not referenced by evidence"
        )


def check_file(store: EvidenceStore, sha256: str) -> tuple[AlertKind, str] | None:
    """Re-hash one stored file, streamed; what is wrong with it, if anything."""
    try:
        actual = store.rehash(sha256)
    except MissingContent:
        return AlertKind.MISSING, "the store holds no file under this hash"
    if actual != sha256:
        return AlertKind.CORRUPTED, f"the stored bytes now hash to {actual}"
    return None


def integrity_sweep() -> SweepReport:
    """Re-hash every stored file that evidence refers to and raise alerts.

    A sweep runs for as long as hashing the whole store takes, so it works in
    batches and commits after each: no transaction (on SQLite, no write lock)
    stays open while files are hashed. An open alert is not raised twice; an
    alert whose file checks out again is resolved.
    """
    store = get_store()
    report = SweepReport()
    open_alerts = _open_alert_hashes()
    after = ""
    while True:
        hashes = list(
            db.session.scalars(
                sa.select(Evidence.sha256)
                .where(Evidence.sha256 > after)
                .group_by(Evidence.sha256)
                .order_by(Evidence.sha256)
                .limit(SWEEP_BATCH)
            )
        )
        db.session.commit()
        if not hashes:
            break
        outcomes = {sha256: check_file(store, sha256) for sha256 in hashes}
        report.checked += len(hashes)
        for sha256, outcome in outcomes.items():
            if outcome is not None:
                report.findings.append(_raise_alerts(sha256, *outcome, report))
            if sha256 in open_alerts:
                report.resolved_alerts += _resolve_alerts(sha256, outcome)
        db.session.commit()
        after = hashes[-1]
    report.unreferenced = _count_unreferenced(store)
    return report


def _open_alert_hashes() -> set[str]:
    hashes = set(
        db.session.scalars(
            sa.select(Evidence.sha256)
            .join(EvidenceAlert, EvidenceAlert.evidence_id == Evidence.id)
            .where(EvidenceAlert.resolved.is_(False))
        )
    )
    db.session.commit()
    return hashes


def _evidence_ids(sha256: str) -> list[uuid.UUID]:
    return list(
        db.session.scalars(
            sa.select(Evidence.id).where(Evidence.sha256 == sha256).order_by(Evidence.id)
        )
    )


def _raise_alerts(sha256: str, kind: AlertKind, detail: str, report: SweepReport) -> Finding:
    ids = _evidence_ids(sha256)
    already = set(
        db.session.scalars(
            sa.select(EvidenceAlert.evidence_id).where(
                EvidenceAlert.evidence_id.in_(ids),
                EvidenceAlert.kind == kind,
                EvidenceAlert.resolved.is_(False),
            )
        )
    )
    for evidence_id in ids:
        log.error("evidence %s: stored file %s is %s: %s", evidence_id, sha256, kind, detail)
        if evidence_id not in already:
            db.session.add(EvidenceAlert(evidence_id=evidence_id, kind=kind, detail=detail))
            report.new_alerts += 1
    db.session.flush()
    return Finding(sha256, kind, detail, tuple(ids))


def _resolve_alerts(sha256: str, outcome: tuple[AlertKind, str] | None) -> int:
    """Resolve the open alerts about ``sha256`` that no longer describe it."""
    query = sa.update(EvidenceAlert).where(
        EvidenceAlert.evidence_id.in_(sa.select(Evidence.id).where(Evidence.sha256 == sha256)),
        EvidenceAlert.resolved.is_(False),
    )
    if outcome is not None:
        query = query.where(EvidenceAlert.kind != outcome[0])
    result = db.session.execute(
        query.values(resolved=True, resolved_at=utcnow()).execution_options(
            synchronize_session=False
        )
    )
    return result.rowcount


def _count_unreferenced(store: EvidenceStore) -> int:
    """Stored files no evidence refers to: left by a finalisation whose
    transaction failed after the file was stored (a resend reuses them)."""
    count, batch = 0, []
    for sha256 in store.hashes():
        batch.append(sha256)
        if len(batch) == SWEEP_BATCH:
            count += _unreferenced_in(batch)
            batch = []
    count += _unreferenced_in(batch) if batch else 0
    return count


def _unreferenced_in(hashes: list[str]) -> int:
    known = set(db.session.scalars(sa.select(Evidence.sha256).where(Evidence.sha256.in_(hashes))))
    db.session.commit()
    return len(set(hashes) - known)


@periodic("evidence.integrity_sweep", every=timedelta(days=1))
def integrity_sweep_job() -> str:
    return integrity_sweep().summary()
