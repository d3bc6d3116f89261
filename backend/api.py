"""House defaults for flask-smorest: one Api, Blueprint, Schema and text field subclass each."""

from __future__ import annotations

import http
from typing import Any, ClassVar

import marshmallow as ma
from flask import Flask
from flask_smorest import Api as _Api
from flask_smorest import Blueprint as _Blueprint
from flask_smorest.utils import prepare_response
from marshmallow import validate
from webargs.flaskparser import FlaskParser

from backend.errors import PROBLEM_CONTENT_TYPE, handle_http_exception

NO_NUL = validate.Regexp(r"^[^\x00]*$", error="Must not contain NUL characters.")


class Schema(ma.Schema):
    """Request and response schemas reject unknown fields (no mass assignment)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class Text(ma.fields.String):
    """Text from a client. PostgreSQL cannot store NUL characters, so none are
    accepted; the ``pattern`` tells clients."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.insert(0, NO_NUL)


class ProblemSchema(Schema):
    type = ma.fields.String(metadata={"description": "URI naming the kind of problem"})
    title = ma.fields.String(metadata={"description": "HTTP status phrase"})
    status = ma.fields.Integer()
    detail = ma.fields.String(metadata={"description": "What went wrong, for a person"})
    request_id = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Validation errors by location and field"})
    current_etag = ma.fields.String(metadata={"description": "The case's ETag now (412)"})


class Api(_Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Errors are handled by ``backend.errors``; see ``register_error_handlers``."""

    def handle_http_exception(self, error: Any) -> Any:
        return handle_http_exception(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content_type = PROBLEM_CONTENT_TYPE
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Problem details (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)

    def init_app(self, app: Flask, *args: Any, **kwargs: Any) -> None:
        super().init_app(app, *args, **kwargs)
        self.spec.components.security_scheme(
            "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        )


class ArgumentsParser(FlaskParser):
    """Query strings are validated as strictly as bodies: unknown parameters are refused."""

    DEFAULT_UNKNOWN_BY_LOCATION: ClassVar[dict[str, str | None]] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }


class Blueprint(_Blueprint):
    """A resource blueprint; every operation is authenticated unless marked public.

    The access rules that ``backend.auth.access`` attaches to a view are written
    into its OpenAPI operation: security, the 401 and 403 answers and the roles
    allowed (``x-roles``, or ``x-participant-roles`` for the routes that take a
    remote-session participant's token instead of a user's). So are the answers
    any operation may give: 400 for a malformed request (JSON, ``X-Device-Id``,
    ``Idempotency-Key``, cursor) and 413 for a body over the size limit.
    """

    ARGUMENTS_PARSER = ArgumentsParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks += [self._prepare_access_doc, self._prepare_common_doc]

    @staticmethod
    def _prepare_common_doc(doc: dict[str, Any], doc_info: dict[str, Any], **_: Any) -> Any:
        responses = doc.setdefault("responses", {})
        responses.setdefault(400, http.HTTPStatus.BAD_REQUEST.name)
        if "requestBody" in doc:
            responses.setdefault(413, http.HTTPStatus(413).name)
        return doc

    @staticmethod
    def _prepare_access_doc(doc: dict[str, Any], doc_info: dict[str, Any], **_: Any) -> Any:
        access = doc_info.get("access", {})
        responses = doc.setdefault("responses", {})
        if access.get("public"):
            doc["security"] = []
            return doc
        responses.setdefault(401, "UNAUTHORIZED")
        roles = access.get("roles")
        if roles:
            responses.setdefault(403, "FORBIDDEN")
            doc["x-roles"] = sorted(roles)
        participant_roles = access.get("participant_roles")
        if participant_roles:
            responses.setdefault(403, "FORBIDDEN")
            doc["x-participant-roles"] = sorted(participant_roles)
        return doc
