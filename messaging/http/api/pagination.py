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


def paginate(stmt, key_columns, serialize, descending: bool = True):
    """Run ``stmt`` one page at a time; returns the API's list body.

    ``key_columns`` must identify a row uniquely (end with the primary key).
    """
    limit = read_limit()
    cursor = request.args.get("cursor")
    if cursor:
        values = decode_cursor(cursor, key_kinds(key_columns))
        key = tuple_(*key_columns)
        stmt = stmt.where(key < tuple_(*values) if descending else key > tuple_(*values))
    order = [c.desc() if descending else c.asc() for c in key_columns]
    rows = db.session.execute(stmt.order_by(*order).limit(limit + 1)).scalars().all()
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_url = next_page_url([getattr(rows[-1], c.key) for c in key_columns])
    return {"results": [serialize(r) for r in rows], "next": next_url}
