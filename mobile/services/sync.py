"""The sync worker: the one thread of the app that talks to the network.

It signs in and out, delivers the outbox in order and refreshes the cache of
server data. Results go to the app through ``on_event`` (called on the worker
thread; the app moves them to the UI thread).

Delivery of an item ends in one of three ways:

- network trouble (no connection, a cut or reset, a timeout, a 5xx, a 429, a
  request of the same key still in flight): the item waits again, the worker
  backs off exponentially with jitter, and it is not counted as a failure;
- the server refused it (4xx): ``failed`` with the problem details, or
  ``conflict`` for 409/412 with the server's current state fetched for the
  officer to redo the step;
- the server accepted it: ``done`` (for evidence, only once the server has
  confirmed the hash taken at capture).

Sending an item again is harmless: its records carry client-generated ids and
its requests the item's Idempotency-Key.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import requests
from tusclient.exceptions import TusCommunicationError

from mobile.services.device import DeviceKeys
from mobile.services.outbox import Outbox, OutboxItem
from mobile.services.store import LocalStore
from shared.client import (
    UPLOAD_CHUNK_SIZE,
    ApiError,
    AuthError,
    ChecksumMismatch,
    ConflictError,
    FieldcaseClient,
    GoneError,
    NotFoundError,
    PreconditionFailed,
    RateLimited,
    ServerError,
    UploadProgress,
    upload_id_of,
)
from shared.templates import RIGHTS_NOTICE_ID, content_sha256

log = logging.getLogger(__name__)

EventKind = Literal[
    "online", "offline", "item", "progress", "cache", "signed_in", "sign_in_failed", "auth_required"
]

SERVER_URL = "server_url"
USERNAME = "auth.username"
USER = "auth.user"
KNOWN_USERS = "device.users"
ACCESS_TOKEN = "auth.access_token"
REFRESH_TOKEN = "auth.refresh_token"
IN_FLIGHT_SLUG = "idempotency-in-flight"
CASE_LIST_LIMIT = 100
APPROVER_ROLES = frozenset({"legal_officer", "leader"})
INCOMPLETE_ANSWER_TRIES = 5
FEED_PAGE = 100
FEED_PAGES_PER_REFRESH = 10
RESOLVED_SLUG = "warning-resolved"


@dataclass(frozen=True)
class SyncEvent:
    kind: EventKind
    item_id: str | None = None
    detail: dict[str, Any] | None = None


class Transient(Exception):
    """Try the item again later: the network or the server is not there now."""


class Interrupted(Exception):
    """The worker is stopping; the item waits for the next run."""


# Handlers: how each kind of item is delivered, and how a conflict is shown.


@dataclass
class Delivery:
    """One item being delivered: what a handler needs."""

    client: FieldcaseClient
    item: OutboxItem
    outbox: Outbox
    device: DeviceKeys
    chunk_size: int
    report_progress: Callable[[UploadProgress], None]

    @property
    def key(self) -> str:
        return self.item.idempotency_key

    @property
    def payload(self) -> dict[str, Any]:
        return self.item.payload


def _deliver_incident(job: Delivery) -> dict[str, Any]:
    p = job.payload
    incident = job.client.create_incident(
        occurred_at=p["occurred_at"],
        place=p["place"],
        category=p["category"],
        summary=p["summary"],
        source=p.get("source"),
        latitude=p.get("latitude"),
        longitude=p.get("longitude"),
        reporter=p.get("reporter"),
        incident_id=p["incident_id"],
        idempotency_key=job.key,
    )
    result: dict[str, Any] = {"incident": incident}
    accept = p.get("accept")
    if accept is not None:
        case, etag = job.client.accept_incident(
            p["incident_id"],
            case_type=accept["case_type"],
            title=accept["title"],
            case_id=accept["case_id"],
            idempotency_key=job.key,
        )
        result.update(case=case, etag=etag)
    return result


def _deliver_person(job: Delivery) -> dict[str, Any]:
    p = job.payload
    person = job.client.add_person(
        p["case_id"],
        role=p["role"],
        name=p["name"],
        id_number=p.get("id_number"),
        phone=p.get("phone"),
        address=p.get("address"),
        person_id=p["person_id"],
        idempotency_key=job.key,
    )
    return {"person": person}


def _deliver_transition(job: Delivery) -> dict[str, Any]:
    p = job.payload
    outcome = job.client.request_step(
        p["case_id"],
        p["action"],
        p.get("payload") or {},
        p.get("comment"),
        p.get("etag"),
        idempotency_key=job.key,
    )
    return dict(outcome)


def _deliver_decision(job: Delivery) -> dict[str, Any]:
    p = job.payload
    outcome = job.client.decide(
        p["approval_id"], p["decision"], p.get("comment"), idempotency_key=job.key
    )
    return dict(outcome)


def _deliver_document(job: Delivery) -> dict[str, Any]:
    p = job.payload
    document, etag = job.client.create_document(
        p["case_id"],
        kind=p["kind"],
        person_id=p.get("person_id"),
        title=p.get("title"),
        person_is_minor=p.get("person_is_minor"),
        needs_interpreter=p.get("needs_interpreter"),
        document_id=p["document_id"],
        idempotency_key=job.key,
    )
    return {"document": document, "etag": etag}


class ContentChanged(ConflictError):
    """The document on the server no longer holds what the officer wrote or the signer saw."""

    def __init__(self, detail: str) -> None:
        super().__init__(409, {"title": "Content changed", "status": 409, "detail": detail})


def _own_qa(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in content.get("qa", []) if e.get("id") != RIGHTS_NOTICE_ID]


def shows(content: dict[str, Any], written: dict[str, Any]) -> bool:
    """Whether document ``content`` holds what was ``written`` on the device: header
    values, section texts by key, the questions and answers after the rights notice
    (whose text the server writes) and the answer to it, the items."""
    header = content.get("header", {})
    if any(header.get(key) != value for key, value in written.get("header", {}).items()):
        return False
    sections = {s["key"]: s["text"] for s in content.get("sections", [])}
    if any(sections.get(key) != text for key, text in written.get("sections", {}).items()):
        return False
    if "qa" in written:
        pairs = [(e["question"], e["answer"]) for e in _own_qa(content)]
        if pairs != [(e["question"], e["answer"]) for e in written["qa"]]:
            return False
    if "rights_answer" in written:
        notice = [e for e in content.get("qa", []) if e.get("id") == RIGHTS_NOTICE_ID]
        if [e["answer"] for e in notice] != [written["rights_answer"]]:
            return False
    if "items" in written and content.get("items") != written["items"]:
        return False
    return "title" not in written or content.get("title") == written["title"]


def document_changes(content: dict[str, Any], written: dict[str, Any]) -> dict[str, Any]:
    """The edit that makes a draft with ``content`` hold what was ``written``."""
    changes = {
        key: written[key] for key in ("title", "header", "sections", "items") if key in written
    }
    if "qa" in written:
        notice = [
            {**e, "answer": written.get("rights_answer", e["answer"])}
            for e in content.get("qa", [])
            if e.get("id") == RIGHTS_NOTICE_ID
        ]
        changes["qa"] = notice + [dict(e) for e in written["qa"]]
    return changes


def _deliver_transcript(job: Delivery) -> dict[str, Any]:
    """Create the document from its template (client id), write what the officer typed
    (If-Match: the ETag of the draft as created) and finalise it."""
    p = job.payload
    client = job.client
    _, etag = client.create_document(
        p["case_id"],
        kind=p["kind"],
        person_id=p.get("person_id"),
        person_is_minor=p.get("person_is_minor"),
        needs_interpreter=p.get("needs_interpreter"),
        document_id=p["document_id"],
        idempotency_key=job.key,
    )
    written = p.get("changes") or {}
    document, current = client.get_document(p["document_id"])
    if document["status"] == "draft":
        if not shows(document["content"], written):
            try:
                changes = document_changes(document["content"], written)
                document, current = client.edit_document(p["document_id"], etag, changes)
            except PreconditionFailed:
                # Changed since it was created: fine only if that was this item's own edit.
                document, current = client.get_document(p["document_id"])
                if not shows(document["content"], written):
                    raise
        document, current = client.finalize_document(
            p["document_id"], current, idempotency_key=job.key
        )
    elif not shows(document["content"], written):
        raise ContentChanged("The document was finalised with other content than written here.")
    return {
        "document": document,
        "etag": current,
        "content_sha256": content_sha256(document["content"]),
    }


def _deliver_signature(job: Delivery) -> dict[str, Any]:
    """Sign the finalised document as the signer saw it: the hash the device signs is
    computed here from the content, which must still show what the signer was shown."""
    p = job.payload
    document, _ = job.client.get_document(p["document_id"])
    if not shows(document["content"], p.get("shown") or {}):
        raise ContentChanged("The document no longer shows what the signer saw; sign it again.")
    fingerprint = Path(job.item.files[0]).read_bytes() if job.item.files else None
    signature = job.client.sign_document(
        document,
        signer_role=p["signer_role"],
        signer_name=p["signer_name"],
        strokes=p["strokes"],
        image_png=base64.b64decode(p["image_png"]),
        signed_at=datetime.fromisoformat(p["signed_at"]),
        device_id=job.client.device_id or job.device.device_id,
        private_key=job.device.private_key,
        signer_user_id=p.get("signer_user_id"),
        signer_id_number=p.get("signer_id_number"),
        fingerprint=fingerprint,
        signature_id=p["signature_id"],
        idempotency_key=job.key,
    )
    return {"signature": signature, "content_sha256": content_sha256(document["content"])}


def _upload(job: Delivery) -> str:
    """Upload the item's file with tus, resuming from the stored URL; the finished URL."""
    item = job.item
    try:
        return job.client.upload_file(
            item.files[0],
            case_id=job.payload["case_id"],
            filename=job.payload.get("filename"),
            chunk_size=job.chunk_size,
            url=item.upload_url,
            on_progress=job.report_progress,
        )
    except (GoneError, NotFoundError) as error:
        if item.upload_url is None:
            raise
        # The unfinished upload expired on the server: start a new one.
        job.outbox.set_upload_url(item.id, None)
        raise Transient(f"The upload expired: {error}") from error
    except (ConflictError, ChecksumMismatch) as error:
        # An offset mismatch or a damaged chunk: the next try resumes from the server's offset.
        raise Transient(str(error)) from error


def _deliver_evidence(job: Delivery) -> dict[str, Any]:
    p = job.payload
    item = job.item
    finished = item.upload_url is not None and item.progress >= 1.0
    url = item.upload_url if finished and item.upload_url else _upload(job)
    evidence = job.client.finalise_evidence(
        p["case_id"],
        upload_id=upload_id_of(url),
        kind=p["kind"],
        sha256=p["sha256"],
        captured_at=p["captured_at"],
        place=p["place"],
        device_id=job.client.device_id or job.device.device_id,
        private_key=job.device.private_key,
        latitude=p.get("latitude"),
        longitude=p.get("longitude"),
        description=p.get("description"),
        evidence_id=p["evidence_id"],
        idempotency_key=job.key,
    )
    if evidence["sha256"] != p["sha256"]:
        raise ValueError(
            f"The server recorded SHA-256 {evidence['sha256']}, captured {p['sha256']}."
        )
    return {"evidence": evidence}


def _deliver_acknowledgement(job: Delivery) -> dict[str, Any]:
    """Acknowledge a warning; one resolved meanwhile needs no acknowledging."""
    try:
        warning = job.client.acknowledge_warning(job.payload["warning_id"], idempotency_key=job.key)
    except ConflictError as error:
        if not error.type.endswith(RESOLVED_SLUG):
            raise
        return {"resolved": True}
    return {"warning": warning}


Handler = Callable[[Delivery], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "incident": _deliver_incident,
    "person": _deliver_person,
    "transition": _deliver_transition,
    "decision": _deliver_decision,
    "evidence": _deliver_evidence,
    "document": _deliver_document,
    "transcript": _deliver_transcript,
    "signature": _deliver_signature,
    "acknowledgement": _deliver_acknowledgement,
}
"""How each kind of outbox item is delivered; a new kind is one entry here and in
``outbox.PREPARE``."""


def _case_state(client: FieldcaseClient, item: OutboxItem) -> dict[str, Any]:
    case_id = item.payload["case_id"]
    case, etag = client.get_case(case_id)
    return {"case": case, "etag": etag, "actions": client.list_actions(case_id)}


def _approval_state(client: FieldcaseClient, item: OutboxItem) -> dict[str, Any]:
    return {"approval": client.get_approval(item.payload["approval_id"])}


def _incident_state(client: FieldcaseClient, item: OutboxItem) -> dict[str, Any]:
    return {"incident": client.get_incident(item.payload["incident_id"])}


def _document_state(client: FieldcaseClient, item: OutboxItem) -> dict[str, Any]:
    try:
        document, etag = client.get_document(item.payload["document_id"])
    except NotFoundError:
        return _case_state(client, item)
    return {"document": document, "etag": etag}


ServerState = Callable[[FieldcaseClient, OutboxItem], dict[str, Any]]

CONFLICT_STATE: dict[str, ServerState] = {
    "incident": _incident_state,
    "person": _case_state,
    "transition": _case_state,
    "decision": _approval_state,
    "evidence": _case_state,
    "document": _case_state,
    "transcript": _document_state,
    "signature": _document_state,
}
"""What the officer is shown of the server's current state when an item conflicts."""


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, requests.RequestException | ServerError | RateLimited | Transient):
        return True
    if isinstance(error, ConflictError):
        return str(error.problem.get("type", "")).endswith(IN_FLIGHT_SLUG)
    if isinstance(error, TusCommunicationError):
        return error.status_code is None or error.status_code >= 500
    return False


def default_client_factory(store: LocalStore) -> Callable[[], FieldcaseClient]:
    """A client factory for the server address in the store's settings."""

    def make() -> FieldcaseClient:
        return FieldcaseClient(store.get_setting(SERVER_URL) or "")

    return make


@dataclass
class _Command:
    name: str
    args: tuple[Any, ...] = ()
    done: threading.Event = field(default_factory=threading.Event)


class SyncWorker:
    """Delivers the outbox and refreshes the cache on its own daemon thread.

    ``client_factory`` makes a client for the server address in the store's
    ``server_url`` setting (``default_client_factory``); the worker sets its
    device id and tokens. Timing: network trouble backs off from
    ``backoff_base`` up to ``backoff_max`` seconds (full jitter from ``rng``);
    the cache is refreshed every ``refresh_interval`` seconds, after items were
    delivered, and on ``refresh_now()``.
    """

    def __init__(
        self,
        store: LocalStore,
        outbox: Outbox,
        device: DeviceKeys,
        client_factory: Callable[[], FieldcaseClient],
        on_event: Callable[[SyncEvent], None],
        *,
        device_name: str = "Fieldcase mobile",
        refresh_interval: float = 60.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        chunk_size: int = UPLOAD_CHUNK_SIZE,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.device = device
        self.client_factory = client_factory
        self.on_event = on_event
        self.device_name = device_name
        self.refresh_interval = refresh_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.chunk_size = chunk_size
        self.rng = rng or random.Random()
        self.online: bool | None = None
        self._client: FieldcaseClient | None = None
        self._commands: list[_Command] = []
        self._commands_lock = threading.Lock()
        self._session_lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._delivered = 0
        self._incomplete: dict[str, int] = {}
        self._refresh_due = True
        self._next_refresh = 0.0

    # Control, from any thread

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("The sync worker is already running.")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="fieldcase-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop after the current request (an upload stops after its chunk).

        Called from the worker thread itself (e.g. in ``on_event``) it only asks.
        """
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        if not thread.is_alive():
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Look at the outbox now (an item was saved, the network came back)."""
        self._wake.set()

    def refresh_now(self) -> None:
        self._refresh_due = True
        self._wake.set()

    def sign_in(
        self,
        server_url: str,
        username: str,
        password: str,
        on_done: Callable[[SyncEvent], None] | None = None,
    ) -> None:
        """Sign in on the worker thread; ``on_done`` (and ``on_event``) hear
        ``signed_in`` or ``sign_in_failed``. The password is not kept."""
        self._queue(_Command("sign_in", (server_url, username, password, on_done)))

    def sign_out(self) -> None:
        """Forget the tokens now (no more cache writes), and end the sign-in on the
        server from the worker thread when it can."""
        with self._session_lock:
            client, self._client = self._client, None
            self._forget_tokens()
        if client is not None:
            self._queue(_Command("logout", (client,)))

    @property
    def signed_in(self) -> bool:
        return self.store.get_setting(REFRESH_TOKEN) is not None

    def _queue(self, command: _Command) -> None:
        with self._commands_lock:
            self._commands.append(command)
        self._wake.set()

    # The thread

    def _run(self) -> None:
        self.outbox.recover()
        self._restore_session()
        while not self._stopping.is_set():
            self._run_commands()
            delay = self._cycle()
            if self._stopping.is_set():
                break
            self._wake.wait(delay)
            self._wake.clear()

    def _emit(self, kind: EventKind, item_id: str | None = None, /, **detail: Any) -> None:
        try:
            self.on_event(SyncEvent(kind, item_id, detail or None))
        except Exception:
            log.exception("on_event failed for %s", kind)

    def _run_commands(self) -> None:
        while True:
            with self._commands_lock:
                if not self._commands:
                    return
                command = self._commands.pop(0)
            if command.name == "sign_in":
                self._sign_in(*command.args)
            elif command.name == "logout":
                self._logout(*command.args)
            command.done.set()

    def _cycle(self) -> float:
        """One round: deliver what is ready, refresh the cache when due; the wait before
        the next round."""
        with self._session_lock:
            client = self._client
        if client is None:
            return self.refresh_interval
        delivered_before = self._delivered
        try:
            delivered = self._drain(client)
            if delivered or self._refresh_due or time.monotonic() >= self._next_refresh:
                self._refresh_cache(client)
        except Interrupted:
            return 0.0
        except AuthError as error:
            self._auth_ended(error)
            return self.refresh_interval
        except Exception as error:
            if not _is_transient(error):
                log.exception("the sync round failed")
                self.outbox.recover()
            if self._delivered > delivered_before:
                # Items got through this round: a flaky network, not a dead one. Back off
                # from the start again rather than ever longer.
                self._failures = 1
                return self._backoff()
            self._set_online(False, str(error))
            self._failures += 1
            return self._backoff()
        finally:
            self._keep_tokens(client)
        self._failures = 0
        self._set_online(True)
        return max(0.0, min(self.refresh_interval, self._next_refresh - time.monotonic()))

    def _backoff(self) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(self._failures, 20))
        return self.rng.uniform(ceiling / 2, ceiling)

    def _set_online(self, online: bool, reason: str | None = None) -> None:
        if self.online == online:
            return
        self.online = online
        if online:
            self._emit("online")
        else:
            self._emit("offline", reason=reason)

    # Sign-in

    def _new_client(self, username: str) -> FieldcaseClient:
        client = self.client_factory()
        client.device_id = self.device.device_id_for(username)
        return client

    def _restore_session(self) -> None:
        username = self.store.get_setting(USERNAME)
        refresh = self.store.get_setting(REFRESH_TOKEN)
        if username is None or refresh is None or self.store.get_setting(SERVER_URL) is None:
            return
        client = self._new_client(username)
        client.set_tokens(self.store.get_setting(ACCESS_TOKEN), refresh)
        with self._session_lock:
            self._client = client

    def _sign_in(
        self,
        server_url: str,
        username: str,
        password: str,
        on_done: Callable[[SyncEvent], None] | None,
    ) -> None:
        server_url = server_url.rstrip("/")
        self.store.set_setting(SERVER_URL, server_url)
        client = self._new_client(username)
        try:
            pair = client.login(username, password)
            if not self.device.enrolled_for(server_url, username):
                client.enroll_device(
                    device_id=self.device.device_id_for(username),
                    name=self.device_name,
                    public_key=self.device.public_key_text(),
                    idempotency_key=f"enrol:{self.device.device_id_for(username)}",
                )
                self.device.mark_enrolled(server_url, username)
        except (requests.RequestException, ApiError) as error:
            event = SyncEvent("sign_in_failed", detail=_failure(error))
        else:
            with self._session_lock:
                self._client = client
                self.store.set_setting(USERNAME, username)
                self.store.set_setting(USER, json.dumps(pair["user"], ensure_ascii=False))
                self._remember_user(pair["user"])
                self._keep_tokens(client)
            self._refresh_due = True
            event = SyncEvent("signed_in", detail={"user": pair["user"]})
        self._emit(event.kind, None, **(event.detail or {}))
        if on_done is not None:
            on_done(event)

    def _remember_user(self, user: dict[str, Any]) -> None:
        """Keep who signed in on this device (id, username, name, roles): officers who
        share it co-sign transcripts as the second officer while offline."""
        known = json.loads(self.store.get_setting(KNOWN_USERS) or "{}")
        known[user["id"]] = {
            key: user.get(key) for key in ("id", "username", "display_name", "roles", "unit_id")
        }
        self.store.set_setting(KNOWN_USERS, json.dumps(known, ensure_ascii=False))

    def _logout(self, client: FieldcaseClient) -> None:
        try:
            client.logout()
        except (requests.RequestException, ApiError) as error:
            log.info("the server did not hear the sign-out: %s", error)
        finally:
            client.close()

    def _auth_ended(self, error: AuthError) -> None:
        """The server ended the sign-in (refresh token expired or revoked)."""
        with self._session_lock:
            self._client = None
            self._forget_tokens()
        self._emit("auth_required", status=error.status, problem=error.problem)

    def _forget_tokens(self) -> None:
        for key in (ACCESS_TOKEN, REFRESH_TOKEN):
            self.store.set_setting(key, None)

    def _keep_tokens(self, client: FieldcaseClient) -> None:
        """Persist the client's tokens when they changed (a refresh rotates them)."""
        with self._session_lock:
            if client is not self._client or client.refresh_token is None:
                return
            if self.store.get_setting(REFRESH_TOKEN) != client.refresh_token:
                self.store.set_setting(ACCESS_TOKEN, client.access_token)
                self.store.set_setting(REFRESH_TOKEN, client.refresh_token)

    # Delivery

    def _drain(self, client: FieldcaseClient) -> int:
        delivered = 0
        while not self._stopping.is_set():
            item = self.outbox.next_ready()
            if item is None:
                return delivered
            self._deliver(client, item)
            delivered += 1
        raise Interrupted

    def _deliver(self, client: FieldcaseClient, item: OutboxItem) -> None:
        handler = HANDLERS.get(item.kind)
        if handler is None:
            self._settle(item, "failed", error=f"No handler for items of kind {item.kind!r}.")
            return
        self._settle(item, "uploading" if item.kind == "evidence" else "sending")
        job = Delivery(
            client=client,
            item=item,
            outbox=self.outbox,
            device=self.device,
            chunk_size=self.chunk_size,
            report_progress=lambda progress: self._upload_progress(item, progress),
        )
        try:
            result = handler(job)
        except Exception as error:
            self._keep_tokens(client)
            self._settle_error(client, item, error)
        else:
            self._keep_tokens(client)
            self._set_online(True)
            self._settle(item, "done", server_state=result)
            self._delivered += 1

    def _incomplete_answer(self, item: OutboxItem, error: Exception) -> bool:
        """An answer cut inside its header block parses as an answer without the cut
        headers (the client then misses e.g. ``ETag`` or ``Upload-Offset``): a network
        fault, tried again; the same failure ``INCOMPLETE_ANSWER_TRIES`` times running
        is taken for a real one."""
        if not isinstance(error, KeyError | TypeError):
            self._incomplete.pop(item.id, None)
            return False
        tries = self._incomplete[item.id] = self._incomplete.get(item.id, 0) + 1
        return tries < INCOMPLETE_ANSWER_TRIES

    def _settle_error(self, client: FieldcaseClient, item: OutboxItem, error: Exception) -> None:
        """Record why the item was not delivered; re-raise what ends this round."""
        if self._incomplete_answer(item, error):
            self._settle(item, "waiting", error=f"Incomplete answer: {error!r}")
            raise Transient(str(error)) from error
        if isinstance(error, Interrupted | AuthError) or _is_transient(error):
            reason = None if isinstance(error, Interrupted) else str(error)
            self._settle(item, "waiting", error=reason)
            raise error
        if isinstance(error, ConflictError | PreconditionFailed):
            try:
                current = self._server_state(client, item)
            except Exception:
                self._settle(item, "waiting", error=str(error))
                raise
            self._settle(
                item,
                "conflict",
                error=error.detail or str(error),
                server_state={"problem": error.problem, **current},
                count_attempt=True,
            )
        elif isinstance(error, ApiError):
            self._settle(
                item,
                "failed",
                error=error.detail or error.title or str(error),
                server_state={"problem": error.problem},
                count_attempt=True,
            )
        else:
            log.warning("outbox item %s failed", item.id, exc_info=error)
            reason = str(error) or type(error).__name__
            self._settle(item, "failed", error=reason, count_attempt=True)

    def _server_state(self, client: FieldcaseClient, item: OutboxItem) -> dict[str, Any]:
        fetch = CONFLICT_STATE.get(item.kind)
        if fetch is None:
            return {}
        try:
            return fetch(client, item)
        except ApiError as error:
            if _is_transient(error) or isinstance(error, AuthError):
                raise
            return {"state_error": error.problem}

    def _settle(
        self,
        item: OutboxItem,
        state: Literal["waiting", "sending", "uploading", "failed", "conflict", "done"],
        *,
        error: str | None = None,
        server_state: dict[str, Any] | None = None,
        count_attempt: bool = False,
    ) -> None:
        self.outbox.mark(
            item.id, state, error=error, server_state=server_state, count_attempt=count_attempt
        )
        self._emit("item", item.id, state=state, kind=item.kind, error=error)

    def _upload_progress(self, item: OutboxItem, progress: UploadProgress) -> None:
        current = self.outbox.get(item.id)
        if current is not None and current.upload_url != progress.url:
            self.outbox.set_upload_url(item.id, progress.url)
        fraction = progress.offset / progress.length if progress.length else 1.0
        self.outbox.set_progress(item.id, fraction)
        self._emit(
            "progress", item.id, progress=fraction, offset=progress.offset, length=progress.length
        )
        if self._stopping.is_set() and progress.offset < progress.length:
            raise Interrupted

    # The cache

    def _refresh_cache(self, client: FieldcaseClient) -> None:
        self._refresh_due = False
        self._next_refresh = time.monotonic() + self.refresh_interval
        user = json.loads(self.store.get_setting(USER) or "{}")
        roles = set(user.get("roles", ()))
        filters: dict[str, Any] = {"open": True, "limit": CASE_LIST_LIMIT}
        if "officer" in roles and user.get("id"):
            filters["handler_id"] = user["id"]
        cases = client.list_cases(**filters)["items"]
        details = {}
        for case in cases:
            if self._stopping.is_set():
                raise Interrupted
            details[case["id"]] = self._case_detail(client, case["id"])
        approvals = (
            client.list_approvals(status="pending", limit=CASE_LIST_LIMIT)["items"]
            if roles & APPROVER_ROLES
            else []
        )
        templates = dict(client.document_templates()) if "officer" in roles else None
        warnings, cursor = self._poll_feed(client, user.get("id") or "")
        with self._session_lock:
            if client is not self._client:
                return
            self.store.cache_cases(cases)
            for case_id, detail in details.items():
                if detail is not None:
                    self.store.cache_case(case_id, detail)
            for case_id in set(self.store.cached_case_ids()) - set(details):
                self.store.forget_case(case_id)
            self.store.cache_approvals(approvals)
            if templates is not None:
                self.store.cache_templates(templates)
            self.store.cache_warnings(user.get("id") or "", warnings, cursor)
        self._emit("cache", cases=len(cases), approvals=len(approvals), warnings=len(warnings))

    def _poll_feed(
        self, client: FieldcaseClient, user_id: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The cached warnings with the feed's changes since the stored cursor applied
        (newest first), and the cursor after them. Kept: the unresolved warnings on the
        caller's cases; a long backlog is read over several refreshes."""
        cursor = self.store.feed_cursor(user_id)
        warnings = {w["id"]: w for w in self.store.cached_warnings(user_id)}
        for _ in range(FEED_PAGES_PER_REFRESH):
            if self._stopping.is_set():
                raise Interrupted
            page = client.feed(since=cursor, limit=FEED_PAGE)
            for item in page["items"]:
                warning = item.get("warning")
                if item["type"] != "warning" or warning is None:
                    continue
                if warning["handler_id"] == user_id and warning["status"] != "resolved":
                    warnings[warning["id"]] = dict(warning)
                else:
                    warnings.pop(warning["id"], None)
            cursor = page["next_cursor"] or cursor
            if not page["more"]:
                break
        newest_first = sorted(
            warnings.values(), key=lambda w: (w["created_at"], w["id"]), reverse=True
        )
        return newest_first, cursor

    def _case_detail(self, client: FieldcaseClient, case_id: str) -> dict[str, Any] | None:
        """The case with its history, actions, persons, documents and evidence; ``None``
        when the cached copy is current."""
        cached = self.store.cached_case(case_id)
        if cached is not None and cached.get("etag"):
            found = client.get_case_if_changed(case_id, cached["etag"])
            if found is None:
                return None
        else:
            found = client.get_case(case_id)
        return {
            "case": found.case,
            "etag": found.etag,
            "events": client.list_events(case_id),
            "actions": client.list_actions(case_id),
            "persons": client.list_persons(case_id),
            "documents": client.list_documents(case_id),
            "evidence": client.list_evidence(case_id),
        }


def _failure(error: BaseException) -> dict[str, Any]:
    if isinstance(error, ApiError):
        reason = "credentials" if isinstance(error, AuthError) else "rejected"
        return {
            "reason": reason,
            "status": error.status,
            "problem": error.problem,
            "message": str(error),
        }
    return {"reason": "offline", "message": str(error)}
