"""The messaging server: a Flask app built by ``create_app``.

``create_app`` only wires things: it reads the configuration, binds the
extensions (``init_app``), installs the session events (tenancy,
after-commit) and the SQLite connection set-up, registers the import
handlers, the HTTP blueprints and the CLI. Nothing runs when a domain module
is imported.
"""

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

    from messaging import cli, jobs
    from messaging.accounts import login_limits
    from messaging.db import after_commit, tenancy
    from messaging.extensions import babel, csrf, db, login_manager, migrate
    from messaging.http import api, commcare, headers, health, input_guard, web, webhooks
    from messaging.http.web.locale import select_locale

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "messaging" / "translations"))
    babel.init_app(app, locale_selector=select_locale)
    jobs.init_app(app)
    login_limits.init_app(app)
    tenancy.install()
    after_commit.install()
    _register_import_handlers()

    if app.config.get("PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    input_guard.init_app(app)
    headers.init_app(app)
    api.register_endpoints()
    app.register_blueprint(api.bp)
    web.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(webhooks.gateways_bp)
    app.register_blueprint(commcare.bp)
    cli.init_app(app)
    return app


def _register_import_handlers() -> None:
    """The kinds of Excel import (idempotent): the bulk case upload, case group uploads, opt-out lists."""
    from messaging.case_groups import upload as case_group_upload
    from messaging.cases import bulk_upload
    from messaging.commcare import bulk_upload as commcare_upload
    from messaging.imports import handlers
    from messaging.imports import opt_outs as opt_out_import

    handlers.register(bulk_upload.HANDLER)
    handlers.register(case_group_upload.HANDLER)
    handlers.register(opt_out_import.HANDLER)
    handlers.register(commcare_upload.HANDLER)


def _configure_database_engine(app: Flask) -> None:
    from messaging.db import dialect

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dialect.engine_options(uri, options)
    dialect.install_connection_setup()


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
    # The safety net under each line's own masking: participants' numbers show
    # their last four digits only in INFO and WARNING lines (README "Logs and
    # participants' data").
    from messaging.lib import redact

    redact.install_on_handlers()
