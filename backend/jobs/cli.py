"""``flask jobs``: run periodic jobs once, or keep a scheduler running."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext
from rq import SimpleWorker

from backend.jobs import service


@click.group("jobs")
def jobs_group() -> None:
    """Periodic jobs: clean-ups and sweeps."""


@jobs_group.command("list")
def list_jobs() -> None:
    """The registered jobs and their periods."""
    for job in service.JOBS.values():
        click.echo(f"{job.name}\tevery {job.every}")


@jobs_group.command("run")
@with_appcontext
@click.argument("name")
def run(name: str) -> None:
    """Run one job now, whether it is due or not."""
    job = service.JOBS.get(name)
    if job is None:
        raise click.BadParameter(f"no job named {name!r}; see `flask jobs list`")
    click.echo(f"{name}: {service.run_job(job)}")


@jobs_group.command("run-due")
@with_appcontext
def run_due() -> None:
    """One scheduler pass: run the jobs whose period has passed."""
    for name, summary in service.run_due().items():
        click.echo(f"{name}: {summary}")


@jobs_group.command("scheduler")
@with_appcontext
@click.option("--interval", default=30.0, show_default=True, help="Seconds between passes.")
def scheduler(interval: float) -> None:
    """Run scheduler passes forever: due jobs run here, or go to the Redis queue when
    FIELDCASE_JOB_QUEUE_URL is set."""
    while True:
        for line in service.dispatch_due():
            click.echo(line, err=True)
        time.sleep(interval)


@jobs_group.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run the jobs the scheduler puts on the Redis queue (FIELDCASE_JOB_QUEUE_URL)."""
    queue = service.job_queue()
    if queue is None:
        raise click.ClickException("FIELDCASE_JOB_QUEUE_URL is not set: jobs run in the scheduler.")
    SimpleWorker([queue], connection=queue.connection).work(burst=burst)
