"""A rule's definition: the body the API and the web form send, validated into its fields.

Rules:
- One body for create and edit; an edit merges the body over the rule's
  definition (missing fields keep their values; content given replaces content).
  A bad body is ``Invalid`` naming the field (``criteria.0.op``,
  ``start.time``, ...); nothing is saved.
- ``name`` and ``case_type`` are required; ``criteria`` a list (at most
  ``filters.MAX_CRITERIA``) of ``{property, op, value}`` with the ops of
  :mod:`messaging.alerts.rules`: ``in`` takes a list, ``exists``/``missing`` no
  value, the others one value (text or number).
- ``start``: ``{property, offset_days (-365..365), time "HH:MM"}`` or absent.
  ``repeat``: ``{every_days (1..365), times (1..100)}`` or absent, with
  ``until_completed: true`` (a survey only) to re-ask only the cases that have not
  completed the rule's survey (:mod:`messaging.alerts.sending`).
- ``recipient``: ``case``, ``owner`` or ``case_and_owner``.
- Content as for broadcasts (exactly one of ``text``, ``translations``,
  ``survey_id``); a survey of another project is refused like an unknown one.
  A survey goes to the case only (``recipient`` ``case``). Optional
  ``quiet_hours`` as for broadcasts. ``active`` defaults to true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from messaging.alerts import rules
from messaging.broadcasts.spec import MAX_NAME, parse_content, parse_quiet_hours
from messaging.cases import filters
from messaging.errors import Invalid, NotFound, field_error
from messaging.models import AlertRule

RECIPIENTS = ("case", "owner", "case_and_owner")
MAX_REPEAT_TIMES = 100


def parse_rule(body: Any, current: AlertRule | None = None) -> dict:
    """Validate an API/web body into the rule's fields; ``Invalid`` names the field at fault."""
    if not isinstance(body, Mapping):
        raise Invalid("invalid_json", "The request body must be a JSON object.")
    merged = {**(definition_of(current) if current is not None else {}), **body}
    fields: dict[str, Any] = {
        "name": _required_text(merged.get("name"), "name", MAX_NAME),
        "case_type": _required_text(merged.get("case_type"), "case_type", 100),
        "criteria": filters.parse_criteria(merged.get("criteria")),
        "start": parse_start(merged.get("start")),
        "repeat": parse_repeat(merged.get("repeat")),
        "recipient": _recipient(merged.get("recipient", "case")),
    }
    try:
        fields.update(parse_content(merged, body if current is not None else None))
    except NotFound as exc:  # a survey that is not this project's
        raise field_error("survey_id", exc.message) from None
    if (fields["repeat"] or {}).get("until_completed") and not fields["survey_id"]:
        raise field_error("repeat.until_completed", "only a survey can be completed: send a survey.")
    if fields["survey_id"] and fields["recipient"] != "case":
        raise field_error("recipient", "a survey goes to the case itself: use recipient 'case'.")
    fields.update(parse_quiet_hours(merged.get("quiet_hours")))
    active = merged.get("active", True)
    if not isinstance(active, bool):
        raise field_error("active", "must be true or false.")
    fields["active"] = active
    return fields


def definition_of(rule: AlertRule) -> dict:
    """The body that would define ``rule`` as it is (what an edit's body is merged over)."""
    body = {
        "name": rule.name,
        "case_type": rule.case_type,
        "criteria": list(rule.criteria or []),
        "start": rule.start,
        "repeat": rule.repeat,
        "recipient": rule.recipient,
        "text": rule.text,
        "translations": rule.translations or {},
        "default_language": rule.default_language,
        "survey_id": rule.survey_id,
        "active": rule.active,
    }
    if rule.quiet_start and rule.quiet_end:
        body["quiet_hours"] = {"start": rule.quiet_start, "end": rule.quiet_end}
    return body


def _required_text(value: Any, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise field_error(field, "is required.")
    if len(value.strip()) > max_length:
        raise field_error(field, f"must be at most {max_length} characters.")
    return value.strip()


def _int_in(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise field_error(field, f"must be a whole number from {low} to {high}.")
    if not low <= value <= high:
        raise field_error(field, f"must be from {low} to {high}.")
    return value


def parse_start(raw: Any) -> dict | None:
    if raw in (None, {}, ""):
        return None
    if not isinstance(raw, Mapping):
        raise field_error("start", "must be an object {property, offset_days, time}.")
    start = {
        "property": filters.parse_property(raw.get("property"), "start.property"),
        "offset_days": _int_in(
            raw.get("offset_days", 0), "start.offset_days", -rules.MAX_OFFSET_DAYS, rules.MAX_OFFSET_DAYS
        ),
    }
    try:
        start["time"] = rules.parse_time(raw.get("time")).strftime("%H:%M")
    except ValueError as exc:
        raise field_error("start.time", str(exc) + ".") from None
    return start


def parse_repeat(raw: Any) -> dict | None:
    if raw in (None, {}, ""):
        return None
    if not isinstance(raw, Mapping):
        raise field_error("repeat", "must be an object {every_days, times}.")
    repeat = {
        "every_days": _int_in(raw.get("every_days"), "repeat.every_days", 1, 365),
        "times": _int_in(raw.get("times"), "repeat.times", 1, MAX_REPEAT_TIMES),
    }
    until_completed = raw.get("until_completed", False)
    if not isinstance(until_completed, bool):
        raise field_error("repeat.until_completed", "must be true or false.")
    if until_completed:  # listed only when set: older rules keep their shape
        repeat["until_completed"] = True
    return repeat


def _recipient(value: Any) -> str:
    if value not in RECIPIENTS:
        raise field_error("recipient", f"must be one of {', '.join(RECIPIENTS)}.")
    return value
