"""The request body of a chunk, read in large blocks straight from the WSGI input."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from backend.errors import Problem

BLOCK = 1024 * 1024

ReadInto = Callable[[memoryview], int]


class BodyCut(Exception):
    """The client stopped sending before the body was complete."""


class BodyTooLarge(Problem):
    status, slug = 413, "chunk-too-large"


@dataclass(frozen=True)
class Body:
    """``length`` is the declared Content-Length (None for a chunked body).

    ``readinto(view)`` fills ``view`` as far as the body goes and returns the
    number of bytes (fewer only at the end, 0 after it); it raises ``BodyCut``
    when the connection fails and ``BodyTooLarge`` past the request's limit.
    """

    length: int | None
    readinto: ReadInto


def request_body(limit: int) -> Body | None:
    """The current request's body, None when it has none; 413 past ``limit`` bytes.

    The application-wide MAX_CONTENT_LENGTH is raised to ``limit`` for this
    request only.
    """
    request.max_content_length = limit
    length = request.content_length
    if length is not None:
        if length > limit:
            raise BodyTooLarge(f"A chunk may have at most {limit} bytes.")
        if not length:
            return None
        stream = request.environ["wsgi.input"]
        return Body(length, _filling(_gunicorn_readinto(stream) or _generic_readinto(stream)))
    if request.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return None
    # Werkzeug limits a chunked body to max_content_length (set above).
    return Body(None, _filling(_generic_readinto(request.stream)))


def _generic_readinto(stream: Any) -> ReadInto:
    def readinto(view: memoryview) -> int:
        data = stream.read(len(view))
        view[: len(data)] = data
        return len(data)

    return readinto


def _gunicorn_readinto(stream: Any) -> ReadInto | None:
    """Read gunicorn's socket directly into the caller's buffer.

    gunicorn's ``Body.read`` gathers a body 1 KiB at a time through several
    BytesIO copies, which costs several times more CPU than writing and
    hashing the bytes. For a body of known length that nothing has read yet,
    take the bytes gunicorn already received after the headers, then
    ``recv_into`` the caller's buffer, keeping gunicorn's count of the bytes
    left so that it finds the request complete afterwards. Any other server or
    reader: None (use ``read``).
    """
    try:
        from gunicorn.http.body import Body as GunicornBody
        from gunicorn.http.body import LengthReader
        from gunicorn.http.unreader import SocketUnreader
    except ImportError:
        return None
    if type(stream) is not GunicornBody or stream.buf.getvalue():
        return None
    reader = stream.reader
    if type(reader) is not LengthReader or type(reader.unreader) is not SocketUnreader:
        return None
    unreader = reader.unreader

    def readinto(view: memoryview) -> int:
        size = min(len(view), reader.length)
        if size <= 0:
            return 0
        pending = unreader.buf.getvalue()
        if pending:
            count = min(size, len(pending))
            view[:count] = pending[:count]
            unreader.buf = io.BytesIO()
            unreader.buf.write(pending[count:])
        else:
            count = unreader.sock.recv_into(view[:size])
        reader.length -= count
        return count

    return readinto


def _filling(readinto: ReadInto) -> ReadInto:
    """Fill the whole view unless the body ends; failures become BodyCut / BodyTooLarge."""

    def fill(view: memoryview) -> int:
        filled = 0
        try:
            while filled < len(view):
                count = readinto(view[filled:])
                if not count:
                    break
                filled += count
        except RequestEntityTooLarge as exc:
            limit = request.max_content_length
            raise BodyTooLarge(f"A chunk may have at most {limit} bytes.") from exc
        except (OSError, ClientDisconnected) as exc:
            if not filled:
                raise BodyCut() from exc
            # Hand over what arrived; the next read meets the failure again.
        return filled

    return fill
