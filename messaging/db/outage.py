"""Waiting out a database outage for a write whose facts live only in memory.

Rules:
- Most work needs no help through an outage: it fails, and its claims and the
  sweeps do it again once the database is back. A write that records what only
  the process knows is different: a send job's gateway ids exist only in
  memory until they are committed, and a chunk whose record is lost stays
  ``sending`` until the sweep asks the gateway, minutes later. Such a write is
  tried again while the database is away, up to a limit.
- Only a lost connection is waited out (``OperationalError``: refused, closed
  by the server, SQLite's "database is locked"; or any error that invalidated
  its connection). Any other error raises at once.
- Before each new try the session is rolled back (the failed transaction is
  gone), so the write must do all of its work and commit, and be safe to
  repeat: each try starts from nothing.
- A web request that meets the outage answers 503 with ``Retry-After``
  (``messaging.http``), rolling back with ``roll_back_quietly``.
- One line when the wait starts and one when the database answers, never one
  a try; after ``give_up_after`` seconds the last error is raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from messaging.extensions import db

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the database went away (as opposed to a bad statement)."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
    )


def write_through_outage(
    write: Callable[[], T],
    *,
    what: str,
    give_up_after: float,
    first_wait: float = 0.25,
    longest_wait: float = 5.0,
) -> T:
    """Run ``write`` (which commits), trying again while the database is away, for up to
    ``give_up_after`` seconds; returns what it returns."""
    deadline = time.monotonic() + give_up_after
    wait = first_wait
    waiting = False
    while True:
        try:
            result = write()
        except DBAPIError as exc:
            if not is_connection_lost(exc) or time.monotonic() + wait > deadline:
                raise
            roll_back_quietly()
            if not waiting:
                log.warning("%s: the database is away (%s); trying again", what, type(exc.orig).__name__)
                waiting = True
            time.sleep(wait)
            wait = min(wait * 2, longest_wait)
            continue
        if waiting:
            log.warning("%s: the database answers again; written", what)
        return result


def roll_back_quietly() -> None:
    """Roll the session back; a connection that died with the database is only dropped (the pool
    replaces it), never raised from here."""
    try:
        db.session.rollback()
    except DBAPIError:  # the connection is gone with the transaction; the pool replaces it
        pass
