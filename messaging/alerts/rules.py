"""What a rule says about one case: does it match, and when are its messages due. Pure functions.

Rules:
- **Criteria** all must hold. A criterion names a case property, or one of the
  case's fields ``name``, ``owner_id``, ``external_id``, ``closed``; its ``op`` is
  ``eq``, ``ne``, ``in`` (value a list), ``exists``, ``missing``, ``gt`` or ``lt``.
  Values compare as numbers when both sides are numbers (``NUMBER``: 12, -3.5,
  1e3), as dates when both are dates (``DATE``: ``YYYY-MM-DD``, or with a time
  ``HH:MM[:SS]``, compared to the second, a zone ignored), else as text
  (``eq``/``ne``/``in`` ignore surrounding spaces; ``gt``/``lt`` between a
  number and a word never hold). The same rules run in SQL
  (:mod:`messaging.cases.filters`), so a rule's preview and a filter's count agree.
  ``ne`` holds for a missing property; ``exists`` needs a non-blank value.
- A closed case never matches (whatever the criteria say).
- **When** (``start``): the case's date property (``YYYY-MM-DD``, or an ISO
  datetime read in the project's zone), plus ``offset_days`` (-365..365), at
  ``time`` (``HH:MM``, default 09:00) in the project's zone; a wall time that a
  DST change skips or repeats is resolved as ``messaging.lib.localtime`` says.
  ``repeat`` adds ``times`` more occurrences every ``every_days`` days, at the
  same wall time. Without ``start``, the first occurrence is when the case
  starts matching and the repeats follow every ``every_days`` days from then.
- A missing or blank date is ``no_date``; a value that is not a date is
  ``bad_date`` (:class:`NoDate`, :class:`BadDate`): the case is skipped, others go on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from messaging.lib.localtime import local_to_utc, utc_to_local

OPS = ("eq", "ne", "in", "exists", "missing", "gt", "lt")
CASE_FIELDS = ("name", "owner_id", "external_id", "closed")
DEFAULT_TIME = time(9, 0)
MAX_OFFSET_DAYS = 365
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# What criteria read as a number and as a date: patterns both databases' regular expressions
# read the same way (messaging.cases.filters writes the criteria in SQL with them).
SPACE = " \t\r\n"
NUMBER = re.compile(r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]{1,2})?$")
DATE = re.compile(
    r"^(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"([T ](?P<hm>[0-9]{2}:[0-9]{2})(:(?P<s>[0-9]{2}))?([.,][0-9]+)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)


class NoDate(ValueError):
    """The case has no value for the rule's date property."""


class BadDate(ValueError):
    """The case's value for the rule's date property is not a date."""


def fields_of(case: Any) -> dict[str, Any]:
    """What criteria and starts read of a case (a ``Case``, or a row with the same names):
    ``name``, ``owner_id``, ``external_id``, ``closed`` (a deleted case counts as closed) and
    ``properties``."""
    return {
        "name": case.name,
        "owner_id": case.owner_id,
        "external_id": case.external_id,
        "closed": bool(case.closed or getattr(case, "deleted", False)),
        "properties": case.properties or {},
    }


def case_value(fields: Mapping[str, Any], prop: str) -> Any:
    """The value a criterion or a start reads: a case field, else a property (None when absent).

    ``fields`` holds ``name``, ``owner_id``, ``external_id``, ``closed`` and ``properties``.
    """
    if prop in CASE_FIELDS:
        return fields.get(prop)
    return (fields.get("properties") or {}).get(prop)


def matches(criteria: list[Mapping[str, Any]], fields: Mapping[str, Any]) -> bool:
    """Whether an open case with these ``fields`` meets every criterion (a closed case never does)."""
    if fields.get("closed"):
        return False
    return all(criterion_holds(c, case_value(fields, c["property"])) for c in criteria)


def criterion_holds(criterion: Mapping[str, Any], value: Any) -> bool:
    op, wanted = criterion["op"], criterion.get("value")
    present = value is not None and str(value).strip() != ""
    if op == "exists":
        return present
    if op == "missing":
        return not present
    if op == "eq":
        return present and _equal(value, wanted)
    if op == "ne":
        return not (present and _equal(value, wanted))
    if op == "in":
        return present and any(_equal(value, w) for w in (wanted or []))
    if op in ("gt", "lt"):
        if not present:
            return False
        order = _compare(value, wanted)
        if order is None:
            return False
        return order > 0 if op == "gt" else order < 0
    raise ValueError(f"unknown op {op!r}")


def _equal(value: Any, wanted: Any) -> bool:
    order = _compare(value, wanted)
    if order is not None:
        return order == 0
    return value_text(value) == value_text(wanted)


def value_text(value: Any) -> str:
    """A value as criteria read it: its text without surrounding ``SPACE`` (true/false for
    booleans, blank for none)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip(SPACE) if value is not None else ""


def as_number(value: Any) -> float | None:
    """The value as a number when its text is one (``NUMBER``), else None."""
    if isinstance(value, bool):
        return None
    text = value_text(value)
    return float(text) if NUMBER.match(text) else None


def date_key(value: Any) -> str | None:
    """The value as a sortable ``YYYY-MM-DDTHH:MM:SS`` when its text is a date (``DATE``): a
    date alone is at 00:00:00; fractions of a second and a zone are left out. Else None."""
    found = DATE.match(value_text(value))
    if found is None:
        return None
    return f"{found.group('day')}T{found.group('hm') or '00:00'}:{found.group('s') or '00'}"


def _compare(value: Any, wanted: Any) -> int | None:
    """-1, 0 or 1 comparing as numbers or as dates when both sides are; None otherwise (text
    for equality; no order)."""
    for convert in (as_number, date_key):
        a, b = convert(value), convert(wanted)
        if a is not None and b is not None:
            return (a > b) - (a < b)
    return None


def parse_time(raw: str | None) -> time:
    """``HH:MM`` (00:00 to 23:59) as a time; ``ValueError`` otherwise. None is the default time."""
    if raw is None:
        return DEFAULT_TIME
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(raw).strip())
    if not match:
        raise ValueError("must be a time such as 09:00")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ValueError("must be a time between 00:00 and 23:59")
    return time(hour, minute)


def anchor_of(raw: Any) -> str:
    """The anchor an occurrence counts from: the date value as the case holds it (trimmed)."""
    return value_text(raw)[:64]


def first_local_date(raw: Any, zone: ZoneInfo) -> date:
    """The local date a date property names; ``NoDate`` / ``BadDate`` when it names none."""
    text = value_text(raw)
    if not text:
        raise NoDate("no date")
    if _DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise BadDate(text) from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadDate(text) from None
    if parsed.tzinfo is not None:
        return utc_to_local(parsed, zone).date()
    return parsed.date()


def occurrence_times(
    start: Mapping[str, Any], repeat: Mapping[str, Any] | None, raw: Any, zone: ZoneInfo
) -> list[tuple[int, datetime]]:
    """``[(seq, due_at UTC)]`` of a rule with a start, for a case whose date property holds ``raw``."""
    day = first_local_date(raw, zone) + timedelta(days=int(start.get("offset_days") or 0))
    wall = parse_time(start.get("time"))
    days = [day]
    if repeat:
        every, times = int(repeat["every_days"]), int(repeat["times"])
        days += [day + timedelta(days=every * n) for n in range(1, times + 1)]
    return [(seq, local_to_utc(d, wall, zone)) for seq, d in enumerate(days)]


def triggered_times(entered_at: datetime, repeat: Mapping[str, Any] | None) -> list[tuple[int, datetime]]:
    """``[(seq, due_at)]`` of a rule without a start, for a case that started matching at ``entered_at``."""
    times = [(0, entered_at)]
    if repeat:
        every, count = int(repeat["every_days"]), int(repeat["times"])
        times += [(n, entered_at + timedelta(days=every * n)) for n in range(1, count + 1)]
    return times
