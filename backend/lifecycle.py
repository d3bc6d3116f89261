"""The request boundary: request ids, authentication, idempotency, audit, commit.

Services only flush; this module commits once per request, with the audit row
in the same transaction as the change (fail closed). Failed requests roll back
and then leave their audit row in a transaction of their own.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request

from backend.audit import service as audit
from backend.auth import service as auth
from backend.errors import Problem, Unauthorized, problem_response
from backend.extensions import db
from backend.idempotency import service as idempotency

API_PREFIX = "/api/v1/"
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

log = logging.getLogger(__name__)


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def _view() -> Any:
    return current_app.view_functions.get(request.endpoint or "")


def _view_is_public() -> bool:
    return bool(getattr(_view(), "public", False))


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


def _begin() -> Response | None:
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
    if not _is_api_request():
        return None
    device = request.headers.get("X-Device-Id")
    if device is not None and not DEVICE_ID_PATTERN.match(device):
        raise Problem("X-Device-Id must be 1 to 64 letters, digits or . _ : -")
    g.device_id = device
    if request.url_rule is None or _view_is_public():
        return None
    view = _view()
    if getattr(view, "participant", False):
        # Imported here: the sessions service reaches the documents schemas, which import us.
        from backend.sessions import service as sessions

        g.participant = sessions.authenticate_participant(
            _bearer_token(), after_end=view.participant_after_end
        )
        return None
    g.user, g.auth_session = auth.authenticate(_bearer_token())
    key = request.headers.get("Idempotency-Key")
    if request.method == "POST" and key is not None and idempotency.applies_to(_view()):
        record_id, replay = idempotency.claim(
            g.user.id, request.method, request.path, key, request.get_data(cache=True)
        )
        g.idempotency_record_id = record_id
        return replay
    return None


def _settle(response: Response, keep: bool) -> None:
    """Commit the request's work with its audit row, or roll it back and audit that."""
    record_id = g.get("idempotency_record_id")
    if keep:
        if record_id and response.status_code < 400:
            idempotency.store(record_id, response)
    else:
        db.session.rollback()
        if record_id:
            idempotency.release(record_id)
    audit.add_request_entry(response.status_code)
    db.session.commit()


def _finish(response: Response) -> Response:
    if not _is_api_request():
        return response
    response.headers["X-Request-Id"] = g.request_id
    problem = g.get("problem")
    keep = response.status_code < 400 or (isinstance(problem, Problem) and problem.keep_changes)
    try:
        _settle(response, keep)
        return response
    except Exception:
        log.exception("could not commit request %s", g.request_id)
        db.session.rollback()
    failed = problem_response(500, "The server could not complete the request.")
    failed.headers["X-Request-Id"] = g.request_id
    try:
        _settle(failed, keep=False)
    except Exception:
        log.exception("could not record the failure of request %s", g.request_id)
        db.session.rollback()
    return failed


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
