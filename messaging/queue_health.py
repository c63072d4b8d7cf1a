"""Is background work keeping up? Live workers, RQ's scheduler and the send backlog, in one report.

Rules:
- A worker is *alive* when RQ has it registered for one of this app's queues
  (their names carry ``RQ_QUEUE_PREFIX``, so another app's workers on the
  same Redis are not counted) and its pulse key is there
  (``messaging.jobs.workers_alive``: refreshed every 2 s by a thread of the
  ``flask worker`` process, gone 10 s after it stops, busy or idle). RQ's own
  registration outlives a SIGKILLed busy worker by its job's timeout; the
  pulse does not. A worker on several queues counts once.
- The *scheduler is running* when every one of this app's queues has its RQ
  scheduler lock (``rq:scheduler-lock:<queue>``) held. A live scheduler
  refreshes its locks every second; a dead one's expire after about a minute.
- The backlog is :func:`messaging.sms.backlog.due_backlog`'s: queued messages
  due now and how long the oldest has waited (of one project, or of all).
- The work is *stalled* when no worker is alive, or when the oldest due message
  has waited longer than ``HEALTH_MAX_DUE_SECONDS`` (300 s). A scheduler that
  is not running is reported but does not stall sending: the sweep queues
  what is due from the database.
- A part that cannot be read (Redis or the database down) is reported
  ``unavailable``, and so is the whole report; reading never raises.
- Reading workers leaves the app's Redis connection as it was (RQ raises a
  connection's socket timeout to a working worker's seven-minute wait when it
  builds a worker object; :class:`WorkerRecord` opts out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from rq import Worker
from rq.scheduler import RQScheduler

from messaging import jobs
from messaging.extensions import db
from messaging.sms.backlog import Backlog, due_backlog

log = logging.getLogger(__name__)

OK = "ok"
STALLED = "stalled"
UNAVAILABLE = "unavailable"


class WorkerRecord(Worker):
    """A worker as RQ registered it in Redis, read to count it (never run)."""

    @property
    def connection_timeout(self) -> int:
        # RQ raises the connection's socket timeout to this value when it builds a Worker;
        # a reader keeps the timeout the app configured.
        return 0


@dataclass(frozen=True)
class QueueHealth:
    """What :func:`check` found; ``None`` parts could not be read."""

    workers_alive: int | None
    scheduler_running: bool | None
    backlog: Backlog | None
    max_due_seconds: float

    @property
    def unavailable_services(self) -> list[str]:
        """The services that did not answer: ``Redis`` (workers, scheduler), ``the database`` (backlog)."""
        down = []
        if self.workers_alive is None or self.scheduler_running is None:
            down.append("Redis")
        if self.backlog is None:
            down.append("the database")
        return down

    @property
    def unavailable(self) -> bool:
        return bool(self.unavailable_services)

    @property
    def stalled(self) -> bool:
        """No live worker, or the oldest due message waited too long (parts that could be read)."""
        if self.workers_alive == 0:
            return True
        waited = self.backlog.oldest_due_seconds if self.backlog else None
        return waited is not None and waited > self.max_due_seconds

    @property
    def status(self) -> str:
        if self.unavailable:
            return UNAVAILABLE
        return STALLED if self.stalled else OK

    def as_dict(self) -> dict:
        """The JSON body of ``GET /healthz/workers``."""
        backlog = self.backlog
        return {
            "status": self.status,
            "workers": {"alive": self.workers_alive, "status": _part(self.workers_alive)},
            "scheduler": {"running": self.scheduler_running, "status": _part(self.scheduler_running)},
            "messages": {
                "due": backlog.due if backlog else None,
                "oldest_due_seconds": _rounded(backlog.oldest_due_seconds) if backlog else None,
                "max_due_seconds": self.max_due_seconds,
                "status": _part(backlog),
            },
        }


def _part(value) -> str:
    return UNAVAILABLE if value is None else OK


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def check(project_id: int | None = None, app=None) -> QueueHealth:
    """Workers alive and the scheduler (across the app), and the backlog (of ``project_id``, or all)."""
    app = app or current_app
    try:
        alive = live_worker_count(app)
        running = scheduler_running(app)
    except Exception as exc:  # any Redis error means "cannot tell"
        log.warning("queue health: redis unavailable: %s", type(exc).__name__)
        alive, running = None, None
    try:
        backlog = due_backlog(project_id)
    except Exception as exc:  # any driver error means "cannot tell"
        log.warning("queue health: database unavailable: %s", type(exc).__name__)
        db.session.rollback()
        backlog = None
    return QueueHealth(
        workers_alive=alive,
        scheduler_running=running,
        backlog=backlog,
        max_due_seconds=float(app.config.get("HEALTH_MAX_DUE_SECONDS", 300.0)),
    )


def live_worker_count(app=None) -> int:
    """Workers registered on this app's queues whose pulse is beating (each counted once)."""
    registered = set()
    for q in jobs.all_queues(app):
        registered.update(worker.name for worker in WorkerRecord.all(queue=q))
    return len(jobs.workers_alive(jobs.redis_conn(app), sorted(registered)))


def scheduler_running(app=None) -> bool:
    """Every one of this app's queues has its RQ scheduler lock held."""
    queues = jobs.all_queues(app)
    keys = [RQScheduler.get_locking_key(q.name) for q in queues]
    return jobs.redis_conn(app).exists(*keys) == len(keys)
