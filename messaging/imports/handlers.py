"""The import handlers: what an area provides to import rows of one kind, and their registry.

Rules:
- An area registers one ``ImportHandler`` per ``kind`` (``case_group``, ``cases``,
  ...) at import time; registering a kind again replaces its handler.
- A handler returns one ``RowOutcome`` per row, in order.
- Handlers must honour ``imp.dry_run``: report what would happen, change nothing.
- ``process_batch(imp, rows, state)`` gets a dict that lives for one run of the job,
  for what a handler carries from batch to batch (case groups: the rows seen so far,
  to report repeats). On a resumed run it starts empty with ``imp.processed`` > 0:
  rebuild it from ``outcomes.iter_outcomes``.
- A handler may split its work into ``plan_batch`` (read and decide, changing
  nothing) and ``apply_plan`` (write), with ``split_plan`` giving one row's plan (a
  failed batch is applied again row by row). On PostgreSQL the job then plans batch
  N + 1 while a writer thread applies and records batch N (see ``writer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RowOutcome:
    row_number: int
    identifier: str | None
    result: str
    case_id: str | None = None
    message: str = ""


@dataclass
class ImportHandler:
    """What an area provides to import rows of one kind."""

    kind: str
    label: str
    required_header: str | list[str] | None
    # process_batch(imp, [(row_number, {header: value})], state) -> [RowOutcome], one per row,
    # in order (state: see the module docstring).
    process_batch: object = None
    # Or the same in two steps, which lets the job plan one batch while the last one
    # is written (see writer.BatchWriter): plan_batch(imp, rows, state) -> plan, reading only;
    # apply_plan(imp, rows, plan) -> [RowOutcome], writing; split_plan(plan, index) ->
    # the plan of one row (a failed batch is applied again row by row).
    plan_batch: object = None
    apply_plan: object = None
    split_plan: object = None
    result_labels: dict = field(default_factory=dict)
    # Optional check_headers([normalised header names]): raise SpreadsheetError to
    # refuse the whole file (e.g. "one of these columns is required").
    check_headers: object = None
    # target_link(imp) -> (label, url) or None: where the progress page links back to.
    target_link: object = None
    # True: an old Excel 97-2003 (.xls) file is read too (calamine reads BIFF; no zip checks
    # apply to it). CommCare's bulk upload API takes .xls (OpenFn sends one).
    accepts_xls: bool = False


HANDLERS: dict[str, ImportHandler] = {}


def register(handler: ImportHandler) -> None:
    HANDLERS[handler.kind] = handler
