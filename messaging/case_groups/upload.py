"""Adding cases to a group from Excel: the import handler of kind ``case_group``.

- The sheet has a ``case_identifier`` column; each row is one identifier, added
  as :mod:`messaging.case_groups.adding` says, with one result per row
  (``messaging.case_groups.results``).
- A row that means the same case as an earlier row of the file (or repeats an
  earlier row's unresolved identifier) is ``duplicate_in_file`` with the first
  row's number, also across batches and when an interrupted import resumes (the
  rows a previous run recorded are read back first).
- A dry run gives the same per-row results as the real run would, with
  ``would_add`` in place of ``added``, and changes nothing.
- The job plans a batch (reads only) while the last one is written; a failed
  batch is applied again row by row.
- A group deleted during the import: every remaining row is an ``error`` saying so.
- The example upload is ``cases_bulk_example.xlsx``: the ``case_identifier``
  column and two example rows.
"""

from __future__ import annotations

from messaging.case_groups.adding import AddPlan, apply_adds, plan_adds
from messaging.case_groups.groups import group_project, refuse_if_dynamic
from messaging.case_groups.phones import phone_e164
from messaging.case_groups.resolve import identifier_text, unresolved_key
from messaging.case_groups.results import (
    ADDED,
    ALREADY_MEMBER,
    CLOSED,
    DUPLICATE_IN_FILE,
    ERROR,
    INVALID,
    RESULT_LABELS,
    WOULD_ADD,
)
from messaging.extensions import db
from messaging.imports.handlers import ImportHandler, RowOutcome
from messaging.imports.outcomes import iter_outcomes
from messaging.imports.start import start_import
from messaging.lib.xlsx import make_example_workbook
from messaging.models import CaseGroup

IMPORT_KIND = "case_group"
IMPORT_HEADER = "case_identifier"
EXAMPLE_FILENAME = "cases_bulk_example.xlsx"
EXAMPLE_ROWS = [["254712345678"], ["PATIENT-0042"]]


def example_workbook() -> bytes:
    """``cases_bulk_example.xlsx``: the ``case_identifier`` column and two example rows."""
    return make_example_workbook([IMPORT_HEADER], EXAMPLE_ROWS)


def start_group_import(
    group: CaseGroup, data: bytes, filename: str, *, dry_run: bool = False, user_id: int | None = None
):
    """Check and store the upload and queue the job (commits); raises a ``DomainError`` on a refused file
    (or a dynamic group)."""
    refuse_if_dynamic(group)
    return start_import(IMPORT_KIND, data, filename, target_id=group.id, dry_run=dry_run, user_id=user_id)


def import_group(imp) -> CaseGroup | None:
    """The group an import adds to (``None`` once it is deleted)."""
    return db.session.get(CaseGroup, imp.target_id) if imp.target_id else None


def _rebuild_seen(imp, region: str | None) -> dict[str, int]:
    """The ``seen`` keys of the rows a previous run of this import recorded (a resumed
    import reports repeats of those rows as an uninterrupted one would)."""
    seen: dict[str, int] = {}
    for number, identifier, result, case_id, _ in iter_outcomes(imp.id):
        if result in (INVALID, ERROR, DUPLICATE_IN_FILE) or identifier is None:
            continue
        if case_id and result in (ADDED, WOULD_ADD, ALREADY_MEMBER, CLOSED):
            key = f"case:{case_id}"
        else:
            key = unresolved_key(identifier, phone_e164(identifier, region))
        seen.setdefault(key, number)
    return seen


def _group_deleted(batch) -> list[RowOutcome]:
    return [
        RowOutcome(
            number,
            identifier_text(record.get(IMPORT_HEADER)),
            ERROR,
            message="The case group was deleted during the import.",
        )
        for number, record in batch
    ]


def _plan_import_batch(imp, batch, state: dict) -> AddPlan | None:
    """The import's planning step (reads only): ``None`` when the group is gone."""
    group = db.session.get(CaseGroup, imp.target_id)
    if group is None:
        return None
    if "seen" not in state:
        state["seen"] = _rebuild_seen(imp, group_project(group).default_country) if imp.processed else {}
    return plan_adds(
        group,
        [(number, record.get(IMPORT_HEADER)) for number, record in batch],
        dry_run=imp.dry_run,
        user_id=imp.created_by,
        seen=state["seen"],
    )


def _split_import_plan(plan: AddPlan | None, index: int) -> AddPlan | None:
    return plan.only(index) if plan is not None else None


def _apply_import_plan(imp, batch, plan: AddPlan | None) -> list[RowOutcome]:
    """The import's writing step: the planned members inserted, a result per row."""
    group = db.session.get(CaseGroup, imp.target_id) if plan is not None else None
    if group is None:
        return _group_deleted(batch)
    return [
        RowOutcome(
            number,
            outcome.identifier,
            outcome.result,
            outcome.case.case_id if outcome.case else None,
            outcome.message,
        )
        for (number, _), outcome in zip(batch, apply_adds(group, plan), strict=True)
    ]


# The web UI sets ``target_link`` (the link back to the group's page): domains build no URLs.
HANDLER = ImportHandler(
    kind=IMPORT_KIND,
    label="Add cases to a case group",
    required_header=IMPORT_HEADER,
    plan_batch=_plan_import_batch,
    apply_plan=_apply_import_plan,
    split_plan=_split_import_plan,
    result_labels=RESULT_LABELS,
)
