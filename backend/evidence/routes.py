"""Evidence, its store and chain of custody."""

from __future__ import annotations

from backend.api import Blueprint

blp = Blueprint(
    "evidence",
    __name__,
    url_prefix="/api/v1",
    description="Evidence, its store and chain of custody",
)
