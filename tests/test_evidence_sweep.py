"""The integrity sweep finds corrupted and missing files in either store and raises alerts.

Each test works in a database of its own: the sweep checks every stored file
the database knows of, and the evidence of other tests lives in other folders.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from backend.evidence.models import AlertKind, EvidenceAlert
from backend.extensions import db
from backend.jobs import service as jobs

from conftest import Api, Org, build_org, make_app
from support_evidence import (
    PROBLEM,
    EvidenceMaker,
    S3Server,
    configure_s3_store,
    enrol,
    png_bytes,
    s3_fixture,  # noqa: F401
    s3_server_fixture,  # noqa: F401
)


@dataclass
class Site:
    """A private organisation whose evidence goes to one store, and ways to harm that store."""

    app: Flask
    org: Org
    damage: Callable[[str], None]
    remove: Callable[[str], None]
    restore: Callable[[str, bytes], None]

    @property
    def api(self) -> Api:
        return Api(self.app.test_client())

    def maker(self, api: Api, name: str) -> EvidenceMaker:
        officer = self.org.user(name)
        return EvidenceMaker(api, officer, enrol(api, officer))

    def verify(self) -> Any:
        return self.app.test_cli_runner().invoke(args=["evidence", "verify"])

    def run_daily_job(self) -> str:
        job = jobs.JOBS["evidence.integrity_sweep"]
        assert job.every == timedelta(days=1)
        with self.app.app_context():
            return jobs.run_job(job)

    def open_alerts(self) -> list[tuple[uuid.UUID, AlertKind]]:
        with self.app.app_context():
            rows = db.session.execute(
                sa.select(EvidenceAlert.evidence_id, EvidenceAlert.kind).where(
                    EvidenceAlert.resolved.is_(False)
                )
            )
            return sorted((row.evidence_id, row.kind) for row in rows)


@contextmanager
def private_app(database_url: str, tmp_path: Path, **config: Any) -> Iterator[tuple[Flask, Org]]:
    app = make_app(database_url, tmp_path, UPLOAD_DIR=str(tmp_path / "uploads"), **config)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        org = build_org("s" + uuid.uuid4().hex[:6])
    try:
        yield app, org
    finally:
        with app.app_context():
            db.engine.dispose()


def local_site(app: Flask, org: Org, root: Path) -> Site:
    def path(sha256: str) -> Path:
        return root / sha256[:2] / sha256[2:4] / sha256

    def overwrite(sha256: str, data: bytes) -> None:
        path(sha256).chmod(0o644)  # stored files are read-only
        path(sha256).write_bytes(data)

    return Site(
        app,
        org,
        damage=lambda sha256: overwrite(sha256, b"\x89PNG tampered"),
        remove=lambda sha256: path(sha256).unlink(),
        restore=overwrite,
    )


def s3_site(app: Flask, org: Org, server: S3Server) -> Site:
    client, bucket = server.client(), app.config["S3_BUCKET"]

    def key(sha256: str) -> str:
        return f"{app.config['S3_PREFIX']}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def overwrite(sha256: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=key(sha256), Body=data)

    return Site(
        app,
        org,
        damage=lambda sha256: overwrite(sha256, b"\x89PNG tampered"),
        remove=lambda sha256: client.delete_object(Bucket=bucket, Key=key(sha256)),
        restore=overwrite,
    )


@pytest.fixture(params=["local", "s3"])
def site(
    request: pytest.FixtureRequest,
    fresh_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Site]:
    if request.param == "local":
        root = tmp_path / "evidence"
        with private_app(
            fresh_database, tmp_path, EVIDENCE_STORE="local", EVIDENCE_DIR=str(root)
        ) as (app, org):
            yield local_site(app, org, root)
        return
    server: S3Server = request.getfixturevalue("s3")
    with private_app(fresh_database, tmp_path) as (app, org):
        configure_s3_store(monkeypatch, app, tmp_path, server)
        yield s3_site(app, org, server)


def test_sweep_finds_corrupted_and_missing_files_and_alerts_once(site, caplog, monkeypatch):
    api = site.api
    station, foreign = site.maker(api, "a1.officer"), site.maker(api, "b1.officer")
    first_case, second_case = (api.case(station.officer)["id"] for _ in range(2))
    sound, damaged, lost = png_bytes(seed=31), png_bytes(seed=32), png_bytes(seed=33)
    kept = station.add(first_case, sound)
    hit = station.add(first_case, damaged)
    hit_copy = station.add(second_case, damaged)
    gone = station.add(second_case, lost)
    foreign.add(api.case(foreign.officer)["id"], png_bytes(seed=34))

    clean = site.verify()
    assert clean.exit_code == 0, clean.output
    assert "checked 4 stored files: 0 damaged or missing" in clean.output

    site.damage(hit["sha256"])
    site.remove(gone["sha256"])
    # Alembic's logging set-up, run in this process by the upgrade, disables
    # the loggers that exist by then.
    monkeypatch.setattr(logging.getLogger("backend.evidence.service"), "disabled", False)
    with caplog.at_level(logging.ERROR, logger="backend.evidence.service"):
        found = site.verify()
    assert found.exit_code == 1, found.output
    assert f"corrupted\t{hit['sha256']}\tevidence " in found.output
    assert f"missing\t{gone['sha256']}\tevidence {gone['id']}" in found.output
    assert hit["id"] in found.output and hit_copy["id"] in found.output
    assert kept["sha256"] not in found.output
    expected = sorted(
        [
            (uuid.UUID(hit["id"]), AlertKind.CORRUPTED),
            (uuid.UUID(hit_copy["id"]), AlertKind.CORRUPTED),
            (uuid.UUID(gone["id"]), AlertKind.MISSING),
        ]
    )
    assert site.open_alerts() == expected
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    for item in (hit, hit_copy, gone):
        assert item["id"] in logged

    # The daily job finds the same and raises nothing twice.
    summary = site.run_daily_job()
    assert "2 damaged or missing, 0 new alerts" in summary, summary
    assert site.open_alerts() == expected

    officer = station.officer
    download = api.get(f"/api/v1/evidence/{gone['id']}/content?purpose=核对", officer)
    assert download.status_code == 500 and download.content_type == PROBLEM

    site.restore(hit["sha256"], damaged)
    summary = site.run_daily_job()
    assert "1 damaged or missing, 0 new alerts, 2 alerts resolved" in summary, summary
    assert site.open_alerts() == [(uuid.UUID(gone["id"]), AlertKind.MISSING)]


def test_alerts_are_listed_for_managers_leaders_and_admins_of_the_unit(site):
    api = site.api
    station = site.maker(api, "a1.officer")
    data = png_bytes(seed=41)
    item = station.add(api.case(station.officer)["id"], data)
    site.damage(item["sha256"])
    assert site.verify().exit_code == 1

    for name in ("a1.manager", "a1.leader", "a1.admin", "a.leader", "a.admin", "city.manager"):
        response = api.get("/api/v1/evidence/alerts", site.org.user(name))
        assert response.status_code == 200, name
        alerts = response.get_json()
        assert [(a["evidence_id"], a["kind"]) for a in alerts] == [(item["id"], "corrupted")]
        assert alerts[0]["case_id"] == item["case_id"] and not alerts[0]["resolved"]
        assert alerts[0]["sha256"] == item["sha256"] and alerts[0]["detail"]
    for name in ("b1.manager", "b1.leader", "a2.manager"):
        assert api.get("/api/v1/evidence/alerts", site.org.user(name)).get_json() == [], name
    for name in ("a1.officer", "a1.legal"):
        assert api.get("/api/v1/evidence/alerts", site.org.user(name)).status_code == 403, name

    site.restore(item["sha256"], data)
    site.run_daily_job()
    manager = site.org.user("a1.manager")
    assert api.get("/api/v1/evidence/alerts", manager).get_json() == []
    resolved = api.get("/api/v1/evidence/alerts?resolved=true", manager).get_json()
    assert [(a["evidence_id"], a["resolved"]) for a in resolved] == [(item["id"], True)]
    assert resolved[0]["resolved_at"]
