"""Writing audit rows: one for every API request, in the request's transaction.

Each row extends the hash chain. Appends are serialised so the chain never
forks: SQLite already admits one writer at a time (BEGIN IMMEDIATE); on
PostgreSQL a transaction-scoped advisory lock is taken just before the row is
added, at the end of the request, and released by its commit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import g, request

from backend.audit.models import AuditCheckpoint, AuditEntry
from backend.auth import tokens
from backend.common import utcnow
from backend.extensions import db


@dataclass
class AuditTarget:
    object_type: str | None = None
    object_id: str | None = None
    reason: str | None = None


REASON_WIDTH = 500
"""The audit row's reason column; a longer stated reason is kept in full by its domain."""


def target(object_type: str, object_id: uuid.UUID | str, reason: str | None = None) -> None:
    """Name the object the current request acted on (and why, where a reason is needed)."""
    kept = (
        reason
        if reason is None or len(reason) <= REASON_WIDTH
        else reason[: REASON_WIDTH - 1] + "…"
    )
    g.audit_target = AuditTarget(object_type, str(object_id), kept)


def _default_target() -> AuditTarget:
    for name, value in (request.view_args or {}).items():
        if name.endswith(("_id", "_pk")):
            return AuditTarget(name[:-3], str(value))
    return AuditTarget()


def outcome_for(status: int) -> str:
    if status < 400:
        return "success"
    if status in (401, 403, 404):
        return "denied"
    if status in (409, 412, 428):
        return "conflict"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "error"
    return "invalid"


def add_request_entry(status: int) -> AuditEntry:
    """Add the audit row for the current request to the session (not committed)."""
    user = g.get("user")
    session = g.get("auth_session")
    participant = g.get("participant")
    where = g.get("audit_target") or (
        AuditTarget("session", str(participant.session_id)) if participant else _default_target()
    )
    entry = AuditEntry(
        at=utcnow(),
        # A remote-session participant who is not a user acts under their participant id.
        actor_id=user.id if user else (participant.id if participant else None),
        actor_unit_id=user.unit_id if user else None,
        # Only a device id that passed validation; the raw header may be anything.
        device_id=(session.device_id if session else None) or g.get("device_id"),
        source_ip=request.remote_addr,
        method=request.method[:8],  # the column's width: any verb still leaves its row
        action=request.endpoint or "unrouted",
        object_type=where.object_type,
        object_id=where.object_id,
        outcome=outcome_for(status),
        status=status,
        request_id=g.request_id,
        reason=where.reason,
    )
    _chain(entry)
    db.session.add(entry)
    return entry


GENESIS = "0" * 64
_CHAIN_LOCK = 0x46434155  # any constant shared by every process: "FCAU"
CANONICAL_FIELDS = (
    "at",
    "actor_id",
    "actor_unit_id",
    "device_id",
    "source_ip",
    "method",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "status",
    "request_id",
    "reason",
)


def canonical_form(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash covers: its fields as sorted, compact JSON."""
    fields: dict[str, Any] = {}
    for name in CANONICAL_FIELDS:
        value = getattr(entry, name)
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        fields[name] = value
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical_form(entry)).hexdigest()


def _chain(entry: AuditEntry) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(_CHAIN_LOCK)))
    last = db.session.scalar(
        sa.select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
    )
    entry.prev_hash = last or GENESIS
    entry.entry_hash = entry_hash(entry.prev_hash, entry)


@dataclass(frozen=True)
class ChainReport:
    entries: int
    first_bad_id: int | None
    problem: str | None


def verify_chain(batch: int = 5000) -> ChainReport:
    """Walk the chain in order; name the first entry whose links do not hold."""
    expected_prev = GENESIS
    count = 0
    rows = db.session.scalars(
        sa.select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=batch)
    )
    for entry in rows:
        count += 1
        if entry.prev_hash != expected_prev:
            return ChainReport(count, entry.id, "does not follow the entry before it")
        if entry.entry_hash != entry_hash(entry.prev_hash, entry):
            return ChainReport(count, entry.id, "its content does not match its hash")
        expected_prev = entry.entry_hash
    return ChainReport(count, None, None)


def _checkpoint_message(entry_id: int, head: str) -> bytes:
    return f"fieldcase-audit-checkpoint:{entry_id}:{head}".encode()


def write_checkpoint() -> AuditCheckpoint | None:
    """Sign the chain's current head with the service key and keep the signature."""
    head = db.session.execute(
        sa.select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    if head is None:
        return None
    signature = tokens.sign(_checkpoint_message(head.id, head.entry_hash))
    checkpoint = AuditCheckpoint(
        entry_id=head.id,
        entry_hash=head.entry_hash,
        signature=base64.b64encode(signature).decode(),
    )
    db.session.add(checkpoint)
    db.session.flush()
    return checkpoint


def verify_checkpoints() -> list[int]:
    """Ids of checkpoints whose signature or pinned hash no longer holds."""
    bad = []
    for checkpoint in db.session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
        entry = db.session.get(AuditEntry, checkpoint.entry_id)
        message = _checkpoint_message(checkpoint.entry_id, checkpoint.entry_hash)
        try:
            signature = base64.b64decode(checkpoint.signature, validate=True)
        except binascii.Error:
            signature = b""
        signed = tokens.signature_valid(signature, message)
        if not signed or entry is None or entry.entry_hash != checkpoint.entry_hash:
            bad.append(checkpoint.id)
    return bad
