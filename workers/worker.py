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
import os
import threading
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler

from messaging import jobs as queues
from messaging.db import tenancy
from messaging.extensions import db
from messaging.jobs import PERIODIC
from messaging.lib import redact
from workers import periodic

log = logging.getLogger(__name__)


class SchedulerThatStopsWithItsWorker(RQScheduler):
    """RQ's scheduler, which RQ runs in a process forked from the worker, stopping
    when that worker is gone.

    A worker killed with SIGKILL (the OOM killer, a fault test) cannot stop
    its scheduler, which then ran on alone: one was found still holding the
    scheduler locks an hour after a fault bench. Each kill could leave one
    more behind.
    """

    orphan_check_seconds = 1.0

    def work(self):
        worker_pid = os.getppid()

        def watch():
            while not self._stop_requested:
                if os.getppid() != worker_pid:
                    self.log.warning(
                        "scheduler pid=%s: its worker pid=%s is gone; stopping", os.getpid(), worker_pid
                    )
                    self.request_stop()  # the loop then releases the locks and registers its death
                    return
                time.sleep(self.orphan_check_seconds)

        threading.Thread(target=watch, name="scheduler-orphan-watch", daemon=True).start()
        super().work()


class _SchedulerStopsWithWorkerMixin:
    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ):
        """RQ 2.12's ``_start_scheduler`` with :class:`SchedulerThatStopsWithItsWorker` (RQ builds
        its own class here, with no setting to change it)."""
        self.scheduler = SchedulerThatStopsWithItsWorker(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()


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
    """Each job starts with a fresh database session and no project scope."""

    jobs_performed = 0

    def perform_job(self, job, queue):
        self.jobs_performed += 1
        try:
            tenancy.set_current_project(None)
            return super().perform_job(job, queue)
        finally:
            try:
                db.session.rollback()
            finally:
                db.session.remove()


class AppSimpleWorker(_StopRequestMixin, _SessionCleanupMixin, _SchedulerStopsWithWorkerMixin, SimpleWorker):
    pass


class AppForkWorker(_StopRequestMixin, _SessionCleanupMixin, _SchedulerStopsWithWorkerMixin, Worker):
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
    # Everything loaded so far (the app, its models, imported modules) lives as long
    # as the worker: keep it out of the garbage collector's full passes, which
    # otherwise walk it all again and again while jobs allocate.
    gc.collect()
    gc.freeze()
    try:
        while True:
            worker = make_worker(app, fork=fork, queue_names=queue_names)
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
