"""Resumable uploads (tus 1.0.0)."""

from __future__ import annotations

from backend.api import Blueprint

blp = Blueprint(
    "uploads", __name__, url_prefix="/api/v1", description="Resumable uploads (tus 1.0.0)"
)
