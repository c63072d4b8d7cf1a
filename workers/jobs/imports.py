"""Import jobs: thin wrappers so the job path stays stable."""

from messaging.imports import runner as imports


def run_import(import_id: str) -> None:
    imports.run_import(import_id)


def sweep_imports() -> None:
    imports.sweep_stale_imports()
