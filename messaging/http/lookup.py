"""Loading the row a URL names: one row of the current project, or a 404.

Another project's id finds nothing (``messaging.db.tenancy`` scopes the query), so
it is a 404 like an id that does not exist.
"""

from flask import abort
from sqlalchemy import select

from messaging.extensions import db


def get_or_404(model, ident, column=None):
    """Load one row of the current project by its id (or ``column``), else 404."""
    column = column if column is not None else model.__mapper__.primary_key[0]
    row = db.session.execute(select(model).where(column == ident)).scalar_one_or_none()
    if row is None:
        abort(404)
    return row
