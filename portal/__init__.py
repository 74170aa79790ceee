"""Settle: create_app binds extensions, blueprints, the CLI and checks the gateway mappings."""

from __future__ import annotations

import os

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from portal import vault
from portal.config import from_environment
from portal.extensions import csrf, db, limiter, login_manager, migrate
from portal.types import json_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=os.environ.get("SETTLE_INSTANCE_PATH") or os.path.join(ROOT, "instance"),
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(from_environment(app.instance_path))
    app.config.update(config or {})
    # A malformed credentials key stops start-up here, naming where it came from.
    app.extensions["settle_vault"] = vault.load(app.instance_path)
    _private_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    engine = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    # JSON columns (types.JSONValue): sorted keys, and dates and Decimals written as text.
    engine.setdefault("json_serializer", json_text)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        engine.setdefault("connect_args", {"timeout": 30})

    # Every shipped mapping is checked before anything else: a bad file stops start-up here.
    from portal.gateways.registry import check_mappings

    check_mappings()

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)

    from portal import models  # noqa: F401  (registers every model with SQLAlchemy)
    from portal.audit import chain  # noqa: F401  (seals audit events after each commit)
    from portal.ids import RecordIdConverter

    app.url_map.converters["int"] = RecordIdConverter  # before any route is added
    from portal.web import register_web

    register_web(app)
    _register_api(app)

    from portal.tasks import init_celery

    init_celery(app)

    from portal.cli import settle_cli

    app.cli.add_command(settle_cli)
    return app


def _register_api(app: Flask) -> None:
    from portal.api.views import bp
    from portal.extensions import api as rest  # "api" here would be the portal.api package

    app.config.update(
        API_TITLE="Settle API", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1", OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"token": {
                "type": "http", "scheme": "bearer",
                "description": "A user's API token (Users, the user's page); the role limits it"}}},
            "security": [{"token": []}],
        },
    )  # fmt: skip
    rest.init_app(app)
    rest.register_blueprint(bp)


def _private_sqlite_file(url: str) -> None:
    """The embedded default's database file is readable by its owner only (0600), made so
    before SQLite creates it (its -wal and -shm files take the same mode)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = parsed.database
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # WAL lets the run thread write while clerks read; foreign keys are off in SQLite by default.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
