"""The outbox: everything the officer saved that the server has not yet confirmed.

``enqueue`` commits the item to the local store before it returns, with the
client-generated ids its records need (incident, case, person, evidence,
document, signature), so a resend creates nothing new; the item's
``idempotency_key`` (its id, until the step is redone) makes a resent request
replay the server's first answer. Items leave the ``waiting`` state only
through the sync worker, and are never deleted silently: a failed or
conflicting item stays until the officer retries, redoes or discards it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from mobile.services.store import LocalStore

ItemState = Literal["waiting", "sending", "uploading", "failed", "conflict", "done"]
STATES: tuple[str, ...] = get_args(ItemState)
SETTLED_BY_USER = frozenset({"failed", "conflict"})
IN_FLIGHT = frozenset({"sending", "uploading"})
HASH_BLOCK = 1024 * 1024


class OutboxError(ValueError):
    """The item does not exist or is not in a state that allows this."""


@dataclass(frozen=True)
class OutboxItem:
    id: str
    kind: str
    title: str
    payload: dict[str, Any]
    files: list[str]
    state: ItemState
    attempts: int
    error: str | None
    server_state: dict[str, Any] | None
    progress: float
    upload_url: str | None
    created_at: str
    updated_at: str
    depends_on: str | None
    idempotency_key: str

    @property
    def is_open(self) -> bool:
        """Not yet confirmed by the server."""
        return self.state != "done"


def file_sha256(path: str | Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with Path(path).open("rb") as stream:
        while block := stream.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _new_id() -> str:
    return str(uuid.uuid4())


def _with_ids(payload: dict[str, Any], *names: str) -> dict[str, Any]:
    return {**payload, **{name: payload.get(name) or _new_id() for name in names}}


def _prepare_incident(payload: dict[str, Any], files: list[str]) -> dict[str, Any]:
    prepared = _with_ids(payload, "incident_id")
    if prepared.get("accept") is not None:
        prepared["accept"] = _with_ids(prepared["accept"], "case_id")
    return prepared


def _prepare_evidence(payload: dict[str, Any], files: list[str]) -> dict[str, Any]:
    if len(files) != 1:
        raise OutboxError("An evidence item carries exactly one file.")
    prepared = _with_ids(payload, "evidence_id")
    if not prepared.get("sha256"):
        prepared["sha256"], prepared["size"] = file_sha256(files[0])
    return prepared


def _prepare_signature(payload: dict[str, Any], files: list[str]) -> dict[str, Any]:
    if len(files) > 1:
        raise OutboxError("A signature carries at most one file: the fingerprint photo.")
    return _with_ids(payload, "signature_id")


Prepare = Callable[[dict[str, Any], list[str]], dict[str, Any]]

PREPARE: dict[str, Prepare] = {
    "incident": _prepare_incident,
    "person": lambda payload, files: _with_ids(payload, "person_id"),
    "transition": lambda payload, files: dict(payload),
    "decision": lambda payload, files: dict(payload),
    "evidence": _prepare_evidence,
    "document": lambda payload, files: _with_ids(payload, "document_id"),
    "transcript": lambda payload, files: _with_ids(payload, "document_id"),
    "signature": _prepare_signature,
    "acknowledgement": lambda payload, files: dict(payload),
}
"""Per kind: the payload as stored, with the client-generated ids its records need."""

ID_FIELDS = ("incident_id", "case_id", "person_id", "evidence_id", "document_id", "signature_id")


def now_text() -> str:
    return datetime.now(UTC).isoformat()


def _item(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        kind=row["kind"],
        title=row["title"],
        payload=json.loads(row["payload"]),
        files=json.loads(row["files"]),
        state=row["state"],
        attempts=row["attempts"],
        error=row["error"],
        server_state=json.loads(row["server_state"]) if row["server_state"] else None,
        progress=row["progress"],
        upload_url=row["upload_url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        depends_on=row["depends_on"],
        idempotency_key=row["idempotency_key"],
    )


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class Outbox:
    """The outbox in ``store``. ``files_dir``: the app's own folder of captured files;
    a file in it is deleted once its item is done or discarded."""

    def __init__(self, store: LocalStore, files_dir: Path | None = None) -> None:
        self.store = store
        self.files_dir = Path(files_dir) if files_dir is not None else None

    # What the app calls

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        title: str,
        files: Iterable[str] = (),
        depends_on: str | None = None,
    ) -> OutboxItem:
        """Save a new item durably (committed before this returns) and return it."""
        if kind not in PREPARE:
            raise OutboxError(f"Unknown outbox item kind {kind!r}.")
        paths = [str(path) for path in files]
        prepared = PREPARE[kind](dict(payload), paths)
        item_id, now = _new_id(), now_text()
        with self.store.transaction() as conn:
            if depends_on is not None and not self._exists(conn, depends_on):
                raise OutboxError(f"No outbox item {depends_on}.")
            row = (item_id, kind, title, _dump(prepared), _dump(paths), item_id, now, now)
            conn.execute(
                "INSERT INTO outbox (id, kind, title, payload, files, state, idempotency_key, "
                "created_at, updated_at, depends_on) VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?, ?, ?)",
                (*row, depends_on),
            )
        return self._require(item_id)

    def all(self) -> list[OutboxItem]:
        return [_item(row) for row in self.store.query("SELECT * FROM outbox ORDER BY seq")]

    def waiting(self) -> list[OutboxItem]:
        rows = self.store.query("SELECT * FROM outbox WHERE state = 'waiting' ORDER BY seq")
        return [_item(row) for row in rows]

    def get(self, item_id: str) -> OutboxItem | None:
        rows = self.store.query("SELECT * FROM outbox WHERE id = ?", (item_id,))
        return _item(rows[0]) if rows else None

    def retry(self, item_id: str) -> OutboxItem:
        """Send a failed or conflicting item again, as it is."""
        self._change(item_id, SETTLED_BY_USER, state="waiting", error=None, server_state=None)
        return self._require(item_id)

    def redo(self, item_id: str, payload: dict[str, Any]) -> OutboxItem:
        """Send a failed or conflicting item again with a new ``payload`` (e.g. a step
        redone with the case's current ETag). The client-generated ids stay; the
        request gets a new Idempotency-Key, as it is another request."""
        item = self._require(item_id)
        kept = {name: item.payload[name] for name in ID_FIELDS if name in item.payload}
        prepared = PREPARE[item.kind]({**payload, **kept}, item.files)
        self._change(
            item_id,
            SETTLED_BY_USER,
            state="waiting",
            error=None,
            server_state=None,
            payload=_dump(prepared),
            idempotency_key=_new_id(),
        )
        return self._require(item_id)

    def replace_waiting(self, item_id: str, payload: dict[str, Any]) -> OutboxItem:
        """Change what a waiting item will send (a transcript edited again before it
        left the device); its ids stay."""
        item = self._require(item_id)
        kept = {name: item.payload[name] for name in ID_FIELDS if name in item.payload}
        prepared = PREPARE[item.kind]({**payload, **kept}, item.files)
        self._change(item_id, frozenset({"waiting"}), payload=_dump(prepared))
        return self._require(item_id)

    def discard(self, item_id: str) -> None:
        """Give up a failed or conflicting item; the items that depend on it fail."""
        item = self._require(item_id)
        if item.state not in SETTLED_BY_USER:
            raise OutboxError("Only a failed or conflicting item can be discarded.")
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
            conn.execute(
                "UPDATE outbox SET state = 'failed', error = ?, updated_at = ?, depends_on = NULL "
                "WHERE depends_on = ? AND state != 'done'",
                (f"Depends on a discarded item: {item.title}", now_text(), item_id),
            )
        self._delete_own_files(item)

    def discard_undelivered(self) -> int:
        """Delete every item not yet delivered (signing out without sending them)."""
        items = [item for item in self.all() if item.is_open]
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM outbox WHERE state != 'done'")
        for item in items:
            self._delete_own_files(item)
        return len(items)

    def counts(self) -> dict[str, int]:
        rows = self.store.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        found = {row["state"]: row["n"] for row in rows}
        return {state: found.get(state, 0) for state in STATES}

    # What the sync worker calls

    def recover(self) -> None:
        """After a restart: items caught mid-send wait again (their upload URL stays)."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'waiting' WHERE state IN ('sending', 'uploading')"
            )

    def next_ready(self, skip: Iterable[str] = ()) -> OutboxItem | None:
        """The oldest waiting item whose dependency is done, except those in ``skip``."""
        skipped = set(skip)
        rows = self.store.query(
            "SELECT o.* FROM outbox o LEFT JOIN outbox d ON d.id = o.depends_on "
            "WHERE o.state = 'waiting' AND (o.depends_on IS NULL OR d.state = 'done') "
            "ORDER BY o.seq"
        )
        for row in rows:
            if row["id"] not in skipped:
                return _item(row)
        return None

    def mark(
        self,
        item_id: str,
        state: ItemState,
        *,
        error: str | None = None,
        server_state: dict[str, Any] | None = None,
        count_attempt: bool = False,
    ) -> OutboxItem:
        fields: dict[str, Any] = {"state": state, "error": error}
        if server_state is not None or state in ("waiting", "sending", "uploading", "done"):
            fields["server_state"] = _dump(server_state) if server_state is not None else None
        if state == "done":
            fields["progress"] = 1.0
        self._change(item_id, None, count_attempt=count_attempt, **fields)
        item = self._require(item_id)
        if state == "done":
            self._delete_own_files(item)
        return item

    def set_upload_url(self, item_id: str, url: str | None) -> None:
        """Keep the upload's URL at once, so that a restart resumes it."""
        self._change(item_id, None, upload_url=url)

    def set_progress(self, item_id: str, progress: float) -> None:
        self._change(item_id, None, progress=max(0.0, min(1.0, progress)))

    def set_idempotency_key(self, item_id: str, key: str) -> None:
        self._change(item_id, None, idempotency_key=key)

    # Internals

    @staticmethod
    def _exists(conn: sqlite3.Connection, item_id: str) -> bool:
        return conn.execute("SELECT 1 FROM outbox WHERE id = ?", (item_id,)).fetchone() is not None

    def _require(self, item_id: str) -> OutboxItem:
        item = self.get(item_id)
        if item is None:
            raise OutboxError(f"No outbox item {item_id}.")
        return item

    def _change(
        self,
        item_id: str,
        allowed: frozenset[str] | None,
        *,
        count_attempt: bool = False,
        **fields: Any,
    ) -> None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        attempts = ", attempts = attempts + 1" if count_attempt else ""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT state FROM outbox WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise OutboxError(f"No outbox item {item_id}.")
            if allowed is not None and row["state"] not in allowed:
                needed = ", ".join(sorted(allowed))
                raise OutboxError(f"The item is {row['state']}; this needs one of: {needed}.")
            conn.execute(
                f"UPDATE outbox SET {assignments}{attempts}, updated_at = ? WHERE id = ?",
                (*fields.values(), now_text(), item_id),
            )

    def _delete_own_files(self, item: OutboxItem) -> None:
        if self.files_dir is None:
            return
        own = self.files_dir.resolve()
        for name in item.files:
            path = Path(name).resolve()
            if path.is_relative_to(own):
                path.unlink(missing_ok=True)
