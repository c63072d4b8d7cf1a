"""The messaging server: a Flask app built by ``create_app``."""

import logging

from flask import Flask

from messaging import config as config_module
from messaging.config import ROOT


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, then ``config`` overrides."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder="static",
        instance_path=str(ROOT / "instance"),
    )
    settings = config_module.from_environment() if not (config and config.get("SKIP_ENV")) else {}
    app.config.update(settings)
    if config:
        app.config.update(config)
        if "SQLALCHEMY_DATABASE_URI" in config:
            app.config["SQLALCHEMY_DATABASE_URI"] = config_module.normalize_database_url(
                config["SQLALCHEMY_DATABASE_URI"]
            )
    _configure_logging(app)
    _configure_database_engine(app)

    from messaging import cli, health, queues, tenancy
    from messaging.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    queues.init_app(app)
    tenancy.install()

    if app.config.get("PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    from messaging import api, web

    api.register_endpoints()
    app.register_blueprint(api.bp)
    web.init_app(app)
    app.register_blueprint(health.bp)
    from messaging import twilio_webhooks

    app.register_blueprint(twilio_webhooks.bp)
    cli.init_app(app)
    return app


def _configure_database_engine(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    if uri.startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": 30})
    else:
        options.setdefault("pool_pre_ping", True)
        if uri.startswith("postgresql+psycopg2"):
            # Batched UPDATE/DELETE executemany (psycopg2's execute_batch) instead of one
            # round trip per row: bulk imports update thousands of rows per commit.
            options.setdefault("executemany_mode", "values_plus_batch")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # twilio-python logs about ten INFO lines per API request (URL, headers, the
    # recipient's number and the message body): a fifth of a worker's CPU per SMS,
    # and participants' data in the logs. Our own line per batch says what was sent.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


# SQLite: WAL and a busy timeout so the web server, workers and tests can share
# the file; foreign keys on so cascades behave as on PostgreSQL.
def _sqlite_pragmas(dbapi_connection, connection_record):
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _install_sqlite_pragmas() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)


_install_sqlite_pragmas()
