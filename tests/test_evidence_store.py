"""The content-addressed evidence store: a local folder and S3 (moto's server on loopback)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig

from backend.evidence.store import (
    CHUNK,
    ContentMismatch,
    LocalStore,
    MissingContent,
    S3Store,
    StoreError,
    get_store,
)

from support_evidence import S3Server, s3_fixture, s3_server_fixture  # noqa: F401

MIB = 1024 * 1024


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_range(store: LocalStore | S3Store, sha256: str, start: int, length: int) -> bytes:
    return b"".join(store.open_range(sha256, start, length))


def test_local_store_writes_once_read_only_by_hash(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    data = os.urandom(CHUNK * 2 + 123)
    sha = digest(data)

    assert store.put(sha, write(tmp_path / "in" / "a.bin", data)) is True
    path = tmp_path / "store" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, "stored files are read-only"
    assert (store.exists(sha), store.size(sha), store.rehash(sha)) == (True, len(data), sha)
    assert list(store.hashes()) == [sha]
    assert [p.name for p in path.parent.iterdir()] == [sha], "no temporary file is left"

    # Storing the hash again is a no-op, whatever the offered file holds.
    other = write(tmp_path / "in" / "b.bin", b"other bytes")
    assert store.put(sha, other) is False
    assert path.read_bytes() == data


def test_local_store_refuses_bytes_that_do_not_match_their_name(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    sha = digest(b"what the device captured")
    with pytest.raises(ContentMismatch):
        store.put(sha, write(tmp_path / "in.bin", b"something else"))
    assert not store.exists(sha)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


def test_local_store_reads_ranges_in_chunks(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    data = os.urandom(CHUNK * 2 + 500)
    sha = digest(data)
    store.put(sha, write(tmp_path / "in.bin", data))

    chunks = list(store.open_range(sha, 0, len(data)))
    assert [len(c) for c in chunks] == [CHUNK, CHUNK, 500], "never more than a chunk at once"
    assert read_range(store, sha, 10, 20) == data[10:30]
    assert read_range(store, sha, len(data) - 7, 7) == data[-7:]
    assert read_range(store, sha, 0, 0) == b""


def test_local_store_names_and_missing_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    for bad in ("../../etc/passwd", "A" * 64, "ab"):
        with pytest.raises(ValueError):
            store.path(bad)
    missing = digest(b"never stored")
    assert store.exists(missing) is False
    for call in (
        lambda: store.size(missing),
        lambda: store.rehash(missing),
        lambda: store.open_range(missing, 0, 1),
    ):
        with pytest.raises(MissingContent):
            call()


def test_store_is_chosen_by_configuration(app, monkeypatch, tmp_path, s3) -> None:
    monkeypatch.setitem(app.config, "EVIDENCE_DIR", str(tmp_path / "evidence"))
    monkeypatch.setitem(app.config, "S3_ENDPOINT_URL", s3.endpoint_url)
    with app.app_context():
        monkeypatch.setitem(app.config, "EVIDENCE_STORE", "local")
        local = get_store()
        assert isinstance(local, LocalStore) and local.root == tmp_path / "evidence"
        monkeypatch.setitem(app.config, "EVIDENCE_STORE", "s3")
        assert isinstance(get_store(), S3Store)
        monkeypatch.setitem(app.config, "EVIDENCE_STORE", "ftp")
        with pytest.raises(StoreError):
            get_store()


def test_s3_store_round_trip_with_ranged_reads(tmp_path: Path, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    store = S3Store(bucket, prefix="sha256/", endpoint_url=s3.endpoint_url, region="us-east-1")
    data = os.urandom(300_000)
    sha = digest(data)

    assert store.exists(sha) is False
    assert store.put(sha, write(tmp_path / "in.bin", data)) is True
    key = f"sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    assert s3.client().get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert (store.exists(sha), store.size(sha), store.rehash(sha)) == (True, len(data), sha)
    assert read_range(store, sha, 1000, 5000) == data[1000:6000]
    assert read_range(store, sha, len(data) - 1, 1) == data[-1:]
    assert read_range(store, sha, 0, 0) == b""
    assert list(store.hashes()) == [sha]

    # Write once: the same hash again changes nothing.
    assert store.put(sha, write(tmp_path / "other.bin", b"other")) is False
    assert store.rehash(sha) == sha

    with pytest.raises(ContentMismatch):
        store.put(digest(b"x"), write(tmp_path / "y.bin", b"y"))
    missing = digest(b"never stored")
    for call in (
        lambda: store.size(missing),
        lambda: store.rehash(missing),
        lambda: store.open_range(missing, 0, 1),
    ):
        with pytest.raises(MissingContent):
            call()


def test_s3_store_sends_big_files_in_parts(tmp_path: Path, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    store = S3Store(bucket, prefix="", endpoint_url=s3.endpoint_url, region="us-east-1")
    store.transfer = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    data = os.urandom(11 * MIB)
    sha = digest(data)

    assert store.put(sha, write(tmp_path / "video.mp4", data)) is True
    head = s3.client().head_object(Bucket=bucket, Key=f"{sha[:2]}/{sha[2:4]}/{sha}")
    assert head["ETag"].strip('"').endswith("-3"), "uploaded as three parts"
    boundary = 5 * MIB
    assert read_range(store, sha, boundary - 10, 20) == data[boundary - 10 : boundary + 10]
    assert store.rehash(sha) == sha
