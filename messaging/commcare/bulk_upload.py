"""CommCare's Bulk Case Upload API on the import framework: its fields, its row rules, its status.

Rules (../shared/COMMCARE.md d):
- Fields: ``file`` (.xlsx, or an old .xls as OpenFn's ``submitXls`` sends) and
  ``case_type`` are required; ``search_field`` is ``case_id`` (the default) or
  ``external_id``, anything else is refused; ``search_column`` defaults to the
  search field; ``create_new_cases`` creates unmatched rows only when it is
  literally ``on``; ``name_column`` defaults to ``name``; ``comment`` is ignored.
  A refused request changes nothing.
- Rows (in the job, batch by batch, as the project's own bulk upload): each row's
  search value is looked up **within the case type**; two matches are an error
  (``TooManyMatches``), a blank external id an error (``BlankExternalId``); an
  unmatched row creates a case only with ``create_new_cases`` (searching by
  external id, the new case gets it), else it is skipped. The name column names
  the case; ``external_id``, ``owner_id`` (a mobile worker or case-sharing group,
  by id, username or name) or ``owner_name``, and ``close`` (``yes`` closes) are
  special; ``---`` in a cell clears that property; every other column is a property
  of that (lower-cased) name. Parent columns are refused, row by row (this server
  keeps no parent links from uploads). No owner is given by default.
- Column headers are read lower-cased, as every upload here: ``Village`` is ``village``.
- Status, as HQ's soil task: ``state`` 0 queued, 1 running, 2 done, 3 failed;
  ``progress.percent``; ``result`` ``created_count``, ``match_count``,
  ``failed_count``, ``errors`` (``{title: {column: {error, description, rows}}}``)
  and ``num_chunks``.
"""

from __future__ import annotations

from sqlalchemy import select

from messaging.cases import bulk_upload as cases_upload
from messaging.cases.updates import apply_update, project_country
from messaging.db import dialect
from messaging.errors import Invalid
from messaging.extensions import db
from messaging.imports.handlers import ImportHandler, RowOutcome
from messaging.imports.start import start_import
from messaging.lib import clock
from messaging.models import Case, Import

KIND = "commcare_cases"
SEARCH_FIELDS = ("case_id", "external_id")
BLANK = "---"
PARENT_COLUMNS = (
    "parent_id",
    "parent_external_id",
    "parent_type",
    "parent_identifier",
    "parent_relationship_type",
)
SPECIAL = {"external_id", "owner_id", "owner_name", "close", "case_id", "date_opened", *PARENT_COLUMNS}
STATES = {"queued": 0, "running": 1, "done": 2, "failed": 3}


def start_upload(form, files, user_id: int) -> Import:
    """Check CommCare's fields and queue the upload; ``Invalid`` (nothing kept) when refused."""
    upload = files.get("file")
    case_type = (form.get("case_type") or "").strip()
    if upload is None or not upload.filename or not case_type:
        raise Invalid("invalid_request", "Invalid POST request. Both 'file' and 'case_type' are required")
    search_field = (form.get("search_field") or "case_id").strip()
    if search_field not in SEARCH_FIELDS:
        raise Invalid("invalid_request", f"Illegal value for search_field: {search_field}")
    if not upload.filename.lower().endswith((".xlsx", ".xls")):
        raise Invalid(
            "invalid_request", "Please upload file with one of the following extensions: .xlsx, .xls"
        )
    options = {
        "case_type": case_type[:100],
        "search_field": search_field,
        "search_column": (form.get("search_column") or search_field).strip().lower(),
        "create_new_cases": form.get("create_new_cases") == "on",
        "name_column": (form.get("name_column") or "name").strip().lower(),
    }
    return start_import(KIND, upload.read(), upload.filename, options=options, user_id=user_id)


def _lookup(case_type: str, search_field: str, values: set[str]) -> dict[str, list]:
    """The cases of ``case_type`` whose search field is one of ``values``, locked, by value."""
    if not values:
        return {}
    column = Case.case_id if search_field == "case_id" else Case.external_id
    stmt = select(Case).where(column.in_(values), Case.case_type == case_type, Case.deleted.is_(False))
    found: dict[str, list] = {}
    for case in db.session.execute(dialect.lock_in_order(stmt, Case.case_id).with_for_update()).scalars():
        found.setdefault(getattr(case, search_field), []).append(case)
    return found


def process_batch(imp: Import, rows, state=None):
    """Apply a batch of rows with CommCare's rules; one ``RowOutcome`` per row. Does not commit."""
    opts = imp.options
    if not imp.dry_run:
        dialect.begin_write()
    batch = cases_upload.Batch(
        imp, {}, {}, cases_upload.Owners(), project_country(imp.project_id), clock.now()
    )
    values = {number: cases_upload.cell_text(record.get(opts["search_column"])) for number, record in rows}
    found = _lookup(opts["case_type"], opts["search_field"], {v for v in values.values() if v})
    outcomes, touched = [], []
    for number, record in rows:
        value = values[number]
        try:
            case, result, block = _apply_row(batch, opts, record, value, found)
        except cases_upload.RowError as exc:
            outcomes.append(RowOutcome(number, value, "error", message=str(exc)))
            continue
        if case is None:
            outcomes.append(RowOutcome(number, value, "skipped", message="no case matches"))
            continue
        if not imp.dry_run:
            touched.append((case, number, block))
        outcomes.append(RowOutcome(number, value, result, case_id=case.case_id))
    if touched:
        cases_upload.write_batch(imp, rows, touched, batch.now)
    return outcomes


def _apply_row(batch, opts: dict, record: dict, value: str | None, found: dict):
    if opts["search_field"] == "external_id" and not value:
        raise cases_upload.RowError("BlankExternalId: the external_id column is empty.")
    matches = found.get(value, []) if value else []
    if len(matches) > 1:
        raise cases_upload.RowError(f"TooManyMatches: {len(matches)} cases match {value!r}.")
    if any(cases_upload.cell_text(record.get(column)) for column in PARENT_COLUMNS):
        raise cases_upload.RowError("Parent columns are not supported by this server.")
    case = matches[0] if matches else None
    if case is None and not opts["create_new_cases"]:
        return None, "skipped", {}
    update = _row_update(batch, opts, record)
    block: dict = {}
    result = "matched"
    if case is None:
        external_id = value if opts["search_field"] == "external_id" else update.pop("external_id", None)
        case = cases_upload.new_case(batch, opts["case_type"], external_id, update.pop("owner_id", None))
        found[value or case.case_id] = [case]
        block["create"] = {
            "case_type": case.case_type,
            "case_name": update.get("case_name", ""),
            "owner_id": case.owner_id,
        }
        result = "created"
    if batch.imp.dry_run:
        return case, result, block
    apply_update(case, update, batch.region)
    if update:
        block["update"] = update
    if (cases_upload.cell_text(record.get("close")) or "").lower() == "yes" and not case.closed:
        case.closed, case.closed_on = True, batch.now
        block["close"] = True
    case.modified_on = batch.now
    return case, result, block


def _row_update(batch, opts: dict, record: dict) -> dict:
    update: dict = {}
    name = cases_upload.cell_text(record.get(opts["name_column"]))
    if name and name != BLANK:
        update["case_name"] = name[:255]
    external_id = cases_upload.cell_text(record.get("external_id"))
    if external_id and external_id != BLANK:
        update["external_id"] = external_id[:255]
    owner_cell = cases_upload.cell_text(record.get("owner_id")) or cases_upload.cell_text(
        record.get("owner_name")
    )
    if owner_cell:
        owner_id = batch.owners.resolve(owner_cell)
        if owner_id is None:
            raise cases_upload.RowError(f"Owner {owner_cell!r} is not a mobile worker or case-sharing group.")
        update["owner_id"] = owner_id
    for header, raw in record.items():
        if not header or header in SPECIAL or header in (opts["search_column"], opts["name_column"]):
            continue
        key = cases_upload.property_key(header)
        if key is None or raw is None or raw == "":
            continue
        update[key] = None if cases_upload.cell_text(raw) == BLANK else cases_upload.property_value(raw)
    return update


def status_json(imp: Import) -> dict:
    """The upload's status as CommCare's soil task shows it."""
    counts = imp.counts or {}
    errors: dict = {}
    if imp.status == "failed":
        errors[imp.error_code or "error"] = {
            "file": {"error": imp.error_code, "description": imp.error_message, "rows": []}
        }
    elif counts.get("error"):
        errors["Row errors"] = {
            "rows": {"error": "error", "description": "See the import's report for each row.", "rows": []}
        }
    total = imp.total or 0
    done = imp.status in ("done", "failed")
    return {
        "state": STATES.get(imp.status, 0),
        "progress": {"percent": 100 if done else (round(100 * imp.processed / total) if total else 0)},
        "result": {
            "created_count": counts.get("created", 0),
            "match_count": counts.get("matched", 0),
            "failed_count": counts.get("error", 0),
            "skipped_count": counts.get("skipped", 0),
            "errors": errors,
            "num_chunks": max(1, -(-total // 2000)) if total else 0,
        }
        if done
        else None,
    }


HANDLER = ImportHandler(
    kind=KIND,
    label="Bulk case upload (CommCare API)",
    required_header=None,
    process_batch=process_batch,
    result_labels={"created": "Created", "matched": "Updated", "skipped": "Skipped", "error": "Error"},
    accepts_xls=True,
)
