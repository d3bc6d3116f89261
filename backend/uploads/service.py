"""Resumable uploads (tus 1.0.0): creation, chunks, termination, expiry.

The bytes of an upload go to one partial file, ``UPLOAD_DIR/<id>.part``. Who
may write to it is decided by an exclusive ``flock`` on that file, taken
without waiting: a second concurrent chunk gets 409, and a worker that dies
loses its lock with its process. Within a request the lock is held until the
request's transaction has committed (see ``release_locks``), so the next
writer always reads the offset the last one wrote.

No database transaction stays open while bytes stream in: on SQLite it would
hold the database's write lock for the whole transfer. A chunk reads what it
needs, ends the transaction, streams, and writes the new offset in a fresh
transaction that ``backend.lifecycle`` commits.

The offset stored in the row is the truth; bytes in the file past it (a
worker killed mid-chunk, a failed commit) are dropped by the next chunk. A
file shorter than the row's offset (lost on a crash of the machine) counts
only as far as it goes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import fcntl
import hashlib
import os
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from flask import current_app, g, has_request_context

from backend.cases import service as cases
from backend.cases.models import Case
from backend.common import utcnow
from backend.errors import Conflict, Forbidden, NotFound, Problem
from backend.extensions import db
from backend.jobs import service as jobs
from backend.org.models import User
from backend.uploads.body import BLOCK, Body, BodyCut
from backend.uploads.hashing import ResumableSha256
from backend.uploads.models import Upload
from shared.enums import Role

TUS_VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "checksum", "termination", "expiration")
CHECKSUM_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}
METADATA_MAX_CHARS = 4096
METADATA_KEY = re.compile(r"^[\x21-\x2b\x2d-\x7e]+$")  # visible ASCII but the comma
FILETYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9!#$&^_.+-]{1,127}$")
DIGITS = re.compile(r"^[0-9]{1,19}$")
FILENAME_MAX_CHARS = 255
WRITE_SLICE = 64 * 1024
_LOCKS = "upload_locks"


class UploadGone(Problem):
    status, slug = 410, "upload-expired"


class ChecksumMismatch(Problem):
    """tus 460: the chunk does not match its Upload-Checksum; it was not kept."""

    status, slug = 460, "checksum-mismatch"


class IncompleteBody(Problem):
    """The client stopped sending; the bytes that arrived are kept (tus resumes from them)."""

    status, slug = 400, "incomplete-body"
    keep_changes = True


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


@dataclass(frozen=True)
class Metadata:
    case_id: uuid.UUID
    filename: str | None
    filetype: str | None
    header: str


# Paths and locks


def upload_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def _path(upload_id: uuid.UUID) -> Path:
    return upload_dir() / f"{upload_id.hex}.part"


def upload_path(upload: Upload) -> Path:
    """The upload's partial file (complete once ``upload.completed_at`` is set)."""
    return _path(upload.id)


def _try_lock(path: Path, *, create: bool) -> IO[bytes] | None:
    """The file opened and exclusively locked, or None when another writer holds it.

    Without ``create``, a missing file raises FileNotFoundError.
    """
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    handle = os.fdopen(os.open(path, flags, 0o600), "r+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _claim(upload_id: uuid.UUID) -> IO[bytes]:
    """Lock the upload's file for this request, until after its commit; 409 when busy."""
    upload_dir().mkdir(parents=True, exist_ok=True)
    handle = _try_lock(_path(upload_id), create=True)
    if handle is None:
        raise Conflict(
            "Another request is writing to this upload; ask for its offset and retry.",
            slug="upload-busy",
        )
    return _hold(handle)


def _hold(handle: IO[bytes]) -> IO[bytes]:
    """Keep ``handle`` (and its lock) open until the request's teardown."""
    if has_request_context():
        g.setdefault(_LOCKS, []).append(handle)
    return handle


def release_locks() -> None:
    """Release the upload locks of the request (at teardown, after its commit)."""
    for handle in g.pop(_LOCKS, []):
        handle.close()


# Parsing the tus headers


def parse_length(header: str | None) -> int:
    if header is None:
        raise Problem("Upload-Length is required (deferred lengths are not supported).")
    if not DIGITS.match(header):
        raise Problem("Upload-Length must be a non-negative integer.")
    length = int(header)
    if length == 0:
        raise Problem("An empty file cannot be evidence; Upload-Length must be at least 1.")
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if length > limit:
        raise Problem(
            f"A file may have at most {limit} bytes.", status=413, slug="upload-too-large"
        )
    return length


def parse_offset(header: str | None) -> int:
    if header is None or not DIGITS.match(header):
        raise Problem("Upload-Offset must be a non-negative integer.")
    return int(header)


def parse_checksum(header: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; 400 for others (tus)."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise Problem(
            f"Upload-Checksum algorithm must be one of {', '.join(CHECKSUM_ALGORITHMS)}.",
            slug="checksum-algorithm",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error as exc:
        raise Problem("Upload-Checksum must carry a base64 digest.") from exc
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
        raise Problem(f"Upload-Checksum is not a {algorithm} digest.")
    return Checksum(algorithm, digest)


def _metadata_pairs(header: str) -> dict[str, str | None]:
    pairs: dict[str, str | None] = {}
    for item in header.split(","):
        key, _, encoded = item.strip().partition(" ")
        if not METADATA_KEY.match(key) or key in pairs:
            raise ValueError("bad or repeated key")
        if not encoded:
            pairs[key] = None
            continue
        value = base64.b64decode(encoded, validate=True).decode("utf-8")
        if "\x00" in value:
            raise ValueError("NUL in a value")
        pairs[key] = value
    return pairs


def clean_filename(raw: str | None) -> str | None:
    """The base name of a client's file name, without control or format characters.

    Directory parts (``/`` or ``\\``) are dropped: ``../../etc/passwd`` becomes
    ``passwd`` and ``C:\\DCIM\\IMG_1.JPG`` becomes ``IMG_1.JPG``. The name is
    only ever shown or offered on download; the file on disk is named by the id.
    400 when nothing usable remains or the name is too long.
    """
    if raw is None:
        return None
    text = unicodedata.normalize("NFC", raw)
    base = re.split(r"[/\\]", text)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf"))
    base = base.strip().lstrip(".").strip()
    if not base:
        raise Problem("The filename in Upload-Metadata has no usable name.", slug="bad-filename")
    if len(base) > FILENAME_MAX_CHARS:
        raise Problem(
            f"The filename may have at most {FILENAME_MAX_CHARS} characters.", slug="bad-filename"
        )
    return base


def parse_metadata(header: str | None) -> Metadata:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (tus).

    ``case_id`` is required; ``filename`` and ``filetype`` are kept (the type
    is the client's claim, advisory only); other keys are echoed back on HEAD.
    """
    if not header or not header.strip():
        raise Problem("Upload-Metadata must name the case: case_id <base64 of its id>.")
    if len(header) > METADATA_MAX_CHARS:
        raise Problem(f"Upload-Metadata may have at most {METADATA_MAX_CHARS} characters.")
    try:
        pairs = _metadata_pairs(header)
    except (ValueError, binascii.Error) as exc:
        raise Problem(
            "Upload-Metadata must be comma-separated pairs of a key and a base64 value.",
            slug="bad-metadata",
        ) from exc
    try:
        case_id = uuid.UUID(pairs.get("case_id") or "")
    except ValueError as exc:
        raise Problem("Upload-Metadata must carry the case's id as case_id.") from exc
    filetype = pairs.get("filetype")
    if filetype is not None and not FILETYPE.match(filetype):
        raise Problem("filetype in Upload-Metadata must be a media type such as image/jpeg.")
    return Metadata(case_id, clean_filename(pairs.get("filename")), filetype, header.strip())


# Reading uploads


def _expired(upload: Upload, now: datetime) -> bool:
    return upload.completed_at is None and upload.expires_at <= now


def _owned(user_id: uuid.UUID, upload_id: uuid.UUID, *, for_update: bool = False) -> Upload:
    query = sa.select(Upload).where(Upload.id == upload_id)
    upload = db.session.scalar(query.with_for_update() if for_update else query)
    if upload is None or upload.user_id != user_id:
        raise NotFound("No such upload.")
    return upload


def get_upload(user: User, upload_id: uuid.UUID) -> Upload:
    """The caller's upload; 404 for anyone else's, 410 once it has expired unfinished."""
    upload = _owned(user.id, upload_id)
    if _expired(upload, utcnow()):
        raise UploadGone("The upload expired before it was finished.")
    return upload


def current_offset(upload: Upload) -> int:
    """The bytes received: the row's offset, as far as the file really holds them."""
    if upload.completed_at is not None:
        return upload.offset
    try:
        size = _path(upload.id).stat().st_size
    except FileNotFoundError:
        size = 0
    return min(upload.offset, size)


# Creation


def _writable_case(user: User, case_id: uuid.UUID) -> Case:
    if not user.has_role(Role.OFFICER):
        raise Forbidden("Only officers upload evidence.")
    case = cases.get_case(user, case_id, for_update=True)
    cases.ensure_open(case)
    return case


def _check_case_room(case: Case, length: int) -> None:
    """The case's stored evidence, its pending uploads and this one fit the per-case cap."""
    from backend.evidence.service import case_evidence_bytes

    pending = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Upload.length), 0)).where(
            Upload.case_id == case.id,
            Upload.consumed_at.is_(None),
            sa.or_(Upload.completed_at.is_not(None), Upload.expires_at > utcnow()),
        )
    )
    limit = current_app.config["CASE_EVIDENCE_MAX_BYTES"]
    if case_evidence_bytes(case.id) + pending + length > limit:
        raise Problem(
            f"The case's evidence would exceed its limit of {limit} bytes.",
            status=413,
            slug="case-evidence-limit",
        )


def _fits(start: int, length: int, body: Body | None) -> None:
    if body is not None and body.length is not None and start + body.length > length:
        raise Problem(
            "The chunk would go past Upload-Length.", status=413, slug="past-upload-length"
        )


def create(
    user: User, length: int, metadata: Metadata, body: Body | None, checksum: Checksum | None
) -> Upload:
    """Create an upload for one of the caller's open cases, with its first bytes if sent.

    With a body (creation-with-upload), the checks run before any byte is read
    and again, in a fresh transaction, before the row is written: no
    transaction is held while the bytes stream in.
    """
    _check_case_room(_writable_case(user, metadata.case_id), length)
    _fits(0, length, body)
    upload_id = uuid.uuid4()
    path = _path(upload_id)
    upload_dir().mkdir(parents=True, exist_ok=True)
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), "r+b")
    try:
        received = 0
        digest = ResumableSha256()
        if body is not None:
            db.session.rollback()
            try:
                received = _receive(handle, 0, length, body, digest, checksum)
            except BodyCut:
                raise Problem(
                    "The body ended early; no upload was created.", slug="incomplete-body"
                ) from None
            _check_case_room(_writable_case(user, metadata.case_id), length)
        upload = Upload(
            id=upload_id,
            user_id=user.id,
            case_id=metadata.case_id,
            length=length,
            filename=metadata.filename,
            filetype=metadata.filetype,
            metadata_header=metadata.header,
            **_progress(length, received, digest),
        )
        db.session.add(upload)
        db.session.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        handle.close()
    return upload


# Chunks


@dataclass(frozen=True)
class Progress:
    """Where an upload stands after a chunk: its offset, and its expiry while unfinished."""

    offset: int
    expires_at: datetime | None


_UPLOADS = Upload.__table__
# Built once: a chunk runs one of each, and building a statement costs more than running it.
_CHUNK_ROW = sa.select(
    _UPLOADS.c.user_id,
    _UPLOADS.c.offset,
    _UPLOADS.c.length,
    _UPLOADS.c.hash_state,
    _UPLOADS.c.completed_at,
    _UPLOADS.c.expires_at,
).where(_UPLOADS.c.id == sa.bindparam("upload_id"))
_ADVANCE = (
    sa.update(_UPLOADS)
    .where(_UPLOADS.c.id == sa.bindparam("upload_id"))
    .where(_UPLOADS.c.offset == sa.bindparam("old_offset"))
    .values(
        offset=sa.bindparam("new_offset"),
        expires_at=sa.bindparam("new_expires_at"),
        sha256=sa.bindparam("new_sha256"),
        completed_at=sa.bindparam("new_completed_at"),
        hash_state=sa.bindparam("new_hash_state"),
    )
)


def _chunk_row(user_id: uuid.UUID, upload_id: uuid.UUID) -> sa.Row[Any]:
    """What a chunk needs of the caller's upload, in one read; 404 for anyone else's."""
    found = db.session.connection().execute(_CHUNK_ROW, {"upload_id": upload_id}).first()
    if found is None or found.user_id != user_id:
        raise NotFound("No such upload.")
    return found


def _lock_for_chunk(user_id: uuid.UUID, upload_id: uuid.UUID) -> IO[bytes] | None:
    """The upload's file, locked until after the request's commit; None for a finished
    upload whose file is gone (its bytes went to evidence and were purged).

    409 while another request writes to it, 404 for anyone but its owner. A
    missing file of an unfinished upload (lost in a crash) is made again, empty.
    """
    try:
        handle = _try_lock(_path(upload_id), create=False)
    except FileNotFoundError:
        if _chunk_row(user_id, upload_id).completed_at is not None:
            return None
        return _claim(upload_id)
    if handle is None:
        _chunk_row(user_id, upload_id)
        raise Conflict(
            "Another request is writing to this upload; ask for its offset and retry.",
            slug="upload-busy",
        )
    return _hold(handle)


def _end_transaction() -> None:
    """End the transaction before bytes stream in, keeping the objects it loaded.

    ``rollback()`` would expire them, and the request's user and session (loaded
    and checked by authentication) would be read again for the audit row. Only
    unchanged objects are kept; nothing of this transaction is written.
    """
    session = db.session()
    kept = [item for item in session.identity_map.values() if item not in session.dirty]
    session.expunge_all()
    session.rollback()
    for item in kept:
        session.add(item)


def append(
    user: User, upload_id: uuid.UUID, offset: int, body: Body | None, checksum: Checksum | None
) -> Progress:
    """Write a chunk at ``offset`` (which must be the upload's offset, else 409).

    A chunk whose checksum does not match is dropped (460). A chunk cut short
    keeps the bytes that arrived, unless it carried a checksum; either way the
    client asks for the offset (HEAD) and resumes.

    The file's lock comes first, so the row is read once, under it, and
    written once, by a plain UPDATE that expects the offset it read.
    """
    handle = _lock_for_chunk(user.id, upload_id)
    upload = _chunk_row(user.id, upload_id)
    if upload.completed_at is None and upload.expires_at <= utcnow():
        raise UploadGone("The upload expired before it was finished.")
    if upload.completed_at is not None or handle is None:
        if offset != upload.length:
            raise Conflict(f"Upload-Offset must be {upload.length}.", slug="offset-mismatch")
        _fits(offset, upload.length, body)
        return Progress(upload.length, None)
    start = min(upload.offset, os.fstat(handle.fileno()).st_size)
    if offset != start:
        raise Conflict(f"Upload-Offset must be {start}.", slug="offset-mismatch")
    _fits(start, upload.length, body)
    _end_transaction()
    digest = ResumableSha256.restore(upload.hash_state, start) or _rehash(handle, start)
    try:
        received = _receive(handle, start, upload.length, body, digest, checksum)
    except BodyCut:
        received = digest.byte_count - start
        if checksum is not None or received <= 0:
            _truncate(handle, start)
            raise Problem(
                "The chunk ended early; nothing of it was kept.", slug="incomplete-body"
            ) from None
        _advance(upload_id, upload.offset, _progress(upload.length, start + received, digest))
        raise IncompleteBody(
            f"The chunk ended early; {received} bytes were kept. Resume from the offset."
        ) from None
    values = _progress(upload.length, start + received, digest)
    _advance(upload_id, upload.offset, values)
    return Progress(values["offset"], None if values["completed_at"] else values["expires_at"])


def _rehash(handle: IO[bytes], offset: int) -> ResumableSha256:
    """Hash the first ``offset`` bytes of the file again (no saved state fits them)."""
    digest = ResumableSha256()
    position = 0
    while position < offset:
        block = os.pread(handle.fileno(), min(BLOCK, offset - position), position)
        if not block:
            raise Problem("The upload's file is shorter than its offset.", status=500)
        digest.update(block)
        position += len(block)
    return digest


def _truncate(handle: IO[bytes], size: int) -> None:
    handle.flush()
    os.ftruncate(handle.fileno(), size)


def _receive(
    handle: IO[bytes],
    start: int,
    length: int,
    body: Body | None,
    digest: ResumableSha256,
    checksum: Checksum | None,
) -> int:
    """Stream ``body`` into the file at ``start``; the number of bytes written.

    Bytes past ``start`` left by an earlier, failed chunk are dropped first.
    ``digest`` takes in every byte written. On ``BodyCut`` the bytes that
    arrived stay in the file; on any other failure, and on a checksum
    mismatch, the file is cut back to ``start``.
    """
    _truncate(handle, start)
    fd = handle.fileno()
    chunk_hash = CHECKSUM_ALGORITHMS[checksum.algorithm]() if checksum else None
    declared = 0 if body is None else body.length
    limit = length - start if declared is None else declared
    received = 0
    buffer = memoryview(bytearray(BLOCK))
    try:
        while body is not None and received < limit:
            block = buffer[: body.readinto(buffer[: min(BLOCK, limit - received)])]
            if not block:
                break
            _write(fd, block, start + received)
            digest.update(block)
            if chunk_hash is not None:
                chunk_hash.update(block)
            received += len(block)
        if declared is not None and received < declared:
            raise BodyCut()
        if declared is None and body is not None and body.readinto(buffer[:1]):
            raise Problem(
                "The chunk would go past Upload-Length.", status=413, slug="past-upload-length"
            )
    except BodyCut:
        raise
    except OSError as exc:
        _truncate(handle, start)
        if exc.errno == errno.ENOSPC:
            raise Problem(
                "The server has no room for this chunk.", status=507, slug="no-space"
            ) from exc
        raise
    except BaseException:
        _truncate(handle, start)
        raise
    if chunk_hash is not None and checksum is not None and chunk_hash.digest() != checksum.digest:
        _truncate(handle, start)
        raise ChecksumMismatch("The chunk does not match its Upload-Checksum; it was not kept.")
    return received


def _write(fd: int, block: memoryview, position: int) -> None:
    """Write ``block`` at ``position`` in slices of ``WRITE_SLICE`` bytes.

    The bytes arrive in blocks of 1 MiB (fewer system calls to receive and
    hash), but on the benchmark machine writing a file in 1 MiB ``write()``
    calls was measured to take about twice the CPU and time per MiB of 64 KiB
    calls (the kernel's copy into the page cache; see docs/performance.md,
    uploads). The extra calls cost far less than that.
    """
    done = 0
    while done < len(block):
        done += os.pwrite(fd, block[done : done + WRITE_SLICE], position + done)


def _progress(length: int, offset: int, digest: ResumableSha256) -> dict[str, Any]:
    """The row's new offset, expiry and hash so far; the SHA-256 once the last byte is in."""
    now = utcnow()
    values: dict[str, Any] = {
        "offset": offset,
        "expires_at": now + current_app.config["UPLOAD_EXPIRY"],
        "sha256": None,
        "completed_at": None,
        "hash_state": None,
    }
    if offset == length:
        values.update(sha256=digest.hexdigest(), completed_at=now)
    else:
        values["hash_state"] = digest.state()
    return values


def _advance(upload_id: uuid.UUID, old_offset: int, values: dict[str, Any]) -> None:
    """Write a chunk's progress, if the row still has the offset the chunk started from.

    Under the file's lock nothing else moves the offset; a row gone meanwhile
    is a conflict, and the bytes past its offset are dropped by the next chunk.
    """
    params = {f"new_{name}": value for name, value in values.items()}
    written = (
        db.session.connection()
        .execute(_ADVANCE, {"upload_id": upload_id, "old_offset": old_offset, **params})
        .rowcount
    )
    if written != 1:
        raise Conflict("The upload changed while the chunk arrived; ask for its offset.")


# Termination, finalisation, expiry


def terminate(user: User, upload_id: uuid.UUID) -> None:
    """Delete the caller's upload and its file (tus termination); 409 once it is evidence."""
    _owned(user.id, upload_id)
    _claim(upload_id)
    upload = _owned(user.id, upload_id, for_update=True)
    if upload.consumed_at is not None:
        raise Conflict("The upload is evidence now; it cannot be deleted.", slug="upload-consumed")
    db.session.delete(upload)
    db.session.flush()
    _path(upload_id).unlink(missing_ok=True)


def completed_upload(user: User, upload_id: uuid.UUID, case_id: uuid.UUID) -> Upload:
    """The caller's finished, unconsumed upload for ``case_id``, locked FOR UPDATE.

    404 when it is unknown, someone else's or for another case; 409 when it is
    unfinished or already consumed.
    """
    upload = _owned(user.id, upload_id, for_update=True)
    if upload.case_id != case_id:
        raise NotFound("No such upload.")
    if upload.completed_at is None:
        raise Conflict("The upload is not finished.", slug="upload-unfinished")
    if upload.consumed_at is not None:
        raise Conflict("The upload has already been finalised.", slug="upload-consumed")
    return upload


def mark_consumed(upload: Upload) -> None:
    """Record that evidence took the upload's bytes; the purge removes its file later."""
    upload.consumed_at = utcnow()
    db.session.flush()


@dataclass(frozen=True)
class PurgeReport:
    expired: int
    busy: int
    consumed_files: int
    orphan_files: int

    def summary(self) -> str:
        return (
            f"{self.expired} expired uploads deleted ({self.busy} busy, left for later), "
            f"{self.consumed_files} files of finalised uploads and "
            f"{self.orphan_files} orphaned files removed"
        )


def purge_expired(now: datetime | None = None) -> PurgeReport:
    """Delete uploads that expired before being finalised, with their files; remove
    the files of finalised uploads, and files no upload row names."""
    now = now or utcnow()
    expired = busy = 0
    candidates = db.session.scalars(
        sa.select(Upload.id).where(Upload.consumed_at.is_(None), Upload.expires_at <= now)
    ).all()
    for upload_id in candidates:
        path = _path(upload_id)
        try:
            handle = _try_lock(path, create=False)
        except FileNotFoundError:
            handle = None
        else:
            if handle is None:
                busy += 1
                continue
        try:
            deleted = db.session.execute(
                sa.delete(Upload).where(
                    Upload.id == upload_id,
                    Upload.consumed_at.is_(None),
                    Upload.expires_at <= now,
                )
            ).rowcount
            if deleted:
                path.unlink(missing_ok=True)
                expired += 1
        finally:
            if handle is not None:
                handle.close()
    consumed = db.session.scalars(
        sa.select(Upload).where(Upload.consumed_at.is_not(None), Upload.purged_at.is_(None))
    ).all()
    for upload in consumed:
        _path(upload.id).unlink(missing_ok=True)
        upload.purged_at = now
    db.session.flush()
    return PurgeReport(expired, busy, len(consumed), _remove_orphans(now))


def _remove_orphans(now: datetime) -> int:
    """Partial files without a row (a creation whose commit failed), once old enough."""
    directory = upload_dir()
    if not directory.is_dir():
        return 0
    cutoff = (now - current_app.config["UPLOAD_EXPIRY"]).timestamp()
    found: dict[uuid.UUID, Path] = {}
    for path in directory.glob("*.part"):
        with contextlib.suppress(ValueError, FileNotFoundError):
            if path.stat().st_mtime <= cutoff:
                found[uuid.UUID(hex=path.stem)] = path
    if not found:
        return 0
    known = set(db.session.scalars(sa.select(Upload.id).where(Upload.id.in_(list(found)))))
    removed = 0
    for upload_id, path in found.items():
        if upload_id not in known:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@jobs.periodic("uploads.purge_expired", every=timedelta(hours=1))
def purge_expired_job() -> str:
    return purge_expired().summary()
