"""OpenAPI descriptions of the tus headers (tus requests carry no JSON)."""

from __future__ import annotations

from typing import Any

from backend.api import ProblemSchema
from backend.errors import PROBLEM_CONTENT_TYPE

CHUNK_CONTENT_TYPE = "application/offset+octet-stream"
INTEGER = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


def _header(name: str, description: str, schema: dict[str, Any], required: bool) -> dict:
    return {
        "in": "header",
        "name": name,
        "required": required,
        "schema": schema,
        "description": description,
    }


TUS_RESUMABLE = _header(
    "Tus-Resumable",
    "The tus protocol version; 412 with Tus-Version when missing or another",
    {"type": "string", "enum": ["1.0.0"]},
    True,
)
UPLOAD_LENGTH = _header(
    "Upload-Length",
    "The size of the whole file in bytes (at least 1; at most Tus-Max-Size, else 413)",
    {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    True,
)
UPLOAD_METADATA = _header(
    "Upload-Metadata",
    "Comma-separated `key base64(value)` pairs. `case_id` (required): the case the "
    "file is evidence for; `filename` (reduced to its base name) and `filetype` "
    "(the client's claim, advisory) are kept; other keys are echoed on HEAD.",
    {"type": "string", "maxLength": 4096},
    True,
)
UPLOAD_OFFSET = _header(
    "Upload-Offset",
    "Where the chunk goes: must equal the upload's current offset (409 otherwise)",
    INTEGER,
    True,
)
UPLOAD_CHECKSUM = _header(
    "Upload-Checksum",
    "`sha1` or `sha256`, a space and the base64 digest of the chunk; 460 when it "
    "does not match, and the chunk is not kept",
    {"type": "string", "pattern": "^(sha1|sha256) [A-Za-z0-9+/]+={0,2}$"},
    False,
)

CHUNK_BODY = {
    "required": False,
    "content": {CHUNK_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}


def _response_header(description: str, schema: dict[str, Any] | None = None) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}}


TUS_VERSION_HEADERS = {
    "Tus-Resumable": _response_header("1.0.0"),
    "Tus-Version": _response_header("The protocol versions the server speaks"),
    "Tus-Max-Size": _response_header("The largest Upload-Length accepted", INTEGER),
    "Tus-Extension": _response_header("The tus extensions supported"),
    "Tus-Checksum-Algorithm": _response_header("Algorithms accepted in Upload-Checksum"),
}
EXPIRES = _response_header("When the unfinished upload will be deleted (RFC 9110 date)")
OFFSET = _response_header("The bytes received so far", INTEGER)
CREATED_HEADERS = {
    "Location": _response_header("The upload's URL, for HEAD, PATCH and DELETE"),
    "Upload-Offset": OFFSET,
    "Upload-Expires": EXPIRES,
    "Tus-Resumable": _response_header("1.0.0"),
}
STATUS_HEADERS = {
    "Upload-Offset": OFFSET,
    "Upload-Length": _response_header("The size of the whole file", INTEGER),
    "Upload-Metadata": _response_header("Upload-Metadata as sent at creation"),
    "Upload-Expires": EXPIRES,
    "Cache-Control": _response_header("no-store"),
    "Tus-Resumable": _response_header("1.0.0"),
}
CHUNK_HEADERS = {
    "Upload-Offset": OFFSET,
    "Upload-Expires": EXPIRES,
    "Tus-Resumable": _response_header("1.0.0"),
}
DELETED_HEADERS = {"Tus-Resumable": _response_header("1.0.0")}
CHECKSUM_MISMATCH = {
    "schema": ProblemSchema,
    "description": "Checksum Mismatch (tus): the chunk was not kept",
    "content_type": PROBLEM_CONTENT_TYPE,
}
