"""Periodic jobs that run once per interval across all machines.

Every worker process runs a small ticker thread; for each periodic task and
each time slot, the first process to ``SET NX`` the slot's key in Redis
enqueues the job. Any number of workers on any number of machines therefore
enqueue each tick exactly once, and a dead worker is covered by the others.
"""

import logging
import threading
import time

from rq import Queue

from messaging.jobs import PERIODIC

log = logging.getLogger(__name__)


def tick(redis, queue_prefix: str = "", now: float | None = None) -> list[str]:
    """Enqueue every periodic task whose slot has not been claimed yet."""
    now = time.time() if now is None else now
    enqueued = []
    for task in PERIODIC:
        slot = int(now // task.every_seconds)
        key = f"periodic:{task.name}:{slot}"
        if redis.set(key, "1", nx=True, ex=max(task.every_seconds * 3, 60)):
            spec = task.job
            Queue(queue_prefix + spec.queue, connection=redis).enqueue(
                spec.path,
                job_id=f"periodic-{task.name}-{slot}",
                job_timeout=spec.timeout,
                result_ttl=spec.result_ttl,
                failure_ttl=spec.failure_ttl,
            )
            enqueued.append(task.name)
    return enqueued


class Ticker(threading.Thread):
    """Calls ``tick`` about every second until stopped."""

    def __init__(self, redis, queue_prefix: str = "", interval: float = 1.0):
        super().__init__(name="periodic-ticker", daemon=True)
        self.redis = redis
        self.queue_prefix = queue_prefix
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        failing = False
        while not self.stopping.is_set():
            try:
                tick(self.redis, self.queue_prefix)
            except Exception as exc:  # Redis blips must not kill the ticker
                if not failing:  # once per outage, not once a second
                    log.warning("periodic tick failed, retrying every %gs: %s", self.interval, exc)
                failing = True
            else:
                if failing:
                    log.warning("periodic ticks work again")
                failing = False
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
