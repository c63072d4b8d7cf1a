"""Health checks, without login.

Rules:
- ``GET /healthz``: 200 when the database and Redis answer, 503 naming what failed.
- ``GET /healthz/workers``: whether background work keeps up, across all projects
  (:mod:`messaging.queue_health` says what alive, running, due and stalled mean):
  200 ``ok``; 503 ``stalled`` (no live worker, or the oldest due message waited
  longer than ``HEALTH_MAX_DUE_SECONDS``); 503 ``unavailable`` with the part that
  could not be read marked so (Redis or the database down), never a 500.
"""

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from messaging import queue_health
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


@bp.route("/healthz/workers")
def healthz_workers():
    report = queue_health.check()
    return jsonify(report.as_dict()), 200 if report.status == queue_health.OK else 503
