"""Cursor (keyset) pagination: stable while rows are being inserted.

Rules:
- A cursor is the sort key of the last row seen, so new rows never shift a
  page the way an offset would.
- A cursor is signed (``itsdangerous`` with the app's ``SECRET_KEY``, salted
  with the endpoint that made it): one edited by hand, made up, or taken from
  another list is a 400 ``invalid_cursor``, never a query.
- A signed cursor's values are checked against the sort key's types too (a
  datetime where the key is a datetime, a whole number within BIGINT where it
  is an integer, a string where it is a string): a cursor from before the key
  changed is a 400 as well, never a database error.
- ``limit`` is a whole number in ASCII digits, at least 1; above
  ``MAX_LIMIT`` it is capped.
- A list answers ``{"results": [...], "next": <URL of the next page or null>}``.
"""

from datetime import datetime

from flask import current_app, request, url_for
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import tuple_

from messaging.extensions import db
from messaging.http.api.errors import ApiError
from messaging.http.lookup import MAX_ID
from messaging.lib import clock

MAX_LIMIT = 250
DEFAULT_LIMIT = 50
MAX_KEY_TEXT = 255

# The OpenAPI query parameters of a paginated list.
PAGE_PARAMS = [
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "maximum": MAX_LIMIT}},
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
]


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"cursor {request.endpoint}")


def encode_cursor(values) -> str:
    """The signed cursor of the sort key ``values``, for this request's endpoint."""
    plain = [{"dt": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    return _signer().dumps(plain)


def invalid_cursor() -> ApiError:
    return ApiError(400, "invalid_cursor", "The cursor is not valid.")


def _typed(value, kind):
    """``value`` as read back from a cursor, checked to be of ``kind``; raises ``invalid_cursor``."""
    if kind is datetime:
        if not (isinstance(value, dict) and isinstance(value.get("dt"), str) and len(value) == 1):
            raise invalid_cursor()
        try:
            return clock.parse_iso(value["dt"])
        except ValueError as exc:
            raise invalid_cursor() from exc
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_ID:
            raise invalid_cursor()
        return value
    if kind is str and isinstance(value, str) and len(value) <= MAX_KEY_TEXT:
        return value
    raise invalid_cursor()


def key_kinds(key_columns) -> list[type]:
    """The Python types of the sort key's columns (``datetime``, ``int`` or ``str``)."""
    return [column.type.python_type for column in key_columns]


def decode_cursor(cursor: str, kinds) -> list:
    """The sort key in ``?cursor=``, one value of each type in ``kinds`` (else 400 ``invalid_cursor``)."""
    try:
        plain = _signer().loads(cursor)
    except BadData as exc:
        raise invalid_cursor() from exc
    if not isinstance(plain, list) or len(plain) != len(kinds):
        raise invalid_cursor()
    return [_typed(value, kind) for value, kind in zip(plain, kinds, strict=True)]


def read_cursor(kinds) -> list | None:
    """The sort key in this request's ``?cursor=`` (see ``decode_cursor``); None on the first page."""
    cursor = request.args.get("cursor")
    return decode_cursor(cursor, kinds) if cursor else None


def read_limit() -> int:
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "invalid_limit", "limit must be a whole number.")
    digits = raw.lstrip("0") or "0"
    limit = int(digits) if len(digits) <= 4 else MAX_LIMIT  # a huge number asks for as many as allowed
    if limit < 1:
        raise ApiError(400, "invalid_limit", "limit must be at least 1.")
    return min(limit, MAX_LIMIT)


def next_page_url(key_values) -> str:
    """This request's URL asking for the page after the row whose sort key is ``key_values``."""
    args = dict(request.args)
    args["cursor"] = encode_cursor(list(key_values))
    return url_for(request.endpoint, **(request.view_args or {}), **args, _external=True)


def page_body(results: list, next_key=None) -> dict:
    """The API's list body: ``results``, and ``next`` asking for the rows after ``next_key`` (if any)."""
    return {"results": results, "next": next_page_url(next_key) if next_key is not None else None}


def paginate(stmt, key_columns, serialize, descending: bool = True):
    """Run ``stmt`` one page at a time; returns the API's list body.

    ``key_columns`` must identify a row uniquely (end with the primary key).
    """
    rows, next_key = _page_rows(stmt, key_columns, descending)
    return page_body([serialize(r) for r in rows], next_key)


def paginate_batched(stmt, key_columns, load_for_page, serialize, descending: bool = True):
    """``paginate`` for rows shown with data read for the whole page in one query (their
    counts, a form's case blocks): ``load_for_page(ids)`` answers ``{row id: data}`` for
    the page's rows; each row is shown as ``serialize(row, its data)``.
    """
    rows, next_key = _page_rows(stmt, key_columns, descending)
    loaded = load_for_page([row.id for row in rows])
    return page_body([serialize(row, loaded[row.id]) for row in rows], next_key)


def _page_rows(stmt, key_columns, descending: bool) -> tuple[list, list | None]:
    """This request's page of ``stmt``'s rows, and the sort key to continue after (None on the last page)."""
    limit = read_limit()
    values = read_cursor(key_kinds(key_columns))
    if values is not None:
        key = tuple_(*key_columns)
        stmt = stmt.where(key < tuple_(*values) if descending else key > tuple_(*values))
    order = [c.desc() if descending else c.asc() for c in key_columns]
    rows = db.session.execute(stmt.order_by(*order).limit(limit + 1)).scalars().all()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, [getattr(rows[-1], c.key) for c in key_columns]
