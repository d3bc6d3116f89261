"""``flask uploads``: upload housekeeping."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from backend.extensions import db
from backend.uploads import service


@click.group("uploads")
def uploads_group() -> None:
    """Resumable uploads."""


@uploads_group.command("purge-expired")
@with_appcontext
def purge_expired() -> None:
    """Delete uploads that expired unfinished (or unclaimed), and the files of finalised ones."""
    report = service.purge_expired()
    db.session.commit()
    click.echo(report.summary())
