"""Extensions, created once and bound to the app in ``create_app``."""

import json

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, String, any_, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY

# Named constraints so that Alembic migrations work the same on SQLite and PostgreSQL.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def insert_ignoring_conflicts(table, *conflict_columns):
    """``INSERT ... ON CONFLICT (conflict_columns) DO NOTHING`` for the session's database
    (PostgreSQL or SQLite, whose dialects both spell it ``on_conflict_do_nothing``)."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))


def in_values(column, values, item_type=None):
    """``column IN (values)`` bound as one parameter: ``= ANY(CAST(:text AS type[]))`` on
    PostgreSQL, ``IN (SELECT value FROM json_each(...))`` on SQLite.

    For the set-based look-ups of thousands of values at a time: SQLAlchemy's
    expanding ``IN`` renders one bind parameter per value on every execution,
    and a Python list becomes ``ARRAY['a', 'b', ...]`` in psycopg2's SQL: either
    way PostgreSQL parses and coerces every value as a literal of its own
    (about 1 µs a value, some 15% of an indexed look-up). One array literal
    is parsed once.
    """
    values = list(values)
    if db.session.get_bind().dialect.name == "postgresql":
        array_type = ARRAY(item_type or String)
        return column == any_(cast(bindparam(None, pg_array_literal(values), String), array_type))
    return column.in_(
        select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(values))))
    )


def pg_array_literal(values) -> str:
    """PostgreSQL's text form of a one-dimensional array (``{"a","b\\"c"}``), for
    ``CAST(:param AS text[])``; numbers as they are, strings quoted and escaped, ``None`` as NULL."""
    return "{" + ",".join(_array_item(v) for v in values) + "}"


def _array_item(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
