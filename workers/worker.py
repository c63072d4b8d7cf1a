"""The worker entry point (``flask worker``).

By default a ``SimpleWorker`` runs jobs in this process: measured about three
times the job rate of the forking worker on two cores (PRODUCT.md), and our
jobs are short and batch their work. ``--fork`` gives the classic isolation.

RQ's own lines name a job by its id, never by its description: the
description lists the job's arguments, and the per-number inbound job's
argument is a participant's phone number. Each job's own line
(``workers.jobs``) says what it did, with ids. The log handlers also mask
phone-like numbers in INFO and WARNING lines (``messaging.lib.redact``).
"""

import gc
import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, Worker
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from messaging import jobs as queues
from messaging.db import tenancy
from messaging.db.outage import roll_back_quietly
from messaging.extensions import db
from messaging.jobs import PERIODIC, mark_worker_alive
from messaging.lib import redact
from workers import periodic
from workers.liveness import Pulse
from workers.scheduler import SchedulerMixin

log = logging.getLogger(__name__)


class QuietPeriodicJobs(logging.Filter):
    """Drops RQ's own INFO lines about periodic jobs (four a job: a dozen lines every ten
    seconds that buried ``make run``'s banner and filled production logs). The job's
    own line (``workers.jobs``) still says when a periodic job did something; RQ's
    warnings and errors about them always pass."""

    markers = ("periodic-", *(task.job.path + "(" for task in PERIODIC))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(marker in message for marker in self.markers)


def quiet_periodic_jobs() -> None:
    """Install :class:`QuietPeriodicJobs` on RQ's worker logger (idempotent)."""
    rq_log = logging.getLogger("rq.worker")
    if not any(isinstance(f, QuietPeriodicJobs) for f in rq_log.filters):
        rq_log.addFilter(QuietPeriodicJobs())


class _StopRequestMixin:
    """Remembers that SIGTERM/SIGINT asked the worker to stop, so that ``run_worker`` tells a
    requested stop from RQ's loop ending because its connection to Redis broke."""

    stop_was_requested = False

    def request_stop(self, signum, frame):
        self.stop_was_requested = True
        return super().request_stop(signum, frame)


class _SessionCleanupMixin:
    """Each job starts with a fresh database session and no project scope; after a job that
    failed while the database is away, the worker waits for the database before the next one."""

    jobs_performed = 0

    def perform_job(self, job, queue):
        self.jobs_performed += 1
        succeeded = False
        try:
            tenancy.set_current_project(None)
            succeeded = super().perform_job(job, queue)
            return succeeded
        finally:
            end_session(job.id)
            if not succeeded and not database_answers():
                # The job failed because the database is away: wait for it here rather than
                # take every queued job only to fail it (a traceback each) until it is back.
                wait_for_database(lambda: getattr(self, "stop_was_requested", False))


def database_answers() -> bool:
    """Whether the database answers a trivial query now."""
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except DBAPIError:
        return False
    finally:
        roll_back_quietly()
        db.session.remove()


def wait_for_database(stop_requested, first_wait: float = 0.5, longest_wait: float = 15.0) -> bool:
    """Wait, with backoff, until the database answers (True) or a stop is requested (False); logs
    once when the wait starts and once when it ends."""
    log.warning("the database is away: waiting for it before taking the next job")
    wait = first_wait
    while not stop_requested():
        if database_answers():
            log.warning("the database answers again: taking jobs again")
            return True
        time.sleep(wait)
        wait = min(wait * 2, longest_wait)
    return False


def end_session(job_id: str) -> None:
    """Roll back and drop the job's database session. The database may be gone (an outage
    during the job): that is logged, never raised, because an exception here would escape
    RQ's job handling and end the worker's loop. The pool checks a connection before lending
    it again (``pool_pre_ping``), so the next job gets a live one once the database is back."""
    try:
        db.session.rollback()
    except Exception as exc:  # the connection died with the database; the next job reconnects
        log.warning("job %s: rolling back its session failed: %s", job_id, type(exc).__name__)
    finally:
        try:
            db.session.remove()
        except Exception as exc:
            log.warning("job %s: closing its session failed: %s", job_id, type(exc).__name__)


class _PulseAtJobStartMixin:
    """Marks the worker alive as each job starts (``messaging.jobs.mark_worker_alive``), so a
    worker without the pulse thread (a burst worker) is alive while its job starts; the thread
    of ``run_worker`` keeps a long job's worker alive."""

    def perform_job(self, job, queue):
        try:
            mark_worker_alive(self.connection, self.name)
        except RedisError:
            pass  # RQ's own bookkeeping meets the outage next and the worker waits for Redis
        return super().perform_job(job, queue)


class AppSimpleWorker(
    _StopRequestMixin, _PulseAtJobStartMixin, _SessionCleanupMixin, SchedulerMixin, SimpleWorker
):
    pass


class AppForkWorker(_StopRequestMixin, _PulseAtJobStartMixin, _SessionCleanupMixin, SchedulerMixin, Worker):
    pass


def make_worker(app, fork: bool = False, queue_names=None):
    names = queue_names or list(queues.QUEUE_NAMES)
    qs = [queues.queue(n, app) for n in names]
    cls = AppForkWorker if fork else AppSimpleWorker
    # RQ's job lines by id only: a description lists the arguments (a phone number for inbound jobs).
    return cls(qs, connection=queues.redis_conn(app), log_job_description=False)


def run_worker(
    app, burst: bool = False, fork: bool = False, with_scheduler: bool = True, queue_names=None
) -> None:
    """Run a worker in the current (app) context until stopped (SIGTERM/SIGINT, or a burst's end).

    RQ ends its loop ("found an unhandled exception, quitting") when Redis goes away
    during a job's bookkeeping; this worker then waits for Redis with backoff and starts
    again. Jobs the outage interrupted are recovered by their claims and the sweeps.
    """
    quiet_periodic_jobs()
    redact.install_on_handlers()
    ticker = None
    if with_scheduler and not burst:
        ticker = periodic.Ticker(queues.redis_conn(app), app.config.get("RQ_QUEUE_PREFIX", ""))
        ticker.start()
    pulse = None
    if not burst:
        pulse = Pulse(queues.redis_conn(app))
        pulse.start()
    # Everything loaded so far (the app, its models, imported modules) lives as long
    # as the worker: keep it out of the garbage collector's full passes, which
    # otherwise walk it all again and again while jobs allocate.
    gc.collect()
    gc.freeze()
    try:
        while True:
            worker = make_worker(app, fork=fork, queue_names=queue_names)
            if pulse:
                pulse.worker_name = worker.name
                pulse.beat()  # alive from the first job on
            log.info(
                "worker %s starting on %s (fork=%s, scheduler=%s)",
                worker.name,
                ",".join(q.name for q in worker.queues),
                fork,
                with_scheduler,
            )
            try:
                worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
            except (RedisConnectionError, RedisTimeoutError) as exc:
                log.warning("worker %s lost Redis: %s", worker.name, type(exc).__name__)
            if burst or worker.stop_was_requested:
                return
            if not wait_for_redis(queues.redis_conn(app), lambda w=worker: w.stop_was_requested):
                return
    finally:
        if ticker:
            ticker.stop()
        if pulse:
            pulse.stop()


def wait_for_redis(redis, stop_requested, first_wait: float = 0.5, longest_wait: float = 30.0) -> bool:
    """Wait, with backoff, until Redis answers (True) or a stop is requested (False); logs once."""
    wait = first_wait
    log.warning("worker stopped working: waiting for Redis to answer before starting again")
    while not stop_requested():
        try:
            redis.ping()
        except (RedisConnectionError, RedisTimeoutError):
            time.sleep(wait)
            wait = min(wait * 2, longest_wait)
            continue
        log.warning("Redis answers again: the worker starts again")
        return True
    return False
