"""``flask evidence``: the evidence store."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from backend.evidence import service


@click.group("evidence")
def evidence_group() -> None:
    """Evidence and its store."""


@evidence_group.command("verify")
@with_appcontext
def verify() -> None:
    """Re-hash every stored evidence file; list what is corrupted or missing and exit 1.

    Raises an alert for each affected item (once while it stays open), as the
    daily job ``evidence.integrity_sweep`` does.
    """
    report = service.integrity_sweep()
    for finding in report.findings:
        items = ", ".join(str(evidence_id) for evidence_id in finding.evidence_ids)
        click.echo(f"{finding.kind}\t{finding.sha256}\tevidence {items}\t{finding.detail}")
    if report.findings:
        raise click.ClickException(report.summary())
    click.echo(report.summary())
