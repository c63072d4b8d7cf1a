"""The worker's pulse: a key that lives only while the worker process does (``messaging.jobs``).

Rules:
- Every ``flask worker`` process runs a thread that marks its current worker alive every
  ``PULSE_SECONDS`` (2 s) with a key that expires after ``messaging.jobs.ALIVE_TTL``
  (10 s). The thread keeps beating while the main thread runs a long job.
- A SIGKILL stops the beat: within 10 s the key is gone and the SMS sweep takes the
  worker's started send jobs for lost (their unsent rows get new jobs; the claims keep
  each row sent once even if the worker were somehow alive after all).
- Redis being away just skips beats (the worker's own loop logs the outage).
"""

from __future__ import annotations

import threading

from redis.exceptions import RedisError

from messaging.jobs import mark_worker_alive

PULSE_SECONDS = 2.0


class Pulse(threading.Thread):
    """Marks ``worker_name`` alive every ``every`` seconds until stopped."""

    def __init__(self, redis, every: float = PULSE_SECONDS):
        super().__init__(name="worker-pulse", daemon=True)
        self.redis = redis
        self.every = every
        self.worker_name: str | None = None
        self.stopping = threading.Event()

    def beat(self) -> None:
        if self.worker_name:
            try:
                mark_worker_alive(self.redis, self.worker_name)
            except RedisError:
                pass

    def run(self) -> None:
        while not self.stopping.is_set():
            self.beat()
            self.stopping.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()
