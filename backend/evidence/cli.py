"""``flask evidence``: the evidence store."""

from __future__ import annotations

import click


@click.group("evidence")
def evidence_group() -> None:
    """Evidence and its store."""
