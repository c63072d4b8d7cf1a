"""The sweep (every 60 s): re-queue imports whose job vanished.

Rules:
- An import still ``queued`` 2 minutes after it was created, or ``running`` with no
  heartbeat for ``STALE_AFTER`` (its worker died), is re-queued when its job
  (``import-<id>``) is gone (Redis lost it) or ended (finished, failed, stopped or
  cancelled: that job is deleted first).
- It runs across projects; a job that runs twice is harmless (see ``claim``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select

from messaging import jobs
from messaging.extensions import db
from messaging.imports.claim import stale_running
from messaging.imports.start import enqueue_import
from messaging.lib import clock
from messaging.models import Import

log = logging.getLogger(__name__)


def sweep_stale_imports() -> int:
    """Re-queue imports whose job vanished (Redis lost it, or a worker died)."""
    now = clock.now()
    stale = (
        db.session.execute(
            select(Import.id)
            .where(
                or_(
                    (Import.status == "queued") & (Import.created_at < now - timedelta(minutes=2)),
                    stale_running(now),
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
