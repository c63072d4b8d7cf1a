"""Loading the row a URL names: one row of the current project, or a 404.

Rules:
- Another project's id finds nothing (``messaging.db.tenancy`` scopes the
  query), so it is a 404 like an id that does not exist.
- An integer id is read strictly (``parse_id``): ASCII digits only, at most
  what a BIGINT holds. ``"³"``, ``"٣"``, ``"-1"`` or 23 nines are a 404 without
  a query: ``int()`` would read other scripts' digits or fail, and a number
  past BIGINT is a database error, not a missing row.
"""

from flask import abort
from sqlalchemy import Integer, select

from messaging.extensions import db

# The largest id a BIGINT holds, and its number of digits.
MAX_ID = 2**63 - 1
MAX_ID_DIGITS = len(str(MAX_ID))


def parse_id(raw) -> int | None:
    """The integer id in ``raw`` (a string of ASCII digits or an int) when a BIGINT holds it, else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_ID_DIGITS:
            return None
        raw = int(raw)
    if isinstance(raw, int) and 0 <= raw <= MAX_ID:
        return raw
    return None


def get_or_404(model, ident, column=None):
    """Load one row of the current project by its id (or ``column``), else 404."""
    column = column if column is not None else model.__mapper__.primary_key[0]
    if isinstance(column.type, Integer):
        ident = parse_id(ident)
        if ident is None:
            abort(404)
    row = db.session.execute(select(model).where(column == ident)).scalar_one_or_none()
    if row is None:
        abort(404)
    return row
