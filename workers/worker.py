"""The worker entry point (``flask worker``).

By default a ``SimpleWorker`` runs jobs in this process: measured about three
times the job rate of the forking worker on two cores (PRODUCT.md), and our
jobs are short and batch their work. ``--fork`` gives the classic isolation.
"""

import gc
import logging

from rq import SimpleWorker, Worker

from messaging import queues, tenancy
from messaging.extensions import db
from workers import periodic

log = logging.getLogger(__name__)


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


class AppSimpleWorker(_SessionCleanupMixin, SimpleWorker):
    pass


class AppForkWorker(_SessionCleanupMixin, Worker):
    pass


def register_periodic_tasks() -> None:
    """Import the modules that declare periodic tasks."""
    import workers.jobs  # noqa: F401


def make_worker(app, fork: bool = False, queue_names=None):
    names = queue_names or list(queues.QUEUE_NAMES)
    qs = [queues.queue(n, app) for n in names]
    cls = AppForkWorker if fork else AppSimpleWorker
    return cls(qs, connection=queues.redis_conn(app))


def run_worker(
    app, burst: bool = False, fork: bool = False, with_scheduler: bool = True, queue_names=None
) -> None:
    """Run a worker in the current (app) context until stopped."""
    register_periodic_tasks()
    worker = make_worker(app, fork=fork, queue_names=queue_names)
    ticker = None
    if with_scheduler and not burst:
        ticker = periodic.Ticker(queues.redis_conn(app), app.config.get("RQ_QUEUE_PREFIX", ""))
        ticker.start()
    log.info(
        "worker %s starting on %s (fork=%s, scheduler=%s)",
        worker.name,
        ",".join(q.name for q in worker.queues),
        fork,
        with_scheduler,
    )
    # Everything loaded so far (the app, its models, imported modules) lives as long
    # as the worker: keep it out of the garbage collector's full passes, which
    # otherwise walk it all again and again while jobs allocate.
    gc.collect()
    gc.freeze()
    try:
        worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
    finally:
        if ticker:
            ticker.stop()
