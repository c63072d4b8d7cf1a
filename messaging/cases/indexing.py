"""``indexed_on``: the stamp CommCare's API pages forms and cases by, distinct and in commit order.

Rules:
- Every write that changes a form's or a case's CommCare JSON stamps the rows it
  wrote just before it commits (:func:`stamp`): its forms first, then its cases,
  each in the order given.
- **Distinct.** Each row gets its own instant, one microsecond after the previous
  one. commcare-export asks for the next page from the last row's stamp, inclusive;
  more than a page of rows sharing one stamp would make it ask the same page again
  until it gives up ("Requested resource 'case' 10 times with same parameters").
- **In commit order.** The stamps come from the project's ``index_stamps`` row,
  read and advanced under its row lock (``SELECT ... FOR UPDATE`` on PostgreSQL;
  SQLite serialises writers), held until the transaction commits. A transaction
  that stamps later waits for the earlier one to commit, so its stamps are larger
  and become visible after: an export that has read a stamp has read every smaller
  one, and an incremental run never skips a row committed late.
- The first stamp is the later of now and the last stamp plus a microsecond, so a
  clock stepping back never reorders rows.
- The lock is held from the stamp to the commit: callers stamp last.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from messaging.db.dialect import insert_ignoring_conflicts
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Case, Form, IndexStamp

STAMPS = IndexStamp.__table__
TICK = timedelta(microseconds=1)
_FIRST = datetime(2000, 1, 1)


def take_stamps(project_id: int, count: int) -> datetime:
    """Reserve ``count`` consecutive stamps of the project (under its row lock, held until the
    caller commits); returns the first."""
    db.session.execute(
        insert_ignoring_conflicts(STAMPS, "project_id").values(project_id=project_id, last=_FIRST)
    )
    last = db.session.execute(
        select(STAMPS.c.last).where(STAMPS.c.project_id == project_id).with_for_update()
    ).scalar_one()
    first = max(clock.now(), last + TICK)
    db.session.execute(
        update(STAMPS).where(STAMPS.c.project_id == project_id).values(last=first + TICK * max(count - 1, 0))
    )
    return first


def stamp(project_id: int, forms: Iterable[Form] = (), cases: Iterable[Case] = ()) -> None:
    """Give the forms, then the cases, their ``indexed_on`` (in the caller's transaction)."""
    rows = [*forms, *cases]
    if not rows:
        return
    first = take_stamps(project_id, len(rows))
    for offset, row in enumerate(rows):
        row.indexed_on = first + TICK * offset
