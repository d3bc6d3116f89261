"""The app state: what the screens call. Plain Python, no Kivy, no network.

Everything the officer saves goes into the outbox (committed before the call
returns) and the sync worker is woken to deliver it; what the screens show
comes from the local cache, merged with what is still in the outbox.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mobile.services import forms
from mobile.services.device import DeviceKeys
from mobile.services.forms import FieldSpec, FormErrors
from mobile.services.outbox import HASH_BLOCK, SETTLED_BY_USER, Outbox, OutboxItem
from mobile.services.store import LocalStore
from mobile.services.sync import (
    KNOWN_USERS,
    SERVER_URL,
    USER,
    USERNAME,
    SyncEvent,
    SyncWorker,
    default_client_factory,
)
from shared.templates import fill

LANGUAGE = "language"
LANGUAGES = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"
ACKNOWLEDGED = "warnings.acknowledged"
STORE_FILE = "fieldcase.db"
FILES_FOLDER = "files"


class UnsentItems(RuntimeError):
    """Signing out would drop items the server has not confirmed yet."""

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(f"{count} saved item(s) have not been delivered yet.")


@dataclass(frozen=True)
class SyncStatus:
    """The always-visible sync state; ``uploads`` lists (title, fraction) of running uploads.

    Readable as a mapping too (``status["waiting"]``).
    """

    online: bool | None
    waiting: int
    uploading: int
    failed: int
    conflicts: int
    uploads: list[tuple[str, float]] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def copy_with_hash(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` to ``target`` (fsynced), hashing the bytes written; SHA-256 and size."""
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as reader, target.open("xb") as writer:
        while block := reader.read(HASH_BLOCK):
            digest.update(block)
            writer.write(block)
            size += len(block)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest(), size


def _now() -> datetime:
    return datetime.now(UTC).astimezone()


def _coordinate(value: float | str | None) -> str | None:
    """GPS as a decimal string (signed fields refuse floats)."""
    if value is None or value == "":
        return None
    return f"{float(value):.6f}"


class AppState:
    def __init__(
        self,
        store: LocalStore,
        outbox: Outbox,
        worker: SyncWorker,
        *,
        files_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.worker = worker
        self.files_dir = Path(files_dir or outbox.files_dir or store.path.parent / FILES_FOLDER)
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.locked = False

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        on_event: Callable[[SyncEvent], None],
        server_url: str | None = None,
        **worker_options: Any,
    ) -> AppState:
        """The app's state in ``data_dir`` (store, captured files), with its sync worker
        (not started: ``start()``)."""
        data_dir = Path(data_dir)
        store = LocalStore(data_dir / STORE_FILE)
        if server_url:
            store.set_setting(SERVER_URL, server_url.rstrip("/"))
        outbox = Outbox(store, data_dir / FILES_FOLDER)
        worker = SyncWorker(
            store,
            outbox,
            DeviceKeys(store),
            default_client_factory(store),
            on_event,
            **worker_options,
        )
        return cls(store, outbox, worker)

    def start(self) -> None:
        self.worker.start()

    def close(self) -> None:
        self.worker.stop()
        self.store.close()

    # Saving: each returns once the item is durably in the outbox

    def _queued(self, item: OutboxItem) -> OutboxItem:
        self.worker.wake()
        return item

    def file_report(self, data: dict[str, Any]) -> OutboxItem:
        """Queue a report (incident), with ``accept`` ({case_type, title}) to register it as a
        case at once and ``persons`` ({role, name, id_number?, phone?, address?}) to add to
        that case. Returns the report's item."""
        data = dict(data)
        persons = data.pop("persons", None) or []
        if persons and not data.get("accept"):
            raise FormErrors({"persons": ["Persons need the report registered as a case."]})
        occurred = data.get("occurred_at")
        if isinstance(occurred, datetime):
            data["occurred_at"] = occurred.isoformat()
        title = (data.get("accept") or {}).get("title") or data.get("summary", "")[:40]
        report = self.outbox.enqueue("incident", data, title=title)
        case_id = (report.payload.get("accept") or {}).get("case_id")
        for person in persons:
            self.outbox.enqueue(
                "person",
                {**person, "case_id": case_id},
                title=f"{title} · {person.get('name', '')}",
                depends_on=report.id,
            )
        return self._queued(report)

    def request_step(
        self,
        case_id: str,
        action: str,
        payload: dict[str, Any],
        comment: str | None,
        etag: str | None,
    ) -> OutboxItem:
        """Queue a workflow step, checked offline against the workflow (``FormErrors``).

        ``payload`` may hold the text entered in the form; ``etag`` is the case's
        ETag the officer saw (``None`` for a case created offline: the current one).
        """
        case = self._known_case(case_id)
        if case is None:
            raise FormErrors({"case_id": ["Unknown case."]})
        checked = forms.parse_payload(case["case_type"], action, payload)
        label = forms.action_of(case["case_type"], action).label.as_dict()
        body = {
            "case_id": case_id,
            "action": action,
            "payload": checked,
            "comment": comment,
            "etag": etag,
        }
        item = self.outbox.enqueue(
            "transition",
            body,
            title=f"{case.get('title') or case.get('number', '')} · {label['zh']}",
            depends_on=self._last_open_item_of(case_id),
        )
        return self._queued(item)

    def decide(self, approval_id: str, decision: str, comment: str | None) -> OutboxItem:
        if decision == "return" and not (comment or "").strip():
            raise FormErrors({"comment": ["A returned step needs a comment."]})
        approval = next((a for a in self.store.cached_approvals() if a["id"] == approval_id), None)
        title = (approval or {}).get("case", {}).get("title") or approval_id
        item = self.outbox.enqueue(
            "decision",
            {"approval_id": approval_id, "decision": decision, "comment": comment},
            title=f"{title} · {decision}",
        )
        return self._queued(item)

    def capture_evidence(
        self,
        case_id: str,
        path: str | Path,
        kind: str,
        place: str,
        lat: float | str | None,
        lon: float | str | None,
        description: str | None,
    ) -> OutboxItem:
        """Queue a file as evidence: copied into the app's folder first (the source may
        vanish) and hashed (SHA-256) as it is copied; that hash is what the server must
        confirm."""
        source = Path(path)
        copy = self.files_dir / f"{uuid.uuid4().hex}{source.suffix.lower()}"
        sha256, size = copy_with_hash(source, copy)
        payload = {
            "case_id": case_id,
            "kind": kind,
            "sha256": sha256,
            "size": size,
            "filename": source.name,
            "captured_at": _now().isoformat(),
            "place": place,
            "latitude": _coordinate(lat),
            "longitude": _coordinate(lon),
            "description": description,
        }
        case = self._known_case(case_id) or {}
        try:
            item = self.outbox.enqueue(
                "evidence",
                payload,
                title=f"{case.get('title') or case.get('number', '')} · {source.name}",
                files=[str(copy)],
                depends_on=self._creating_item(case_id),
            )
        except BaseException:
            copy.unlink(missing_ok=True)
            raise
        return self._queued(item)

    # Transcripts and signatures

    def document_catalogue(self) -> dict[str, Any] | None:
        """The cached document catalogue (kinds, templates, question banks)."""
        return self.store.cached_templates()

    def transcript_kinds(self, case_id: str) -> list[dict[str, Any]]:
        """The document kinds an officer may start in the case: those with a template for
        its type (cached catalogue), less those the platform writes itself."""
        case = self._known_case(case_id) or {}
        catalogue = self.document_catalogue() or {"kinds": []}
        return [
            k
            for k in catalogue["kinds"]
            if case.get("case_type") in k["case_types"] and not k.get("generated")
        ]

    def start_transcript(self, case_id: str, kind: str, person_id: str | None) -> dict[str, Any]:
        """A new transcript to fill: its template (header fields, question bank, sections)
        and signers, from the cached catalogue; kept as a draft until saved."""
        case = self._known_case(case_id)
        if case is None:
            raise FormErrors({"case_id": ["Unknown case."]})
        catalogue = self.document_catalogue()
        if catalogue is None:
            raise FormErrors({"kind": ["The document templates are not on this device yet."]})
        template = next(
            (
                t
                for t in catalogue["templates"]
                if t["case_type"] == case["case_type"] and t["kind"] == kind
            ),
            None,
        )
        spec = next((k for k in catalogue["kinds"] if k["id"] == kind), None)
        if template is None or spec is None or spec.get("generated"):
            raise FormErrors({"kind": ["No template for this kind of document in this case."]})
        person = next((p for p in self.case_persons(case_id) if p["id"] == person_id), None)
        if spec["person"] and person is None:
            raise FormErrors({"person_id": ["Choose the person the document is about."]})
        user = self.user or {}
        facts = {
            "case.number": case.get("number", ""),
            "officer.name": user.get("display_name", ""),
            "unit.name": (user.get("unit") or {}).get("name", ""),
            "person.name": (person or {}).get("name", ""),
        }
        transcript = {
            "key": f"transcript:{uuid.uuid4()}",
            "case_id": case_id,
            "kind": kind,
            "person_id": person_id,
            "title": template["title"],
            "body": spec["body"],
            "signers": list(spec["signatures"]),
            "signer_labels": spec["signer_labels"],
            "header": [f for f in template["header"] if not f["source"]],
            "rights_notice": spec["rights_notice"],
            "questions": [
                {**q, "text": fill(q["label"]["zh"], facts)} for q in template["questions"]
            ],
            "sections": [s for s in template["sections"] if not s["locked"]],
            "item_id": None,
        }
        self.store.save_draft(transcript["key"], transcript, _now().isoformat())
        return transcript

    def case_persons(self, case_id: str) -> list[dict[str, Any]]:
        """The case's persons: cached ones, then those still in the outbox."""
        persons = list((self.store.cached_case(case_id) or {}).get("persons", []))
        known = {p["id"] for p in persons}
        for item in self.outbox.all():
            ours = item.kind == "person" and item.payload.get("case_id") == case_id
            if ours and item.payload["person_id"] not in known:
                persons.append({**item.payload, "id": item.payload["person_id"]})
        return persons

    def known_officers(self) -> list[dict[str, Any]]:
        """Officers who have signed in on this device (they co-sign as second officer)."""
        known = json.loads(self.store.get_setting(KNOWN_USERS) or "{}")
        return [u for u in known.values() if "officer" in (u.get("roles") or [])]

    def transcript(self, key: str) -> dict[str, Any] | None:
        return self.store.draft(key)

    def save_transcript(
        self,
        key: str,
        *,
        header: dict[str, str] | None = None,
        sections: dict[str, str] | None = None,
        qa: list[dict[str, str]] | None = None,
        rights_answer: str | None = None,
    ) -> OutboxItem:
        """Queue the transcript ``key`` as written (created on the server from its
        template, filled, finalised). Saved again before it left the device, the queued
        item changes; signatures taken before then no longer match and conflict."""
        transcript = self.store.draft(key)
        if transcript is None:
            raise FormErrors({"key": ["No such transcript."]})
        changes: dict[str, Any] = {"header": {k: v for k, v in (header or {}).items() if v}}
        missing = [f["key"] for f in transcript["header"] if f["required"]]
        missing = [key for key in missing if not changes["header"].get(key, "").strip()]
        if missing:
            raise FormErrors({"header": {key: ["Required"] for key in missing}})
        if transcript["body"] == "sections":
            changes["sections"] = dict(sections or {})
            empty = [k for k, text in changes["sections"].items() if not text.strip()]
            if empty:
                raise FormErrors({"sections": {k: ["Required"] for k in empty}})
        elif transcript["body"] == "qa":
            changes["qa"] = [dict(entry) for entry in qa or []]
            if not changes["qa"] or any(not e["answer"].strip() for e in changes["qa"]):
                raise FormErrors({"qa": ["Every question needs an answer."]})
            if transcript["rights_notice"]:
                if not (rights_answer or "").strip():
                    raise FormErrors({"rights_answer": ["Required"]})
                changes["rights_answer"] = rights_answer
        payload = {
            "case_id": transcript["case_id"],
            "kind": transcript["kind"],
            "person_id": transcript["person_id"],
            "changes": changes,
        }
        if transcript["item_id"] and self.outbox.get(transcript["item_id"]) is not None:
            item = self.outbox.replace_waiting(transcript["item_id"], payload)
        else:
            case = self._known_case(transcript["case_id"]) or {}
            item = self.outbox.enqueue(
                "transcript",
                payload,
                title=f"{case.get('title') or case.get('number', '')} · {transcript['title']}",
                depends_on=self._last_open_item_of(transcript["case_id"]),
            )
            transcript["item_id"] = item.id
            self.store.save_draft(key, transcript, _now().isoformat())
        return self._queued(item)

    def sign(
        self,
        transcript_item_id: str,
        signer_role: str,
        signer_name: str,
        strokes: list[list[list[float]]],
        image_png: bytes,
        *,
        signer_user_id: str | None = None,
        signer_id_number: str | None = None,
        fingerprint: str | Path | None = None,
    ) -> OutboxItem:
        """Queue a signature of the transcript (sent once it is finalised): the strokes,
        their PNG and a fingerprint photo; it covers what the transcript shows now."""
        transcript = self.outbox.get(transcript_item_id)
        if transcript is None or transcript.kind != "transcript":
            raise FormErrors({"transcript": ["No such transcript."]})
        if not strokes:
            raise FormErrors({"strokes": ["Sign in the box first."]})
        copy = None
        if fingerprint is not None:
            source = Path(fingerprint)
            copy = self.files_dir / f"{uuid.uuid4().hex}{source.suffix.lower()}"
            copy_with_hash(source, copy)
        payload = {
            "case_id": transcript.payload["case_id"],
            "document_id": transcript.payload["document_id"],
            "signer_role": signer_role,
            "signer_name": signer_name,
            "signer_user_id": signer_user_id,
            "signer_id_number": signer_id_number,
            "strokes": [[[round(v) for v in point] for point in s] for s in strokes],
            "image_png": base64.b64encode(image_png).decode("ascii"),
            "signed_at": datetime.now(UTC).isoformat(),
            "shown": transcript.payload["changes"],
        }
        try:
            item = self.outbox.enqueue(
                "signature",
                payload,
                title=f"{transcript.title} · {signer_name}",
                files=[str(copy)] if copy else [],
                depends_on=transcript_item_id,
            )
        except BaseException:
            if copy is not None:
                copy.unlink(missing_ok=True)
            raise
        return self._queued(item)

    # The outbox

    def outbox_items(self) -> list[OutboxItem]:
        return self.outbox.all()

    def retry(self, item_id: str) -> OutboxItem:
        return self._queued(self.outbox.retry(item_id))

    def redo(self, item_id: str, payload: dict[str, Any]) -> OutboxItem:
        """Redo a conflicting or failed item; a step is redone against the case as the
        server has it now (its current ETag)."""
        item = self.outbox.get(item_id)
        current_etag = ((item.server_state if item else None) or {}).get("etag")
        if item is not None and item.kind == "transition" and current_etag:
            payload = {**payload, "etag": current_etag}
        return self._queued(self.outbox.redo(item_id, payload))

    def discard(self, item_id: str) -> None:
        self.outbox.discard(item_id)

    def sync_status(self) -> SyncStatus:
        counts = self.outbox.counts()
        uploads = [
            (item.title, item.progress) for item in self.outbox.all() if item.state == "uploading"
        ]
        return SyncStatus(
            online=self.worker.online,
            waiting=counts["waiting"] + counts["sending"],
            uploading=counts["uploading"],
            failed=counts["failed"],
            conflicts=counts["conflict"],
            uploads=uploads,
        )

    # Reading (from the cache and the outbox)

    def my_cases(self) -> list[dict[str, Any]]:
        """Cached open cases, then cases registered on this device not yet delivered
        (``pending``); each with ``status_label`` and ``overdue``."""
        cases = [self._decorated(case) for case in self.store.cached_cases()]
        known = {case["id"] for case in cases}
        cases += [case for case in self._offline_cases() if case["id"] not in known]
        return cases

    def case(self, case_id: str) -> dict[str, Any] | None:
        """The cached case detail (case, etag, events, actions, persons, documents,
        evidence) with ``queued``: its items still in the outbox. A case not fetched yet
        gets the actions of its workflow for the roles of the user."""
        detail = self.store.cached_case(case_id)
        if detail is None:
            case = self._known_case(case_id)
            if case is None:
                return None
            actions = forms.available_actions(case["case_type"], case["status"], self.roles)
            detail = {"case": case, "etag": None, "actions": actions}
            detail.update(events=[], persons=[], documents=[], evidence=[])
        else:
            detail = {**detail, "case": self._decorated(detail["case"])}
        detail["queued"] = [
            item for item in self.outbox.all() if item.is_open and _case_of(item) == case_id
        ]
        return detail

    def pending_approvals(self) -> list[dict[str, Any]]:
        """Cached pending approvals, without those already decided on this device."""
        deciding = {
            item.payload["approval_id"]
            for item in self.outbox.all()
            if item.kind == "decision" and item.state != "failed"
        }
        return [a for a in self.store.cached_approvals() if a["id"] not in deciding]

    def returned_steps(self) -> list[dict[str, Any]]:
        """Steps returned to the officer in cached cases, not yet acknowledged."""
        acknowledged = set(json.loads(self.store.get_setting(ACKNOWLEDGED) or "[]"))
        returned = []
        for case in self.store.cached_cases():
            detail = self.store.cached_case(case["id"]) or {}
            for event in detail.get("events", []):
                key = f"{case['id']}:{event['seq']}"
                if event["type"] == "step_returned" and key not in acknowledged:
                    returned.append(
                        {
                            "key": key,
                            "case_id": case["id"],
                            "title": case.get("title") or case.get("number", ""),
                            "action": event.get("action"),
                            "comment": event.get("comment"),
                            "at": event.get("at"),
                        }
                    )
        return returned

    def acknowledge(self, key: str) -> None:
        """Mark a returned step (its ``key``) as seen."""
        acknowledged = json.loads(self.store.get_setting(ACKNOWLEDGED) or "[]")
        if key not in acknowledged:
            acknowledged.append(key)
            self.store.set_setting(ACKNOWLEDGED, json.dumps(acknowledged))

    def warnings(self) -> list[dict[str, Any]]:
        """The unresolved warnings on the user's cases, newest first, as the server sent
        them with ``text`` (the message in the app's language) and ``acknowledged``
        (on the server, or an acknowledgement saved on this device)."""
        acknowledging = self._acknowledging()
        side = "en" if self.language == "en" else "zh"
        shown = []
        for warning in self._cached_warnings():
            message = warning.get("message") or {}
            text = message.get(side) or next(iter(message.values()), "") or warning["rule_id"]
            acknowledged = warning["status"] != "open" or warning["id"] in acknowledging
            shown.append({**warning, "text": text, "acknowledged": acknowledged})
        return shown

    def attention_count(self) -> int:
        """The home screen's badge: warnings not yet acknowledged plus returned steps."""
        unread = sum(1 for warning in self.warnings() if not warning["acknowledged"])
        return unread + len(self.returned_steps())

    def acknowledge_warning(self, warning_id: str) -> OutboxItem:
        """Queue the acknowledgement of a warning (saved again only if an earlier one failed)."""
        for item in self.outbox.all():
            if (
                item.kind == "acknowledgement"
                and item.payload["warning_id"] == warning_id
                and item.state not in SETTLED_BY_USER
            ):
                return item
        warning = next((w for w in self._cached_warnings() if w["id"] == warning_id), None)
        number = (warning or {}).get("case_number") or warning_id
        item = self.outbox.enqueue(
            "acknowledgement", {"warning_id": warning_id}, title=f"{number} · 确认预警"
        )
        return self._queued(item)

    def workflow_form(self, case_type: str, action: str) -> list[FieldSpec]:
        return forms.workflow_form(case_type, action)

    # Session and settings

    @property
    def signed_in(self) -> bool:
        return self.worker.signed_in

    @property
    def username(self) -> str | None:
        return self.store.get_setting(USERNAME)

    @property
    def user(self) -> dict[str, Any] | None:
        raw = self.store.get_setting(USER)
        return json.loads(raw) if raw else None

    @property
    def roles(self) -> list[str]:
        return list((self.user or {}).get("roles", []))

    def sign_in(
        self,
        server_url: str,
        username: str,
        password: str,
        on_done: Callable[[SyncEvent], None] | None = None,
    ) -> None:
        """Sign in from the worker thread; the result comes as a ``signed_in`` or
        ``sign_in_failed`` event."""

        def done(event: SyncEvent) -> None:
            if event.kind == "signed_in":
                self.locked = False
            if on_done is not None:
                on_done(event)

        self.worker.sign_in(server_url, username, password, done)

    def lock(self) -> None:
        """The idle lock: the screens ask for the password again; sending goes on."""
        self.locked = True

    def sign_out(self, *, discard_unsent: bool = False) -> None:
        """End the sign-in and wipe cached case data and drafts (the device key stays).

        Raises ``UnsentItems`` while items wait for delivery, unless
        ``discard_unsent`` (then they are deleted with their files).
        """
        unsent = sum(1 for item in self.outbox.all() if item.is_open)
        if unsent and not discard_unsent:
            raise UnsentItems(unsent)
        self.worker.sign_out()
        if unsent:
            self.outbox.discard_undelivered()
        self.store.wipe_case_data()
        self.store.set_setting(USER, None)
        self.store.set_setting(ACKNOWLEDGED, None)

    @property
    def language(self) -> str:
        value = self.store.get_setting(LANGUAGE)
        return value if value in LANGUAGES else DEFAULT_LANGUAGE

    def set_language(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"Unsupported language {language!r}.")
        self.store.set_setting(LANGUAGE, language)

    @property
    def server_url(self) -> str | None:
        return self.store.get_setting(SERVER_URL)

    def set_server_url(self, url: str) -> None:
        self.store.set_setting(SERVER_URL, url.strip().rstrip("/"))

    # Internals

    def _cached_warnings(self) -> list[dict[str, Any]]:
        user_id = (self.user or {}).get("id")
        return self.store.cached_warnings(user_id) if user_id else []

    def _acknowledging(self) -> set[str]:
        """Warnings whose acknowledgement is saved here and not refused."""
        return {
            item.payload["warning_id"]
            for item in self.outbox.all()
            if item.kind == "acknowledgement" and item.state not in SETTLED_BY_USER
        }

    def _decorated(self, case: dict[str, Any]) -> dict[str, Any]:
        due = case.get("due_at")
        overdue = bool(due) and datetime.fromisoformat(due) < _now()
        label = forms.state_label(case.get("case_type", ""), case.get("status", ""))
        return {**case, "status_label": label, "overdue": overdue}

    def _offline_cases(self) -> list[dict[str, Any]]:
        """Cases registered by reports still in the outbox, shaped like server cases."""
        cases = []
        for item in self.outbox.all():
            accept = item.payload.get("accept") if item.kind == "incident" else None
            if accept is None or not item.is_open:
                continue
            workflow = forms.workflow(accept["case_type"])
            state = workflow.actions["accept"].target if "accept" in workflow.actions else ""
            cases.append(
                {
                    "id": accept["case_id"],
                    "number": "",
                    "case_type": accept["case_type"],
                    "status": state,
                    "status_label": forms.state_label(accept["case_type"], state),
                    "title": accept["title"],
                    "summary": item.payload.get("summary", ""),
                    "incident_id": item.payload["incident_id"],
                    "due_at": None,
                    "overdue": False,
                    "pending": True,
                }
            )
        return cases

    def _known_case(self, case_id: str) -> dict[str, Any] | None:
        detail = self.store.cached_case(case_id)
        if detail is not None:
            return detail["case"]
        for case in self.store.cached_cases():
            if case["id"] == case_id:
                return case
        for item in self.outbox.all():
            delivered = (item.server_state or {}).get("case") if item.kind == "incident" else None
            if item.state == "done" and delivered and delivered["id"] == case_id:
                return delivered
        return next((c for c in self._offline_cases() if c["id"] == case_id), None)

    def _creating_item(self, case_id: str) -> str | None:
        """The open outbox item that registers the case, if it is not delivered yet."""
        for item in self.outbox.all():
            accept = item.payload.get("accept") if item.kind == "incident" else None
            if accept and accept.get("case_id") == case_id and item.is_open:
                return item.id
        return None

    def _last_open_item_of(self, case_id: str) -> str | None:
        """The newest open item about the case: a step waits for it, keeping their order."""
        last = None
        for item in self.outbox.all():
            if item.is_open and _case_of(item) == case_id:
                last = item.id
        return last


def _case_of(item: OutboxItem) -> str | None:
    if item.kind == "incident":
        return (item.payload.get("accept") or {}).get("case_id")
    return item.payload.get("case_id")
