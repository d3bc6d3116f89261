"""Idempotency-Key handling (IETF draft): replay, mismatch and in-flight detection.

A key is scoped to the user, the method and the path. It is claimed in a
transaction of its own before the request runs, so a concurrent duplicate sees
it; the response is stored in the request's own transaction when it succeeds,
and the claim is dropped when it fails, so the client may try again.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, current_app
from sqlalchemy.exc import IntegrityError

from backend.common import utcnow
from backend.errors import Conflict, Problem, Unprocessable
from backend.extensions import db
from backend.idempotency.models import IdempotencyRecord

F = TypeVar("F", bound=Callable[..., Any])

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")


def exempt(view: F) -> F:
    """Mark a POST that changes no case data, whose answer must not be stored.

    Revealing identity data is one: its answer would otherwise sit in the
    idempotency table for weeks.
    """
    view.idempotency_exempt = True  # type: ignore[attr-defined]
    return view


def applies_to(view: Any) -> bool:
    return not getattr(view, "idempotency_exempt", False)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def _find(user_id: uuid.UUID, method: str, path: str, key: str) -> IdempotencyRecord | None:
    return db.session.scalar(
        sa.select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.method == method,
            IdempotencyRecord.path == path,
            IdempotencyRecord.key == key,
        )
    )


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was used with a different request.", slug="idempotency-key-reuse"
        )
    if not record.completed:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed.",
            slug="idempotency-in-flight",
        )
    response = Response(record.response_body, status=record.response_status)
    for name, value in record.response_headers.items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _abandoned(record: IdempotencyRecord, now: datetime) -> bool:
    """An unfinished claim older than any request can run: its process died before
    committing (the work and the stored answer commit together), so nothing was done
    and a resend may take the key over."""
    return (
        not record.completed
        and record.created_at <= now - current_app.config["IDEMPOTENCY_ABANDONED_AFTER"]
    )


def claim(
    user_id: uuid.UUID, method: str, path: str, key: str, body: bytes
) -> tuple[uuid.UUID | None, Response | None]:
    """Claim ``key`` for this request, or return the stored response to replay."""
    if not KEY_PATTERN.match(key):
        raise Problem("Idempotency-Key must be 1 to 255 visible ASCII characters.")
    fingerprint = request_fingerprint(method, path, body)
    now = utcnow()
    existing = _find(user_id, method, path, key)
    if existing is not None and (existing.expires_at <= now or _abandoned(existing, now)):
        db.session.delete(existing)
        db.session.flush()
        existing = None
    if existing is not None:
        return None, _replay(existing, fingerprint)
    record = IdempotencyRecord(
        user_id=user_id,
        method=method,
        path=path,
        key=key,
        request_hash=fingerprint,
        expires_at=now + current_app.config["IDEMPOTENCY_TTL"],
    )
    db.session.add(record)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = _find(user_id, method, path, key)
        if existing is None:
            raise
        return None, _replay(existing, fingerprint)
    return record.id, None


def store(record_id: uuid.UUID, response: Response) -> None:
    record = db.session.get(IdempotencyRecord, record_id)
    if record is None:
        return
    record.completed = True
    record.response_status = response.status_code
    record.response_body = response.get_data()
    record.response_headers = {
        name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
    }


def release(record_id: uuid.UUID) -> None:
    db.session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


def purge_expired() -> int:
    return db.session.execute(
        sa.delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
    ).rowcount
