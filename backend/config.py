"""Configuration read from the environment, with defaults that run on a laptop."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

MAX_ACCESS_TOKEN_MINUTES = 15
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MIB = 1024 * 1024
GIB = 1024 * MIB
DB_POOL_RECYCLE_SECONDS = 300


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def normalise_database_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_config(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask configuration from ``FIELDCASE_*`` environment variables."""
    default_db = "sqlite:///" + str(Path(instance_path) / "fieldcase.db")
    access_minutes = min(_int("FIELDCASE_ACCESS_TOKEN_MINUTES", 15), MAX_ACCESS_TOKEN_MINUTES)
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            os.environ.get("FIELDCASE_DATABASE_URL") or default_db
        ),
        # Connections are replaced after DB_POOL_RECYCLE_SECONDS instead of being pinged at
        # every check-out (a round trip per request). After a database restart, the first
        # request on a stale connection fails and the pool then replaces all its connections.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": DB_POOL_RECYCLE_SECONDS},
        "JWT_PRIVATE_KEY": os.environ.get("FIELDCASE_JWT_PRIVATE_KEY", ""),
        "JWT_PRIVATE_KEY_FILE": os.environ.get(
            "FIELDCASE_JWT_PRIVATE_KEY_FILE", str(Path(instance_path) / "jwt-ed25519.pem")
        ),
        "JWT_ISSUER": os.environ.get("FIELDCASE_JWT_ISSUER", "fieldcase"),
        "JWT_AUDIENCE": os.environ.get("FIELDCASE_JWT_AUDIENCE", "fieldcase-api"),
        "ACCESS_TOKEN_LIFETIME": timedelta(minutes=access_minutes),
        "REFRESH_TOKEN_LIFETIME": timedelta(hours=_int("FIELDCASE_REFRESH_TOKEN_HOURS", 12)),
        "REFRESH_REUSE_GRACE": timedelta(seconds=_int("FIELDCASE_REFRESH_GRACE_SECONDS", 10)),
        "LOGIN_MAX_FAILURES": _int("FIELDCASE_LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCKOUT": timedelta(minutes=_int("FIELDCASE_LOGIN_LOCKOUT_MINUTES", 10)),
        "RATE_LIMIT_LOGIN_PER_MINUTE": _int("FIELDCASE_RATE_LIMIT_LOGIN_PER_MINUTE", 30),
        "RATE_LIMIT_REFRESH_PER_MINUTE": _int("FIELDCASE_RATE_LIMIT_REFRESH_PER_MINUTE", 60),
        "RATE_LIMIT_PARTICIPANT_JOIN_PER_MINUTE": _int(
            "FIELDCASE_RATE_LIMIT_PARTICIPANT_JOIN_PER_MINUTE", 10
        ),
        "MAX_CONTENT_LENGTH": _int("FIELDCASE_MAX_BODY_BYTES", 1024 * 1024),
        "IDEMPOTENCY_TTL": timedelta(days=_int("FIELDCASE_IDEMPOTENCY_DAYS", 30)),
        "IDEMPOTENCY_ABANDONED_AFTER": timedelta(
            seconds=_int("FIELDCASE_IDEMPOTENCY_ABANDONED_SECONDS", 300)
        ),
        "PROXY_COUNT": _int("FIELDCASE_PROXY_COUNT", 0),
        "UPLOAD_DIR": os.environ.get("FIELDCASE_UPLOAD_DIR")
        or str(Path(instance_path) / "uploads"),
        "UPLOAD_MAX_BYTES": _int("FIELDCASE_UPLOAD_MAX_BYTES", 8 * GIB),
        "UPLOAD_CHUNK_MAX_BYTES": _int("FIELDCASE_UPLOAD_CHUNK_MAX_BYTES", 64 * MIB),
        "UPLOAD_EXPIRY": timedelta(hours=_int("FIELDCASE_UPLOAD_EXPIRY_HOURS", 72)),
        "CASE_EVIDENCE_MAX_BYTES": _int("FIELDCASE_CASE_EVIDENCE_MAX_BYTES", 64 * GIB),
        "EVIDENCE_STORE": os.environ.get("FIELDCASE_EVIDENCE_STORE", "local"),
        "EVIDENCE_DIR": os.environ.get("FIELDCASE_EVIDENCE_DIR")
        or str(Path(instance_path) / "evidence"),
        "S3_ENDPOINT_URL": os.environ.get("FIELDCASE_S3_ENDPOINT_URL") or None,
        "S3_BUCKET": os.environ.get("FIELDCASE_S3_BUCKET", "fieldcase-evidence"),
        "S3_REGION": os.environ.get("FIELDCASE_S3_REGION", "us-east-1"),
        "S3_PREFIX": os.environ.get("FIELDCASE_S3_PREFIX", "sha256/"),
        "PDF_FONT": os.environ.get("FIELDCASE_PDF_FONT") or None,
        "STATS_EVIDENCE_ON_TIME_HOURS": _int("FIELDCASE_STATS_EVIDENCE_ON_TIME_HOURS", 24),
        "PUBLIC_BASE_URL": os.environ.get("FIELDCASE_PUBLIC_BASE_URL") or None,
        "JOB_QUEUE_URL": os.environ.get("FIELDCASE_JOB_QUEUE_URL") or None,
        "API_TITLE": "Fieldcase API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": os.environ.get("FIELDCASE_SWAGGER_UI_URL", "/api/docs/assets/"),
        "JSON_SORT_KEYS": False,
    }
    config.update(overrides or {})
    return config
