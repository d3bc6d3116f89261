"""The device's local store: one SQLite file in WAL mode for settings, the cache of
server data, drafts and the outbox.

Every write is committed with ``synchronous=FULL`` before the call returns, so a
record the UI reports as saved survives the app being killed or the battery
dying. One connection serves the UI thread and the sync worker, guarded by a
lock; ``transaction()`` groups several statements into one atomic commit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS drafts (
    key TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    payload TEXT NOT NULL,
    files TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    server_state TEXT,
    progress REAL NOT NULL DEFAULT 0,
    upload_url TEXT,
    idempotency_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    depends_on TEXT
);
"""

CASES_LIST = "cases"
CASE_DETAIL = "case"
APPROVALS = "approvals"
TEMPLATES = "templates"
WARNINGS = "warnings"
FEED = "feed"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class LocalStore:
    """The SQLite store at ``path`` (created with its folder when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def pragma(self, name: str) -> Any:
        """The value of an SQLite pragma (``journal_mode``, ``synchronous``)."""
        with self._lock:
            return self._conn.execute(f"PRAGMA {name}").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one committed transaction, held under the store's lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # Settings

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0]["value"] if rows else default

    def set_setting(self, key: str, value: str | None) -> None:
        """Keep ``value`` under ``key``; ``None`` removes the setting."""
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # Cache of server data

    def _put(self, kind: str, key: str, data: Any) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO cache (kind, key, data) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data",
                (kind, key, _dump(data)),
            )

    def _get(self, kind: str, key: str) -> Any:
        rows = self.query("SELECT data FROM cache WHERE kind = ? AND key = ?", (kind, key))
        return json.loads(rows[0]["data"]) if rows else None

    def cache_cases(self, cases: list[dict[str, Any]]) -> None:
        self._put(CASES_LIST, "", cases)

    def cached_cases(self) -> list[dict[str, Any]]:
        return self._get(CASES_LIST, "") or []

    def cache_case(self, case_id: str, detail: dict[str, Any]) -> None:
        """Keep a case as the sync worker fetched it: ``case``, ``etag``, ``events``,
        ``actions``, ``persons``, ``documents`` and ``evidence``."""
        self._put(CASE_DETAIL, str(case_id), detail)

    def cached_case(self, case_id: str) -> dict[str, Any] | None:
        return self._get(CASE_DETAIL, str(case_id))

    def cached_case_ids(self) -> list[str]:
        rows = self.query("SELECT key FROM cache WHERE kind = ?", (CASE_DETAIL,))
        return [row["key"] for row in rows]

    def forget_case(self, case_id: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "DELETE FROM cache WHERE kind = ? AND key = ?", (CASE_DETAIL, str(case_id))
            )

    def cache_approvals(self, approvals: list[dict[str, Any]]) -> None:
        self._put(APPROVALS, "", approvals)

    def cached_approvals(self) -> list[dict[str, Any]]:
        return self._get(APPROVALS, "") or []

    def cache_templates(self, catalogue: dict[str, Any]) -> None:
        """Keep the document catalogue (kinds, templates, question banks)."""
        self._put(TEMPLATES, "", catalogue)

    def cached_templates(self) -> dict[str, Any] | None:
        return self._get(TEMPLATES, "")

    def cache_warnings(
        self, user_id: str, warnings: list[dict[str, Any]], cursor: str | None
    ) -> None:
        """Keep a user's unresolved warnings (open or acknowledged) with the feed cursor
        they are current to, in one commit."""
        rows = [(WARNINGS, user_id, _dump(warnings))]
        if cursor is not None:
            rows.append((FEED, user_id, _dump(cursor)))
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO cache (kind, key, data) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data",
                rows,
            )

    def cached_warnings(self, user_id: str) -> list[dict[str, Any]]:
        return self._get(WARNINGS, user_id) or []

    def feed_cursor(self, user_id: str) -> str | None:
        """Where the user's next poll of the feed starts; ``None``: from the start."""
        return self._get(FEED, user_id)

    # Drafts (forms being filled in, not yet saved to the outbox)

    def save_draft(self, key: str, data: dict[str, Any], now: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO drafts (key, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data, "
                "updated_at = excluded.updated_at",
                (key, _dump(data), now),
            )

    def draft(self, key: str) -> dict[str, Any] | None:
        rows = self.query("SELECT data FROM drafts WHERE key = ?", (key,))
        return json.loads(rows[0]["data"]) if rows else None

    def delete_draft(self, key: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM drafts WHERE key = ?", (key,))

    def wipe_case_data(self) -> None:
        """Sign-out: delete cached case data, drafts and the items already delivered.

        The device key and settings stay; items not yet delivered are the
        caller's decision (``Outbox.discard_undelivered``).
        """
        with self.transaction() as conn:
            conn.execute("DELETE FROM cache")
            conn.execute("DELETE FROM drafts")
            conn.execute("DELETE FROM outbox WHERE state = 'done'")
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
