"""Sign-in, token refresh and sign-out."""

from __future__ import annotations

from typing import Any

from flask import g, request

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth import service
from backend.auth.access import public
from backend.auth.schemas import LoginSchema, RefreshSchema, TokenPairSchema
from backend.idempotency import service as idempotency

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Authentication")


def _client_address() -> str:
    return request.remote_addr or "unknown"


@blp.route("/login", methods=["POST"])
@public
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, response="UNAUTHORIZED")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def login(data: dict[str, Any]) -> service.TokenPair:
    """Sign in with user name and password.

    Five failures lock the user name for ten minutes; every attempt is audited.
    """
    audit.target("login", service.normalise_username(data["username"]))
    pair = service.login(data["username"], data["password"], _client_address(), data["device_id"])
    g.user = pair.user
    return pair


@blp.route("/refresh", methods=["POST"])
@public
@blp.arguments(RefreshSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, response="UNAUTHORIZED")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def refresh(data: dict[str, Any]) -> service.TokenPair:
    """Exchange a refresh token for a new pair; the old refresh token is spent."""
    pair = service.refresh(data["refresh_token"], _client_address())
    g.user = pair.user
    audit.target("session", pair.session_id)
    return pair


@blp.route("/logout", methods=["POST"])
@idempotency.exempt
@blp.response(204)
def logout() -> None:
    """End this sign-in: its access and refresh tokens stop working at once."""
    audit.target("session", g.auth_session.id)
    service.logout(g.auth_session.id)
