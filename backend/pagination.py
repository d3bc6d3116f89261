"""Opaque keyset cursors: base64 of the sort key of the last item returned."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from backend.errors import Problem
from backend.extensions import db


def encode_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), item_id.hex]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, item = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment.astimezone(UTC), uuid.UUID(hex=item)
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError) as exc:
        raise Problem("The cursor is not valid.", slug="invalid-cursor") from exc


def page(items: list[Any], limit: int) -> dict[str, Any]:
    """Cut a list fetched with ``limit + 1`` rows into a page and its next cursor."""
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if more else None
    return {"items": items, "next_cursor": next_cursor}


def keyset_page(query: sa.Select, model: Any, cursor: str | None, limit: int) -> dict[str, Any]:
    """Newest first, by ``(created_at, id)``; the cursor names the last item seen."""
    if cursor:
        created_at, item_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(model.created_at, model.id) < (created_at, item_id))
    query = query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    return page(list(db.session.scalars(query)), limit)
