"""Conditions on survey answers: ``{"op", "value"}`` tested against one saved answer.

Rules:
- Operators: ``eq`` / ``ne`` (equal or not; texts and choices compared without
  regard to case), ``in`` / ``not_in`` (the answer is one of a list), ``gt``,
  ``gte``, ``lt``, ``lte`` (numbers, or ISO dates for a date question),
  ``contains`` (a multiselect answer includes the choice; a text answer
  contains the text, without regard to case).
- A skipped answer (``None``) satisfies only ``ne`` and ``not_in``.
- A condition is checked against its question when the survey is saved:
  a choice must be one of the question's choices, a comparison needs a number
  (integer and decimal questions) or a ``YYYY-MM-DD`` date (date questions),
  ``contains`` is for multiselect and text questions, ``in`` takes a non-empty
  list. A problem is a ``ValueError`` naming it.
- Pure functions: no database, no Flask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains")
_ORDERED = ("gt", "gte", "lt", "lte")
_LISTS = ("in", "not_in")


@dataclass(frozen=True)
class Condition:
    op: str
    value: Any

    @classmethod
    def from_dict(cls, data: Any, question_type: str, choices: list[str] | None) -> Condition:
        """A condition read from its JSON and checked against the question's type and choices."""
        if isinstance(data, Condition):
            data = data.to_dict()
        if not isinstance(data, Mapping) or set(data) - {"op", "value"} or "op" not in data:
            raise ValueError('a condition is {"op": ..., "value": ...}')
        op, value = data["op"], data.get("value")
        if op not in OPS:
            raise ValueError(f"unknown operator {op!r} (use one of {', '.join(OPS)})")
        values = value if op in _LISTS else [value]
        if op in _LISTS and (not isinstance(value, list) or not value):
            raise ValueError(f"{op} takes a non-empty list of values")
        for item in values:
            _check_value(op, item, question_type, choices)
        if choices is not None:
            value = [_canonical(v, choices) for v in value] if op in _LISTS else _canonical(value, choices)
        return cls(op, value)

    def to_dict(self) -> dict:
        return {"op": self.op, "value": self.value}


def _check_value(op: str, value: Any, question_type: str, choices: list[str] | None) -> None:
    if op in _ORDERED:
        if question_type in ("integer", "decimal"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{op} needs a number")
        elif question_type == "date":
            _as_date(value)
        else:
            raise ValueError(f"{op} compares numbers or dates, not {question_type} answers")
        return
    if op == "contains" and question_type not in ("multiselect", "text"):
        raise ValueError("contains is for multiselect and text questions")
    if choices is not None and _canonical(value, choices) is None:
        raise ValueError(f"{value!r} is not one of the question's choices")
    if isinstance(value, bool) or (choices is None and not isinstance(value, str | int | float)):
        raise ValueError("a value is a text or a number")


def _canonical(value: Any, choices: list[str]) -> str | None:
    """The choice ``value`` names (case aside), or None."""
    if not isinstance(value, str):
        return None
    wanted = value.strip().casefold()
    return next((c for c in choices if c.strip().casefold() == wanted), None)


def _as_date(value: Any) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError("a date question compares YYYY-MM-DD dates") from None


def _same(answer: Any, value: Any) -> bool:
    if isinstance(answer, str) and isinstance(value, str):
        return answer.strip().casefold() == value.strip().casefold()
    return answer == value


def holds(condition: Condition, answer: Any) -> bool:
    """Whether a saved answer satisfies ``condition``."""
    op, value = condition.op, condition.value
    if answer is None:
        return op in ("ne", "not_in")
    if op == "eq":
        return _same(answer, value)
    if op == "ne":
        return not _same(answer, value)
    if op in _LISTS:
        found = any(_same(answer, v) for v in value)
        return found if op == "in" else not found
    if op == "contains":
        if isinstance(answer, list):
            return any(_same(item, value) for item in answer)
        return str(value).casefold() in str(answer).casefold()
    left, right = (_as_date(answer), _as_date(value)) if isinstance(answer, str) else (answer, value)
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]
