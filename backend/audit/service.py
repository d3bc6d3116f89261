"""Writing audit rows: one for every API request, in the request's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import g, request

from backend.audit.models import AuditEntry
from backend.extensions import db


@dataclass
class AuditTarget:
    object_type: str | None = None
    object_id: str | None = None
    reason: str | None = None


def target(object_type: str, object_id: uuid.UUID | str, reason: str | None = None) -> None:
    """Name the object the current request acted on (and why, where a reason is needed)."""
    g.audit_target = AuditTarget(object_type, str(object_id), reason)


def _default_target() -> AuditTarget:
    for name, value in (request.view_args or {}).items():
        if name.endswith("_id"):
            return AuditTarget(name.removesuffix("_id"), str(value))
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
    where = g.get("audit_target") or _default_target()
    entry = AuditEntry(
        actor_id=user.id if user else None,
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
    db.session.add(entry)
    return entry
