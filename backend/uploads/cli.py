"""``flask uploads``: upload housekeeping."""

from __future__ import annotations

import click


@click.group("uploads")
def uploads_group() -> None:
    """Resumable uploads."""
