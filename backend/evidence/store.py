"""The content-addressed evidence store: files named by their SHA-256, written once.

Two implementations of one small interface: ``LocalStore``, a folder (the
default, ``EVIDENCE_STORE=local``, ``EVIDENCE_DIR``), and ``S3Store``, a bucket
of any S3-compatible service such as MinIO or Ceph (``EVIDENCE_STORE=s3`` with
``S3_ENDPOINT_URL``, ``S3_BUCKET``, ``S3_REGION``, ``S3_PREFIX``; credentials
come from boto3's usual sources: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
a profile or an instance role).

Both lay files out as ``ab/cd/<sha256>`` and never overwrite one: storing a hash
that is already there changes nothing. A file is hashed as it is stored and
refused when its bytes do not match the name it is stored under. Bytes always
move in chunks; no file is ever read into memory whole.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from flask import current_app

CHUNK = 1024 * 1024
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MULTIPART_THRESHOLD = 64 * CHUNK
MULTIPART_CHUNK = 16 * CHUNK


class StoreError(Exception):
    """The store cannot do what was asked."""


class MissingContent(StoreError):
    """No file is stored under this hash."""


class ContentMismatch(StoreError):
    """The bytes offered do not hash to the name they were to be stored under."""


def check_hash(sha256: str) -> str:
    if not SHA256_HEX.match(sha256):
        raise ValueError("not a lower-case hex SHA-256")
    return sha256


def relative_name(sha256: str) -> str:
    """``ab/cd/abcd…``: two levels of folders keep any one folder small."""
    check_hash(sha256)
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def hash_stream(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


class ByteRange:
    """The bytes ``start`` to ``start + length`` of a stored file, opened, as chunks.

    The file is opened when the range is made, so a missing file is known
    before a response starts; ``close`` releases it (WSGI servers call it).
    """

    def __init__(self, stream: BinaryIO | Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def __iter__(self) -> Iterator[bytes]:
        try:
            while self._left > 0:
                chunk = self._stream.read(min(CHUNK, self._left))
                if not chunk:
                    raise StoreError("the stored file ended early")
                self._left -= len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._stream.close()


class EvidenceStore(Protocol):
    """Where evidence files live, by SHA-256, written once."""

    def put(self, sha256: str, source: Path) -> bool:
        """Store the finished file ``source`` as ``sha256``; False if it was there already."""
        ...

    def open_range(self, sha256: str, start: int, length: int) -> ByteRange: ...

    def size(self, sha256: str) -> int: ...

    def exists(self, sha256: str) -> bool: ...

    def hashes(self) -> Iterator[str]:
        """Every hash the store holds, in no particular order."""
        ...

    def rehash(self, sha256: str) -> str:
        """The SHA-256 of the stored bytes now, read from the store."""
        ...


class LocalStore:
    """Files in a local folder, made read-only once written."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / relative_name(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError as exc:
            raise MissingContent(sha256) from exc

    def put(self, sha256: str, source: Path) -> bool:
        """Copy into a temporary file beside the target, hashing as it goes; fsync it,
        make it read-only and hard-link it into place. A link never replaces an
        existing name, so two writers of one hash cannot overwrite each other."""
        final = self.path(sha256)
        if final.is_file():
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=final.parent, prefix=".incoming-")
        temporary = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(descriptor, "wb") as handle, source.open("rb") as reader:
                while chunk := reader.read(CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if digest.hexdigest() != sha256:
                raise ContentMismatch(f"{source.name} does not hash to {sha256}")
            temporary.chmod(0o444)
            try:
                os.link(temporary, final)
            except FileExistsError:
                return False
            _fsync_folder(final.parent)
            return True
        finally:
            temporary.unlink(missing_ok=True)

    def open_range(self, sha256: str, start: int, length: int) -> ByteRange:
        try:
            stream = self.path(sha256).open("rb")
        except FileNotFoundError as exc:
            raise MissingContent(sha256) from exc
        stream.seek(start)
        return ByteRange(stream, length)

    def hashes(self) -> Iterator[str]:
        for path in self.root.glob("??/??/*"):
            folders = path.parent.parent.name + path.parent.name
            if SHA256_HEX.match(path.name) and path.name.startswith(folders):
                yield path.name

    def rehash(self, sha256: str) -> str:
        try:
            with self.path(sha256).open("rb") as stream:
                return hash_stream(stream)
        except FileNotFoundError as exc:
            raise MissingContent(sha256) from exc


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class S3Store:
    """Objects in an S3-compatible bucket, keyed ``<prefix>ab/cd/<sha256>``.

    Large files go up as multipart uploads. S3 itself cannot refuse an
    overwrite on every implementation, so a bucket meant for evidence should
    also have versioning or Object Lock; this class never writes a key that exists.
    """

    def __init__(
        self, bucket: str, *, prefix: str = "", endpoint_url: str | None, region: str
    ) -> None:
        self.bucket, self.prefix = bucket, prefix
        addressing = {"addressing_style": "path"} if endpoint_url else {}
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=BotoConfig(s3=addressing, retries={"mode": "standard"}),
        )
        self.transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK
        )

    def key(self, sha256: str) -> str:
        return self.prefix + relative_name(sha256)

    def _head(self, sha256: str) -> dict[str, Any]:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if _not_found(exc):
                raise MissingContent(sha256) from exc
            raise

    def exists(self, sha256: str) -> bool:
        try:
            self._head(sha256)
        except MissingContent:
            return False
        return True

    def size(self, sha256: str) -> int:
        return int(self._head(sha256)["ContentLength"])

    def put(self, sha256: str, source: Path) -> bool:
        if self.exists(sha256):
            return False
        with source.open("rb") as stream:
            if hash_stream(stream) != sha256:
                raise ContentMismatch(f"{source.name} does not hash to {sha256}")
        self.client.upload_file(
            str(source),
            self.bucket,
            self.key(sha256),
            ExtraArgs={"ContentType": "application/octet-stream"},
            Config=self.transfer,
        )
        return True

    def _get(self, sha256: str, **kwargs: Any) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(sha256), **kwargs)
        except ClientError as exc:
            if _not_found(exc):
                raise MissingContent(sha256) from exc
            raise

    def open_range(self, sha256: str, start: int, length: int) -> ByteRange:
        if length <= 0:
            self._head(sha256)
            return ByteRange(_Empty(), 0)
        answer = self._get(sha256, Range=f"bytes={start}-{start + length - 1}")
        return ByteRange(answer["Body"], length)

    def hashes(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"].rpartition("/")[2]
                if SHA256_HEX.match(name):
                    yield name

    def rehash(self, sha256: str) -> str:
        body = self._get(sha256)["Body"]
        try:
            return hash_stream(body)
        finally:
            body.close()


class _Empty:
    def read(self, _size: int) -> bytes:
        return b""

    def close(self) -> None:
        """Nothing to release."""


def _not_found(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


def get_store() -> EvidenceStore:
    """The store the configuration names (``EVIDENCE_STORE``), one per configuration."""
    config = current_app.config
    kind = config["EVIDENCE_STORE"]
    if kind == "local":
        settings: tuple[Any, ...] = (kind, config["EVIDENCE_DIR"])
    elif kind == "s3":
        settings = (
            kind,
            config["S3_BUCKET"],
            config["S3_PREFIX"],
            config["S3_ENDPOINT_URL"],
            config["S3_REGION"],
        )
    else:
        raise StoreError(f"EVIDENCE_STORE must be 'local' or 's3', not {kind!r}")
    stores: dict[tuple[Any, ...], EvidenceStore] = current_app.extensions.setdefault(
        "evidence_stores", {}
    )
    if settings not in stores:
        stores[settings] = (
            LocalStore(settings[1])
            if kind == "local"
            else S3Store(
                settings[1], prefix=settings[2], endpoint_url=settings[3], region=settings[4]
            )
        )
    return stores[settings]
