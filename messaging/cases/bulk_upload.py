"""Bulk case upload: an import handler of kind ``cases`` on ``messaging.imports.runner``.

Each row of the sheet creates a case or updates one, matched by ``case_id``
(must exist) or else by ``external_id`` (found: update; not found: create;
found twice: refused as ambiguous). Columns:

- ``case_id``, ``external_id``: how a row finds its case;
- ``case_type``: required to create; on an update it must match the case's type;
- ``name`` (or ``case_name``): the case's name;
- ``phone_number``: parsed with the project's country (``messaging.cases.updates.set_case_phone``);
  an invalid number is kept raw and flagged, and the row says so;
- ``owner_id``: a mobile worker or case-sharing group of the project, by id, by
  username or by group name (``messaging.cases.ownership.known_owner``); a new case without
  one has no owner (it shows in no worker's case list until a form sets one);
- ``language``; ``close`` (yes/true/1 closes the case; never reopens);
- any other column: a case property of that name. A blank cell changes nothing.

Results per row: ``created``, ``updated`` or ``error`` with the reason (dry run:
``would_create`` / ``would_update``). A bad row never stops the others.

Speed: a batch of rows (``messaging.imports.runner.BATCH_SIZE``) is matched with two queries
(by case id, by external id), new cases are inserted in one flush, and the
whole batch is recorded as one form (``source="import"``) with one history row
per case row, so the case data page shows the upload. The framework commits
once per batch.
"""

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace

from sqlalchemy import func, insert, select

from messaging.alerts.schedules import case_pks_changed
from messaging.cases.blocks import MAX_VALUE_LENGTH, PROPERTY_KEY
from messaging.cases.forms import IMPORT_XMLNS
from messaging.cases.indexing import stamp
from messaging.cases.ownership import known_owner
from messaging.cases.updates import apply_update, project_country
from messaging.db import dialect
from messaging.extensions import db
from messaging.forwarding.capture import capture_case, capture_form
from messaging.imports.handlers import ImportHandler, RowOutcome
from messaging.lib import clock
from messaging.lib.phones import normalize_phone
from messaging.lib.xlsx import SpreadsheetError, make_example_workbook
from messaging.models import Case, CaseTransaction, Form, Import, MobileWorker, UserGroup, new_id

log = logging.getLogger(__name__)

KNOWN_COLUMNS = [
    ("case_id", "the case to update (must exist)"),
    ("external_id", "your own id: updates the case with this external id, or creates it"),
    ("case_type", "required for a new case, e.g. mother"),
    ("name", "the case's name (case_name also works)"),
    ("phone_number", "any format; national numbers use the project's country"),
    ("owner_id", "a mobile worker or case-sharing group: id, username or group name"),
    ("language", "e.g. en, sw"),
    ("close", "yes to close the case"),
]
FIELD_COLUMNS = {"case_id", "external_id", "case_type", "name", "case_name", "phone_number", "owner_id"}
FIELD_COLUMNS |= {"language", "close"}
TRUE_WORDS = {"yes", "y", "true", "1", "x"}


def example_workbook() -> bytes:
    return make_example_workbook(
        ["case_id", "external_id", "case_type", "name", "phone_number", "owner_id", "village"],
        [
            ["", "MOTHER-001", "mother", "Monica", "0712 345 678", "", "Kisumu"],
            ["", "MOTHER-002", "mother", "Amina", "+254 722 000 111", "", "Siaya"],
        ],
    )


def cell_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def property_value(value):
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip()[:MAX_VALUE_LENGTH]
    return value


def property_key(header: str) -> str | None:
    """A column name as a property name: 'Due date (EDD)' -> 'due_date_edd'."""
    key = re.sub(r"[^a-z0-9_.-]+", "_", header.lower()).strip("_")
    if key and not key[0].isalpha():
        key = "p_" + key
    key = key[:100]
    return key if PROPERTY_KEY.match(key) else None


def check_headers(headers: list[str]) -> None:
    """Refuse the whole file when its header row cannot describe cases."""
    names = [h for h in headers if h]
    if not {"case_id", "external_id", "case_type"} & set(names):
        raise SpreadsheetError(
            "missing_header",
            "The first row must name the columns, with at least one of 'case_id', 'external_id' or "
            f"'case_type'. Found: {', '.join(names) or 'no column names'}.",
            {"found": names},
        )
    bad = [h for h in names if h not in FIELD_COLUMNS and property_key(h) is None]
    if bad:
        raise SpreadsheetError(
            "bad_header",
            f"These columns cannot be case properties: {', '.join(bad)}. Use letters, digits and _.",
            {"columns": bad},
        )


class Owners:
    """Resolve owner cells once per distinct value: id, username or group name."""

    def __init__(self):
        self.cache: dict[str, str | None] = {}

    def resolve(self, value: str) -> str | None:
        if value in self.cache:
            return self.cache[value]
        owner = known_owner(value)
        owner_id = owner.id if owner is not None else None
        if owner_id is None:
            owner_id = db.session.execute(
                select(MobileWorker.id).where(func.lower(MobileWorker.username) == value.lower())
            ).scalar()
        if owner_id is None:
            owner_id = db.session.execute(
                select(UserGroup.id).where(
                    func.lower(UserGroup.name) == value.lower(), UserGroup.case_sharing.is_(True)
                )
            ).scalar()
        self.cache[value] = owner_id
        return owner_id


class RowError(Exception):
    pass


@dataclass
class Batch:
    """One batch of rows being applied: the cases it found (by case id, by external id),
    the owner cells resolved so far, the project's country and the batch's time."""

    imp: Import
    by_id: dict[str, Case]
    by_ext: dict[str, list]
    owners: Owners
    region: str
    now: datetime


def process_batch(imp, rows, state=None):
    """Apply a batch of rows; one ``RowOutcome`` per row, in order. Does not commit.

    ``state`` (the import framework's per-run dict) is not needed: each case row stands alone."""
    if not imp.dry_run:
        dialect.begin_write()  # SQLite: take the write lock before reading (see begin_write)
    region = project_country(imp.project_id)
    batch = Batch(imp, {}, {}, Owners(), region, clock.now())
    _find_cases(batch, rows)

    outcomes = []
    touched: list[tuple[Case, int, dict]] = []
    for number, record in rows:
        identifier = (
            cell_text(record.get("case_id"))
            or cell_text(record.get("external_id"))
            or cell_text(record.get("name"))
        )
        try:
            case, result, message, block = apply_row(batch, record)
        except RowError as exc:
            outcomes.append(RowOutcome(number, identifier, "error", message=str(exc)))
            continue
        except Exception:
            # A bug must cost this row only, never the rows before it in the batch
            # (the framework's retry would roll the whole batch back).
            log.exception("case import row failed import_id=%s row=%s", imp.id, number)
            outcomes.append(
                RowOutcome(number, identifier, "error", message="This row could not be processed.")
            )
            continue
        if imp.dry_run:
            result = "would_" + ("create" if result == "created" else "update")
        else:
            touched.append((case, number, block))
        outcomes.append(RowOutcome(number, identifier, result, case_id=case.case_id, message=message))

    if touched and not imp.dry_run:
        write_batch(imp, rows, touched, batch.now)
    return outcomes


def _find_cases(batch: Batch, rows) -> None:
    """The batch's cases, locked: two queries (by case id, by external id)."""
    wanted_ids = {t for _, r in rows if (t := cell_text(r.get("case_id")))}
    wanted_ext = {
        t for _, r in rows if (t := cell_text(r.get("external_id"))) and not cell_text(r.get("case_id"))
    }
    if wanted_ids:
        stmt = (
            select(Case).where(Case.case_id.in_(wanted_ids), Case.deleted.is_(False)).order_by(Case.case_id)
        )
        for case in db.session.execute(stmt.with_for_update()).scalars():
            batch.by_id[case.case_id] = case
    if wanted_ext:
        stmt = select(Case).where(Case.external_id.in_(wanted_ext), Case.deleted.is_(False))
        # lock in case-id order (as forms do) so an upload and a form never deadlock
        stmt = dialect.lock_in_order(stmt, Case.case_id)
        for case in db.session.execute(stmt.with_for_update()).scalars():
            batch.by_ext.setdefault(case.external_id, []).append(case)
            batch.by_id.setdefault(case.case_id, case)


class NewCase(SimpleNamespace):
    """A case being created by this batch: a plain object (no ORM overhead per
    row) with the Case attributes ``apply_update`` sets; inserted in bulk."""

    COLUMNS = (
        "case_id case_type name external_id phone_raw phone_number phone_invalid language owner_id "
        "user_id closed closed_on deleted opened_on modified_on properties indexed_on indices"
    ).split()

    def row(self, project_id: int) -> dict:
        return {"project_id": project_id, **{c: getattr(self, c) for c in self.COLUMNS}}


def write_batch(imp, rows, touched, now) -> None:
    """Insert the batch's new cases in bulk, record the batch as one form with a
    history row per case row. Changed existing cases are flushed by the ORM."""
    changed = list({c.case_id: c for c, _, _ in touched}.values())
    new = [c for c in changed if isinstance(c, NewCase)]
    form = Form(
        app_id=None,
        user_id=None,
        received_on=now,
        answers={"import_id": imp.id, "filename": imp.filename, "rows": f"{rows[0][0]}-{rows[-1][0]}"},
        case_ids=list(dict.fromkeys(c.case_id for c, _, _ in touched)),
        source="import",
        xmlns=IMPORT_XMLNS,
        name="Bulk case upload",
    )
    # The batch's form, then each case, gets its indexed_on; the stamp's lock is held until the
    # framework commits the batch.
    stamp(imp.project_id, [form], changed)
    if new:
        result = db.session.execute(
            insert(Case).returning(Case.id, Case.case_id), [c.row(imp.project_id) for c in new]
        )
        pks = {case_id: pk for pk, case_id in result}
        for case in new:  # now as a Case reads: forwarding and the alerts take it as one
            case.id, case.project_id = pks[case.case_id], imp.project_id
    db.session.add(form)
    db.session.flush()
    history = [
        {
            "project_id": imp.project_id,
            "case_pk": case.id,
            "form_pk": form.id,
            "kind": ",".join(k for k in ("create", "update", "close") if k in block) or "update",
            "actions": {"case_id": case.case_id, "row": number, **block},
            "server_date": now,
        }
        for case, number, block in touched
    ]
    db.session.execute(insert(CaseTransaction), history)
    # Data forwarding, in the batch's transaction (dispatched after its commit).
    capture_form(form, [row["actions"] for row in history])
    for case in changed:
        capture_case(case)
    # Conditional alerts: the cases' schedules follow them, in the batch's transaction.
    case_pks_changed(imp.project_id, [c.id for c, _, _ in touched])


def apply_row(batch: Batch, record: dict):
    """One row: find or make its case and change it (only find it in a dry run).

    Returns ``(case, "created" | "updated", message, history block)``; raises
    ``RowError`` with the reason when the row cannot be applied."""
    case_id = cell_text(record.get("case_id"))
    external_id = cell_text(record.get("external_id"))
    case_type = cell_text(record.get("case_type"))
    name = cell_text(record.get("name")) or cell_text(record.get("case_name"))
    case = _row_case(batch, case_id, external_id)
    owner_id = _row_owner(batch, cell_text(record.get("owner_id")))
    if case is not None and case_type and case.case_type != case_type:
        raise RowError(f"This case is of type '{case.case_type}', not '{case_type}'.")
    if case is None and not case_type:
        raise RowError("case_type is required to create a case.")
    update = _row_update(record, case, name, external_id if case_id else None, owner_id)

    block: dict = {}
    result = "updated"
    if case is None:
        result = "created"
        case = new_case(batch, case_type, external_id, owner_id)
        block["create"] = {"case_type": case.case_type, "case_name": name or "", "owner_id": owner_id}
    if batch.imp.dry_run:  # report only: the case is not changed (nor added to the session)
        return case, result, _phone_message(update, batch.region), block
    apply_update(case, update, batch.region)
    if update:
        block["update"] = {k: (str(v) if k == "phone_number" else v) for k, v in update.items()}
    if (cell_text(record.get("close")) or "").lower() in TRUE_WORDS and not case.closed:
        case.closed = True
        case.closed_on = batch.now
        block["close"] = True
    case.modified_on = batch.now
    message = (
        "phone number is not valid; kept as entered"
        if case.phone_invalid and "phone_number" in update
        else ""
    )
    return case, result, message, block


def _row_case(batch: Batch, case_id: str | None, external_id: str | None):
    """The row's case: by case id (must exist), else by external id (None: create it)."""
    if case_id:
        case = batch.by_id.get(case_id)
        if case is None:
            raise RowError(f"No case has the case_id '{case_id}'. Leave case_id empty to create a case.")
        return case
    if external_id:
        found = batch.by_ext.get(external_id, [])
        if len(found) > 1:
            raise RowError(
                f"{len(found)} cases have the external_id '{external_id}'; use their case_id instead."
            )
        return found[0] if found else None
    return None


def _row_owner(batch: Batch, owner_cell: str | None) -> str | None:
    if not owner_cell:
        return None
    owner_id = batch.owners.resolve(owner_cell)
    if owner_id is None:
        raise RowError(
            f"owner_id '{owner_cell}' is not a mobile worker or case-sharing group of this project."
        )
    return owner_id


def _row_update(
    record: dict, case, name: str | None, new_external_id: str | None, owner_id: str | None
) -> dict:
    """The row's ``update`` dict (as a form's update block; blank cells change nothing)."""
    update: dict = {}
    if name:
        update["case_name"] = name[:255]
    if new_external_id:
        update["external_id"] = new_external_id[:255]
    language = cell_text(record.get("language"))
    if language:
        update["language"] = language[:16]
    if owner_id and (case is None or case.owner_id != owner_id):
        update["owner_id"] = owner_id
    phone = record.get("phone_number")
    if cell_text(phone):
        update["phone_number"] = phone if isinstance(phone, int) else cell_text(phone)
    for header, value in record.items():
        if header in FIELD_COLUMNS or value is None or value == "":
            continue
        update[property_key(header)] = property_value(value)
    return update


def new_case(batch: Batch, case_type: str, external_id: str | None, owner_id: str | None) -> NewCase:
    case = NewCase(
        indexed_on=None,
        indices=None,
        case_id=new_id(),
        case_type=case_type[:100],
        name="",
        external_id=external_id[:255] if external_id else None,
        phone_raw=None,
        phone_number=None,
        phone_invalid=False,
        language=None,
        owner_id=owner_id,
        user_id=None,
        closed=False,
        closed_on=None,
        deleted=False,
        opened_on=batch.now,
        modified_on=batch.now,
        properties={},
    )
    # a later row of this batch with the same external id updates this case
    if external_id:
        batch.by_ext[external_id] = [case]
    return case


def _phone_message(update, region) -> str:
    if "phone_number" not in update:
        return ""
    return (
        ""
        if normalize_phone(update["phone_number"], region)
        else "phone number is not valid; kept as entered"
    )


HANDLER = ImportHandler(
    kind="cases",
    label="Bulk case upload",
    required_header=None,
    process_batch=process_batch,
    check_headers=check_headers,
    result_labels={
        "created": "Created",
        "updated": "Updated",
        "error": "Error",
        "would_create": "Would create",
        "would_update": "Would update",
    },
)
