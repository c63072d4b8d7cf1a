"""RQ's scheduler as this server runs it: one per deployment, never stuck on a dead one's locks.

Rules:
- RQ runs its scheduler in a process forked from a worker, and only the worker
  holding the scheduler locks (``rq:scheduler-lock:<queue>``, which expire
  ``interval + 60`` s after the last refresh) runs one.
- **A scheduler stops with its worker.** A worker killed with SIGKILL (the OOM
  killer, a fault drill) cannot stop its scheduler, which then ran on alone:
  one was found holding the locks an hour after a fault bench. The scheduler
  watches its parent and stops (releasing the locks) when the parent is gone.
- **Locks left by a dead scheduler are taken over within seconds.** RQ tries
  again only at its maintenance interval (10 minutes), and its locks outlive
  a SIGKILLed holder by a minute. So each of our schedulers keeps a pulse key
  (``messaging:scheduler-alive:<name>``, ``ALIVE_TTL`` 10 s) refreshed at
  every beat of its loop (each second); every worker without a live
  scheduler checks the locks every ``TAKEOVER_SECONDS``, deletes those whose
  holder has no pulse (only if that holder still holds them), and tries to
  take them; the one that gets them starts the scheduler.
- Nothing depends on the scheduler for long: the sweeps queue whatever is due
  whatever Redis holds (``messaging.sms.sweep``). The scheduler only makes
  retries leave on time.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from redis.exceptions import RedisError
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler

from messaging.jobs import mark_alive, which_alive

log = logging.getLogger(__name__)

TAKEOVER_SECONDS = 5.0

# Delete a lock only while the given holder still holds it (a live scheduler may have taken it).
_DELETE_IF_HELD_BY = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def mark_scheduler_alive(redis, name: str) -> None:
    mark_alive(redis, "scheduler", name)


def clear_dead_holders(redis, queue_names) -> list[str]:
    """Delete the scheduler locks of ``queue_names`` whose holder has no pulse; returns the queues freed."""
    keys = [RQScheduler.get_locking_key(name) for name in queue_names]
    holders = [h.decode() if isinstance(h, bytes) else h for h in redis.mget(keys)]
    live = which_alive(redis, "scheduler", {h for h in holders if h is not None})
    delete_if_held_by = redis.register_script(_DELETE_IF_HELD_BY)
    freed = [
        name
        for name, key, holder in zip(queue_names, keys, holders, strict=True)
        if holder is not None and holder not in live and delete_if_held_by(keys=[key], args=[holder])
    ]
    if freed:
        log.warning("scheduler locks of a scheduler with no pulse cleared: %s", ", ".join(sorted(freed)))
    return freed


class SchedulerThatStopsWithItsWorker(RQScheduler):
    """RQ's scheduler, which RQ runs in a process forked from the worker, stopping
    when that worker is gone."""

    orphan_check_seconds = 1.0

    def acquire_locks(self, auto_start=False):
        # The pulse first: a lock must never be seen without one (see clear_dead_holders).
        mark_scheduler_alive(self.connection, self.name)
        return super().acquire_locks(auto_start=auto_start)

    def heartbeat(self):
        super().heartbeat()
        mark_scheduler_alive(self.connection, self.name)

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


class SchedulerTakeover(threading.Thread):
    """Tries, every ``every`` seconds, to take the scheduler locks for a worker without a
    live scheduler, and starts the scheduler when it gets them."""

    def __init__(self, worker, every: float = TAKEOVER_SECONDS):
        super().__init__(name="scheduler-takeover", daemon=True)
        self.worker = worker
        self.every = every
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            scheduler = self.worker.scheduler
            if scheduler is None or (scheduler._process is not None and scheduler._process.is_alive()):
                continue
            try:
                clear_dead_holders(scheduler.connection, sorted(scheduler._queue_names))
                if scheduler.acquire_locks(auto_start=True):
                    log.warning(
                        "worker %s took over the scheduler locks (their holder had stopped)", self.worker.name
                    )
            except RedisError as exc:  # the worker's own loop logs and waits out an outage
                log.debug("scheduler takeover: Redis error %s", type(exc).__name__)

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=self.every + 5)


class SchedulerMixin:
    """A worker whose scheduler is :class:`SchedulerThatStopsWithItsWorker`, taken over by
    :class:`SchedulerTakeover` when another's locks expire."""

    takeover: SchedulerTakeover | None = None

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ):
        """RQ 2.12's ``_start_scheduler`` with our scheduler class (RQ builds its own here, with
        no setting to change it), and, outside burst mode, the takeover thread."""
        self.scheduler = SchedulerThatStopsWithItsWorker(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if burst:
            if self.scheduler.acquired_locks:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            return
        if self.scheduler.acquired_locks:
            self.scheduler.start()
        self.takeover = SchedulerTakeover(self)
        self.takeover.start()

    def teardown(self):
        # The takeover stops first: it must not start a scheduler that teardown then leaves behind.
        if self.takeover is not None:
            self.takeover.stop()
        super().teardown()
