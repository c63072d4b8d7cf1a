"""Cases to .xlsx for a round trip: the columns the bulk case upload takes back.

Rules:
- One row per case, in primary key order: ``case_id``, ``external_id``,
  ``case_type``, ``name``, ``phone_number`` (E.164, or the number as entered when
  it is not valid), ``owner_id``, ``language``, ``close`` (``yes`` for a closed
  case: uploading it again keeps it closed, and an upload never reopens), then one
  column per case property, by name, the properties of every exported case.
- Uploading the file again through the bulk upload (``messaging.cases.bulk_upload``)
  changes no case: every value comes back as it went out (a property name the
  upload would spell another way, with capitals or spaces, is the one exception:
  the upload writes lower-case names).
- The cases are read ``BATCH`` at a time, twice (their property names, then their
  rows), and the sheet is written as they stream (``PlainReportWriter``): the
  database reads hold one batch; the compressed file is what the caller holds.
- Values are written as the case holds them: text stays text, numbers numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from sqlalchemy import select

from messaging.extensions import db
from messaging.lib.xlsx.plain_report import PlainReportWriter
from messaging.models import Case

FIXED_COLUMNS = [
    "case_id",
    "external_id",
    "case_type",
    "name",
    "phone_number",
    "owner_id",
    "language",
    "close",
]
BATCH = 2000


def export_cases(condition, out: IO[bytes], *, sheet_title: str = "Cases") -> int:
    """Write the cases meeting ``condition`` (a WHERE clause on ``Case``) to ``out``; returns
    how many were written."""
    keys = sorted(
        {
            key
            for batch in _batches(condition, (Case.properties,))
            for (props,) in batch
            for key in props or {}
        }
    )
    written = 0
    with PlainReportWriter(out, [*FIXED_COLUMNS, *keys], sheet_title=sheet_title) as sheet:
        for batch in _batches(condition, _ROW_COLUMNS):
            sheet.write_rows(_row(row, keys) for row in batch)
            written += len(batch)
    return written


_ROW_COLUMNS = (
    Case.case_id,
    Case.external_id,
    Case.case_type,
    Case.name,
    Case.phone_number,
    Case.phone_raw,
    Case.owner_id,
    Case.language,
    Case.closed,
    Case.properties,
)


def _row(row, keys: list[str]) -> list:
    case_id, external_id, case_type, name, phone, raw, owner_id, language, closed, props = row
    props = props or {}
    fixed = [
        case_id,
        external_id,
        case_type,
        name,
        phone or raw or None,
        owner_id,
        language,
        "yes" if closed else None,
    ]
    return [*fixed, *(props.get(key) for key in keys)]


def _batches(condition, columns) -> Iterator[list]:
    """The columns of the cases meeting ``condition``, ``BATCH`` rows at a time (plain rows, no objects)."""
    last = 0
    while True:
        rows = db.session.execute(
            select(Case.id, *columns).where(condition, Case.id > last).order_by(Case.id).limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        yield [tuple(row[1:]) for row in rows]
