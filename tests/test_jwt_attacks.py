"""Forged and malformed tokens (checklist J1-J3, RFC 8725), against the real endpoints.

Each forgery starts from the claims of a real sign-in and changes one thing.
It is presented both as an access token (GET /api/v1/me) and as a refresh
token (POST /api/v1/auth/refresh); every one must get 401 problem+json, and a
refused refresh must not spend the real refresh token it was built from. A
baseline test shows that the same harness, signing honestly with the server's
key, produces tokens the server accepts, so each rejection is due to the one
thing the forgery changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient

from backend.auth import tokens
from backend.auth.models import AuthSession, RefreshToken
from backend.errors import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX
from backend.extensions import db

from conftest import PASSWORD

ME = "/api/v1/me"
REFRESH = "/api/v1/auth/refresh"
KINDS = ["access", "refresh"]
ATTACKER_KEY = Ed25519PrivateKey.generate()


# Building tokens by hand


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def hand_made(
    header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def signed(payload: dict[str, Any], key: Any, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(payload, key, algorithm="EdDSA", headers=headers)


def unsigned(payload: dict[str, Any], alg: str) -> str:
    return hand_made({"alg": alg, "typ": "JWT"}, payload, lambda _: b"")


def hmac_signed(payload: dict[str, Any], secret: bytes, alg: str = "HS256") -> str:
    """HMAC with a secret PyJWT itself would refuse (it blocks PEM keys as HMAC secrets)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return hand_made(
        {"alg": alg, "typ": "JWT"}, payload, lambda data: hmac.new(secret, data, digest).digest()
    )


def with_header(token: str, header: dict[str, Any]) -> str:
    """Swap a real token's header, keeping its payload and signature."""
    _, payload, signature = token.split(".")
    return f"{segment(header)}.{payload}.{signature}"


def with_payload(token: str, payload: dict[str, Any]) -> str:
    """Swap a real token's payload, keeping its header and signature."""
    header, _, signature = token.split(".")
    return f"{header}.{segment(payload)}.{signature}"


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_openssh(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )


def attacker_certificate() -> str:
    """A self-signed certificate for the attacker's key, as an ``x5c`` entry."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fieldcase")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ATTACKER_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(ATTACKER_KEY, None)
    )
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


ATTACKER_JWK = {"kty": "OKP", "crv": "Ed25519", "x": b64url(public_raw(ATTACKER_KEY))}


# The forgeries: (payload of a real token, the server's real key) -> token


def _now() -> int:
    return int(time.time())


def _without(claim: str) -> Callable[[dict[str, Any], Any], str]:
    return lambda p, k: signed({n: v for n, v in p.items() if n != claim}, k)


def _changed(**changes: Any) -> Callable[[dict[str, Any], Any], str]:
    return lambda p, k: signed({**p, **changes}, k)


def _other_typ(p: dict[str, Any], k: Any) -> str:
    return signed({**p, "typ": "refresh" if p["typ"] == "access" else "access"}, k)


Forgery = Callable[[dict[str, Any], Any], str]

FORGERIES: dict[str, Forgery] = {
    # J1: the algorithm is pinned.
    "alg-none": lambda p, k: unsigned(p, "none"),
    "alg-None": lambda p, k: unsigned(p, "None"),
    "alg-NONE": lambda p, k: unsigned(p, "NONE"),
    "alg-none-keeping-real-signature": lambda p, k: with_header(
        signed(p, k), {"alg": "none", "typ": "JWT"}
    ),
    "no-signature": lambda p, k: signed(p, k).rpartition(".")[0] + ".",
    "other-ed25519-key": lambda p, k: signed(p, ATTACKER_KEY),
    "es256-other-key": lambda p, k: jwt.encode(
        p, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"
    ),
    "hs256-secret-public-pem": lambda p, k: hmac_signed(p, public_pem(k)),
    "hs512-secret-public-pem": lambda p, k: hmac_signed(p, public_pem(k), "HS512"),
    "hs256-secret-public-raw": lambda p, k: hmac_signed(p, public_raw(k)),
    "hs256-secret-public-openssh": lambda p, k: hmac_signed(p, public_openssh(k)),
    "payload-swapped-under-real-signature": lambda p, k: with_payload(
        signed(p, k), {**p, "sub": str(uuid.uuid4())}
    ),
    # J1: keys named or carried in the header are refused, even under a valid signature.
    "header-jku": lambda p, k: signed(p, k, {"jku": "https://attacker.example/jwks.json"}),
    "header-x5u": lambda p, k: signed(p, k, {"x5u": "https://attacker.example/cert.pem"}),
    "header-jwk": lambda p, k: signed(p, k, {"jwk": ATTACKER_JWK}),
    "header-x5c": lambda p, k: signed(p, k, {"x5c": [attacker_certificate()]}),
    "header-crit": lambda p, k: signed(p, k, {"crit": ["exp"]}),
    # J2: lifetime, issuer and audience.
    "expired": lambda p, k: signed(
        {**p, "iat": _now() - 3600, "nbf": _now() - 3600, "exp": _now() - 60}, k
    ),
    "not-yet-valid": lambda p, k: signed({**p, "nbf": _now() + 3600}, k),
    "issued-in-the-future": lambda p, k: signed({**p, "iat": _now() + 3600}, k),
    "iat-not-a-number": _changed(iat="yesterday"),
    "exp-not-a-number": _changed(exp="tomorrow"),
    "wrong-audience": _changed(aud="some-other-api"),
    "audience-list-without-ours": _changed(aud=["some-other-api", "fieldcase"]),
    "wrong-issuer": _changed(iss="https://attacker.example"),
    # J2: every required claim is required.
    **{f"missing-{claim}": _without(claim) for claim in tokens.REQUIRED_CLAIMS},
    # J3: access and refresh tokens are not interchangeable.
    "typ-of-the-other-kind": _other_typ,
    "typ-unknown": _changed(typ="id"),
    # The session and user named must exist and belong together.
    "unknown-session": lambda p, k: signed({**p, "sid": str(uuid.uuid4())}, k),
    "unknown-user": lambda p, k: signed({**p, "sub": str(uuid.uuid4())}, k),
    "sid-not-a-uuid": _changed(sid="not-a-session"),
    "sid-a-number": _changed(sid=12345),
    "sub-not-a-uuid": _changed(sub="admin"),
    "jti-not-a-uuid": _changed(jti="not-a-jti"),
}


# Fixtures and helpers


@dataclass(frozen=True)
class SignIn:
    pair: dict[str, Any]

    def claims(self, kind: str) -> dict[str, Any]:
        """The real token's claims, with a fresh lifetime."""
        token = self.pair[f"{kind}_token"]
        payload = jwt.decode(token, options={"verify_signature": False})
        now = _now()
        return {**payload, "iat": now, "nbf": now, "exp": now + 300}

    @property
    def refresh_jti(self) -> uuid.UUID:
        token = self.pair["refresh_token"]
        return uuid.UUID(jwt.decode(token, options={"verify_signature": False})["jti"])


def sign_in(client: FlaskClient, username: str) -> SignIn:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return SignIn(response.get_json())


VICTIM = "b1.officer"


def is_live(app: Flask, sign: SignIn) -> bool:
    """Its refresh token unspent and its session not revoked."""
    with app.app_context():
        row = db.session.get(RefreshToken, sign.refresh_jti)
        session = db.session.get(AuthSession, row.session_id) if row else None
        return row is not None and row.used_at is None and session.revoked_at is None


@pytest.fixture(scope="module")
def sign_ins(app: Flask, world: Any) -> list[SignIn]:
    return [sign_in(app.test_client(), world.user(VICTIM).username)]


@pytest.fixture
def victim(app: Flask, world: Any, sign_ins: list[SignIn]) -> SignIn:
    """A real, live sign-in whose claims the forgeries reuse.

    Shared by the tests to save password hashing; should a forgery wrongly get
    through and spend it, the next test signs in afresh so that one failure does
    not cascade into the rest.
    """
    if not is_live(app, sign_ins[-1]):
        sign_ins.append(sign_in(app.test_client(), world.user(VICTIM).username))
    return sign_ins[-1]


@pytest.fixture(scope="module")
def real_key(app: Flask) -> Ed25519PrivateKey:
    return app.extensions["fieldcase.jwt_key"]


def present(client: FlaskClient, kind: str, token: str) -> Any:
    if kind == "access":
        return client.get(ME, headers={"Authorization": f"Bearer {token}"})
    return client.post(REFRESH, json={"refresh_token": token})


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert body["status"] == 401
    assert body["type"].startswith(PROBLEM_TYPE_PREFIX)
    assert "access_token" not in body and "username" not in body


def assert_unspent(app: Flask, sign: SignIn) -> None:
    assert is_live(app, sign), "a refused refresh spent the real token or ended its session"


# Tests


@pytest.mark.parametrize("kind", KINDS)
def test_honestly_signed_copy_is_accepted(
    app: Flask, client: FlaskClient, world: Any, real_key: Ed25519PrivateKey, kind: str
) -> None:
    """The control: re-signing a real token's claims with the server's key works."""
    sign = sign_in(client, world.user(VICTIM).username)
    response = present(client, kind, signed(sign.claims(kind), real_key))
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_token_is_rejected(
    app: Flask,
    client: FlaskClient,
    victim: SignIn,
    real_key: Ed25519PrivateKey,
    forgery: Forgery,
    kind: str,
) -> None:
    token = forgery(victim.claims(kind), real_key)
    assert_unauthorized(present(client, kind, token))
    if kind == "refresh":
        assert_unspent(app, victim)


def test_hs256_with_the_public_key_from_the_app_context(
    app: Flask, client: FlaskClient, victim: SignIn
) -> None:
    """Key confusion with the key exactly as ``tokens.public_key()`` hands it out."""
    with app.app_context():
        pem = tokens.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    for kind in KINDS:
        assert_unauthorized(present(client, kind, hmac_signed(victim.claims(kind), pem)))
    assert_unspent(app, victim)


def test_real_refresh_token_is_not_an_access_token(client: FlaskClient, victim: SignIn) -> None:
    assert_unauthorized(present(client, "access", victim.pair["refresh_token"]))


def test_real_access_token_is_not_a_refresh_token(
    app: Flask, client: FlaskClient, victim: SignIn
) -> None:
    assert_unauthorized(present(client, "refresh", victim.pair["access_token"]))
    assert_unspent(app, victim)


def test_valid_token_of_another_users_session(
    app: Flask, client: FlaskClient, world: Any, victim: SignIn, real_key: Ed25519PrivateKey
) -> None:
    """A real session id paired with another (real) user's id is refused."""
    other = world.user("city.admin")
    for kind in KINDS:
        token = signed({**victim.claims(kind), "sub": str(other.id)}, real_key)
        assert_unauthorized(present(client, kind, token))
    assert_unspent(app, victim)


@pytest.mark.parametrize(
    "token",
    ["x", "a.b", "a.b.c", "a.b.c.d.e", "...", "eyJhbGciOiJFZERTQSJ9..", "é.é.é"],
)
def test_garbage_is_rejected(client: FlaskClient, token: str) -> None:
    for kind in KINDS:
        assert_unauthorized(present(client, kind, token))


def test_no_forgery_disturbed_the_sign_in_it_was_built_from(
    app: Flask, client: FlaskClient, sign_ins: list[SignIn]
) -> None:
    """Runs last: the first sign-in outlived every forgery above, unspent and working."""
    assert len(sign_ins) == 1, "a forgery got through and spent the shared sign-in"
    first = sign_ins[0]
    assert_unspent(app, first)
    assert present(client, "access", first.pair["access_token"]).status_code == 200
    assert present(client, "refresh", first.pair["refresh_token"]).status_code == 200
