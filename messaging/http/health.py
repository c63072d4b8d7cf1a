"""GET /healthz: 200 when the database and Redis answer, 503 naming what failed."""

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from messaging.extensions import db
from messaging.jobs import redis_conn

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "down"
        log.warning("health: database check failed: %s", exc)
        db.session.rollback()
        checks["database"] = "unavailable"
    try:
        redis_conn().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        log.warning("health: redis check failed: %s", exc)
        checks["redis"] = "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return jsonify(body), 200 if healthy else 503
