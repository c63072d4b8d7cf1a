"""CommCare's lists: filters, ``order_by`` and offset pages in tastypie's envelope.

Rules (../shared/COMMCARE.md a.3, b):
- The envelope is ``{"meta": {limit, offset, next, previous, total_count}, "objects"}``.
  ``limit`` defaults to 20, is capped (not refused) at 1000, 5000 for cases;
  ``offset`` defaults to 0; a limit or offset that is not a whole number is refused.
- ``next`` is the same URL with ``offset + limit`` (every other parameter kept,
  repeated ones too), and null exactly when no row follows (one row more is read
  to know); ``previous`` likewise backwards. ``total_count`` is exact.
- ``order_by`` names one of the resource's fields, ``-`` for descending; rows that
  tie are ordered by their key, so pages never overlap nor skip.
- Filters as HQ's: a repeated parameter is any of its values; ``_start``/``_end``
  ranges are inclusive and read HQ's date forms (a bad date is refused, naming
  it). Parameters a resource does not know are ignored, as ``format`` is.
- Every query is the project's (tenancy); cases deleted here are not shown.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlalchemy import func, select

from messaging.commcare import serialize
from messaging.errors import Invalid
from messaging.extensions import db
from messaging.lib.commcare_time import parse_hq_datetime
from messaging.models import Case, CaseTransaction, Form, GroupMembership, Message, MobileWorker, UserGroup

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Resource:
    """One list: its rows, filters, orderings and JSON."""

    model: type
    key: object  # the id column: the detail lookup and the tie-break
    orderings: dict[str, object]
    default_order: str
    filters: dict[str, Callable] = field(default_factory=dict)
    ranges: dict[str, object] = field(default_factory=dict)
    max_limit: int = MAX_LIMIT
    base: Callable = lambda stmt: stmt  # noqa: E731 - a default that filters nothing


def _values(args, name: str) -> list[str]:
    return [v for v in args.getlist(name) if v != ""]


def _bool(raw: str, name: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise Invalid("invalid_filter", f"'{name}' must be true or false, not {raw!r}.")


def _any_of(column):
    return lambda values: column.in_(values)


def _closed(values):
    return Case.closed.is_(_bool(values[-1], "closed"))


def _touched_case(values):
    touched = (
        select(CaseTransaction.form_pk)
        .join(Case, Case.id == CaseTransaction.case_pk)
        .where(Case.case_id.in_(values))
    )
    return Form.id.in_(touched)


def _in_group(values):
    groups = set(db.session.execute(select(UserGroup.id).where(UserGroup.id.in_(values))).scalars())
    unknown = sorted(set(values) - groups)
    if unknown:
        raise Invalid("invalid_filter", f"There is no group {unknown[0]!r} in this project.")
    return MobileWorker.id.in_(select(GroupMembership.user_id).where(GroupMembership.group_id.in_(values)))


def _archived(values):
    return MobileWorker.is_active.is_(not _bool(values[-1], "archived"))


def _event_case(values):
    return Message.case_id.in_(select(Case.id).where(Case.case_id.in_(values)))


def _bound(column, compare, param: str):
    return lambda values: compare(column, _date(values[-1], param))


def _date_bounds(**columns) -> dict[str, Callable]:
    """``<name>.gt``, ``.gte``, ``.lt`` and ``.lte`` filters on each named time column."""
    compares = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
    return {
        f"{name}.{op}": _bound(column, compare, f"{name}.{op}")
        for name, column in columns.items()
        for op, compare in compares.items()
    }


RESOURCES: dict[str, Resource] = {
    "case": Resource(
        Case,
        Case.case_id,
        {
            "indexed_on": Case.indexed_on,
            "date_modified": Case.modified_on,
            "server_date_modified": Case.modified_on,
        },
        "server_date_modified",
        filters={
            "type": _any_of(Case.case_type),
            "case_type": _any_of(Case.case_type),
            "owner_id": _any_of(Case.owner_id),
            "user_id": _any_of(Case.user_id),
            "external_id": _any_of(Case.external_id),
            "name": _any_of(Case.name),
            "case_name": _any_of(Case.name),
            "closed": _closed,
        },
        ranges={
            "indexed_on": Case.indexed_on,
            "date_modified": Case.modified_on,
            "server_date_modified": Case.modified_on,
        },
        max_limit=5000,
        base=lambda stmt: stmt.where(Case.deleted.is_(False)),
    ),
    "form": Resource(
        Form,
        Form.form_id,
        {
            "indexed_on": Form.indexed_on,
            "server_modified_on": Form.received_on,
            "received_on": Form.received_on,
        },
        "-received_on",
        filters={
            "xmlns": _any_of(Form.xmlns),
            "xmlns.exact": _any_of(Form.xmlns),
            "app_id": _any_of(Form.app_id),
            "case_id": _touched_case,
        },
        ranges={
            "indexed_on": Form.indexed_on,
            "received_on": Form.received_on,
            "server_modified_on": Form.received_on,
            "server_date_modified": Form.received_on,
        },
    ),
    "user": Resource(
        MobileWorker,
        MobileWorker.id,
        {"username": MobileWorker.username},
        "username",
        filters={"group": _in_group, "archived": _archived},
    ),
    "group": Resource(UserGroup, UserGroup.id, {"name": UserGroup.name}, "name"),
    "messaging-event": Resource(
        Message,
        Message.id,
        {"date_last_activity": Message.updated_at, "date": Message.created_at},
        "date_last_activity",
        filters={
            "phone_number": _any_of(Message.phone),
            "case_id": _event_case,
            # spelled CommCare's way: date_last_activity.gte / .lt, date.gt ...
            **_date_bounds(date_last_activity=Message.updated_at, date=Message.created_at),
        },
    ),
}
EMPTY_RESOURCES = ("location", "location_type", "application", "web-user")


def _whole(args, name: str, default: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit():
        raise Invalid("invalid_paging", f"'{name}' must be a whole number, not {raw!r}.")
    return int(raw)


def _date(raw: str, name: str):
    try:
        return parse_hq_datetime(raw)
    except ValueError:
        raise Invalid(
            "invalid_filter", f"'{name}' is not a date such as 2024-05-01T08:00:00: {raw!r}."
        ) from None


def _conditions(resource: Resource, args) -> list:
    conditions = []
    for param, build in resource.filters.items():
        if values := _values(args, param):
            conditions.append(build(values))
    for param, column in resource.ranges.items():
        if raw := args.get(f"{param}_start"):
            conditions.append(column >= _date(raw, f"{param}_start"))
        if raw := args.get(f"{param}_end"):
            conditions.append(column <= _date(raw, f"{param}_end"))
    return conditions


def _ordering(resource: Resource, args) -> list:
    raw = args.get("order_by") or resource.default_order
    descending = raw.startswith("-")
    name = raw.lstrip("-")
    if name not in resource.orderings:
        raise Invalid(
            "invalid_order",
            f"'order_by' must be one of {', '.join(sorted(resource.orderings))} (with '-' for descending), "
            f"not {raw!r}.",
        )
    columns = [resource.orderings[name], resource.key]
    return [c.desc() if descending else c.asc() for c in columns]


def _url(path: str, args, offset: int, limit: int) -> str:
    params = [(k, v) for k in args for v in args.getlist(k) if k not in ("offset", "limit")]
    params += [("limit", str(limit)), ("offset", str(offset))]
    return f"{path}?{urlencode(params)}"


def list_page(name: str, slug: str, args, path: str) -> dict:
    """One page of a resource as CommCare's envelope; ``Invalid`` for a bad parameter."""
    if name in EMPTY_RESOURCES:
        limit = min(_whole(args, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        meta = {"limit": limit, "offset": 0, "next": None, "previous": None, "total_count": 0}
        return {"meta": meta, "objects": []}
    resource = RESOURCES[name]
    limit = min(_whole(args, "limit", DEFAULT_LIMIT), resource.max_limit) or DEFAULT_LIMIT
    offset = _whole(args, "offset", 0)
    stmt = resource.base(select(resource.model)).where(*_conditions(resource, args))
    total = db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = list(
        db.session.execute(
            stmt.order_by(*_ordering(resource, args)).offset(offset).limit(limit + 1)
        ).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    meta = {
        "limit": limit,
        "offset": offset,
        "next": _url(path, args, offset + limit, limit) if more else None,
        "previous": _url(path, args, max(0, offset - limit), limit) if offset > 0 else None,
        "total_count": total,
    }
    return {"meta": meta, "objects": objects_json(name, rows, slug)}


def detail(name: str, slug: str, object_id: str) -> dict | None:
    """One object by its id, or None."""
    if name in EMPTY_RESOURCES or name not in RESOURCES:
        return None
    resource = RESOURCES[name]
    key = int(object_id) if name == "messaging-event" and object_id.isdigit() else object_id
    if name == "messaging-event" and not isinstance(key, int):
        return None
    row = db.session.execute(
        resource.base(select(resource.model)).where(resource.key == key)
    ).scalar_one_or_none()
    return objects_json(name, [row], slug)[0] if row is not None else None


def objects_json(name: str, rows: list, slug: str) -> list[dict]:
    """The rows of one resource as CommCare's JSON, reading what they link to in a few queries."""
    if name == "case":
        forms = _case_forms([c.id for c in rows])
        return [serialize.case_json(c, slug, forms.get(c.id, [])) for c in rows]
    if name == "form":
        from messaging.cases.queries import blocks_of_forms

        blocks = blocks_of_forms([f.id for f in rows])
        return [serialize.form_json(f, slug, blocks.get(f.id, [])) for f in rows]
    if name == "user":
        groups, sharing = _memberships([w.id for w in rows])
        return [serialize.user_json(w, slug, groups.get(w.id, []), sharing.get(w.id, [])) for w in rows]
    if name == "group":
        members = _members([g.id for g in rows])
        return [serialize.group_json(g, slug, members.get(g.id, [])) for g in rows]
    case_ids = _case_ids_of([m.case_id for m in rows if m.case_id])
    return [serialize.event_json(m, slug, case_ids.get(m.case_id)) for m in rows]


def _case_forms(case_pks: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    if case_pks:
        for case_pk, form_id in db.session.execute(
            select(CaseTransaction.case_pk, Form.form_id)
            .join(Form, Form.id == CaseTransaction.form_pk)
            .where(CaseTransaction.case_pk.in_(case_pks))
            .order_by(CaseTransaction.id)
        ):
            if form_id not in found[case_pk]:
                found[case_pk].append(form_id)
    return found


def _memberships(user_ids: list[str]) -> tuple[dict, dict]:
    groups: dict[str, list[str]] = defaultdict(list)
    sharing: dict[str, list[str]] = defaultdict(list)
    if user_ids:
        for user_id, group_id, shares in db.session.execute(
            select(GroupMembership.user_id, UserGroup.id, UserGroup.case_sharing)
            .join(UserGroup, UserGroup.id == GroupMembership.group_id)
            .where(GroupMembership.user_id.in_(user_ids))
            .order_by(UserGroup.name)
        ):
            groups[user_id].append(group_id)
            if shares:
                sharing[user_id].append(group_id)
    return groups, sharing


def _members(group_ids: list[str]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = defaultdict(list)
    if group_ids:
        for group_id, user_id in db.session.execute(
            select(GroupMembership.group_id, GroupMembership.user_id)
            .where(GroupMembership.group_id.in_(group_ids))
            .order_by(GroupMembership.user_id)
        ):
            members[group_id].append(user_id)
    return members


def _case_ids_of(case_pks: list[int]) -> dict[int, str]:
    if not case_pks:
        return {}
    return dict(db.session.execute(select(Case.id, Case.case_id).where(Case.id.in_(case_pks))).all())
