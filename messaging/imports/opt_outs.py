"""Bringing a list of opted-out numbers from another system: the import handler of kind ``opt_out``.

Rules:
- The sheet has a ``phone_number`` column; each row is one number, in any
  spelling people or Excel use (``+254 712 345 678``, ``254712345678``, the
  project's national ``0712 345 678``), normalised to E.164 with the project's
  country.
- Each row gets one result: ``opted_out`` (new: the opt-out is recorded with a
  consent event of method ``import`` naming the import and the uploader),
  ``already_opted_out`` (nothing changes and no event is written; also a number
  repeated in the file, whose message names the first row), or ``invalid`` (not
  a phone number: nothing changes for that row, the others go on).
- A dry run gives ``would_opt_out`` in place of ``opted_out`` and changes nothing.
- A batch is written in a few statements; if another request opted one of its
  numbers out meanwhile, the framework does the batch again row by row.
"""

from __future__ import annotations

from messaging.case_groups.resolve import identifier_text
from messaging.errors import Invalid
from messaging.extensions import db
from messaging.imports.handlers import ImportHandler, RowOutcome
from messaging.imports.start import start_import
from messaging.lib.xlsx import make_example_workbook
from messaging.models import Import, Project
from messaging.models.sms import OptOutSource
from messaging.sms.optouts import opt_out_many, opted_out_among, parse_number

IMPORT_KIND = "opt_out"
IMPORT_HEADER = "phone_number"
EXAMPLE_FILENAME = "opt_outs_example.xlsx"
EXAMPLE_ROWS = [["+254712345678"], ["0712345679"]]

OPTED_OUT = "opted_out"
WOULD_OPT_OUT = "would_opt_out"
ALREADY_OPTED_OUT = "already_opted_out"
INVALID = "invalid"
RESULT_LABELS = {
    OPTED_OUT: "Opted out",
    WOULD_OPT_OUT: "Would be opted out",
    ALREADY_OPTED_OUT: "Already opted out",
    INVALID: "Not a phone number",
    "error": "Error",
}


def example_workbook() -> bytes:
    """``opt_outs_example.xlsx``: the ``phone_number`` column and two example rows."""
    return make_example_workbook([IMPORT_HEADER], EXAMPLE_ROWS)


def start_opt_out_import(data: bytes, filename: str, *, user_id: int | None, dry_run: bool = False) -> Import:
    """Check and store the upload and queue the job (commits); raises a ``DomainError`` on a refused file."""
    return start_import(IMPORT_KIND, data, filename, dry_run=dry_run, user_id=user_id)


def _process_batch(imp: Import, batch: list, state: dict) -> list[RowOutcome]:
    """One result per row (see the module docstring); ``state['seen']``: number -> first row."""
    region = db.session.get(Project, imp.project_id).default_country
    seen = dict(state.get("seen", {}))  # kept only once the batch is written (a failed one is redone)
    parsed = []
    for number, record in batch:
        raw = record.get(IMPORT_HEADER)
        text = identifier_text(raw)
        try:
            phone = parse_number(raw, region) if text else None
        except Invalid:
            phone = None
        parsed.append((number, text, phone))
    firsts = {}
    for number, _, phone in parsed:
        if phone is not None and phone not in seen:
            seen[phone] = number
            firsts[phone] = number
    already = opted_out_among(imp.project_id, firsts)
    to_opt_out = [p for p in firsts if p not in already]
    if not imp.dry_run:
        opt_out_many(
            imp.project_id, to_opt_out, OptOutSource.IMPORT, web_user_id=imp.created_by, import_id=imp.id
        )
    state["seen"] = seen
    new = set(to_opt_out)
    return [_outcome(number, text, phone, seen, firsts, new, imp.dry_run) for number, text, phone in parsed]


def _outcome(number, text, phone, seen, firsts, new, dry_run) -> RowOutcome:
    if phone is None:
        if not text:
            return RowOutcome(number, text, INVALID, message="No phone number in this row.")
        return RowOutcome(number, text, INVALID, message="Not a phone number: write it like +254712345678.")
    if firsts.get(phone) != number:
        return RowOutcome(number, text, ALREADY_OPTED_OUT, message=f"{phone} repeats row {seen[phone]}.")
    if phone in new:
        return RowOutcome(number, text, WOULD_OPT_OUT if dry_run else OPTED_OUT, message=phone)
    return RowOutcome(number, text, ALREADY_OPTED_OUT, message=f"{phone} had already opted out.")


# The web UI sets ``target_link`` (the link back to the opt-outs page): domains build no URLs.
HANDLER = ImportHandler(
    kind=IMPORT_KIND,
    label="Import opted-out numbers",
    required_header=IMPORT_HEADER,
    process_batch=_process_batch,
    result_labels=RESULT_LABELS,
)
