"""A field device for tests of the mobile client's core: its own local store,
outbox, device key and sync worker, pointed at a real Fieldcase server.

``Phone.wait_for`` waits for an event from the sync worker (a condition
variable, no sleeping); ``serve_on`` serves a test app on a chosen port, so a
server can go away and come back at the same address.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from mobile.services.device import DeviceKeys
from mobile.services.outbox import Outbox, OutboxItem
from mobile.services.store import LocalStore
from mobile.services.sync import SyncEvent, SyncWorker, default_client_factory
from mobile.state import AppState

from conftest import PASSWORD, OrgUser

WAIT_SECONDS = 45.0
FAST_RETRY = {"backoff_base": 0.05, "backoff_max": 0.5, "refresh_interval": 3600.0}


class OneRequestPerConnection(WSGIRequestHandler):
    """No keep-alive: a server that goes away leaves no open connection behind."""

    protocol_version = "HTTP/1.0"


@contextmanager
def serve_on(app: Flask, port: int) -> Iterator[str]:
    """Serve ``app`` at ``127.0.0.1:port`` from a thread until the block ends."""
    server = make_server(
        "127.0.0.1", port, app, threaded=True, request_handler=OneRequestPerConnection
    )
    thread = threading.Thread(target=server.serve_forever, name=f"serve-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


class Phone:
    """One installation of the app in ``data_dir``; ``restart()`` is a new process's view."""

    def __init__(self, data_dir: Path, server_url: str, **worker_options: Any) -> None:
        self.data_dir = data_dir
        self.server_url = server_url
        self.worker_options = {**FAST_RETRY, "rng": random.Random(7), **worker_options}
        self.events: list[SyncEvent] = []
        self.listeners: list[Callable[[SyncEvent], None]] = []
        self._changed = threading.Condition()
        self._open()

    def _open(self) -> None:
        self.store = LocalStore(self.data_dir / "fieldcase.db")
        self.store.set_setting("server_url", self.server_url)
        self.outbox = Outbox(self.store, self.data_dir / "files")
        self.device = DeviceKeys(self.store)
        self.worker = SyncWorker(
            self.store,
            self.outbox,
            self.device,
            default_client_factory(self.store),
            self._on_event,
            **self.worker_options,
        )
        self.state = AppState(self.store, self.outbox, self.worker)

    def _on_event(self, event: SyncEvent) -> None:
        for listener in self.listeners:
            listener(event)
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, check: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
        """Wait until ``check()`` is truthy, looking again after every event."""
        with self._changed:
            result = self._changed.wait_for(check, timeout)
        assert result, f"gave up waiting; events: {[e.kind for e in self.events[-20:]]}"
        return result

    def event(self, kind: str) -> SyncEvent | None:
        return next((e for e in reversed(self.events) if e.kind == kind), None)

    def sign_in(self, user: OrgUser, password: str = PASSWORD) -> SyncEvent:
        done: list[SyncEvent] = []
        self.worker.sign_in(self.server_url, user.username, password, done.append)
        self.wait_for(lambda: done)
        return done[0]

    def settled(self) -> bool:
        """Nothing is waiting or in flight."""
        counts = self.outbox.counts()
        return counts["waiting"] + counts["sending"] + counts["uploading"] == 0

    def wait_settled(self, timeout: float = WAIT_SECONDS) -> list[OutboxItem]:
        self.worker.wake()
        self.wait_for(self.settled, timeout)
        return self.outbox.all()

    def restart(self, **worker_options: Any) -> None:
        """Stop the worker and open everything again from the files on disk."""
        self.worker.stop()
        self.store.close()
        self.worker_options.update(worker_options)
        self._open()

    def close(self) -> None:
        self.worker.stop()
        self.store.close()
