"""Import jobs: process one upload, and the sweep that resumes imports whose job died.

The import's row is claimed before any work and its batches are recorded with
their results, so a job that runs twice resumes after the last recorded batch.
"""

from messaging.imports import runner as imports
from messaging.imports import sweep
from messaging.models import Import
from workers.jobs import periodic_job, row_job


@row_job(Import)
def run_import(import_id: str) -> None:
    """Check, read and apply the upload in batches; write the report."""
    return imports.run_import(import_id)


@periodic_job
def sweep_imports() -> int:
    """Every 60 s: enqueue again the imports whose job went quiet."""
    return sweep.sweep_stale_imports()
