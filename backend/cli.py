"""Command-line tasks: ``flask --app backend <command>``."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext

from backend import demo
from backend.audit import service as audit
from backend.errors import Problem
from backend.evidence.cli import evidence_group
from backend.extensions import db
from backend.idempotency import service as idempotency
from backend.jobs.cli import jobs_group
from backend.org import service as org
from backend.org.models import Unit
from backend.uploads.cli import uploads_group
from shared.enums import Role


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(create_user)
    app.cli.add_command(create_root_unit)
    app.cli.add_command(purge_idempotency)
    app.cli.add_command(audit_group)
    app.cli.add_command(jobs_group)
    app.cli.add_command(uploads_group)
    app.cli.add_command(evidence_group)


@click.command("seed-demo")
@with_appcontext
@click.option("--force", is_flag=True, help="Seed even when the database already has units.")
def seed_demo(force: bool) -> None:
    """Load the demo city: units, users of every role and about 20 cases."""
    if db.session.scalar(sa.select(sa.func.count(Unit.id))) and not force:
        click.echo("The database already has units; nothing seeded (use --force).")
        return
    summary = demo.seed()
    db.session.commit()
    click.echo(
        f"Seeded {summary['units']} units, {summary['users']} users, "
        f"{summary['cases']} cases. Demo password: {demo.DEMO_PASSWORD}"
    )


@click.command("create-root-unit")
@with_appcontext
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--name-en")
def create_root_unit(code: str, name: str, name_en: str | None) -> None:
    """Create the city bureau at the top of a new organisation."""
    unit = org.create_root_unit(code=code, name=name, name_en=name_en)
    db.session.commit()
    click.echo(str(unit.id))


@click.command("create-user")
@with_appcontext
@click.option("--username", required=True)
@click.option("--display-name", required=True)
@click.option("--unit-code", required=True, help="Code of the user's unit.")
@click.option(
    "--role", "roles", multiple=True, required=True, type=click.Choice([r.value for r in Role])
)
@click.password_option()
def create_user(
    username: str, display_name: str, unit_code: str, roles: tuple[str, ...], password: str
) -> None:
    """Create a user; the password is asked for, never taken from the command line."""
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == unit_code))
    if unit is None:
        raise click.BadParameter(f"no unit with code {unit_code!r}", param_hint="--unit-code")
    try:
        user = org.create_user(
            username=username,
            display_name=display_name,
            password=password,
            unit=unit,
            roles={Role(r) for r in roles},
        )
    except Problem as problem:
        raise click.ClickException(problem.detail) from problem
    db.session.commit()
    click.echo(str(user.id))


@click.command("purge-idempotency")
@with_appcontext
def purge_idempotency() -> None:
    """Delete expired Idempotency-Key records."""
    count = idempotency.purge_expired()
    db.session.commit()
    click.echo(f"Deleted {count} expired records.")


@click.group("audit")
def audit_group() -> None:
    """The audit trail's hash chain."""


@audit_group.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check the whole chain and every signed checkpoint; exit 1 naming the first bad entry."""
    report = audit.verify_chain()
    bad_checkpoints = audit.verify_checkpoints()
    if report.first_bad_id is not None:
        raise click.ClickException(
            f"audit entry {report.first_bad_id}: {report.problem} "
            f"(checked {report.entries} entries)"
        )
    if bad_checkpoints:
        raise click.ClickException(f"checkpoints that no longer hold: {bad_checkpoints}")
    click.echo(f"The audit chain holds: {report.entries} entries.")


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint() -> None:
    """Sign the chain's current head (run it periodically, e.g. hourly from cron)."""
    checkpoint = audit.write_checkpoint()
    db.session.commit()
    if checkpoint is None:
        click.echo("The audit trail is empty; nothing to sign.")
    else:
        click.echo(f"Signed entry {checkpoint.entry_id}: {checkpoint.entry_hash}")
