"""``dialect.insert_each``: one contract on SQLite and PostgreSQL (unnest arrays there)."""

from datetime import datetime

from sqlalchemy import select

from messaging.db import dialect
from messaging.extensions import db
from messaging.models import Message

AWKWARD = ['a "quoted" body, with {braces}', "back\\slash", "NULL", "", "Ünïcödé ✓ 🎉", "line\nbreak"]


def _row(project_id, n, body, **overrides):
    row = {
        "project_id": project_id,
        "direction": "outbound",
        "phone": f"+2547120000{n:02d}",
        "to_number": f"+2547120000{n:02d}",
        "body": body,
        "segments": 1,
        "encoding": "GSM-7",
        "status": "queued",
        "case_id": None,
        "due_at": None,
        "bypass_opt_out": False,
        "auto_reply": False,
        "attempts": 0,
        "created_at": datetime(2026, 3, 2, 9, 0),
        "updated_at": datetime(2026, 3, 2, 9, 0),
    }
    row.update(overrides)
    return row


def test_rows_with_awkward_text_nulls_and_constant_columns_are_inserted_as_given(app, project):
    with project.scope():
        rows = [
            _row(project.id, n, body, due_at=datetime(2026, 3, 2, 9, n) if n % 2 else None)
            for n, body in enumerate(AWKWARD)
        ]
        returned = dialect.insert_each(Message.__table__, rows, returning=(Message.id, Message.body))
        db.session.commit()
        assert sorted(body for _, body in returned) == sorted(AWKWARD)
        stored = db.session.execute(
            select(Message.body, Message.phone, Message.due_at, Message.bypass_opt_out).order_by(Message.id)
        ).all()
    assert [s.body for s in stored] == AWKWARD
    assert [s.phone for s in stored] == [f"+2547120000{n:02d}" for n in range(len(AWKWARD))]
    assert [s.due_at for s in stored] == [datetime(2026, 3, 2, 9, n) if n % 2 else None for n in range(6)]
    assert {s.bypass_opt_out for s in stored} == {False}


def test_rows_that_are_all_alike_are_each_inserted(app, project):
    with project.scope():
        rows = [_row(project.id, 1, "same")] * 3
        returned = dialect.insert_each(Message.__table__, rows, returning=(Message.id,))
        db.session.commit()
        assert len({r.id for r in returned}) == 3
        assert dialect.insert_each(Message.__table__, [], returning=(Message.id,)) == []
