"""The job catalogue: every background job's path, queue and timeout, and the periodic table.

Rules:
- Every job the domains enqueue is declared here once (``JobSpec``): its
  dotted path in ``workers.jobs``, its queue, its timeout and how long RQ
  keeps its result. Domain code enqueues by spec (``enqueue(SEND_MESSAGES,
  project_id, ids)``), never by a path string.
- Jobs take ids only; the rows in the database say what to do, so a job run
  twice does its work once (each job's docstring says how).
- Periodic jobs (``PERIODIC``) run once per interval across every worker on
  every machine (``workers.periodic``: the first process to claim a slot in
  Redis enqueues it).
- **Which workers are alive right now**: every ``flask worker`` process keeps a key
  ``messaging:worker-alive:<worker name>`` (TTL ``ALIVE_TTL``, 10 s) refreshed from a
  thread of its own every few seconds (``workers.liveness``), also while a job runs;
  each scheduler keeps ``messaging:scheduler-alive:<name>`` the same way.
  A worker killed with SIGKILL stops refreshing it, so within 10 s its started jobs
  are known to be lost (RQ's own registration lasts until the job's timeout).
- One Redis connection per process and the named RQ queues, built once from
  ``REDIS_URL``. RQ 2 has no ``Connection`` context: every queue and worker
  gets ``connection=`` explicitly from here.
- **A pooled connection is never lent again with a reply left unread.** RQ stops an
  idle worker by raising from its SIGTERM handler, which can land between a
  command and the reading of its reply; the connection then goes back to the pool
  with that reply waiting, and the next command would read it as its own (a
  worker's teardown failed in CI with "Wrong number of response items from
  pipeline execution"). redis-py's pool checks for such data before lending a
  connection, but skips the check while "maintenance notifications" (a Redis
  Enterprise feature, "auto" by default) are on; they are turned off here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from redis import Redis
from redis.maint_notifications import MaintNotificationsConfig
from rq import Queue

# Queue names, most urgent first; a worker listens to all of them in this order.
QUEUE_NAMES = ("high", "default", "sms", "low")

_EXTENSION = "messaging_redis"


def init_app(app) -> None:
    app.extensions[_EXTENSION] = Redis.from_url(
        app.config["REDIS_URL"],
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=30,
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )


def redis_conn(app=None) -> Redis:
    """The process's Redis connection (a pool underneath, safe across threads)."""
    app = app or current_app
    return app.extensions[_EXTENSION]


def queue(name: str = "default", app=None) -> Queue:
    """A named queue on the shared connection."""
    app = app or current_app
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    prefix = app.config.get("RQ_QUEUE_PREFIX", "")
    return Queue(prefix + name, connection=redis_conn(app))


def all_queues(app=None) -> list[Queue]:
    return [queue(name, app) for name in QUEUE_NAMES]


@dataclass(frozen=True)
class JobSpec:
    """One kind of background job."""

    path: str
    queue: str
    timeout: int
    result_ttl: int = 300
    failure_ttl: int = 86400


# Send a batch of messages of one project (ids); claims each row before sending it.
SEND_MESSAGES = JobSpec("workers.jobs.sms.send_messages", "sms", timeout=1800)
# The same job for messages a person is waiting for (a case manager's reply, an automatic reply,
# an owner alert): on the "high" queue, so it never waits behind a large broadcast's jobs.
SEND_URGENT = JobSpec("workers.jobs.sms.send_messages", "high", timeout=1800)
# Snapshot a broadcast firing's recipients, then write and queue their messages in batches.
RUN_FIRING = JobSpec("workers.jobs.broadcasts.run_firing", "default", timeout=6 * 3600)
# Handle one number's pending inbound messages, oldest first.
HANDLE_NUMBER = JobSpec("workers.jobs.inbound.handle_number", "high", timeout=600, result_ttl=60)
# POST a forwarding location's due records, oldest first.
FORWARD_LOCATION = JobSpec("workers.jobs.forwarding.forward_location", "default", timeout=1800, result_ttl=60)
# Apply a new or changed conditional alert rule to the existing cases, batch by batch.
APPLY_ALERT_RULE = JobSpec("workers.jobs.alerts.apply_rule", "default", timeout=3600, result_ttl=60)
# Process an uploaded Excel import in batches.
RUN_IMPORT = JobSpec("workers.jobs.imports.run_import", "default", timeout=3600, result_ttl=600)


@dataclass(frozen=True)
class Periodic:
    """A job run once per interval across all workers."""

    name: str
    every_seconds: int
    job: JobSpec


def _periodic(name: str, every_seconds: int, path: str, queue_name: str) -> Periodic:
    return Periodic(
        name, every_seconds, JobSpec(path, queue_name, timeout=180, result_ttl=60, failure_ttl=3600)
    )


PERIODIC = (
    _periodic("heartbeat", 60, "workers.jobs.maintenance.heartbeat", "low"),
    _periodic("sweep-imports", 60, "workers.jobs.imports.sweep_imports", "low"),
    _periodic("sms-sweep", 15, "workers.jobs.sms.sweep", "high"),
    _periodic("sms-prices", 300, "workers.jobs.sms.prices", "low"),
    _periodic("sweep-forwarding", 60, "workers.jobs.forwarding.sweep_forwarding", "low"),
    _periodic("survey-tick", 30, "workers.jobs.surveys.tick", "high"),
    _periodic("inbound-sweep", 30, "workers.jobs.inbound.sweep", "high"),
    _periodic("broadcast-tick", 10, "workers.jobs.broadcasts.tick", "high"),
    _periodic("alert-tick", 10, "workers.jobs.alerts.tick", "high"),
)


# A process's pulse: a key that lives ALIVE_TTL seconds after the process last said it was alive.
PULSE_KEY = "messaging:{role}-alive:{name}"
ALIVE_KEY = PULSE_KEY.replace("{role}", "worker")  # a worker's (``{name}`` left to fill)
ALIVE_TTL = 10  # seconds


def mark_alive(redis: Redis, role: str, name: str) -> None:
    """Say that the ``role`` process ``name`` (a worker, a scheduler) is alive for ``ALIVE_TTL`` seconds."""
    redis.set(PULSE_KEY.format(role=role, name=name), "1", ex=ALIVE_TTL)


def which_alive(redis: Redis, role: str, names) -> set[str]:
    """The ``role`` processes of ``names`` that said they were alive within ``ALIVE_TTL`` seconds."""
    names = list(names)
    if not names:
        return set()
    pipe = redis.pipeline()
    for name in names:
        pipe.exists(PULSE_KEY.format(role=role, name=name))
    return {name for name, found in zip(names, pipe.execute(), strict=True) if found}


def mark_worker_alive(redis: Redis, worker_name: str) -> None:
    mark_alive(redis, "worker", worker_name)


def workers_alive(redis: Redis, worker_names) -> set[str]:
    return which_alive(redis, "worker", worker_names)


def enqueue(spec: JobSpec, *args, job_id: str | None = None, delay: timedelta | None = None, pipeline=None):
    """Enqueue one job of ``spec`` (after ``delay``, through RQ's scheduler, when given)."""
    q = queue(spec.queue)
    options = {
        "job_id": job_id,
        "job_timeout": spec.timeout,
        "result_ttl": spec.result_ttl,
        "failure_ttl": spec.failure_ttl,
    }
    if delay is not None:
        return q.enqueue_in(delay, spec.path, *args, **options)
    if pipeline is not None:
        options["pipeline"] = pipeline
    return q.enqueue(spec.path, *args, **options)


def enqueue_many(spec: JobSpec, calls: list[tuple[str, tuple]]) -> None:
    """Enqueue many jobs of ``spec`` in one round trip per thousand: ``calls`` are (job_id, args)."""
    q = queue(spec.queue)
    for start in range(0, len(calls), 1000):
        q.enqueue_many(
            [
                Queue.prepare_data(
                    spec.path,
                    args=args,
                    job_id=job_id,
                    timeout=spec.timeout,
                    result_ttl=spec.result_ttl,
                    failure_ttl=spec.failure_ttl,
                )
                for job_id, args in calls[start : start + 1000]
            ]
        )
