"""Signing and checking JWTs (RFC 8725): Ed25519 only, every claim required."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import Flask, current_app

from backend.errors import Unauthorized

ALGORITHM = "EdDSA"
ACCESS = "access"
REFRESH = "refresh"
PARTICIPANT = "participant"
"""A remote-session participant's token: ``sub`` is the participant, ``sid`` the session."""
HEADER_TYPES = {ACCESS: "at+jwt", REFRESH: "rt+jwt", PARTICIPANT: "participant+jwt"}
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti", "typ", "sid"]
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
_EXTENSION_KEY = "fieldcase.jwt_key"


@dataclass(frozen=True)
class Claims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    jti: uuid.UUID
    expires_at: datetime


def _load_private_key(app: Flask) -> Ed25519PrivateKey:
    pem = app.config["JWT_PRIVATE_KEY"]
    if not pem:
        path = Path(app.config["JWT_PRIVATE_KEY_FILE"])
        if not path.exists():
            _write_new_key(path)
        pem = path.read_text()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError("the JWT signing key must be an Ed25519 private key")
    return key


def _write_new_key(path: Path) -> None:
    """Create a signing key for a single-host install; production passes one in.

    Written to a temporary file and linked into place, so that workers starting
    together agree on one key and never read a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwt-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION_KEY] = _load_private_key(app)


def public_key() -> Ed25519PublicKey:
    return current_app.extensions[_EXTENSION_KEY].public_key()


def sign(message: bytes) -> bytes:
    """Sign with the service key (used for audit checkpoints)."""
    return current_app.extensions[_EXTENSION_KEY].sign(message)


def signature_valid(signature: bytes, message: bytes) -> bool:
    try:
        public_key().verify(signature, message)
    except InvalidSignature:
        return False
    return True


def issue(
    kind: str, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime, lifetime: timedelta
) -> tuple[str, Claims]:
    jti = uuid.uuid4()
    expires_at = now + lifetime
    payload: dict[str, Any] = {
        "iss": current_app.config["JWT_ISSUER"],
        "aud": current_app.config["JWT_AUDIENCE"],
        "sub": str(user_id),
        "sid": str(session_id),
        "jti": str(jti),
        "typ": kind,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    token = jwt.encode(
        payload,
        current_app.extensions[_EXTENSION_KEY],
        algorithm=ALGORITHM,
        headers={"typ": HEADER_TYPES[kind]},
    )
    return token, Claims(user_id, session_id, jti, expires_at)


def verify(token: str, kind: str) -> Claims:
    """Check signature, algorithm, issuer, audience, lifetime and token type."""
    try:
        header = jwt.get_unverified_header(token)
        if FORBIDDEN_HEADERS.intersection(header):
            raise Unauthorized("The token carries a header this service refuses.")
        payload = jwt.decode(
            token,
            public_key(),
            algorithms=[ALGORITHM],
            audience=current_app.config["JWT_AUDIENCE"],
            issuer=current_app.config["JWT_ISSUER"],
            options={"require": REQUIRED_CLAIMS},
            leeway=5,
        )
        if payload["typ"] != kind:
            raise Unauthorized(f"A {payload['typ']} token cannot be used here.")
        return Claims(
            user_id=uuid.UUID(payload["sub"]),
            session_id=uuid.UUID(payload["sid"]),
            jti=uuid.UUID(payload["jti"]),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.", slug="token-expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError) as exc:
        raise Unauthorized("The token is not valid.", slug="invalid-token") from exc
