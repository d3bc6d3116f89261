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


class BodyCut(Exception):
    """The client stopped sending before the body was complete."""


class BodyTooLarge(Problem):
    status, slug = 413, "chunk-too-large"


@dataclass(frozen=True)
class Body:
    """``length`` is the declared Content-Length (None for a chunked body);
    ``read(n)`` returns up to ``n`` bytes, b"" at the end, and raises
    ``BodyCut`` or ``BodyTooLarge``."""

    length: int | None
    read: Callable[[int], bytes]


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
        return Body(length, _guarded(_reader(request.environ["wsgi.input"]))) if length else None
    if request.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return None
    # Werkzeug limits a chunked body to max_content_length (set above).
    return Body(None, _guarded(request.stream.read))


def _reader(stream: Any) -> Callable[[int], bytes]:
    """The fastest way to read ``stream``.

    gunicorn's ``Body.read`` gathers a body 1 KiB at a time through BytesIO
    copies, which costs more CPU than hashing it; the reader underneath returns
    whole socket reads. When nothing is buffered in front of that reader, read
    it directly (with socket reads of a block); otherwise, and under any other
    server, use the WSGI ``read``.
    """
    reader = getattr(stream, "reader", None)
    buffered = getattr(stream, "buf", None)
    if not callable(getattr(reader, "read", None)) or not isinstance(buffered, io.BytesIO):
        return stream.read
    if buffered.getvalue():
        return stream.read
    unreader = getattr(reader, "unreader", None)
    if isinstance(getattr(unreader, "mxchunk", None), int):
        unreader.mxchunk = max(unreader.mxchunk, BLOCK)
    return reader.read


def _guarded(read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    def guarded_read(size: int) -> bytes:
        try:
            return read(size)
        except RequestEntityTooLarge as exc:
            limit = request.max_content_length
            raise BodyTooLarge(f"A chunk may have at most {limit} bytes.") from exc
        except (OSError, ClientDisconnected) as exc:
            raise BodyCut() from exc

    return guarded_read
