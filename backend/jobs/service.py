"""A registry of periodic jobs and a scheduler pass that runs the ones that are due.

Domains register their jobs with :func:`periodic`. A pass claims a due job with
one conditional UPDATE on its ``job_runs`` row, so schedulers on several hosts
sharing one database never run the same job twice in one period. Each job
runs in a transaction of its own and returns a one-line summary.

Where a job runs: in the scheduler's own process in the embedded default, or,
when ``JOB_QUEUE_URL`` names a Redis server, on an RQ queue that ``flask jobs
worker`` processes drain (production: a long sweep never delays the others,
and workers can run on other hosts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from redis import Redis
from rq import Queue

from backend.common import dialect_insert, utcnow
from backend.extensions import db
from backend.jobs.models import JobRun

log = logging.getLogger(__name__)

QUEUE_NAME = "fieldcase-jobs"


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: timedelta
    run: Callable[[], str]


JOBS: dict[str, PeriodicJob] = {}


def periodic(name: str, every: timedelta) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register ``run`` to be run every ``every``; it returns a summary line."""

    def register(run: Callable[[], str]) -> Callable[[], str]:
        JOBS[name] = PeriodicJob(name, every, run)
        return run

    return register


def _claim(job: PeriodicJob, now: datetime) -> bool:
    db.session.execute(
        dialect_insert(JobRun, db.session).values(name=job.name).on_conflict_do_nothing()
    )
    claimed = db.session.execute(
        sa.update(JobRun)
        .where(
            JobRun.name == job.name,
            sa.or_(JobRun.started_at.is_(None), JobRun.started_at <= now - job.every),
        )
        .values(started_at=now)
    )
    db.session.commit()
    return claimed.rowcount == 1


def run_job(job: PeriodicJob) -> str:
    """Run one job now, record its outcome, and return its summary."""
    try:
        summary = job.run()
        db.session.commit()
        succeeded = True
    except Exception as exc:
        db.session.rollback()
        log.exception("periodic job %s failed", job.name)
        summary, succeeded = f"failed: {type(exc).__name__}", False
    db.session.execute(
        dialect_insert(JobRun, db.session).values(name=job.name).on_conflict_do_nothing()
    )
    db.session.execute(
        sa.update(JobRun)
        .where(JobRun.name == job.name)
        .values(finished_at=utcnow(), succeeded=succeeded, detail=summary[:1000])
    )
    db.session.commit()
    return summary


def run_due(now: datetime | None = None, names: Iterable[str] | None = None) -> dict[str, str]:
    """Run the registered jobs (or those named) whose period has passed; summaries by name."""
    now = now or utcnow()
    chosen = JOBS.values() if names is None else [JOBS[name] for name in names]
    return {job.name: run_job(job) for job in chosen if _claim(job, now)}


def job_queue() -> Queue | None:
    """The Redis queue jobs go to, or None when they run in the scheduler's process."""
    url = current_app.config.get("JOB_QUEUE_URL")
    if not url:
        return None
    name = current_app.config.get("JOB_QUEUE_NAME", QUEUE_NAME)
    return Queue(name, connection=Redis.from_url(url))


def run_named(name: str) -> str:
    """What an RQ worker runs: one registered job (the worker holds an app context)."""
    return run_job(JOBS[name])


def dispatch_due(now: datetime | None = None, names: Iterable[str] | None = None) -> list[str]:
    """Claim the due jobs and run them here, or put them on the Redis queue."""
    queue = job_queue()
    if queue is None:
        return [f"{name}: {summary}" for name, summary in run_due(now, names).items()]
    now = now or utcnow()
    chosen = JOBS.values() if names is None else [JOBS[name] for name in names]
    queued = []
    for job in chosen:
        if _claim(job, now):
            queue.enqueue(run_named, job.name, job_timeout=int(job.every.total_seconds()))
            queued.append(f"{job.name}: queued")
    return queued
