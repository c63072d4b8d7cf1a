"""An import's per-row results: recorded batch by batch with the progress, read back in row order.

Rules:
- Each batch's results are one ``ImportBatch`` record holding a result per row
  (``[row_number, identifier, result, case_id, message]``, the report's columns),
  written with the import's counts, progress and heartbeat and committed together
  with the rows' changes: a batch is recorded whole or not at all.
- A crash of the database server may lose the last few batches' commits, but whole:
  their changes together with their results, so the resumed job simply does them again.
- Identifiers are stored as text, at most 255 characters.
- Results are read back in row order one batch record at a time, so memory stays
  flat whatever the import's size.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator

from sqlalchemy import func, insert, select

from messaging.db import dialect
from messaging.extensions import db
from messaging.imports.handlers import RowOutcome
from messaging.lib import clock
from messaging.models import Import, ImportBatch

REPORT_HEADERS = ["row", "identifier", "result", "case_id", "message"]


def record_outcomes(import_id: str, outcomes: list[RowOutcome]) -> list[list]:
    """Store the rows' results with the progress and commit them with the rows' changes.

    Returns the rows as stored (``[row_number, identifier, result, case_id, message]``)."""
    imp = db.session.get(Import, import_id)
    rows = [
        [
            o.row_number,
            None if o.identifier is None else str(o.identifier)[:255],
            o.result,
            o.case_id,
            o.message or "",
        ]
        for o in outcomes
    ]
    db.session.connection().execute(
        insert(ImportBatch.__table__),
        {
            "import_id": import_id,
            "first_row": rows[0][0],
            "last_row": rows[-1][0],
            "position": imp.processed or 0,
            "size": len(rows),
            "outcomes": json.dumps(rows, separators=(",", ":")),
        },
    )
    counts = Counter(imp.counts or {})
    counts.update(o.result for o in outcomes)
    imp.counts = dict(counts)
    imp.processed = (imp.processed or 0) + len(outcomes)
    imp.heartbeat_at = clock.now()
    # A crash of the database server may lose the last few batches' commits, but whole:
    # their changes together with their results, so the resumed job simply does them again.
    dialect.commit_without_waiting_for_disk()
    db.session.commit()
    return rows


def iter_outcomes(import_id: str, after_row: int = 0) -> Iterator[list]:
    """The import's results in row order, each ``[row_number, identifier, result, case_id,
    message]``, starting after sheet row ``after_row``; reads one batch record at a time."""
    last_seen = None
    while True:
        stmt = select(ImportBatch.first_row, ImportBatch.outcomes).where(
            ImportBatch.import_id == import_id, ImportBatch.last_row > after_row
        )
        if last_seen is not None:
            stmt = stmt.where(ImportBatch.first_row > last_seen)
        found = db.session.execute(stmt.order_by(ImportBatch.first_row).limit(1)).first()
        if found is None:
            return
        last_seen = found.first_row
        for outcome in json.loads(found.outcomes):
            if outcome[0] > after_row:
                yield outcome


def outcome_page(import_id: str, after_row: int = 0, limit: int = 50) -> list[RowOutcome]:
    """At most ``limit`` results after sheet row ``after_row``, in row order."""
    return [RowOutcome(*o) for o in itertools.islice(iter_outcomes(import_id, after_row), limit)]


def recorded_up_to(import_id: str) -> int:
    """The last sheet row whose result is recorded (0 for none): a resumed run starts after it."""
    return (
        db.session.execute(
            select(func.max(ImportBatch.last_row)).where(ImportBatch.import_id == import_id)
        ).scalar()
        or 0
    )
