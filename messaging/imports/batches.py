"""One batch of rows: processed (or planned, then applied) and recorded, a failing batch row by row.

Rules:
- A batch's results are recorded with its changes in one commit.
- A batch that raises (or returns a different number of outcomes than rows) is
  rolled back and retried row by row, each row in its own transaction, so one bad
  row never stops the good ones and a failing row's rollback can never undo the rows
  before it (whose results already say what they did). A row that raises again is
  recorded as an ``error``: "This row could not be processed."
- With a handler that plans: a batch whose plan fails is planned and applied row by
  row, after the writer has recorded the batches before it; a batch that fails to
  apply is applied again row by row from its plan.
- With the writer thread, the job's thread only plans; its transaction only reads
  (READ COMMITTED: each look-up sees the writer's latest commit), so it stays open
  from batch to batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from messaging.extensions import db
from messaging.imports.handlers import ImportHandler, RowOutcome
from messaging.imports.writer import BatchWriter
from messaging.models import Import

log = logging.getLogger(__name__)


@dataclass
class BatchRun:
    """What every batch of one run of the job shares."""

    import_id: str
    handler: ImportHandler
    # record(import_id, outcomes) -> the result rows stored (outcomes.record_outcomes)
    record: Callable[[str, list[RowOutcome]], list[list]]
    # applies and records planned batches on its own thread (PostgreSQL), or None
    writer: BatchWriter | None = None
    # the handler's state from batch to batch (see handlers)
    state: dict = field(default_factory=dict)


def handle_batch(run: BatchRun, batch: list) -> list[list]:
    """Process one batch and record its results, or hand its plan to the writer.

    Returns the result rows recorded by this thread (none when the writer took the batch)."""
    handler, state, writer = run.handler, run.state, run.writer
    if handler.plan_batch is None:
        return _apply_batch(
            run,
            batch,
            lambda imp: handler.process_batch(imp, batch, state),
            lambda imp, index: handler.process_batch(imp, [batch[index]], state),
        )
    try:
        plan = handler.plan_batch(db.session.get(Import, run.import_id), batch, state)
    except Exception:
        db.session.rollback()
        log.exception(
            "import batch could not be planned import_id=%s rows=%s-%s", run.import_id, *_span(batch)
        )
        if writer is not None:
            writer.drain()  # the batches before this one are recorded first

        def plan_and_apply(imp, index):
            rows = [batch[index]]
            return handler.apply_plan(imp, rows, handler.plan_batch(imp, rows, state))

        return _apply_rows(run, batch, plan_and_apply)

    def apply(imp):
        return handler.apply_plan(imp, batch, plan)

    def apply_row(imp, index):
        return handler.apply_plan(imp, [batch[index]], handler.split_plan(plan, index))

    if writer is None:
        return _apply_batch(run, batch, apply, apply_row)
    # This thread's transaction only reads (READ COMMITTED: each look-up sees the
    # writer's latest commit), so it stays open from batch to batch.
    writer.submit(lambda: _apply_batch(run, batch, apply, apply_row))
    return []


def _span(batch: list) -> tuple[int, int]:
    return batch[0][0], batch[-1][0]


def _apply_batch(run: BatchRun, batch: list, process, process_row) -> list[list]:
    """``process(imp)`` -> the batch's outcomes, recorded with its changes in one commit.

    If it raises, ``process_row(imp, index)`` runs for each row in its own
    transaction, so a failing row's rollback can never undo the rows before it
    (whose results already say what they did). Returns the result rows recorded."""
    try:
        outcomes = list(process(db.session.get(Import, run.import_id)))
        if len(outcomes) != len(batch):
            raise RuntimeError("handler returned a different number of outcomes than rows")
    except Exception:
        db.session.rollback()
        log.exception(
            "import batch failed import_id=%s rows=%s-%s; retrying row by row", run.import_id, *_span(batch)
        )
        return _apply_rows(run, batch, process_row)
    return run.record(run.import_id, outcomes)


def _apply_rows(run: BatchRun, batch: list, process_row) -> list[list]:
    recorded = []
    for index, row in enumerate(batch):
        try:
            (outcome,) = process_row(db.session.get(Import, run.import_id), index)
            db.session.flush()
        except Exception as exc:
            db.session.rollback()
            log.warning("import row failed import_id=%s row=%s: %s", run.import_id, row[0], exc)
            outcome = RowOutcome(row[0], None, "error", message="This row could not be processed.")
        recorded += run.record(run.import_id, [outcome])
    return recorded
