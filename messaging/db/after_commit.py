"""After the commit: the one seam for work that must follow the caller's commit.

Rules:
- The caller owns the transaction. Domain code never commits to get a job
  enqueued; it calls ``after_commit(fn, *args)`` and the call runs once the
  caller's transaction has committed.
- A rollback drops the pending calls: a job is never enqueued for rows that
  were not written.
- Calls run in the order they were registered; the same ``(fn, args)``
  registered twice in one transaction runs once (ten forms to one location
  enqueue one sender).
- A callback's error is logged and swallowed: the rows are committed, and
  each domain's sweep or tick picks up work whose job was not enqueued.
- Callbacks run outside any transaction and must not use the session; they
  talk to Redis (enqueue), never to the database.
- ``transaction_cache(name)`` is a dict that lives as long as the current
  transaction (look-ups worth doing once per transaction, such as a project's
  forwarding locations); a commit or a rollback empties it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from messaging.extensions import db

log = logging.getLogger(__name__)

_KEY = "after_commit"
_CACHES = "transaction_caches"


def after_commit(fn: Callable[..., object], *args) -> None:
    """Run ``fn(*args)`` after the current transaction of ``db.session`` commits."""
    pending = db.session.info.setdefault(_KEY, {})
    try:
        key = (fn, args)
        hash(key)
    except TypeError:  # unhashable arguments (lists of ids): never a duplicate
        key = (fn, id(args))  # the tuple stays alive in the dict, so its id stays unique
    pending.setdefault(key, (fn, args))


def transaction_cache(name: str) -> dict:
    """A dict kept for the current transaction only (emptied by its commit or rollback)."""
    return db.session.info.setdefault(_CACHES, {}).setdefault(name, {})


def pending_count() -> int:
    """How many calls wait for the commit (for tests and assertions)."""
    return len(db.session.info.get(_KEY) or ())


def _run(session: Session) -> None:
    session.info.pop(_CACHES, None)
    pending = session.info.pop(_KEY, None)
    for fn, args in (pending or {}).values():
        try:
            fn(*args)
        except Exception:
            log.exception("after-commit call failed fn=%s (its sweep will catch up)", fn.__qualname__)


def _drop(session: Session, *_args) -> None:
    session.info.pop(_CACHES, None)
    session.info.pop(_KEY, None)


def install(session_class=Session) -> None:
    """Register the session events (idempotent); called by ``create_app``."""
    if event.contains(session_class, "after_commit", _run):
        return
    event.listen(session_class, "after_commit", _run)
    event.listen(session_class, "after_rollback", _drop)
