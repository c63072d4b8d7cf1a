"""Surveys that branch: questions asked only when earlier answers say so, and surveys that end early.

Rules:
- A question may carry ``show_if: [{question, op, value}, ...]``: it is asked only
  when every condition holds on the saved answers (the ops of
  :mod:`messaging.surveys.conditions`, checked against the named question's type
  and choices). Otherwise it is skipped: saved as skipped (``None``, which changes
  no case property) and the next question is considered.
- A question may carry ``end_if: [{question, op, value}, ...]`` and an optional
  ``end_text``: when every condition holds once it is answered, the survey ends
  there (completed, its form applied as for any completed session) and the
  participant gets ``end_text`` (else the survey's completion text). The questions
  after it are not saved at all.
- A survey only looks back: ``show_if`` names questions before its own, ``end_if``
  questions before it or itself. A condition on a later question, on itself in
  ``show_if`` (a cycle), or on a question the survey does not have is refused when
  the survey is saved, naming the question. The first question has no ``show_if``
  (nothing is answered before it).
- A condition on a question that was itself skipped sees no answer: only ``ne`` and
  ``not_in`` hold then.
- Pure functions: no database, no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from messaging.surveys.conditions import Condition, holds

MAX_CONDITIONS = 10
MAX_END_TEXT = 1000


@dataclass(frozen=True)
class Branch:
    """One condition on one earlier answer."""

    question: str
    condition: Condition

    def to_dict(self) -> dict:
        return {"question": self.question, **self.condition.to_dict()}


def parse_branches(raw: Any, field: str, allowed: Sequence, later: set[str]) -> tuple[Branch, ...]:
    """``raw`` read as conditions on the questions ``allowed`` (earlier ones, by the survey's
    order); ``ValueError`` naming ``field`` otherwise. ``later`` are the ids after (for the message)."""
    if not isinstance(raw, list) or not raw or len(raw) > MAX_CONDITIONS:
        raise ValueError(f"{field}: a list of 1 to {MAX_CONDITIONS} conditions {{question, op, value}}")
    by_id = {q.id: q for q in allowed}
    branches = []
    for item in raw:
        if not isinstance(item, Mapping) or "question" not in item:
            raise ValueError(f"{field}: each condition is {{question, op, value}}")
        ref = item["question"]
        if ref not in by_id:
            if ref in later:
                raise ValueError(f"{field}: {ref!r} is not asked before this point; a survey only looks back")
            raise ValueError(f"{field}: there is no question {ref!r} before this one")
        target = by_id[ref]
        try:
            condition = Condition.from_dict(
                {k: v for k, v in item.items() if k != "question"}, target.type, target.choices
            )
        except ValueError as exc:
            raise ValueError(f"{field}: {exc}") from None
        branches.append(Branch(ref, condition))
    return tuple(branches)


def check_flow(questions: Sequence) -> list[dict]:
    """Check every question's ``show_if`` / ``end_if`` against the survey's order; returns each
    question's branching in canonical JSON form (``{}`` when it has none). ``ValueError``
    names the question's position."""
    ids = [q.id for q in questions]
    flows = []
    for index, q in enumerate(questions):
        flow: dict[str, Any] = {}
        where = f"questions[{index}]"
        if q.show_if is not None:
            if index == 0:
                raise ValueError(f"{where}: show_if: the first question is always asked")
            branches = parse_branches(q.show_if, f"{where}: show_if", questions[:index], set(ids[index:]))
            flow["show_if"] = [b.to_dict() for b in branches]
        if q.end_if is not None:
            branches = parse_branches(
                q.end_if, f"{where}: end_if", questions[: index + 1], set(ids[index + 1 :])
            )
            flow["end_if"] = [b.to_dict() for b in branches]
        if q.end_text is not None:
            if q.end_if is None:
                raise ValueError(f"{where}: end_text: only a question with end_if ends the survey")
            if not isinstance(q.end_text, str) or not q.end_text.strip() or len(q.end_text) > MAX_END_TEXT:
                raise ValueError(f"{where}: end_text: a text of 1 to {MAX_END_TEXT} characters")
            flow["end_text"] = q.end_text.strip()
        flows.append(flow)
    return flows


def _all_hold(raw: list | None, questions_by_id: Mapping, answers: Mapping) -> bool:
    for item in raw or []:
        target = questions_by_id[item["question"]]
        condition = Condition.from_dict(
            {"op": item["op"], "value": item.get("value")}, target.type, target.choices
        )
        if not holds(condition, answers.get(item["question"])):
            return False
    return True


def is_asked(question, questions_by_id: Mapping, answers: Mapping) -> bool:
    """Whether ``question`` is asked, given the answers saved so far."""
    return question.show_if is None or _all_hold(question.show_if, questions_by_id, answers)


def ends_after(question, questions_by_id: Mapping, answers: Mapping) -> bool:
    """Whether the survey ends once ``question`` is answered."""
    return question.end_if is not None and _all_hold(question.end_if, questions_by_id, answers)


def next_question(questions: Sequence, answers: Mapping, after: int) -> tuple[int | None, list[str]]:
    """The index of the next question to ask after index ``after`` (None: the survey is done),
    and the ids of the questions skipped on the way."""
    by_id = {q.id: q for q in questions}
    skipped = []
    for index in range(after + 1, len(questions)):
        if is_asked(questions[index], by_id, answers):
            return index, skipped
        skipped.append(questions[index].id)
    return None, skipped


# --- the editor's spelling: "pregnant = Yes and weeks > 20" ---------------------------------

_SYMBOLS = {
    "eq": "=",
    "ne": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "in": "in",
    "not_in": "not in",
}
_SYMBOLS["contains"] = "contains"
_BY_SYMBOL = {symbol: op for op, symbol in _SYMBOLS.items()}
_CONDITION = re.compile(
    r"^(?P<question>[^\s=!<>]+)\s*(?P<op>>=|<=|!=|=|>|<|not\s+in\b|in\b|contains\b)\s*(?P<value>.*)$",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
SPELLING_HELP = (
    "write conditions as: question = value, joined by 'and' (=, !=, >, >=, <, <=, in, not in, contains)"
)


def _value(text: str):
    text = text.strip()
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def parse_condition_text(text: str | None) -> list[dict] | None:
    """The conditions an editor row spells (``pregnant = Yes and weeks > 20``; ``in`` takes a
    comma-separated list), or None for a blank one; ``ValueError`` saying how to write them."""
    if text is None or not text.strip():
        return None
    conditions = []
    for part in re.split(r"\s+and(?:\s+|$)", text.strip(), flags=re.IGNORECASE):
        match = _CONDITION.match(part.strip())
        if not match or not match["value"].strip():
            raise ValueError(f"{part.strip()!r}: {SPELLING_HELP}")
        op = _BY_SYMBOL[" ".join(match["op"].lower().split())]
        raw = match["value"]
        value = [_value(v) for v in raw.split(",") if v.strip()] if op in ("in", "not_in") else _value(raw)
        conditions.append({"question": match["question"], "op": op, "value": value})
    return conditions


def condition_text(conditions: list | None) -> str:
    """How the editor shows conditions (what :func:`parse_condition_text` reads back)."""
    parts = []
    for c in conditions or []:
        value = c.get("value")
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{c['question']} {_SYMBOLS[c['op']]} {shown}")
    return " and ".join(parts)
