"""Resumable uploads (tus 1.0.0): creation, creation-with-upload, checksum,
termination and expiration. Any standard tus client works against ``/api/v1/uploads``.
"""

from __future__ import annotations

import http
import uuid

from flask import Response, current_app, g, json, request, url_for
from werkzeug.http import http_date

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, public, roles_required
from backend.errors import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, PreconditionFailed, Problem
from backend.idempotency import service as idempotency
from backend.uploads import schemas, service
from backend.uploads.body import Body, request_body
from backend.uploads.models import Upload
from shared.enums import Role

blp = Blueprint(
    "uploads", __name__, url_prefix="/api/v1", description="Resumable uploads (tus 1.0.0)"
)

TOO_LARGE = http.HTTPStatus(413).name


@blp.before_request
def _require_tus_version() -> None:
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != service.TUS_VERSION:
        raise PreconditionFailed(
            f"Send Tus-Resumable: {service.TUS_VERSION}; it is the tus version spoken here.",
            slug="tus-version",
            headers={"Tus-Version": service.TUS_VERSION},
        )


@blp.after_request
def _tus_resumable(response: Response) -> Response:
    response.headers["Tus-Resumable"] = service.TUS_VERSION
    return response


@blp.teardown_request
def _release_locks(_error: BaseException | None) -> None:
    service.release_locks()


@blp.errorhandler(service.ChecksumMismatch)
def _checksum_mismatch(error: service.ChecksumMismatch) -> Response:
    """460 is tus' own status code, unknown to ``http.HTTPStatus``."""
    g.problem = error
    body = {
        "type": PROBLEM_TYPE_PREFIX + error.slug,
        "title": "Checksum Mismatch",
        "status": error.status,
        "detail": error.detail,
        "request_id": g.request_id,
    }
    response = Response(json.dumps(body), mimetype=PROBLEM_CONTENT_TYPE)
    response.status = f"{error.status} Checksum Mismatch"
    return response


def _chunk_body(*, required_type: bool) -> Body | None:
    """The request's bytes; 415 unless sent as application/offset+octet-stream."""
    body = request_body(current_app.config["UPLOAD_CHUNK_MAX_BYTES"])
    if (required_type or body is not None) and request.mimetype != schemas.CHUNK_CONTENT_TYPE:
        raise Problem(
            f"Send the bytes as {schemas.CHUNK_CONTENT_TYPE}.",
            status=415,
            slug="unsupported-media-type",
        )
    return body


def _expires(upload: Upload) -> dict[str, str]:
    if upload.completed_at is not None:
        return {}
    return {"Upload-Expires": http_date(upload.expires_at)}


def _location(upload: Upload) -> str:
    path = url_for("uploads.upload_status", upload_id=upload.id)
    base = current_app.config["PUBLIC_BASE_URL"] or request.host_url
    return base.rstrip("/") + path


@blp.route("/uploads", methods=["OPTIONS"])
@public
@blp.response(204, description="What this tus server supports", headers=schemas.TUS_VERSION_HEADERS)
def discover() -> Response:
    """tus discovery: version, extensions, size limit and checksum algorithms."""
    return Response(
        status=204,
        headers={
            "Tus-Version": service.TUS_VERSION,
            "Tus-Max-Size": str(current_app.config["UPLOAD_MAX_BYTES"]),
            "Tus-Extension": ",".join(service.EXTENSIONS),
            "Tus-Checksum-Algorithm": ",".join(service.CHECKSUM_ALGORITHMS),
        },
    )


@blp.route("/uploads", methods=["POST"])
@idempotency.exempt
@roles_required(Role.OFFICER)
@blp.doc(
    parameters=[
        schemas.TUS_RESUMABLE,
        schemas.UPLOAD_LENGTH,
        schemas.UPLOAD_METADATA,
        schemas.UPLOAD_CHECKSUM,
    ],
    requestBody=schemas.CHUNK_BODY,
)
@blp.response(201, description="Created; the body's bytes kept", headers=schemas.CREATED_HEADERS)
@blp.alt_response(404, response="NOT_FOUND", description="No such case in your units")
@blp.alt_response(409, response="CONFLICT", description="The case is closed")
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(413, response=TOO_LARGE, description="Past the file, chunk or case limit")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
@blp.alt_response(460, **schemas.CHECKSUM_MISMATCH)
def create_upload() -> Response:
    """Start an upload for a case (tus creation), optionally with its first bytes
    (creation-with-upload). Not subject to Idempotency-Key: tus resumes by offset.
    """
    length = service.parse_length(request.headers.get("Upload-Length"))
    metadata = service.parse_metadata(request.headers.get("Upload-Metadata"))
    checksum = service.parse_checksum(request.headers.get("Upload-Checksum"))
    body = _chunk_body(required_type=False)
    upload = service.create(current_user(), length, metadata, body, checksum)
    audit.target("upload", upload.id)
    headers = {"Location": _location(upload), "Upload-Offset": str(upload.offset)}
    return Response(status=201, headers=headers | _expires(upload))


@blp.route("/uploads/<uuid:upload_id>", methods=["HEAD"])
@roles_required(Role.OFFICER)
@blp.doc(parameters=[schemas.TUS_RESUMABLE])
@blp.response(200, description="The upload's offset and length", headers=schemas.STATUS_HEADERS)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(410, response="GONE", description="Expired before it was finished")
@blp.alt_response(412, response="PRECONDITION_FAILED")
def upload_status(upload_id: uuid.UUID) -> Response:
    """How far an upload has come: resume from Upload-Offset."""
    upload = service.get_upload(current_user(), upload_id)
    audit.target("upload", upload.id)
    headers = {
        "Upload-Offset": str(service.current_offset(upload)),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
    }
    if upload.metadata_header:
        headers["Upload-Metadata"] = upload.metadata_header
    return Response(status=200, headers=headers | _expires(upload))


@blp.route("/uploads/<uuid:upload_id>", methods=["PATCH"])
@roles_required(Role.OFFICER)
@blp.doc(
    parameters=[schemas.TUS_RESUMABLE, schemas.UPLOAD_OFFSET, schemas.UPLOAD_CHECKSUM],
    requestBody=schemas.CHUNK_BODY | {"required": True},
)
@blp.response(204, description="Kept; the new offset", headers=schemas.CHUNK_HEADERS)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT", description="Not the current offset, or busy")
@blp.alt_response(410, response="GONE", description="Expired before it was finished")
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(413, response=TOO_LARGE, description="Past Upload-Length or the chunk limit")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
@blp.alt_response(460, **schemas.CHECKSUM_MISMATCH)
def upload_chunk(upload_id: uuid.UUID) -> Response:
    """Append bytes at Upload-Offset. One request writes to an upload at a time."""
    audit.target("upload", upload_id)
    offset = service.parse_offset(request.headers.get("Upload-Offset"))
    checksum = service.parse_checksum(request.headers.get("Upload-Checksum"))
    body = _chunk_body(required_type=True)
    progress = service.append(current_user(), upload_id, offset, body, checksum)
    headers = {"Upload-Offset": str(progress.offset)}
    if progress.expires_at is not None:
        headers["Upload-Expires"] = http_date(progress.expires_at)
    return Response(status=204, headers=headers)


@blp.route("/uploads/<uuid:upload_id>", methods=["DELETE"])
@roles_required(Role.OFFICER)
@blp.doc(parameters=[schemas.TUS_RESUMABLE])
@blp.response(204, description="Deleted with its bytes", headers=schemas.DELETED_HEADERS)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT", description="Being written to, or already evidence")
@blp.alt_response(412, response="PRECONDITION_FAILED")
def terminate_upload(upload_id: uuid.UUID) -> Response:
    """Abandon an upload (tus termination): its row and bytes are deleted."""
    audit.target("upload", upload_id)
    service.terminate(current_user(), upload_id)
    return Response(status=204)
