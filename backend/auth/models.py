"""Sign-in sessions, refresh-token families, login throttling and rate limits."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.common import Timestamp, UTCDateTime, UUIDPk
from backend.extensions import db


class AuthSession(db.Model):
    """One sign-in: the family of refresh tokens issued from one login.

    Access tokens name their session (``sid``); revoking the session ends every
    token of the family at once.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[Timestamp]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(64))


class RefreshToken(db.Model):
    __tablename__ = "refresh_tokens"

    jti: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("auth_sessions.id"), index=True)
    issued_at: Mapped[Timestamp]
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(db.Model):
    """Failed sign-ins per user name, known or not, so lockout reveals nothing."""

    __tablename__ = "login_throttles"

    username: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateLimitWindow(db.Model):
    """A fixed one-minute window of requests per key (e.g. ``login:<address>``)."""

    __tablename__ = "rate_limit_windows"

    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(default=0)
