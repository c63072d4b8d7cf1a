"""Test data, made through the domain functions (or the API) so that it obeys the same rules
as data made by the app: cases, contacts, case groups, surveys, keywords, messages, workbooks.

Tests use these and public names only; fixtures live in ``tests/conftest.py``.
"""

import io
from datetime import datetime

import openpyxl
from sqlalchemy import select

from messaging.cases.updates import set_case_phone
from messaging.extensions import db
from messaging.models import Case, Message

# The fake Twilio pool and the moment the SMS tests start at.
POOL = ["+15005550006", "+15005550007", "+15005550008"]
T0 = datetime(2026, 3, 2, 9, 0, 0)

SURVEY = {
    "name": "Health check",
    "questions": [
        {
            "id": "age",
            "type": "integer",
            "text": "How old are you?",
            "min": 0,
            "max": 120,
            "case_property": "age",
        },
        {
            "id": "fever",
            "type": "select",
            "text": "Any fever?",
            "choices": ["Yes", "No"],
            "case_property": "fever",
        },
        {
            "id": "symptoms",
            "type": "multiselect",
            "text": "Symptoms?",
            "choices": ["cough", "rash", "pain"],
            "case_property": "symptoms",
        },
        {
            "id": "temp",
            "type": "decimal",
            "text": "Temperature?",
            "min": 34,
            "max": 43,
            "required": False,
            "case_property": "temperature",
        },
        {"id": "seen", "type": "date", "text": "Date seen?", "case_property": "seen_on"},
        {"id": "note", "type": "text", "text": "Anything else?"},
    ],
    "expire_after_minutes": 120,
    "reminder_minutes": 30,
    "max_invalid_attempts": 2,
}


def make_case(project, name="Amina", phone=None, external_id=None, closed=False, deleted=False, **fields):
    """A case in ``project``, its phone number read as the app reads one (``set_case_phone``, with the
    project's country); returns its public case_id."""
    with project.scope():
        case = Case(
            case_type=fields.pop("case_type", "person"),
            name=name,
            external_id=external_id,
            closed=closed,
            deleted=deleted,
            **fields,
        )
        if phone is not None:
            set_case_phone(case, phone, "KE")
        db.session.add(case)
        db.session.commit()
        return case.case_id


def make_cases(project, rows):
    """Many cases in one commit (``rows``: dicts of ``Case`` fields); returns their primary keys."""
    with project.scope():
        cases = [Case(**{"case_type": "person", "name": "", **row}) for row in rows]
        db.session.add_all(cases)
        db.session.commit()
        return [case.id for case in cases]


def make_contact(project, phone, name="Asha", case_type="person", **props):
    """A case that texts from ``phone`` (already E.164), with ``props`` as its properties;
    returns ``(pk, case_id)``."""
    with project.scope():
        case = Case(case_type=case_type, name=name, phone_raw=phone, phone_number=phone, properties=props)
        db.session.add(case)
        db.session.commit()
        return case.id, case.case_id


def make_group(project, name, case_ids):
    """A case group of ``case_ids`` made through the API; returns its id."""
    api = project.api()
    response = api.post("/api/v1/case-groups", json={"name": name})
    assert response.status_code == 201, response.get_json()
    group_id = response.get_json()["id"]
    for case_id in case_ids:
        r = api.post(f"/api/v1/case-groups/{group_id}/cases", json={"identifier": case_id})
        assert r.status_code in (200, 201), r.get_json()
    return group_id


def make_survey(project, **overrides):
    body = {**SURVEY, **overrides}
    response = project.api().post("/api/v1/surveys", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def make_keyword(project, **body):
    response = project.api().post("/api/v1/keywords", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def send(project, phone="+254712000001", body="Hello", **kw) -> int:
    """One outbound SMS through ``send_sms``, committed; returns its message id."""
    from messaging.sms.outbox import send_sms

    with project.scope():
        message_id = send_sms(project.id, phone, body, **kw)
        db.session.commit()
        return message_id


def rows(project, **filters):
    """All message rows of the project (fresh from the database), oldest first, as dicts."""
    with project.scope():
        stmt = select(Message).order_by(Message.id)
        for name, value in filters.items():
            stmt = stmt.where(getattr(Message, name) == value)
        return [
            {c.key: getattr(m, c.key) for c in m.__table__.columns}
            for m in db.session.execute(stmt).scalars()
        ]


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
