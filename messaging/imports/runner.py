"""The import job: claim the import, check the sheet, process its rows in batches, store the report.

Rules:
1. The job claims the import atomically: a second run of the same job does
   nothing; an import whose worker died is taken over (see ``claim``).
2. It counts the rows (refusing a sheet over the row limit ``IMPORT_MAX_ROWS``
   before changing anything) and checks the header, failing the whole import with
   a clear message when either is wrong. An empty sheet or a missing upload fails
   it too; a failed import's files are deleted.
3. It streams the rows in batches of ``BATCH_SIZE`` to the handler and records each
   batch's results, the counts and the progress, committing once per batch with
   the rows' changes (see ``batches`` and ``outcomes``). A resumed import skips
   the rows already recorded.
4. It stores the .xlsx report (written as the batches are recorded, the rows a
   resumed run recorded before first, not read back from the database at the end)
   and deletes the upload.
- With a handler that plans, on PostgreSQL the batches are applied and recorded
  by a writer thread (see ``writer``), still one at a time in row order. A
  spreadsheet error met midway leaves the batches before it recorded, as they
  would be without a writer thread.
- The objects alive before the job stay out of the garbage collector's full
  passes while it runs (a third of a large import's time otherwise).
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import tempfile
from collections.abc import Iterator

from flask import current_app
from sqlalchemy import select

from messaging.db import dialect, tenancy
from messaging.extensions import db
from messaging.imports.batches import BatchRun, handle_batch
from messaging.imports.claim import claim
from messaging.imports.files import copy_file, delete_files, store_file
from messaging.imports.handlers import HANDLERS, ImportHandler
from messaging.imports.outcomes import REPORT_HEADERS, iter_outcomes, record_outcomes, recorded_up_to
from messaging.imports.start import is_old_excel, max_upload_bytes
from messaging.imports.writer import BatchWriter
from messaging.lib import clock
from messaging.lib.xlsx import PlainReportWriter, SpreadsheetError, check_xlsx_bytes, iter_rows
from messaging.lib.xlsx.sniff import is_old_excel_file
from messaging.models import Import

log = logging.getLogger(__name__)

BATCH_SIZE = 2000


def run_import(import_id: str) -> None:
    """The job body (see the module docstring). Safe to run twice."""
    imp = db.session.execute(
        select(Import).where(Import.id == import_id).execution_options(all_projects=True)
    ).scalar_one_or_none()
    if imp is None:
        log.warning("import job for unknown import_id=%s", import_id)
        return
    project_id = imp.project_id
    if not claim(import_id):
        log.info("import import_id=%s already taken or finished; nothing to do", import_id)
        return
    with tenancy.project_scope(project_id), _long_lived_objects_frozen():
        _run_claimed(import_id)


@contextlib.contextmanager
def _long_lived_objects_frozen():
    """Keep the objects alive before the job (the app, its models, imported modules)
    out of the garbage collector's full passes while it runs.

    A 100,000-row import allocates millions of short-lived objects, and each
    full collection walked everything the process holds: about a third of the
    import's time. ``gc.unfreeze`` hands them back at the end, unless the
    worker had frozen its start-up objects already (``flask worker`` does):
    those stay frozen, as the worker wants.
    """
    already_frozen = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        yield
    finally:
        if not already_frozen:
            gc.unfreeze()


def _run_claimed(import_id: str) -> None:
    imp = db.session.get(Import, import_id)
    handler = HANDLERS[imp.kind]
    max_rows = int(current_app.config.get("IMPORT_MAX_ROWS", 100_000))
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    try:
        with os.fdopen(fd, "wb") as fh:
            found = copy_file(import_id, "upload", fh)
        if not found:
            _fail(imp, "file_missing", "The uploaded file is no longer available. Upload it again.")
            return
        db.session.expire_all()
        imp = db.session.get(Import, import_id)
        if handler.accepts_xls:
            path = _named_by_content(path)
        try:
            total = _checked_row_count(handler, path, max_rows)
        except SpreadsheetError as exc:
            _fail(imp, exc.code, exc.message)
            return
        imp.total = total
        db.session.commit()
        _process_rows(imp, handler, path, max_rows)
    finally:
        os.unlink(path)


def _named_by_content(path: str) -> str:
    """An old Excel file (.xls) renamed so: the reader picks the format by the file's extension."""
    if not is_old_excel_file(path):
        return path
    renamed = path.removesuffix(".xlsx") + ".xls"
    os.rename(path, renamed)
    return renamed


def _checked_row_count(handler: ImportHandler, path: str, max_rows: int) -> int:
    """Check the file and its header and count its rows; SpreadsheetError when any is wrong."""
    try:
        check_xlsx_bytes(path, max_upload_bytes())
    except SpreadsheetError as exc:
        if not (handler.accepts_xls and is_old_excel(exc)):
            raise
    with iter_rows(path, None, handler.required_header, check=False) as reader:
        # the header check, before anything is counted or changed
        if handler.check_headers is not None:
            handler.check_headers(list(reader.headers))
        total = reader.count_remaining()
    if total > max_rows:
        raise SpreadsheetError(
            "too_many_rows",
            f"This file has {total:,} rows, more than the limit of {max_rows:,}. Split it into "
            f"files of at most {max_rows:,} rows and upload them one at a time.",
            {"rows": total, "max_rows": max_rows},
        )
    if total == 0:
        raise SpreadsheetError("empty_sheet", "The sheet has a header row but no rows below it.")
    return total


def _process_rows(imp: Import, handler: ImportHandler, path: str, max_rows: int) -> None:
    import_id = imp.id
    done_up_to = recorded_up_to(import_id)
    # The report is written as the batches are recorded (the rows a resumed run
    # recorded before first), not read back from the database at the end.
    buffer = io.BytesIO()
    with PlainReportWriter(buffer, REPORT_HEADERS, sheet_title="Results") as report:
        if done_up_to:
            report.write_rows(iter_outcomes(import_id))
        try:
            _record_all_batches(imp, handler, path, max_rows, done_up_to, report)
        except SpreadsheetError as exc:
            db.session.rollback()
            _fail(db.session.get(Import, import_id), exc.code, exc.message)
            return
    store_file(import_id, "report", buffer.getbuffer())
    db.session.expire_all()  # the writer's progress and counts
    imp = db.session.get(Import, import_id)
    imp.status = "done"
    imp.finished_at = clock.now()
    delete_files(import_id, "upload")
    db.session.commit()
    log.info("import done import_id=%s processed=%s counts=%s", import_id, imp.processed, imp.counts)


def _record_all_batches(
    imp: Import, handler: ImportHandler, path: str, max_rows: int, done_up_to: int, report
) -> None:
    """Read the rows after ``done_up_to`` in batches, process and record each, and write
    their results to ``report`` in row order. A SpreadsheetError met midway leaves the
    batches before it recorded, as they would be without a writer thread."""
    writer = None
    if handler.plan_batch is not None and dialect.allows_concurrent_writers():
        writer = BatchWriter(current_app._get_current_object(), imp.project_id, imp.id)
    run = BatchRun(imp.id, handler, record=_recorder(), writer=writer)
    try:
        with contextlib.closing(_batches(path, max_rows, handler, done_up_to)) as batches:
            for batch in batches:
                recorded_here = handle_batch(run, batch)
                if writer is not None:  # the writer's batches come first: they are earlier rows
                    for rows in writer.take_recorded():
                        report.write_rows(rows)
                report.write_rows(recorded_here)
    except BaseException:
        if writer is not None:
            writer.close(raise_error=False)  # what it took is recorded; this error wins
        raise
    if writer is not None:
        writer.close()  # raises the writer's error, if any
        for rows in writer.take_recorded():
            report.write_rows(rows)


def _recorder():
    """How this run records its batches: this module's ``record_outcomes``, looked up when
    the run starts, so a test can wrap it by patching ``runner.record_outcomes``."""
    return record_outcomes


def _batches(path: str, max_rows: int, handler: ImportHandler, done_up_to: int) -> Iterator[list]:
    """The sheet's rows after ``done_up_to``, ``[(row_number, {header: value})]`` in batches."""
    batch: list = []
    with iter_rows(path, max_rows, handler.required_header, check=False) as reader:
        for number, record in reader:
            if number <= done_up_to:
                continue
            batch.append((number, record))
            if len(batch) >= BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch


def _fail(imp: Import, code: str, message: str) -> None:
    imp.status = "failed"
    imp.error_code = code
    imp.error_message = message
    imp.finished_at = clock.now()
    delete_files(imp.id)
    db.session.commit()
    log.info("import failed import_id=%s code=%s", imp.id, code)
