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

log = logging.getLogger(__name__)

# name -> (interval seconds, dotted function path, queue name)
PERIODIC_TASKS: dict[str, tuple[int, str, str]] = {}


def register(name: str, every_seconds: int, func_path: str, queue_name: str = "high") -> None:
    PERIODIC_TASKS[name] = (every_seconds, func_path, queue_name)


def tick(redis, queue_prefix: str = "", now: float | None = None) -> list[str]:
    """Enqueue every periodic task whose slot has not been claimed yet."""
    now = time.time() if now is None else now
    enqueued = []
    for name, (every, func_path, queue_name) in PERIODIC_TASKS.items():
        slot = int(now // every)
        key = f"periodic:{name}:{slot}"
        if redis.set(key, "1", nx=True, ex=max(every * 3, 60)):
            Queue(queue_prefix + queue_name, connection=redis).enqueue(
                func_path, job_id=f"periodic-{name}-{slot}", result_ttl=60, failure_ttl=3600
            )
            enqueued.append(name)
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
        while not self.stopping.is_set():
            try:
                tick(self.redis, self.queue_prefix)
            except Exception:  # Redis blips must not kill the ticker
                log.exception("periodic tick failed")
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
