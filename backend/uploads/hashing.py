"""A SHA-256 whose running state can be saved and continued by another process.

Consecutive chunks of one upload usually land on different gunicorn workers.
``hashlib`` cannot export its state, so each worker would have to hash the
whole file again before continuing. OpenSSL's low-level ``SHA256_CTX`` is a
plain, documented struct (eight state words, the bit count, the pending block):
through ``ctypes`` its bytes are saved next to the upload's offset and restored
by whichever worker receives the next chunk. It runs the same assembly as
``hashlib``. Where libcrypto or these functions are missing (or fail the
self-test below), hashing falls back to ``hashlib`` and ``state()`` is None:
the caller then hashes the received bytes again from disk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import struct
from typing import Any

_CTX_SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len (32-bit words)
_COUNT = struct.Struct("=II")  # Nl, Nh: the bit count, after the eight state words
_STATE_VERSION = b"\x01"


def _load_libcrypto() -> Any:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.SHA256_Init.argtypes = [ctypes.c_void_p]
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return lib


_LIB = _load_libcrypto()


class ResumableSha256:
    """SHA-256 with ``state()`` / ``restore()``; see the module docstring."""

    def __init__(self, _ctx: Any = None, _count: int = 0) -> None:
        if _ctx is None:
            if _LIB is not None:
                _ctx = ctypes.create_string_buffer(_CTX_SIZE)
                _LIB.SHA256_Init(_ctx)
            else:
                _ctx = hashlib.sha256()
        self._ctx = _ctx
        self.byte_count = _count

    @property
    def resumable(self) -> bool:
        return isinstance(self._ctx, ctypes.Array)

    def update(self, data: bytes | memoryview) -> None:
        """Add ``data``: bytes, or a memoryview of a writable buffer (a bytearray)."""
        size = len(data)
        if not self.resumable:
            self._ctx.update(data)
        elif isinstance(data, bytes):
            _LIB.SHA256_Update(self._ctx, data, size)
        elif size:
            _LIB.SHA256_Update(self._ctx, (ctypes.c_char * size).from_buffer(data), size)
        self.byte_count += size

    def hexdigest(self) -> str:
        if not self.resumable:
            return self._ctx.hexdigest()
        scratch = ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)
        digest = ctypes.create_string_buffer(32)
        _LIB.SHA256_Final(digest, scratch)
        return digest.raw.hex()

    def state(self) -> bytes | None:
        """The running state to store, or None where it cannot be exported."""
        return _STATE_VERSION + self._ctx.raw if self.resumable else None

    @classmethod
    def restore(cls, state: bytes | None, byte_count: int) -> ResumableSha256 | None:
        """The hash continued from ``state``, if that covers exactly ``byte_count`` bytes."""
        if (
            _LIB is None
            or state is None
            or len(state) != 1 + _CTX_SIZE
            or state[:1] != _STATE_VERSION
        ):
            return None
        low, high = _COUNT.unpack_from(state, 1 + 32)
        if ((high << 32) | low) != byte_count * 8:
            return None
        return cls(ctypes.create_string_buffer(state[1:], _CTX_SIZE), byte_count)


def _self_test() -> bool:
    """The struct layout and functions behave as this module assumes."""
    first = ResumableSha256()
    first.update(b"fieldcase " * 13)
    second = ResumableSha256.restore(first.state(), first.byte_count)
    if second is None:
        return False
    second.update(b"upload")
    return second.hexdigest() == hashlib.sha256(b"fieldcase " * 13 + b"upload").hexdigest()


if _LIB is not None and not _self_test():
    _LIB = None
