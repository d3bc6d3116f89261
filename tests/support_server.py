"""The app served by a real gunicorn on loopback, for tests that need real HTTP:
tus clients, connections cut half-way, a server killed and started again.

``LiveServer`` is a context manager; ``live_server_fixture(...)`` makes a pytest
fixture of one. The server uses the test database (the ``database_url``
fixture, migrated by the ``app`` fixture) and conftest's JWT key, so tokens from
the ``api`` fixture's login work against it::

    from support_server import live_server_fixture

    live_server = live_server_fixture(scope="module", workers=2)

    def test_something(live_server, api, world):
        token = api.token(world.user("a1.officer"))
        requests.get(live_server.url("/api/v1/cases"), headers={"Authorization": ...})
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from conftest import SIGNING_KEY

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """gunicorn with the product's settings (``backend.gunicorn_conf``).

    ``settings`` are extra ``FIELDCASE_*`` variables, e.g.
    ``{"FIELDCASE_UPLOAD_DIR": "/tmp/x"}``. ``stop()`` ends it gracefully,
    ``kill()`` with SIGKILL to the master and every worker at once (a crash);
    ``start()`` again serves on the same port.
    """

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        workers: int = 2,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.workers = workers
        self.settings = settings or {}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "gunicorn.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "FIELDCASE_DATABASE_URL": self.database_url,
            "FIELDCASE_JWT_PRIVATE_KEY": SIGNING_KEY,
            "FIELDCASE_BIND": f"127.0.0.1:{self.port}",
            "FIELDCASE_WORKERS": str(self.workers),
            "FIELDCASE_ACCESS_LOG": str(self.workdir / "access.log"),
            "FIELDCASE_RATE_LIMIT_LOGIN_PER_MINUTE": "100000",
            "FIELDCASE_RATE_LIMIT_REFRESH_PER_MINUTE": "100000",
            **self.settings,
        }

    def start(self) -> LiveServer:
        if self.process is not None:
            raise RuntimeError("the server is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "python:backend.gunicorn_conf",
                    "backend:create_app()",
                ],
                cwd=ROOT,
                env=self.environment(),
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: kill() reaches the workers
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self._ready():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become ready:\n" + self.log())
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            return requests.get(self.url("/readyz"), timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or no worker booted yet
            return False

    def stop(self) -> None:
        """SIGTERM: workers finish their requests, then exit."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL to the whole process group, like a crash of the machine's server."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def restart(self, *, crash: bool = False) -> LiveServer:
        self.kill() if crash else self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


Settings = Callable[[pytest.FixtureRequest, Path], dict[str, str]]


def live_server_fixture(
    *, scope: str = "module", workers: int = 2, settings: Settings | dict[str, str] | None = None
) -> Any:
    """A pytest fixture yielding a started ``LiveServer`` for the test database.

    ``settings`` may be a function of the fixture request and the server's work
    directory (a fresh temporary folder), to use other fixtures, e.g.
    ``lambda request, workdir: {"FIELDCASE_UPLOAD_DIR": str(request.getfixturevalue("d"))}``.
    """

    @pytest.fixture(scope=scope)
    def live_server(
        request: pytest.FixtureRequest,
        app: Any,
        database_url: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[LiveServer]:
        workdir = tmp_path_factory.mktemp("live-server")
        extra = settings(request, workdir) if callable(settings) else dict(settings or {})
        with LiveServer(database_url, workdir, workers=workers, settings=extra) as server:
            yield server

    return live_server


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve a WSGI app (e.g. a test app of ``make_app``) in this process, on a free
    local port, from a background thread (werkzeug, threaded); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
