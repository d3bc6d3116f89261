"""Fieldcase backend: a Flask REST service that moves cases through their legal steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from backend import lifecycle
from backend.api import Api
from backend.auth import tokens
from backend.config import load_config
from backend.errors import register_error_handlers
from backend.extensions import db, migrate

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(app.instance_path, config))
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if app.config["PROXY_COUNT"]:
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _configure_sqlite(db.engine)
    tokens.init_app(app)
    register_error_handlers(app)
    lifecycle.init_app(app)
    _register_api(app)
    _register_cli(app)
    return app


def _register_api(app: Flask) -> None:
    from backend.auth.routes import blp as auth_blp
    from backend.cases.routes import blp as cases_blp
    from backend.devices.routes import blp as devices_blp
    from backend.docs import docs_assets
    from backend.documents.routes import blp as documents_blp
    from backend.evidence.routes import blp as evidence_blp
    from backend.health import blp as health_blp
    from backend.identification.routes import blp as identification_blp
    from backend.inspection.routes import blp as inspection_blp
    from backend.org.routes import blp as org_blp
    from backend.sessions.routes import blp as sessions_blp
    from backend.stats.routes import blp as stats_blp
    from backend.supervision.routes import blp as supervision_blp
    from backend.uploads.routes import blp as uploads_blp
    from backend.workflow.routes import blp as workflow_blp

    app.config.setdefault("API_SPEC_OPTIONS", {"security": [{"bearer": []}]})
    api = Api(app)
    for blp in (
        auth_blp,
        org_blp,
        cases_blp,
        workflow_blp,
        devices_blp,
        uploads_blp,
        evidence_blp,
        documents_blp,
        supervision_blp,
        inspection_blp,
        stats_blp,
        sessions_blp,
        identification_blp,
    ):
        api.register_blueprint(blp)
    app.register_blueprint(health_blp)
    app.register_blueprint(docs_assets)


def _register_cli(app: Flask) -> None:
    from backend.cli import register

    register(app)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so that writers queue instead of failing."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
