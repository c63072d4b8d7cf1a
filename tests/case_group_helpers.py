"""Helpers for the case group tests: cases made directly, workbooks made with openpyxl."""

import io

import openpyxl

from messaging.extensions import db
from messaging.lib.phones import parse_phone
from messaging.models import Case


def make_case(project, name="Amina", phone=None, external_id=None, closed=False, deleted=False, **kw):
    """Create a case in ``project`` and return its public case_id."""
    with project.scope():
        parsed = parse_phone(phone, "KE") if phone is not None else None
        case = Case(
            case_type=kw.pop("case_type", "person"),
            name=name,
            phone_raw=parsed.raw if parsed else None,
            phone_number=parsed.e164 if parsed else None,
            phone_invalid=bool(parsed and not parsed.valid),
            external_id=external_id,
            closed=closed,
            deleted=deleted,
            **kw,
        )
        db.session.add(case)
        db.session.commit()
        return case.case_id


def xlsx(rows, header=("case_identifier",)):
    """An .xlsx (openpyxl) with ``header`` then ``rows`` (a value or a list per row)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    if header is not None:
        sheet.append(list(header))
    for row in rows:
        sheet.append(list(row) if isinstance(row, (list, tuple)) else [row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def read_xlsx(data):
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [[c.value for c in row] for row in sheet.iter_rows()]
