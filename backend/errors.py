"""RFC 9457 problem details: the one error shape of the API, produced in one place."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, json
from werkzeug.exceptions import HTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:fieldcase:problem:"

log = logging.getLogger(__name__)


class Problem(Exception):
    """An error the API reports to the client as problem details.

    ``keep_changes`` marks errors whose side effects must survive the request's
    rollback, such as a counted login failure.
    """

    status: int = 400
    slug: str = "bad-request"
    keep_changes: bool = False

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        self.headers = headers or {}
        self.extensions = extensions


class Unauthorized(Problem):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str = "Authentication is required.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="fieldcase"'})
        super().__init__(detail, **kw)


class AuthenticationFailed(Unauthorized):
    slug = "authentication-failed"
    keep_changes = True


class Forbidden(Problem):
    status, slug = 403, "forbidden"


class NotFound(Problem):
    status, slug = 404, "not-found"


class Conflict(Problem):
    status, slug = 409, "conflict"


class PreconditionFailed(Problem):
    status, slug = 412, "precondition-failed"


class PreconditionRequired(Problem):
    status, slug = 428, "precondition-required"


class Unprocessable(Problem):
    status, slug = 422, "unprocessable"


class TooManyRequests(Problem):
    status, slug = 429, "too-many-requests"
    keep_changes = True

    def __init__(self, detail: str, retry_after: int, **kw: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, **kw)


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + (slug or phrase.lower().replace(" ", "-")),
        "title": phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_problem(error: Problem) -> Response:
    g.problem = error
    return problem_response(
        error.status, error.detail, slug=error.slug, headers=error.headers, **error.extensions
    )


def handle_http_exception(error: HTTPException) -> Response:
    """Turn werkzeug and webargs errors (422 validation, 404 route, 405, 413) into problems."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    extensions: dict[str, Any] = {}
    errors = data.get("errors") or data.get("messages")
    if errors:
        extensions["errors"] = errors
    headers = dict(data.get("headers") or {})
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    detail = data.get("message") or error.description
    if status == 422 and errors:
        detail = "The request did not validate."
    if status >= 500:
        detail = "The server could not complete the request."
    return problem_response(status, detail, slug=None, headers=headers, **extensions)


def handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return problem_response(500, "The server could not complete the request.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(Problem, handle_problem)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
