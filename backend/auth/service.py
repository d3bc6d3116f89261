"""Sign-in, token rotation, sign-out and the checks made on every request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy.orm import joinedload

from backend.auth import tokens
from backend.auth.models import AuthSession, LoginThrottle, RateLimitWindow, RefreshToken
from backend.common import dialect_insert, utcnow
from backend.errors import AuthenticationFailed, Conflict, TooManyRequests, Unauthorized
from backend.extensions import db
from backend.org.models import User

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("fieldcase-timing-equaliser")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    user: User


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_username(username: str) -> str:
    return username.strip().lower()


def _locked_row(model: type[Any], key: str, **defaults: Any) -> Any:
    """The row with primary key ``key``, created if missing, locked until commit.

    INSERT .. ON CONFLICT DO NOTHING first: two requests meeting a new key at
    once then both find the row, instead of one failing on the primary key.
    """
    column = sa.inspect(model).primary_key[0].key
    db.session.execute(
        dialect_insert(model, db.session).values({column: key, **defaults}).on_conflict_do_nothing()
    )
    return db.session.get(model, key, with_for_update=True)


def check_rate_limit(kind: str, client: str, per_minute: int, now: datetime) -> None:
    """Count a request in the current one-minute window; 429 past the limit.

    Kept in the database so that every process and host shares the count.
    """
    key = f"{kind}:{client}"
    window = now.replace(second=0, microsecond=0)
    row = _locked_row(RateLimitWindow, key, window_start=window, count=0)
    if row.window_start != window:
        row.window_start, row.count = window, 0
    row.count += 1
    db.session.flush()
    if row.count > per_minute:
        retry_after = 60 - now.second
        raise TooManyRequests("Too many requests; try again later.", retry_after=retry_after)


def login(username: str, password: str, client: str, device_id: str | None) -> TokenPair:
    config = current_app.config
    now = utcnow()
    check_rate_limit("login", client, config["RATE_LIMIT_LOGIN_PER_MINUTE"], now)
    name = normalise_username(username)
    throttle = _locked_row(LoginThrottle, name, failures=0)
    if throttle.locked_until and throttle.locked_until > now:
        retry_after = int((throttle.locked_until - now).total_seconds()) + 1
        raise TooManyRequests(
            "Too many failed sign-ins; the account is locked for a while.",
            retry_after=retry_after,
            slug="account-locked",
        )
    user = db.session.scalar(sa.select(User).where(User.username == name))
    valid = _password_matches(user.password_hash if user else _DUMMY_HASH, password)
    if not (valid and user and user.active):
        throttle.failures += 1
        if throttle.failures >= config["LOGIN_MAX_FAILURES"]:
            throttle.locked_until = now + config["LOGIN_LOCKOUT"]
            throttle.failures = 0
        db.session.flush()
        raise AuthenticationFailed("The user name or password is wrong.")
    throttle.failures, throttle.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session = AuthSession(
        user_id=user.id, device_id=device_id, expires_at=now + config["REFRESH_TOKEN_LIFETIME"]
    )
    db.session.add(session)
    db.session.flush()
    return _issue_pair(user, session, now)


def _issue_pair(user: User, session: AuthSession, now: datetime) -> TokenPair:
    config = current_app.config
    access, _ = tokens.issue(
        tokens.ACCESS, user.id, session.id, now, config["ACCESS_TOKEN_LIFETIME"]
    )
    refresh, claims = tokens.issue(
        tokens.REFRESH, user.id, session.id, now, session.expires_at - now
    )
    db.session.add(RefreshToken(jti=claims.jti, session_id=session.id, issued_at=now))
    db.session.flush()
    lifetime: timedelta = config["ACCESS_TOKEN_LIFETIME"]
    return TokenPair(access, refresh, int(lifetime.total_seconds()), session.id, user)


def refresh(refresh_token: str, client: str) -> TokenPair:
    """Rotate a refresh token. Reusing a rotated token revokes its whole family.

    Of two concurrent refreshes with one token exactly one wins; the loser, if
    it comes within the grace window, gets 409 and the family survives.
    """
    config = current_app.config
    now = utcnow()
    check_rate_limit("refresh", client, config["RATE_LIMIT_REFRESH_PER_MINUTE"], now)
    try:
        claims = tokens.verify(refresh_token, tokens.REFRESH)
    except Unauthorized as exc:
        exc.keep_changes = True  # a refused token still counts against the rate limit
        raise
    won = db.session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.jti == claims.jti, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    row = db.session.get(RefreshToken, claims.jti)
    session = db.session.get(AuthSession, claims.session_id)
    if (
        row is None
        or session is None
        or row.session_id != session.id
        or session.user_id != claims.user_id
    ):
        raise Unauthorized("The token is not valid.", slug="invalid-token")
    if not won:
        used_at = row.used_at
        if used_at is not None and now - used_at <= config["REFRESH_REUSE_GRACE"]:
            raise Conflict("This refresh token was just used; use the tokens it returned.")
        _revoke(session, "refresh_token_reuse", now)
        raise AuthenticationFailed(
            "This refresh token was already used; the sign-in has been ended.",
            slug="refresh-token-reused",
        )
    user = _active_session_user(session, now)
    return _issue_pair(user, session, now)


def _revoke(session: AuthSession, reason: str, now: datetime) -> None:
    if session.revoked_at is None:
        session.revoked_at, session.revoked_reason = now, reason
        db.session.flush()


def logout(session_id: uuid.UUID) -> None:
    session = db.session.get(AuthSession, session_id)
    if session is not None:
        _revoke(session, "logout", utcnow())


def revoke_user_sessions(user_id: uuid.UUID, reason: str) -> int:
    return db.session.execute(
        sa.update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    ).rowcount


def _active_session_user(session: AuthSession, now: datetime) -> User:
    if session.revoked_at is not None or session.expires_at <= now:
        raise Unauthorized("The sign-in has ended.", slug="session-ended")
    user = db.session.get(User, session.user_id)
    if user is None or not user.active:
        raise Unauthorized("The account is disabled.", slug="session-ended")
    return user


def authenticate(access_token: str) -> tuple[User, AuthSession]:
    """The user and session behind an access token, checked against revocation."""
    claims = tokens.verify(access_token, tokens.ACCESS)
    row = (
        db.session.execute(
            sa.select(User, AuthSession)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(AuthSession.id == claims.session_id, User.id == claims.user_id)
            .options(joinedload(User.role_rows))
        )
        .unique()
        .first()
    )
    if row is None:
        raise Unauthorized("The sign-in has ended.", slug="session-ended")
    user, session = row
    _active_session_user(session, utcnow())
    return user, session
