"""The writer thread (PostgreSQL): applies and records planned batches while the job plans the next.

Rules:
- The thread has its own app context, session and database connection, so
  PostgreSQL writes batch N (the inserts, the results, the commit: about half of an
  import's time) while the job's thread reads and plans batch N + 1: the database
  server and the job's Python run on two cores instead of taking turns.
- Batches are applied and recorded one at a time, in the order submitted (row
  order), each in one commit with its changes. At most one batch waits.
- The result rows each batch recorded wait in ``take_recorded`` for the job's thread
  (which writes the report).
- The first error stops the writing (later batches are dropped, not recorded); the
  job's thread raises it at its next ``submit``, ``drain`` or ``close``.
"""

from __future__ import annotations

import queue
import threading

from messaging.db import tenancy
from messaging.extensions import db


class BatchWriter:
    """Applies and records planned batches, in order, on a thread of its own (see the module docstring)."""

    def __init__(self, app, project_id: int, import_id: str):
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._recorded: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, args=(app, project_id), name=f"import-writer-{import_id}", daemon=True
        )
        self._thread.start()

    def _run(self, app, project_id: int) -> None:
        with app.app_context(), tenancy.project_scope(project_id):
            while True:
                work = self._queue.get()
                try:
                    if work is None:
                        return
                    if self._error is None:
                        self._recorded.put(work())
                except BaseException as exc:  # handed to the job's thread
                    self._error = exc
                    db.session.rollback()
                finally:
                    self._queue.task_done()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, work) -> None:
        """Queue ``work()`` (which applies and records one batch, returning its result rows)."""
        self._raise_error()
        self._queue.put(work)

    def take_recorded(self) -> list[list[list]]:
        """The result rows of the batches recorded since the last call, in order."""
        taken = []
        while True:
            try:
                taken.append(self._recorded.get_nowait())
            except queue.Empty:
                return taken

    def drain(self) -> None:
        """Wait until every submitted batch is recorded."""
        self._queue.join()
        self._raise_error()

    def close(self, raise_error: bool = True) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if raise_error:
            self._raise_error()
