"""Cases chosen by what is true of them: a case type and criteria, written in SQL.

Rules:
- A filter is ``{case_type, criteria}``: the open cases of that type (any type
  when blank) meeting every criterion. The criteria are the alert rules' (a case
  property or ``name``, ``owner_id``, ``external_id``, ``closed``; ``eq``,
  ``ne``, ``in``, ``exists``, ``missing``, ``gt``, ``lt``), with the same meaning
  as :func:`messaging.alerts.rules.matches`, which is the reference: numbers
  and dates compare as such (``rules.NUMBER``, ``rules.DATE``, matched by each
  database's regular expressions), everything else as text without surrounding
  spaces. A closed or deleted case never matches.
- The comparison with a criterion's value is decided when the SQL is written
  (the value is known): a number compares as a number with cases whose value is
  a number and as text with the others; a date likewise; a word as text.
- A property no case has is allowed: it matches nothing (``ne`` and ``missing``
  match every open case of the type).
- ``parse_criteria``: the criteria of a body (an alert rule's, a broadcast's
  filter), at most ``MAX_CRITERIA``; a malformed one is ``Invalid`` naming the
  field (``criteria.0.op``); ``in`` takes 1 to 100 values, ``exists``/``missing``
  none, the others one text or number.
- Each property is read as few times as the meaning allows (an equality with a
  value that is not blank implies the property is there): on PostgreSQL every
  read parses the case's JSON.
- One WHERE clause on ``cases`` (``condition``): a broadcast's recipients, a
  count, the case list use it as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Float, and_, case, cast, false, func, literal, not_, or_, select

from messaging.alerts import rules
from messaging.db import dialect
from messaging.errors import field_error
from messaging.extensions import db
from messaging.models import Case

MAX_CRITERIA = 20
PROPERTY_MAX = 100
_FIELDS = {"name": Case.name, "owner_id": Case.owner_id, "external_id": Case.external_id}
# PostgreSQL's regular expressions have no named groups: the same pattern without the names.
_DATE_PATTERN = re.sub(r"\?P<\w+>", "", rules.DATE.pattern)


def parse_property(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise field_error(field, "must name a case property.")
    if len(value.strip()) > PROPERTY_MAX:
        raise field_error(field, f"must be at most {PROPERTY_MAX} characters.")
    return value.strip()


def _scalar(value: Any, field: str) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise field_error(field, "must be a text or a number.")
    if isinstance(value, str) and len(value) > 500:
        raise field_error(field, "must be at most 500 characters.")
    return value


def parse_criteria(raw: Any, field: str = "criteria") -> list[dict]:
    """``[{property, op, value}]`` checked; errors name ``<field>.<n>.<part>``."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise field_error(field, "must be a list of {property, op, value}.")
    if len(raw) > MAX_CRITERIA:
        raise field_error(field, f"must list at most {MAX_CRITERIA} criteria.")
    clean = []
    for n, item in enumerate(raw):
        where = f"{field}.{n}"
        if not isinstance(item, Mapping):
            raise field_error(where, "must be an object {property, op, value}.")
        prop = parse_property(item.get("property"), f"{where}.property")
        op = item.get("op")
        if op not in rules.OPS:
            raise field_error(f"{where}.op", f"{op!r} is not one of {', '.join(rules.OPS)}.")
        criterion: dict[str, Any] = {"property": prop, "op": op}
        if op == "in":
            values = item.get("value")
            if not isinstance(values, list) or not values or len(values) > 100:
                raise field_error(f"{where}.value", "must be a list of 1 to 100 values.")
            criterion["value"] = [_scalar(v, f"{where}.value") for v in values]
        elif op not in ("exists", "missing"):
            if "value" not in item or item.get("value") is None:
                raise field_error(f"{where}.value", "is required for this op.")
            criterion["value"] = _scalar(item["value"], f"{where}.value")
        clean.append(criterion)
    return clean


def parse_filter(raw: Any, field: str = "filter") -> dict:
    """``{case_type, criteria}`` checked (a broadcast's recipients, a dynamic case group): the
    case type is required, the criteria as ``parse_criteria``; errors name ``<field>...``."""
    if not isinstance(raw, Mapping):
        raise field_error(field, "must be an object {case_type, criteria}.")
    unknown = [k for k in raw if k not in ("case_type", "criteria")]
    if unknown:
        raise field_error(field, f"unknown key {unknown[0]!r}; use case_type and criteria.")
    case_type = raw.get("case_type")
    if not isinstance(case_type, str) or not case_type.strip() or len(case_type) > 100:
        raise field_error(f"{field}.case_type", "a case type (at most 100 characters) is required.")
    return {
        "case_type": case_type.strip(),
        "criteria": parse_criteria(raw.get("criteria"), f"{field}.criteria"),
    }


def describe(case_type: str, criteria: list[Mapping[str, Any]]) -> str:
    """The filter in words, as the broadcast's page shows it: ``mother cases: risk eq high``."""
    parts = []
    for c in criteria:
        value = c.get("value")
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else value
        parts.append(" ".join(str(p) for p in (c["property"], c["op"], shown) if p is not None))
    return f"{case_type} cases" + (": " + "; ".join(parts) if parts else "")


def condition(case_type: str | None, criteria: list[Mapping[str, Any]]):
    """The WHERE clause on ``Case`` of the open cases of ``case_type`` meeting ``criteria``."""
    clauses = [Case.closed.is_(False), Case.deleted.is_(False)]
    if case_type:
        clauses.append(Case.case_type == case_type)
    clauses.extend(criterion_clause(c) for c in criteria)
    return and_(*clauses)


def condition_of(case_filter: Mapping[str, Any]):
    """``condition`` of a stored filter (``{case_type, criteria}``: a broadcast's, a dynamic group's)."""
    return condition(case_filter["case_type"], case_filter.get("criteria") or [])


def count_each(case_filters: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many cases each of several stored filters chooses, in one pass over the cases."""
    if not case_filters:
        return {}
    keys = list(case_filters)
    counted = db.session.execute(
        select(*(func.count().filter(condition_of(case_filters[k])) for k in keys)).select_from(Case)
    ).one()
    return dict(zip(keys, counted, strict=True))


def count(case_type: str | None, criteria: list[Mapping[str, Any]]) -> int:
    """How many cases of the current project the filter chooses."""
    return db.session.execute(
        select(func.count()).select_from(Case).where(condition(case_type, criteria))
    ).scalar_one()


def criterion_clause(criterion: Mapping[str, Any]):
    """One criterion as SQL, meaning what ``rules.criterion_holds`` means."""
    text = _value_text(criterion["property"])
    present = and_(text.is_not(None), text != "")
    op, wanted = criterion["op"], criterion.get("value")
    if op == "exists":
        return present
    if op == "missing":
        return not_(present)
    if op in ("eq", "ne"):
        equal = _equal(text, wanted) if _never_blank(wanted) else and_(present, _equal(text, wanted))
        return equal if op == "eq" else not_(func.coalesce(equal, False))
    if op == "in":
        wanted = wanted or []
        equal = or_(*(_equal(text, w) for w in wanted))
        return equal if all(_never_blank(w) for w in wanted) else and_(present, equal)
    if op in ("gt", "lt"):
        ordered = _ordered(text, wanted)
        if ordered is None:
            return false()
        value, bound = ordered  # a number or a date: never blank, so present
        return value > bound if op == "gt" else value < bound
    raise ValueError(f"unknown op {op!r}")


def _never_blank(wanted) -> bool:
    """Whether equality with ``wanted`` already implies a present value (the database then
    reads the property once for it, not three times)."""
    return rules.value_text(wanted) != ""


def _value_text(prop: str):
    """The criterion's side of the case: a field, or a property's text, without ``rules.SPACE``."""
    if prop == "closed":
        return case((or_(Case.closed, Case.deleted), literal("true")), else_=literal("false"))
    raw = _FIELDS[prop] if prop in _FIELDS else dialect.json_text(Case.properties, prop)
    return dialect.trimmed(raw, rules.SPACE)


def _is_number(text):
    return text.regexp_match(rules.NUMBER.pattern)


def _is_date(text):
    return text.regexp_match(_DATE_PATTERN)


def _number(text):
    return cast(text, Float)


def _date_key(text):
    """``rules.date_key`` in SQL, for a text that matches ``rules.DATE``."""
    has_time = and_(func.length(text) >= 16, func.substr(text, 11, 1).in_(("T", " ")))
    has_seconds = and_(has_time, func.length(text) >= 19, func.substr(text, 17, 1) == ":")
    return (
        func.substr(text, 1, 10)
        + "T"
        + case((has_time, func.substr(text, 12, 5)), else_=literal("00:00"))
        + ":"
        + case((has_seconds, func.substr(text, 18, 2)), else_=literal("00"))
    )


def _equal(text, wanted):
    """``rules._equal`` with ``wanted`` known: as numbers, as dates, else as text."""
    number, key = rules.as_number(wanted), rules.date_key(wanted)
    as_text = text == rules.value_text(wanted)
    if number is not None:
        return case((_is_number(text), _number(text) == number), else_=as_text)
    if key is not None:
        return case((_is_date(text), _date_key(text) == key), else_=as_text)
    return as_text


def _ordered(text, wanted):
    """The (case side, bound) of ``gt``/``lt``: only numbers with numbers, dates with dates."""
    number, key = rules.as_number(wanted), rules.date_key(wanted)
    if number is not None:
        return case((_is_number(text), _number(text)), else_=None), number
    if key is not None:
        return case((_is_date(text), _date_key(text)), else_=None), key
    return None
