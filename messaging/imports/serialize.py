"""The JSON of an import (its status, progress and counts) and of one row's result.

Rules:
- One shape for the API, the progress page and its live status: the caller gives
  the URLs (of the report, and the API's own ``status_url``), built by the HTTP layer.
- ``percent`` is 100 once the import is done, else the share of rows processed
  (0 before the rows are counted); ``error`` is set only when it failed,
  ``report_url`` only when it is done.
- Times are ISO 8601 UTC (``clock.isoformat``), or null.
"""

from __future__ import annotations

from messaging.imports.handlers import RowOutcome
from messaging.lib import clock
from messaging.models import Import


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


def import_json(imp: Import, report_url: str | None, status_url: str) -> dict:
    """The import as the API shows it: its status with the URL to poll."""
    body = status_json(imp, report_url)
    body["status_url"] = status_url
    return body


def row_json(outcome: RowOutcome) -> dict:
    """One row's result as the API lists it."""
    return {
        "row": outcome.row_number,
        "identifier": outcome.identifier,
        "result": outcome.result,
        "case_id": outcome.case_id,
        "message": outcome.message,
    }
