"""House defaults for flask-smorest: one Api, Blueprint and Schema subclass each."""

from __future__ import annotations

import http
from typing import Any, ClassVar

import marshmallow as ma
from flask import Flask
from flask_smorest import Api as _Api
from flask_smorest import Blueprint as _Blueprint
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser

from backend.errors import PROBLEM_CONTENT_TYPE, handle_http_exception


class Schema(ma.Schema):
    """Request and response schemas reject unknown fields (no mass assignment)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class ProblemSchema(Schema):
    type = ma.fields.String(metadata={"description": "URI naming the kind of problem"})
    title = ma.fields.String(metadata={"description": "HTTP status phrase"})
    status = ma.fields.Integer()
    detail = ma.fields.String(metadata={"description": "What went wrong, for a person"})
    request_id = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Validation errors by location and field"})


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
    allowed (``x-roles``).
    """

    ARGUMENTS_PARSER = ArgumentsParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_access_doc)

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
        return doc
