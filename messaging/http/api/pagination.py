"""Cursor (keyset) pagination: stable while rows are being inserted.

A cursor is the sort key of the last row seen, so new rows never shift a page
the way an offset would.
"""

import base64
import json
from datetime import datetime

from flask import request, url_for
from sqlalchemy import tuple_

from messaging.extensions import db
from messaging.http.api.errors import ApiError
from messaging.lib import clock

MAX_LIMIT = 250
DEFAULT_LIMIT = 50


def _encode(values) -> str:
    plain = [{"dt": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(plain, list):
            raise ValueError
        return [clock.parse_iso(v["dt"]) if isinstance(v, dict) else v for v in plain]
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_cursor", "The cursor is not valid.") from exc


def read_limit() -> int:
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_limit", "limit must be a whole number.") from exc
    if limit < 1:
        raise ApiError(400, "invalid_limit", "limit must be at least 1.")
    return min(limit, MAX_LIMIT)


def decode_cursor(cursor: str, size: int) -> list:
    """The sort key in ``?cursor=`` (400 ``invalid_cursor`` unless it has ``size`` values)."""
    values = _decode(cursor)
    if len(values) != size:
        raise ApiError(400, "invalid_cursor", "The cursor is not valid.")
    return values


def next_page_url(key_values) -> str:
    """This request's URL asking for the page after the row whose sort key is ``key_values``."""
    args = dict(request.args)
    args["cursor"] = _encode(list(key_values))
    return url_for(request.endpoint, **(request.view_args or {}), **args, _external=True)


def paginate(stmt, key_columns, serialize, descending: bool = True):
    """Run ``stmt`` one page at a time; returns the API's list body.

    ``key_columns`` must identify a row uniquely (end with the primary key).
    """
    limit = read_limit()
    cursor = request.args.get("cursor")
    if cursor:
        values = decode_cursor(cursor, len(key_columns))
        key = tuple_(*key_columns)
        stmt = stmt.where(key < tuple_(*values) if descending else key > tuple_(*values))
    order = [c.desc() if descending else c.asc() for c in key_columns]
    rows = db.session.execute(stmt.order_by(*order).limit(limit + 1)).scalars().all()
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_url = next_page_url([getattr(rows[-1], c.key) for c in key_columns])
    return {"results": [serialize(r) for r in rows], "next": next_url}
