"""The mobile client's local store and outbox, without a server or a window."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mobile.services.device import DeviceKeys
from mobile.services.outbox import Outbox, OutboxError
from mobile.services.store import LocalStore

ROOT = Path(__file__).resolve().parent.parent

REPORT = {
    "occurred_at": "2026-03-01T09:30:00+08:00",
    "place": "人民路1号",
    "category": "治安",
    "summary": "两人在夜市互殴。",
    "accept": {"case_type": "administrative", "title": "夜市斗殴"},
}


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "device" / "fieldcase.db")


def test_the_store_runs_in_wal_mode_with_full_sync(store: LocalStore) -> None:
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL


def test_an_enqueued_item_is_on_disk_when_enqueue_returns(tmp_path: Path) -> None:
    """A process that enqueues and is then killed (SIGKILL) leaves the item on disk."""
    path = tmp_path / "fieldcase.db"
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from mobile.services.outbox import Outbox
        from mobile.services.store import LocalStore
        outbox = Outbox(LocalStore(Path({str(path)!r})))
        item = outbox.enqueue("incident", {REPORT!r}, title="夜市斗殴")
        print(item.id, item.payload["incident_id"], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == -9, run.stderr
    item_id, incident_id = run.stdout.split()
    item = Outbox(LocalStore(path)).get(item_id)
    assert item is not None
    assert item.state == "waiting"
    assert item.payload["incident_id"] == incident_id
    assert item.idempotency_key == item_id


def test_enqueue_puts_client_generated_ids_into_the_payload(store: LocalStore) -> None:
    outbox = Outbox(store)
    report = outbox.enqueue("incident", REPORT, title="r")
    assert report.payload["incident_id"] != report.payload["accept"]["case_id"]
    person = outbox.enqueue(
        "person",
        {"case_id": report.payload["accept"]["case_id"], "role": "witness", "name": "李四"},
        title="p",
        depends_on=report.id,
    )
    assert person.payload["person_id"]
    assert person.depends_on == report.id
    again = outbox.get(report.id)
    assert again is not None and again.payload == report.payload


def test_evidence_is_hashed_at_enqueue(store: LocalStore, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 not really a jpeg" * 1000)
    item = Outbox(store).enqueue(
        "evidence", {"case_id": "c", "kind": "photo"}, title="e", files=[str(photo)]
    )
    assert item.payload["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert item.payload["size"] == photo.stat().st_size
    assert item.payload["evidence_id"]


def test_items_are_ready_in_order_once_their_dependency_is_done(store: LocalStore) -> None:
    outbox = Outbox(store)
    first = outbox.enqueue("incident", REPORT, title="1")
    second = outbox.enqueue("transition", {"case_id": "c"}, title="2", depends_on=first.id)
    third = outbox.enqueue("decision", {"approval_id": "a"}, title="3")
    ready = outbox.next_ready()
    assert ready is not None and ready.id == first.id
    ready = outbox.next_ready(skip=[first.id])
    assert ready is not None and ready.id == third.id
    outbox.mark(first.id, "done")
    ready = outbox.next_ready()
    assert ready is not None and ready.id == second.id


def test_only_failed_or_conflicting_items_can_be_discarded_or_retried(store: LocalStore) -> None:
    outbox = Outbox(store)
    item = outbox.enqueue("decision", {"approval_id": "a", "decision": "approve"}, title="d")
    with pytest.raises(OutboxError):
        outbox.discard(item.id)
    with pytest.raises(OutboxError):
        outbox.retry(item.id)
    outbox.mark(item.id, "failed", error="422", count_attempt=True)
    retried = outbox.retry(item.id)
    assert retried.state == "waiting" and retried.error is None and retried.attempts == 1
    outbox.mark(item.id, "conflict", error="409", server_state={"approval": {"status": "x"}})
    outbox.discard(item.id)
    assert outbox.get(item.id) is None


def test_discarding_an_item_fails_those_that_depend_on_it(store: LocalStore) -> None:
    outbox = Outbox(store)
    report = outbox.enqueue("incident", REPORT, title="r")
    step = outbox.enqueue("transition", {"case_id": "c"}, title="s", depends_on=report.id)
    outbox.mark(report.id, "failed", error="bad")
    outbox.discard(report.id)
    after = outbox.get(step.id)
    assert after is not None and after.state == "failed" and "discarded" in (after.error or "")


def test_redo_keeps_the_ids_and_takes_a_new_idempotency_key(store: LocalStore) -> None:
    outbox = Outbox(store)
    item = outbox.enqueue("person", {"case_id": "c", "role": "witness", "name": "王五"}, title="p")
    outbox.mark(item.id, "conflict", error="409")
    redone = outbox.redo(item.id, {"case_id": "c", "role": "witness", "name": "王五五"})
    assert redone.state == "waiting"
    assert redone.payload["person_id"] == item.payload["person_id"]
    assert redone.payload["name"] == "王五五"
    assert redone.idempotency_key != item.idempotency_key


def test_in_flight_items_wait_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "fieldcase.db"
    outbox = Outbox(LocalStore(path))
    item = outbox.enqueue("decision", {"approval_id": "a"}, title="d")
    outbox.mark(item.id, "sending")
    outbox.set_upload_url(item.id, "http://server/api/v1/uploads/x")
    reopened = Outbox(LocalStore(path))
    reopened.recover()
    after = reopened.get(item.id)
    assert after is not None
    assert after.state == "waiting" and after.upload_url == "http://server/api/v1/uploads/x"


def test_wipe_removes_case_data_and_keeps_the_device_key(store: LocalStore) -> None:
    device = DeviceKeys(store)
    public_key, device_id = device.public_key_text(), device.device_id
    store.set_setting("language", "en")
    store.cache_cases([{"id": "c1", "title": "案件"}])
    store.cache_case("c1", {"case": {"id": "c1"}, "etag": '"1"'})
    store.cache_approvals([{"id": "a1"}])
    store.save_draft("report", {"summary": "草稿"}, "2026-03-01T00:00:00+00:00")
    outbox = Outbox(store)
    delivered = outbox.enqueue("decision", {"approval_id": "a"}, title="d")
    outbox.mark(delivered.id, "done")
    waiting = outbox.enqueue("decision", {"approval_id": "b"}, title="e")

    store.wipe_case_data()

    assert store.cached_cases() == [] and store.cached_case("c1") is None
    assert store.cached_approvals() == [] and store.draft("report") is None
    assert outbox.get(delivered.id) is None
    assert outbox.get(waiting.id) is not None
    reloaded = DeviceKeys(LocalStore(store.path))
    assert reloaded.public_key_text() == public_key and reloaded.device_id == device_id
    assert store.get_setting("language") == "en"
    assert "案件".encode() not in store.path.read_bytes()


def test_the_device_key_is_generated_once(tmp_path: Path) -> None:
    path = tmp_path / "fieldcase.db"
    first = DeviceKeys(LocalStore(path))
    key, device_id = first.public_key_text(), first.device_id
    second = DeviceKeys(LocalStore(path))
    assert second.public_key_text() == key and second.device_id == device_id
    assert second.device_id_for("a") != second.device_id_for("b")
    assert len(second.device_id_for("someone")) <= 64
    assert not second.enrolled_for("http://s", "a")
    second.mark_enrolled("http://s/", "A")
    assert second.enrolled_for("http://S", "a")
