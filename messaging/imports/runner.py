"""Excel imports as background jobs, with progress and a per-row report.

An area registers an ``ImportHandler`` for its ``kind`` (``case_group``,
``cases``, ...). ``start_import`` checks the upload cheaply (size, file type,
zip bomb: no XML is parsed in the web request), stores it in the database and
enqueues ``workers.jobs.imports.run_import``. The job:

1. claims the import atomically (a second run of the same job does nothing;
   an import whose worker died is taken over after ``STALE_AFTER``);
2. counts the rows (refusing a sheet over the row limit before changing
   anything) and checks the header, failing the whole import with a clear
   message when either is wrong;
3. streams the rows in batches to ``handler.process_batch`` and records the
   batch's results (one ``ImportBatch`` record holding a result per row),
   the counts and the progress, committing once per batch with the rows'
   changes. A batch that raises is retried row by row, so one bad row never
   stops the good ones. A resumed import skips the rows already recorded;
4. stores the .xlsx report (written as the batches are recorded) and deletes
   the upload.

A handler may split its work into ``plan_batch`` (read and decide, changing
nothing) and ``apply_plan`` (write). On PostgreSQL the job then plans batch
N + 1 while a writer thread, on a connection of its own, applies and records
batch N (``_BatchWriter``): the database server and the job's Python run on
two cores instead of taking turns. Batches are still recorded one at a time,
in row order, each in one commit with its changes; a batch that fails to
apply is applied again row by row from its plan.

Handlers must honour ``imp.dry_run``: report what would happen, change nothing.
``process_batch(imp, rows, state)`` gets a dict that lives for one run of the
job, for what a handler carries from batch to batch (case groups: the rows
seen so far, to report repeats). On a resumed run it starts empty with
``imp.processed`` > 0: rebuild it from ``iter_outcomes``.
"""

import contextlib
import gc
import io
import itertools
import json
import logging
import os
import queue
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO

from flask import current_app
from sqlalchemy import delete, func, insert, or_, select, update

from messaging import jobs
from messaging.db import dialect, tenancy
from messaging.errors import Invalid, TooLarge, Unsupported
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.xlsx import PlainReportWriter, SpreadsheetError, check_xlsx_bytes, iter_rows
from messaging.models import Import, ImportBatch, ImportFile

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
STALE_AFTER = timedelta(minutes=10)
REPORT_HEADERS = ["row", "identifier", "result", "case_id", "message"]


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
    # is written (see _BatchWriter): plan_batch(imp, rows, state) -> plan, reading only;
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


HANDLERS: dict[str, ImportHandler] = {}

# How upload refusals map to HTTP statuses.
_REFUSAL_FOR_CODE = {
    "too_large": TooLarge,
    "not_xlsx": Unsupported,
    "zip_bomb": TooLarge,
    "unreadable": Invalid,
}


def register(handler: ImportHandler) -> None:
    HANDLERS[handler.kind] = handler


def max_upload_bytes() -> int:
    return int(current_app.config.get("MAX_CONTENT_LENGTH") or 20 * 1024 * 1024)


def start_import(
    kind: str,
    data: bytes,
    filename: str,
    *,
    target_id: str | None = None,
    dry_run: bool = False,
    options: dict | None = None,
    user_id: int | None = None,
) -> Import:
    """Check the upload, store it and queue the job; commits. Raises a ``DomainError`` on a refused file."""
    if kind not in HANDLERS:
        raise ValueError(f"no import handler for {kind!r}")
    if not data:
        raise Invalid("empty_file", "The file is empty. Choose an .xlsx file to upload.")
    try:
        # Only the zip directory here: the full check and the parse run in the job.
        check_xlsx_bytes(data, max_upload_bytes(), verify=False)
    except SpreadsheetError as exc:
        raise _REFUSAL_FOR_CODE.get(exc.code, Invalid)(exc.code, exc.message, details=exc.details) from None
    imp = Import(
        kind=kind,
        target_id=target_id,
        filename=(filename or "upload.xlsx")[:255],
        dry_run=dry_run,
        options=options or {},
        created_by=user_id,
        counts={},
    )
    db.session.add(imp)
    db.session.flush()
    store_file(imp.id, "upload", data)
    db.session.commit()
    enqueue_import(imp.id)
    log.info("import queued import_id=%s kind=%s dry_run=%s bytes=%d", imp.id, kind, dry_run, len(data))
    return imp


def enqueue_import(import_id: str) -> None:
    jobs.enqueue(jobs.RUN_IMPORT, import_id, job_id=f"import-{import_id}")


def _claim(import_id: str) -> bool:
    now = clock.now()
    result = db.session.execute(
        update(Import)
        .where(Import.id == import_id)
        .where(
            or_(
                Import.status == "queued",
                (Import.status == "running") & (Import.heartbeat_at < now - STALE_AFTER),
            )
        )
        .values(status="running", started_at=func.coalesce(Import.started_at, now), heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def run_import(import_id: str) -> None:
    """The job body (see the module docstring). Safe to run twice."""
    imp = db.session.execute(
        select(Import).where(Import.id == import_id).execution_options(all_projects=True)
    ).scalar_one_or_none()
    if imp is None:
        log.warning("import job for unknown import_id=%s", import_id)
        return
    project_id = imp.project_id
    if not _claim(import_id):
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
        try:
            check_xlsx_bytes(path, max_upload_bytes())
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
        except SpreadsheetError as exc:
            _fail(imp, exc.code, exc.message)
            return
        imp.total = total
        db.session.commit()
        _process_rows(imp, handler, path, max_rows)
    finally:
        os.unlink(path)


def _process_rows(imp: Import, handler: ImportHandler, path: str, max_rows: int) -> None:
    import_id = imp.id
    done_up_to = (
        db.session.execute(
            select(func.max(ImportBatch.last_row)).where(ImportBatch.import_id == import_id)
        ).scalar()
        or 0
    )
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
    db.session.execute(
        delete(ImportFile).where(ImportFile.import_id == import_id, ImportFile.purpose == "upload")
    )
    db.session.commit()
    log.info("import done import_id=%s processed=%s counts=%s", import_id, imp.processed, imp.counts)


def _record_all_batches(
    imp: Import, handler: ImportHandler, path: str, max_rows: int, done_up_to: int, report
) -> None:
    """Read the rows after ``done_up_to`` in batches, process and record each, and write
    their results to ``report`` in row order. A SpreadsheetError met midway leaves the
    batches before it recorded, as they would be without a writer thread."""
    import_id = imp.id
    state: dict = {}
    writer = None
    if handler.plan_batch is not None and dialect.allows_concurrent_writers():
        writer = _BatchWriter(current_app._get_current_object(), imp.project_id, import_id)

    def handle(batch: list) -> None:
        recorded_here = _handle_batch(import_id, handler, batch, state, writer)
        if writer is not None:  # the writer's batches come first: they are earlier rows
            for rows in writer.take_recorded():
                report.write_rows(rows)
        report.write_rows(recorded_here)

    batch: list = []
    try:
        with iter_rows(path, max_rows, handler.required_header, check=False) as reader:
            for number, record in reader:
                if number <= done_up_to:
                    continue
                batch.append((number, record))
                if len(batch) >= BATCH_SIZE:
                    handle(batch)
                    batch = []
            if batch:
                handle(batch)
    except BaseException:
        if writer is not None:
            writer.close(raise_error=False)  # what it took is recorded; this error wins
        raise
    if writer is not None:
        writer.close()  # raises the writer's error, if any
        for rows in writer.take_recorded():
            report.write_rows(rows)


def _handle_batch(import_id: str, handler: ImportHandler, batch: list, state: dict, writer) -> list[list]:
    """Process one batch and record its results, or hand its plan to the writer.

    Returns the result rows recorded by this thread (none when the writer took the batch)."""
    if handler.plan_batch is None:
        return _apply_batch(
            import_id,
            batch,
            lambda imp: handler.process_batch(imp, batch, state),
            lambda imp, index: handler.process_batch(imp, [batch[index]], state),
        )
    try:
        plan = handler.plan_batch(db.session.get(Import, import_id), batch, state)
    except Exception:
        db.session.rollback()
        log.exception("import batch could not be planned import_id=%s rows=%s-%s", import_id, *_span(batch))
        if writer is not None:
            writer.drain()  # the batches before this one are recorded first

        def plan_and_apply(imp, index):
            rows = [batch[index]]
            return handler.apply_plan(imp, rows, handler.plan_batch(imp, rows, state))

        return _apply_rows(import_id, batch, plan_and_apply)

    def apply(imp):
        return handler.apply_plan(imp, batch, plan)

    def apply_row(imp, index):
        return handler.apply_plan(imp, [batch[index]], handler.split_plan(plan, index))

    if writer is None:
        return _apply_batch(import_id, batch, apply, apply_row)
    # This thread's transaction only reads (READ COMMITTED: each look-up sees the
    # writer's latest commit), so it stays open from batch to batch.
    writer.submit(lambda: _apply_batch(import_id, batch, apply, apply_row))
    return []


def _span(batch: list) -> tuple[int, int]:
    return batch[0][0], batch[-1][0]


def _apply_batch(import_id: str, batch: list, process, process_row) -> list[list]:
    """``process(imp)`` -> the batch's outcomes, recorded with its changes in one commit.

    If it raises, ``process_row(imp, index)`` runs for each row in its own
    transaction, so a failing row's rollback can never undo the rows before it
    (whose results already say what they did). Returns the result rows recorded."""
    try:
        outcomes = list(process(db.session.get(Import, import_id)))
        if len(outcomes) != len(batch):
            raise RuntimeError("handler returned a different number of outcomes than rows")
    except Exception:
        db.session.rollback()
        log.exception(
            "import batch failed import_id=%s rows=%s-%s; retrying row by row", import_id, *_span(batch)
        )
        return _apply_rows(import_id, batch, process_row)
    return _record_outcomes(import_id, outcomes)


def _apply_rows(import_id: str, batch: list, process_row) -> list[list]:
    recorded = []
    for index, row in enumerate(batch):
        try:
            (outcome,) = process_row(db.session.get(Import, import_id), index)
            db.session.flush()
        except Exception as exc:
            db.session.rollback()
            log.warning("import row failed import_id=%s row=%s: %s", import_id, row[0], exc)
            outcome = RowOutcome(row[0], None, "error", message="This row could not be processed.")
        recorded += _record_outcomes(import_id, [outcome])
    return recorded


class _BatchWriter:
    """Applies and records planned batches, in order, on a thread of its own.

    The thread has its own app context, session and database connection, so
    PostgreSQL writes batch N (the inserts, the results, the commit: about
    half of an import's time) while the job's thread reads and plans batch
    N + 1. At most one batch waits. The result rows each batch recorded wait in
    ``take_recorded`` for the job's thread (which writes the report). The
    first error stops the writing; the job's thread raises it at its next
    ``submit``, ``drain`` or ``close``.
    """

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


def _record_outcomes(import_id: str, outcomes: list[RowOutcome]) -> list[list]:
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


def _fail(imp: Import, code: str, message: str) -> None:
    imp.status = "failed"
    imp.error_code = code
    imp.error_message = message
    imp.finished_at = clock.now()
    db.session.execute(delete(ImportFile).where(ImportFile.import_id == imp.id))
    db.session.commit()
    log.info("import failed import_id=%s code=%s", imp.id, code)


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


def store_file(import_id: str, purpose: str, data: bytes | memoryview) -> None:
    """Store (or replace) one of an import's files without the session's ORM flush,
    in pieces on PostgreSQL so memory stays flat whatever the file's size."""
    files = ImportFile.__table__
    connection = db.session.connection()
    this_file = (files.c.import_id == import_id) & (files.c.purpose == purpose)
    connection.execute(delete(files).where(this_file))
    dialect.write_blob(
        connection, files, this_file, "data", data, {"import_id": import_id, "purpose": purpose}
    )


def copy_file(import_id: str, purpose: str, out: IO[bytes]) -> bool:
    """Write one of an import's stored files to ``out`` (in pieces on PostgreSQL);
    False when there is no such file."""
    files = ImportFile.__table__
    this_file = (files.c.import_id == import_id) & (files.c.purpose == purpose)
    return dialect.read_blob(db.session.connection(), files, this_file, "data", out)


def report_bytes(imp: Import) -> bytes | None:
    stored = db.session.get(ImportFile, (imp.id, "report"))
    return stored.data if stored else None


def status_json(imp: Import, report_url: str | None) -> dict:
    """The import as the API and the progress page show it."""
    total = imp.total or 0
    return {
        "id": imp.id,
        "kind": imp.kind,
        "status": imp.status,
        "dry_run": imp.dry_run,
        "filename": imp.filename,
        "target_id": imp.target_id,
        "total": imp.total,
        "processed": imp.processed,
        "percent": 100 if imp.status == "done" else (int(imp.processed * 100 / total) if total else 0),
        "counts": imp.counts or {},
        "error": {"code": imp.error_code, "message": imp.error_message} if imp.status == "failed" else None,
        "report_url": report_url if imp.status == "done" else None,
        "created_at": clock.isoformat(imp.created_at),
        "finished_at": clock.isoformat(imp.finished_at),
    }


def sweep_stale_imports() -> int:
    """Re-queue imports whose job vanished (Redis lost it, or a worker died)."""
    now = clock.now()
    stale = (
        db.session.execute(
            select(Import.id)
            .where(
                or_(
                    (Import.status == "queued") & (Import.created_at < now - timedelta(minutes=2)),
                    (Import.status == "running") & (Import.heartbeat_at < now - STALE_AFTER),
                )
            )
            .execution_options(all_projects=True)
        )
        .scalars()
        .all()
    )
    q = jobs.queue(jobs.RUN_IMPORT.queue)
    for import_id in stale:
        job = q.fetch_job(f"import-{import_id}")
        if job is None or job.get_status(refresh=True) in ("finished", "failed", "stopped", "canceled"):
            if job is not None:
                job.delete()
            enqueue_import(import_id)
            log.info("import re-queued by sweep import_id=%s", import_id)
    return len(stale)
