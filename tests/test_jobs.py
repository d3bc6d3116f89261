"""Periodic jobs: a job runs once per period however many schedulers share the database."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import SimpleWorker

from backend.common import utcnow
from backend.extensions import db
from backend.jobs import service
from backend.jobs.models import JobRun


@pytest.fixture
def counting_job(app: Flask):
    calls: list[int] = []
    name = f"test.count.{len(service.JOBS)}"

    def count() -> str:
        calls.append(1)
        return f"counted {len(calls)}"

    job = service.PeriodicJob(name, timedelta(hours=1), count)
    service.JOBS[name] = job
    yield job, calls
    del service.JOBS[name]
    with app.app_context():
        db.session.execute(sa.delete(JobRun).where(JobRun.name == name))
        db.session.commit()


def test_a_due_job_runs_once_per_period(app: Flask, counting_job):
    job, calls = counting_job
    now = utcnow()
    with app.app_context():
        assert service.run_due(now, [job.name])[job.name] == "counted 1"
        assert job.name not in service.run_due(now + timedelta(minutes=59), [job.name])
        assert service.run_due(now + timedelta(minutes=61), [job.name])[job.name] == "counted 2"
        row = db.session.get_one(JobRun, job.name)
        assert row.succeeded is True and row.detail == "counted 2"
    assert len(calls) == 2


def test_a_second_scheduler_does_not_run_a_claimed_job(app: Flask, counting_job):
    job, calls = counting_job
    now = utcnow()
    with app.app_context():
        service.run_due(now, [job.name])
    with app.app_context():
        assert job.name not in service.run_due(now + timedelta(seconds=1), [job.name])
    assert len(calls) == 1


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(app: Flask, counting_job):
    job, calls = counting_job

    def fail() -> str:
        raise RuntimeError("disk gone")

    failing = service.PeriodicJob("test.failing", timedelta(hours=1), fail)
    service.JOBS[failing.name] = failing
    try:
        with app.app_context():
            summaries = service.run_due(utcnow(), [failing.name, job.name])
            assert summaries[failing.name] == "failed: RuntimeError"
            assert summaries[job.name] == "counted 1"
            assert db.session.get_one(JobRun, failing.name).succeeded is False
        assert calls == [1]
    finally:
        del service.JOBS[failing.name]
        with app.app_context():
            db.session.execute(sa.delete(JobRun).where(JobRun.name == failing.name))
            db.session.commit()


def test_the_cli_runs_a_named_job_and_refuses_an_unknown_one(app: Flask, counting_job):
    job, calls = counting_job
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", job.name])
    assert result.exit_code == 0, result.output
    assert f"{job.name}: counted 1" in result.output
    assert calls == [1]
    unknown = runner.invoke(args=["jobs", "run", "no.such.job"])
    assert unknown.exit_code != 0
    assert "no job named" in unknown.output
    listed = runner.invoke(args=["jobs", "list"])
    assert job.name in listed.output


REDIS_URL = os.environ.get("FIELDCASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_queue(app: Flask, monkeypatch: pytest.MonkeyPatch):
    """Jobs go to a queue of this test's own on the real Redis server."""
    monkeypatch.setitem(app.config, "JOB_QUEUE_URL", REDIS_URL)
    monkeypatch.setitem(app.config, "JOB_QUEUE_NAME", f"test-jobs-{uuid.uuid4().hex[:8]}")
    with app.app_context():
        queue = service.job_queue()
    yield queue
    queue.delete(delete_jobs=True)


def test_with_a_queue_the_scheduler_only_enqueues_and_a_worker_runs(
    app: Flask, counting_job, redis_queue
):
    job, calls = counting_job
    with app.app_context():
        assert service.dispatch_due(utcnow(), [job.name]) == [f"{job.name}: queued"]
        assert service.dispatch_due(utcnow(), [job.name]) == []  # claimed for this period
        assert calls == [] and redis_queue.count == 1
        SimpleWorker([redis_queue], connection=redis_queue.connection).work(burst=True)
        assert calls == [1] and redis_queue.count == 0
        row = db.session.get_one(JobRun, job.name)
        assert row.succeeded is True and row.detail == "counted 1"


def test_without_a_queue_the_scheduler_runs_jobs_itself(app: Flask, counting_job):
    job, calls = counting_job
    with app.app_context():
        assert service.job_queue() is None
        assert service.dispatch_due(utcnow(), [job.name]) == [f"{job.name}: counted 1"]
    assert calls == [1]


def test_the_worker_command_needs_a_queue(app: Flask):
    result = app.test_cli_runner().invoke(args=["jobs", "worker", "--burst"])
    assert result.exit_code != 0
    assert "FIELDCASE_JOB_QUEUE_URL is not set" in result.output
