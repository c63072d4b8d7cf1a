"""Every difference between SQLite and PostgreSQL, behind functions named by what they mean.

Rules:
- Domain code never asks which database it runs on: it calls these
  functions, and runs the same code path on both. Where PostgreSQL has a
  faster way (arrays bound as one parameter, ``UPDATE ... FROM unnest``),
  it sits behind one function with one contract, and the tests run that
  contract on both databases.
- SQLite is the embedded default (one file, WAL, one writer at a time);
  PostgreSQL is production (row locks, many writers).
- Connection set-up: SQLite gets WAL, a 30 s busy timeout, foreign keys on
  (so cascades behave as on PostgreSQL), ``synchronous=NORMAL`` and an ``md5``
  function as PostgreSQL's;
  PostgreSQL gets ``pool_pre_ping`` and psycopg2's batched executemany.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    any_,
    bindparam,
    case,
    cast,
    event,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine

from messaging.extensions import db

# --- connections ---------------------------------------------------------------------


def engine_options(uri: str, options: Mapping[str, Any]) -> dict:
    """The engine options for a database URL (the configured ones win)."""
    options = dict(options)
    if uri.startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": 30})
    else:
        options.setdefault("pool_pre_ping", True)
        if uri.startswith("postgresql+psycopg2"):
            # Batched UPDATE/DELETE executemany (psycopg2's execute_batch) instead of one
            # round trip per row: bulk imports update thousands of rows per commit.
            options.setdefault("executemany_mode", "values_plus_batch")
    return options


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # PostgreSQL's md5(text) -> 32 hex characters, for ``derived_ids``.
        dbapi_connection.create_function("md5", 1, _md5_hex, deterministic=True)


def _md5_hex(value) -> str | None:
    return None if value is None else hashlib.md5(str(value).encode()).hexdigest()


def install_connection_setup() -> None:
    """Set up each new SQLite connection (idempotent); called by ``create_app``."""
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)


def _is_postgresql(connection=None) -> bool:
    bind = connection if connection is not None else db.session.get_bind()
    return bind.dialect.name == "postgresql"


def is_postgresql_engine(engine) -> bool:
    """For tooling outside a session (tests' schema reset, benches)."""
    return engine.dialect.name == "postgresql"


# --- transactions --------------------------------------------------------------------


def begin_write() -> None:
    """Start the transaction as a writer.

    On SQLite, ``BEGIN IMMEDIATE`` takes the write lock up front (waiting up to
    the busy timeout), so a transaction that reads then writes never fails with
    "database is locked" because another writer committed in between. On
    PostgreSQL nothing is needed: rows are locked with ``FOR UPDATE``.
    """
    connection = db.session.connection()
    if _is_postgresql(connection):
        return
    raw = connection.connection.driver_connection
    if not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def commit_without_waiting_for_disk() -> None:
    """Let this transaction's commit return before its WAL is flushed.

    PostgreSQL: ``SET LOCAL synchronous_commit = off`` (about 10 ms saved per
    commit). A crash of the database server may lose the last few such
    commits, but whole, so work that is recorded with its results is simply
    done again. SQLite already runs with ``synchronous=NORMAL``.
    """
    connection = db.session.connection()
    if _is_postgresql(connection):
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


def prefer_index_lookups() -> None:
    """Plan this transaction's queries for a table in cache (indexed look-ups of a few
    hundred rows). PostgreSQL's default cost model (``random_page_cost`` 4, for
    spinning disks) planned a sequential scan instead, twice as slow at 20,000
    cases; ``SET LOCAL`` lasts for this transaction only. SQLite's planner
    already prefers the index."""
    connection = db.session.connection()
    if _is_postgresql(connection):
        connection.exec_driver_sql("SET LOCAL random_page_cost = 1.1")


def lock_in_order(stmt, column):
    """``stmt`` (a ``SELECT ... FOR UPDATE``) locking its rows in ``column`` order, so two
    writers locking overlapping rows never deadlock. SQLite locks the whole
    database for a writer, so the order does not matter there, and an ORDER
    BY would make its planner scan by that column instead of the filter's index."""
    return stmt.order_by(column) if _is_postgresql() else stmt


def allows_concurrent_writers() -> bool:
    """Whether a second connection can write while this one works (PostgreSQL's row
    locks), so a job can hand its writes to a writer thread. SQLite has one
    writer at a time: there, the job writes itself."""
    return _is_postgresql()


# --- statements ----------------------------------------------------------------------


def insert_ignoring_conflicts(table, *conflict_columns):
    """``INSERT ... ON CONFLICT (conflict_columns) DO NOTHING``."""
    if _is_postgresql():
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))


def in_values(column, values: Iterable, item_type=None):
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
    if _is_postgresql():
        array_type = ARRAY(item_type or String)
        return column == any_(cast(bindparam(None, array_literal(values), String), array_type))
    return column.in_(
        select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(values))))
    )


def values_table(values: Sequence, item_type):
    """A one-column selectable (``value``) of ``values``, bound as one parameter: for
    ``INSERT ... SELECT`` over thousands of values without a multi-row VALUES to
    build and parse (``unnest`` of an array on PostgreSQL, ``json_each`` on SQLite)."""
    values = list(values)
    if _is_postgresql():
        array = cast(bindparam(None, array_literal(values), String), ARRAY(item_type))
        return select(func.unnest(array).label("value")).subquery("v")
    return (
        select(literal_column("value").label("value"))
        .select_from(func.json_each(bindparam(None, json.dumps(values))))
        .subquery("v")
    )


def update_each(
    table,
    rows: Sequence[Mapping[str, Any]],
    *,
    match: tuple[Any, str],
    types: Mapping[str, Any],
    values: Callable[[Any], dict],
    where: Sequence = (),
) -> None:
    """For each row (a dict of ``types``' fields), ``UPDATE table SET values(row) WHERE
    column = row[field] AND where``, with ``match=(column, field)``.

    ``values`` gets the row's fields as SQL expressions (``v["sid"]``) and
    returns ``{column name: expression}``. PostgreSQL: one ``UPDATE ... FROM
    unnest(arrays)`` for all rows, instead of an UPDATE per row that the
    server parses and plans again (a tenth of its CPU per sent message);
    SQLite: one executemany.
    """
    if not rows:
        return
    names = list(types)
    column, field = match
    if _is_postgresql():
        arrays = [
            cast(bindparam(f"each_{name}", array_literal(r[name] for r in rows), String), ARRAY(types[name]))
            for name in names
        ]
        v = func.unnest(*arrays).table_valued(*names).render_derived(name="v")
        stmt = update(table).where(column == v.c[field], *where).values(values(v.c))
        db.session.execute(stmt)
        return
    v = {name: bindparam(f"each_{name}") for name in names}
    stmt = update(table).where(column == v[field], *where).values(values(v))
    db.session.execute(stmt, [{f"each_{name}": r[name] for name in names} for r in rows])


def insert_each(table, rows: Sequence[Mapping[str, Any]], returning: Sequence) -> list:
    """INSERT every row (dicts with the same keys, named after ``table``'s columns) in one
    statement; returns the ``returning`` columns of each inserted row, in no promised order.

    PostgreSQL: ``INSERT ... SELECT * FROM unnest(arrays)``, one array parameter per column:
    the server parses one array per column instead of a multi-row VALUES of every value
    (20,000 messages: 0.6 s against 1.5 s through SQLAlchemy's batched VALUES). SQLite: one
    INSERT ... RETURNING with the rows as parameters.
    """
    if not rows:
        return []
    names = list(rows[0])
    if _is_postgresql():
        # A column with one value for every row (the project, the status, the NULLs) is one
        # parameter, not an array.
        constant = {name for name in names if all(r[name] == rows[0][name] for r in rows)}
        varying = [name for name in names if name not in constant]
        arrays = [
            cast(
                bindparam(f"each_{name}", array_literal(r[name] for r in rows), String),
                ARRAY(table.c[name].type),
            )
            for name in varying
        ]
        if not arrays:  # all rows alike: unnest one array to get their number of rows
            arrays = [cast(bindparam("each_n", array_literal(range(len(rows))), String), ARRAY(Integer))]
            varying = ["n"]
        v = func.unnest(*arrays).table_valued(*varying).render_derived(name="v")
        columns = [
            cast(bindparam(f"one_{name}", rows[0][name], type_=table.c[name].type), table.c[name].type)
            if name in constant
            else v.c[name]
            for name in names
        ]
        stmt = insert(table).from_select(names, select(*columns).select_from(v)).returning(*returning)
        return db.session.execute(stmt).all()
    return db.session.execute(insert(table).returning(*returning), [dict(r) for r in rows]).all()


def derived_ids(nonce: str, key):
    """An SQL expression giving each row a public identifier (32 hex characters, like
    ``models.base.new_id``) derived from a random ``nonce`` and the row's unique ``key``:
    two ``INSERT ... SELECT`` statements over the same rows (sessions, then the messages
    that point at them) compute the same ids without joining each other. ``md5`` on
    both databases (registered on each SQLite connection)."""
    return func.md5(literal(nonce, String) + cast(key, String))


def constant(value, column):
    """``value`` as one parameter of ``column``'s type in a SELECT list (an ``INSERT ... SELECT``
    of a JSON or timestamp constant): PostgreSQL needs the type said, SQLite stores the text."""
    param = literal(value, type_=column.type)
    return cast(param, column.type) if _is_postgresql() else param


def day_of(column):
    """The UTC date of a timestamp column, to group by (``date()`` on both databases; read the
    result with :func:`as_date`: SQLite answers text)."""
    return func.date(column)


def as_date(value) -> date:
    """A ``day_of`` result as a ``date``."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def json_text(column, key: str):
    """The text of ``column``'s JSON property ``key`` (NULL when absent or null): strings as
    they are, numbers as written, booleans as ``true``/``false`` on both databases (SQLite's
    ``json_extract`` alone gives 1 and 0)."""
    if _is_postgresql():
        return column.op("->>", return_type=String)(literal(key, String))
    path = literal('$."' + key.replace('"', '""') + '"', String)
    kind = func.json_type(column, path)
    return case(
        (kind == "true", literal("true")),
        (kind == "false", literal("false")),
        else_=cast(func.json_extract(column, path), String),
    )


def trimmed(expr, characters: str):
    """``expr`` without ``characters`` at either end (``btrim`` on PostgreSQL, ``trim`` on SQLite)."""
    return func.btrim(expr, characters) if _is_postgresql() else func.trim(expr, characters)


def array_literal(values: Iterable) -> str:
    """PostgreSQL's text form of a one-dimensional array (``{"a","b\\"c"}``), for
    ``CAST(:param AS text[])``; numbers as they are, strings quoted and escaped, ``None`` as NULL."""
    return "{" + ",".join(_array_item(v) for v in values) + "}"


def _array_item(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dict | list):  # a JSON column's value
        value = json.dumps(value, separators=(",", ":"))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text_value = str(value)
    if "\\" in text_value or '"' in text_value:
        text_value = text_value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text_value}"'


# --- large values --------------------------------------------------------------------

# psycopg2 holds about eight copies of a bytea parameter while it quotes it (a
# 2.5 MB report peaked at +20 MB): files go to PostgreSQL in pieces of this size.
# Each appended piece rewrites the stored value, so not much smaller.
BLOB_PIECE = 1024 * 1024


def write_blob(connection, table, where, column: str, data: bytes | memoryview, row: dict) -> None:
    """Insert ``row`` with ``data`` in ``column``: whole on SQLite, in pieces appended
    one by one on PostgreSQL (memory stays flat whatever the size)."""
    view = memoryview(data)
    piece = BLOB_PIECE if _is_postgresql(connection) else max(len(view), 1)
    connection.execute(table.insert(), {**row, column: view[:piece].tobytes()})
    for start in range(piece, len(view), piece):
        chunk = view[start : start + piece].tobytes()
        connection.execute(update(table).where(where).values({column: table.c[column].concat(chunk)}))


def read_blob(connection, table, where, column: str, out) -> bool:
    """Write the stored value to ``out`` (in pieces on PostgreSQL); False when there is none."""
    if not _is_postgresql(connection):
        data = connection.execute(select(table.c[column]).where(where)).scalar()
        if data is None:
            return False
        out.write(data)
        return True
    size = connection.execute(select(func.octet_length(table.c[column])).where(where)).scalar()
    if size is None:
        return False
    for start in range(0, size, BLOB_PIECE):
        piece = select(func.substring(table.c[column], start + 1, BLOB_PIECE)).where(where)
        out.write(connection.execute(piece).scalar())
    return True


# --- schema (tests and tooling) --------------------------------------------------------


def drop_everything(engine, metadata) -> None:
    """Drop every table and the migration stamp (tests build the schema by migrating)."""
    if is_postgresql_engine(engine):
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        return
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def empty_tables(engine, table_names: Sequence[str]) -> None:
    """Delete every row of these tables, restarting their id sequences on PostgreSQL."""
    with engine.begin() as conn:
        if is_postgresql_engine(engine):
            quoted = ", ".join(f'"{n}"' for n in table_names)
            conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for name in table_names:
                conn.execute(text(f'DELETE FROM "{name}"'))
