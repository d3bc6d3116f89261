"""Documents, signatures and printable PDFs."""

from __future__ import annotations

from backend.api import Blueprint

blp = Blueprint(
    "documents",
    __name__,
    url_prefix="/api/v1",
    description="Documents, signatures and printable PDFs",
)
