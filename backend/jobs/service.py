"""A registry of periodic jobs and a scheduler pass that runs the ones that are due.

Domains register their jobs with :func:`periodic`. A pass claims a due job with
one conditional UPDATE on its ``job_runs`` row, so schedulers on several hosts
sharing one database never run the same job twice in one period. Each job
runs in a transaction of its own and returns a one-line summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from backend.common import dialect_insert, utcnow
from backend.extensions import db
from backend.jobs.models import JobRun

log = logging.getLogger(__name__)


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
