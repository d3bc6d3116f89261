"""A fault-injecting TCP proxy on loopback, between a client and a real server.

Each accepted connection draws its fate from a seeded RNG: reset at once
(RST), dropped (closed without a word), cut after a random number of bytes in
either direction (the rest of the request or of the answer never arrives;
closed with RST or FIN), delayed (every block forwarded after a short pause),
or passed through untouched. The proxy never holds a connection open
forever: every fault ends in a close, so clients without timeouts (tuspy)
see an error rather than a hang.

    with FaultProxy(server_port, seed=1, rates=FaultRates(reset=0.05)) as proxy:
        requests.get(proxy.url + "/readyz")
        proxy.stats  # what happened, by kind
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal

BLOCK = 64 * 1024
Fate = Literal["reset", "drop", "cut_request", "cut_answer", "delay", "pass"]


@dataclass(frozen=True)
class FaultRates:
    """Probabilities per connection (the rest pass untouched). A request is cut within
    its first ``cut_max`` bytes, an answer within its first ``answer_cut_max`` (answers
    are short: most cuts then fall after the server has acted); ``max_delay``: seconds
    before each block of a delayed connection."""

    reset: float = 0.0
    drop: float = 0.0
    cut_request: float = 0.0
    cut_answer: float = 0.0
    delay: float = 0.0
    cut_max: int = 256 * 1024
    answer_cut_max: int = 1024
    max_delay: float = 0.02


NO_FAULTS = FaultRates()


def _abort(sock: socket.socket) -> None:
    """Close with RST (linger 0), as a crashed peer or a middlebox would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        seed: int = 0,
        rates: FaultRates = NO_FAULTS,
        upstream_host: str = "127.0.0.1",
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.rates = rates
        self.stats: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.stats[name] += amount

    def _draw(self) -> tuple[Fate, int, bool, float]:
        """A connection's fate, its cut point, whether the cut is an RST, its delay."""
        rates = self.rates
        with self._lock:
            roll = self._rng.random()
            cut_at = self._rng.randrange(0, max(1, rates.cut_max))
            answer_cut_at = self._rng.randrange(0, max(1, rates.answer_cut_max))
            rst = self._rng.random() < 0.5
            delay = self._rng.uniform(0, rates.max_delay)
        for fate, rate in (
            ("reset", rates.reset),
            ("drop", rates.drop),
            ("cut_request", rates.cut_request),
            ("cut_answer", rates.cut_answer),
            ("delay", rates.delay),
        ):
            if roll < rate:
                point = answer_cut_at if fate == "cut_answer" else cut_at
                return fate, point, rst, delay  # type: ignore[return-value]
            roll -= rate
        return "pass", cut_at, rst, delay

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        fate, cut_at, rst, delay = self._draw()
        self._count("connections")
        self._count(fate)
        if fate == "reset":
            _abort(client)
            return
        if fate == "drop":
            client.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _abort(client)
            self._count("upstream_refused")
            return
        upstream.settimeout(None)
        connection = _Connection(self, client, upstream, rst)
        budgets = {"cut_request": (cut_at, None), "cut_answer": (None, cut_at)}
        request_budget, answer_budget = budgets.get(fate, (None, None))
        pause = delay if fate == "delay" else 0.0
        forward = threading.Thread(
            target=connection.pump,
            args=(client, upstream, request_budget, pause, "bytes_up"),
            daemon=True,
        )
        forward.start()
        connection.pump(upstream, client, answer_budget, pause, "bytes_down")
        forward.join()
        connection.close()


class _Connection:
    """The two sockets of one proxied connection and how they end."""

    def __init__(
        self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket, rst: bool
    ) -> None:
        self.proxy = proxy
        self.sockets = (client, upstream)
        self.rst = rst
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def pump(
        self,
        source: socket.socket,
        target: socket.socket,
        budget: int | None,
        pause: float,
        counter: str,
    ) -> None:
        """Copy ``source`` to ``target``; after ``budget`` bytes, cut the connection."""
        try:
            while not self._closed.is_set():
                block = source.recv(BLOCK)
                if not block:
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    return
                if pause:
                    time.sleep(pause)
                if budget is not None and len(block) >= budget:
                    target.sendall(block[:budget])
                    self.proxy._count(counter, budget)
                    self.proxy._count("cuts")
                    self.cut()
                    return
                target.sendall(block)
                self.proxy._count(counter, len(block))
                if budget is not None:
                    budget -= len(block)
        except OSError:
            self.cut()

    def cut(self) -> None:
        """End both sides at once (RST or FIN, as drawn)."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            for sock in self.sockets:
                # SHUT_RD wakes the other pump's recv without sending anything.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD if self.rst else socket.SHUT_RDWR)
                if self.rst:
                    _abort(sock)
                else:
                    sock.close()

    def close(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            for sock in self.sockets:
                sock.close()
