"""Helpers for tests that upload files with tus: metadata, headers, a raw upload."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from conftest import Api, OrgUser

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = "application/offset+octet-stream"


def metadata(**pairs: str | None) -> str:
    """An Upload-Metadata header: ``key base64(value)`` pairs, a bare key for None."""
    items = []
    for key, value in pairs.items():
        if value is None:
            items.append(key)
        else:
            items.append(f"{key} {base64.b64encode(value.encode()).decode()}")
    return ",".join(items)


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def tus_headers(api: Api, user: OrgUser, **headers: str) -> dict[str, str]:
    return {**TUS, "Authorization": f"Bearer {api.token(user)}", **headers}


def create(
    api: Api,
    user: OrgUser,
    case_id: str,
    length: int,
    *,
    body: bytes | None = None,
    filename: str | None = "photo.jpg",
    **headers: str,
) -> Any:
    """POST /api/v1/uploads (with ``body``: creation-with-upload); the response."""
    meta = {"case_id": case_id} | ({"filename": filename} if filename is not None else {})
    all_headers = {"Upload-Length": str(length), "Upload-Metadata": metadata(**meta), **headers}
    if body is not None:
        all_headers.setdefault("Content-Type", CHUNK)
    return api.client.post(
        "/api/v1/uploads", headers=tus_headers(api, user, **all_headers), data=body
    )


def patch(api: Api, user: OrgUser, location: str, offset: int, data: bytes, **headers: str) -> Any:
    all_headers = {"Upload-Offset": str(offset), "Content-Type": CHUNK, **headers}
    return api.client.patch(location, headers=tus_headers(api, user, **all_headers), data=data)


def head(api: Api, user: OrgUser, location: str) -> Any:
    return api.client.head(location, headers=tus_headers(api, user))


def upload_file(api: Api, user: OrgUser, case_id: str, data: bytes, chunk: int = 1 << 20) -> str:
    """Upload ``data`` completely with the test client; the upload's id."""
    response = create(api, user, case_id, len(data))
    assert response.status_code == 201, response.get_data(as_text=True)
    location = response.headers["Location"]
    offset = 0
    while offset < len(data):
        response = patch(api, user, location, offset, data[offset : offset + chunk])
        assert response.status_code == 204, response.get_data(as_text=True)
        offset = int(response.headers["Upload-Offset"])
    return location.rsplit("/", 1)[-1]
