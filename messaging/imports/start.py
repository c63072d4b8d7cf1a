"""Starting an import: check the upload cheaply, store it, queue the job.

Rules:
- The web request only checks the upload cheaply (not empty, size, file type, zip
  bomb: the zip directory only, no XML is parsed in the web request); the full check
  and the parse run in the job.
- A refused file raises a ``DomainError`` and changes nothing: too large or a zip
  bomb ``TooLarge``, not an .xlsx ``Unsupported``, empty or unreadable ``Invalid``.
- The upload is stored in the database with the import (one commit), then the job
  ``workers.jobs.imports.run_import`` is queued with the job id ``import-<id>`` (by
  which the sweep finds it).
- A kind without a registered handler is a programming error (``ValueError``).
"""

from __future__ import annotations

import logging

from flask import current_app

from messaging import jobs
from messaging.errors import Invalid, TooLarge, Unsupported
from messaging.extensions import db
from messaging.imports.files import store_file
from messaging.imports.handlers import HANDLERS
from messaging.lib.xlsx import SpreadsheetError, check_xlsx_bytes
from messaging.models import Import

log = logging.getLogger(__name__)

# How upload refusals map to domain refusals (and so to HTTP statuses).
_REFUSAL_FOR_CODE = {
    "too_large": TooLarge,
    "not_xlsx": Unsupported,
    "zip_bomb": TooLarge,
    "unreadable": Invalid,
}


def is_old_excel(refusal: SpreadsheetError) -> bool:
    """Whether a refusal only says the file is an old Excel 97-2003 workbook (.xls)."""
    return refusal.code == "not_xlsx" and (refusal.details or {}).get("kind") == "xls"


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
        if not (HANDLERS[kind].accepts_xls and is_old_excel(exc)):
            refusal = _REFUSAL_FOR_CODE.get(exc.code, Invalid)
            raise refusal(exc.code, exc.message, details=exc.details) from None
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
