"""SMS survey questions: definitions, answer parsing and the question's SMS text.

Answer rules (replies are first cleaned: invisible marks removed, spaces
collapsed, trimmed). Digits may be any Unicode decimal digits (Arabic-Indic,
Devanagari...), since phones send what the keyboard shows.

- text: any non-empty reply, trimmed.
- integer: ``12``, ``+12``, ``-3``; thousands grouped with commas (``1,200``)
  are accepted, nothing else (``12.5``, ``1.200``, ``12 years`` are refused).
- decimal: ``3.5`` or ``3,5`` (one dot or comma is the decimal mark); no
  thousands separators, so ``1,200`` is 1.2 (the range usually catches it).
- select: the choice's number (``2``, also ``2.`` or ``2)``), or its exact text,
  case-insensitive (no prefixes: ``Y`` is not ``Yes``). Saved as the choice text.
- multiselect: numbers or texts separated by spaces and/or commas
  (``1 3``, ``1,3``, ``yes, not sure``); multi-word choice texts are matched
  longest first. Saved as the list of choice texts in the question's order,
  without duplicates.
- date: ``2026-11-22``, ``22/11/2026``, ``22-11-2026``, ``22.11.2026``,
  ``22 Nov 2026``, ``Nov 22 2026`` (also ``22nd November, 2026``, ``22 novembre
  2026``, ``22 de novembro de 2026``). Numeric forms are day first unless the year
  is first; the year has four digits and is between 1900 and 2100. Month names in
  English, French, Swahili, Spanish and Portuguese, with or without accents.
  Saved as ``YYYY-MM-DD``.
- A question may be written in several languages (``text`` and each choice a
  ``{language: text}``): it is asked in the participant's language (exact, then
  the base language, then the question's first language: ``en`` when it has
  one), and a choice is accepted by its number or its text in any of the
  question's languages, saved as its text in the question's first language.
- An optional question (``required=False``) accepts an empty reply or the skip
  word ``SKIP`` (any case) and saves ``None``. On a required text question,
  "skip" is an answer like any other.

Error messages are short GSM-7 sentences (one SMS) that never echo the reply.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from messaging.lib.participant_texts import say
from messaging.lib.templating import choose_text
from messaging.lib.text import clean_text
from messaging.surveys.conditions import Condition

__all__ = ["SKIP_WORD", "TYPES", "Answer", "Question", "parse_answer", "question_prompt"]

TYPES = ("text", "integer", "decimal", "select", "multiselect", "date")
SKIP_WORD = "SKIP"
_FIELDS = (
    "id",
    "type",
    "text",
    "choices",
    "min",
    "max",
    "required",
    "case_property",
    "flag_if",
    "show_if",
    "end_if",
    "end_text",
)
MAX_LANGUAGE = 16
_MAX_NUMBER_LEN = 30  # longer replies are not numbers; also keeps int() away from huge inputs
_MIN_YEAR, _MAX_YEAR = 1900, 2100

_INTEGER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)")
_CHOICE_NUMBER = re.compile(r"(\d+)[.)]?")
_TRAILING_PUNCTUATION = ".!?"
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\uff0b": "+"})

# Month names (and their usual short forms) in English, French, Swahili, Spanish and
# Portuguese, without accents (a reply is compared without them): every survey reads all.
_MONTH_NAMES = [
    "jan january janv janvier januari ene enero janeiro",
    "feb february fev fevr fevrier februari febrero fevereiro",
    "mar march mars machi marzo marco",
    "apr april avr avril aprili abr abril",
    "may mai mei mayo maio",
    "jun june juin juni junio junho",
    "jul july juil juillet julai julio julho",
    "aug august aout agosti ago agosto",
    "sep sept september septembre septemba septiembre setiembre set setembro",
    "oct october octobre oktoba octubre out outubro",
    "nov november novembre novemba noviembre novembro",
    "dec december decembre desemba dic diciembre dez dezembro",
]
_MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()}
_SEP = r"[\s\-/.,]+"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATE_FORMS = [
    (re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"), ("y", None, "m", "d")),
    (re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})"), ("d", None, "m", "y")),
    # "22 de marco de 2026" (Spanish, Portuguese) as well as "22 March 2026"
    (
        re.compile(_DAY + _SEP + r"(?:de\s+)?([a-z]+)" + _SEP + r"(?:de\s+)?(\d{4})", re.IGNORECASE),
        ("d", "mon", "y"),
    ),
    (re.compile(r"([a-z]+)" + _SEP + _DAY + _SEP + r"(\d{4})", re.IGNORECASE), ("mon", "d", "y")),
]


@dataclass(frozen=True)
class Question:
    """One survey question; validated on construction (``ValueError`` naming the problem)."""

    id: str
    type: str
    text: str
    choices: list[str] | None = None
    min: int | float | None = None
    max: int | float | None = None
    required: bool = True
    case_property: str | None = None
    # An answer that satisfies it is flagged: its message opens in the inbox and the case's
    # owner is told (``messaging.surveys.conditions``).
    flag_if: Condition | None = None
    # Branching (``messaging.surveys.branching``, checked against the whole survey there):
    # asked only when these conditions on earlier answers hold; the survey ends after it when
    # those of ``end_if`` hold, with ``end_text``.
    show_if: list | None = None
    end_if: list | None = None
    end_text: str | None = None
    # Several languages: ``texts`` is the question's text by language, ``choice_texts`` each
    # choice's (None for a choice written once). ``text`` and ``choices`` are then the texts
    # in the question's default language: what answers are saved as, whatever the reply's
    # language.
    texts: dict | None = None
    choice_texts: list | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip() or any(c.isspace() for c in self.id):
            raise ValueError("id: a question id is required (no spaces)")
        if self.type not in TYPES:
            raise ValueError(f"type: unknown question type {self.type!r} (use one of {', '.join(TYPES)})")
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValueError(f"text: question {self.id!r} needs a text")
        self._check_choices()
        self._check_range()
        if not isinstance(self.required, bool):
            raise ValueError("required: must be true or false")
        if self.case_property is not None and (
            not isinstance(self.case_property, str) or not self.case_property.strip()
        ):
            raise ValueError("case_property: must be a property name or null")
        if self.flag_if is not None:
            try:
                condition = Condition.from_dict(self.flag_if, self.type, self.choices)
                object.__setattr__(self, "flag_if", condition)  # frozen: the checked, canonical form
            except ValueError as exc:
                raise ValueError(f"flag_if: {exc}") from None
        object.__setattr__(self, "aliases", self._choice_aliases())

    @property
    def default_language(self) -> str | None:
        for texts in [self.texts, *(self.choice_texts or [])]:
            if texts:
                return "en" if "en" in texts else next(iter(texts))
        return None

    def text_in(self, language: str | None) -> str:
        """The question's text in ``language`` (exact, then base language, then the default)."""
        if not self.texts:
            return self.text
        return choose_text(self.texts, self.default_language, language)[1]

    def choices_in(self, language: str | None) -> list[str]:
        """The choices as a participant reading ``language`` sees them (same order, same numbers)."""
        if not self.choices:
            return []
        texts = self.choice_texts or [None] * len(self.choices)
        return [
            choose_text(t, self.default_language, language)[1] if t else c
            for c, t in zip(self.choices, texts, strict=True)
        ]

    def _choice_aliases(self) -> dict[str, str] | None:
        """Every spelling of every choice (all languages) to the choice it saves as; a spelling
        that two choices share is refused."""
        if not self.choices:
            return None
        aliases: dict[str, str] = {}
        texts = self.choice_texts or [None] * len(self.choices)
        for position, (choice, translations) in enumerate(zip(self.choices, texts, strict=True), start=1):
            for spelling in [choice, *(translations or {}).values()]:
                key = _choice_key(spelling)
                if aliases.get(key, choice) != choice:
                    raise ValueError(f"choices: {spelling!r} (choice {position}) is also another choice")
                aliases[key] = choice
        return aliases

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Question:
        """Build a question from its JSON definition; ``ValueError`` naming the field when invalid."""
        if not isinstance(data, Mapping):
            raise ValueError("a question must be a JSON object")
        unknown = sorted(str(k) for k in data if k not in _FIELDS)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field")
        for name in ("id", "type", "text"):
            if name not in data:
                raise ValueError(f"{name}: is required")
        choices = data.get("choices")
        if choices is not None and (isinstance(choices, str) or not isinstance(choices, list | tuple)):
            raise ValueError("choices: must be a list of texts")
        texts = _translations(data["text"], "text")
        choice_texts = None
        if choices is not None and any(isinstance(c, Mapping) for c in choices):
            choice_texts = [
                _translations(c, f"choices: choice {n}") if isinstance(c, Mapping) else None
                for n, c in enumerate(choices, start=1)
            ]
        default = None
        for found in [texts, *(choice_texts or [])]:
            if found:
                default = "en" if "en" in found else next(iter(found))
                break
        text = _in_default(texts, default, "text") if texts else data["text"]
        if choice_texts:
            choices = [
                _in_default(t, default, f"choices: choice {n}") if t else c
                for n, (c, t) in enumerate(zip(choices, choice_texts, strict=True), start=1)
            ]
        return cls(
            id=data["id"],
            type=data["type"],
            text=text,
            texts=texts,
            choice_texts=choice_texts,
            choices=list(choices) if choices is not None else None,
            min=data.get("min"),
            max=data.get("max"),
            required=data.get("required", True),
            case_property=data.get("case_property"),
            flag_if=data.get("flag_if"),
            show_if=data.get("show_if"),
            end_if=data.get("end_if"),
            end_text=data.get("end_text"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON definition that :meth:`from_dict` reads back."""
        choices = list(self.choices) if self.choices is not None else None
        if choices is not None and self.choice_texts:
            choices = [t or c for c, t in zip(choices, self.choice_texts, strict=True)]
        body = {
            "id": self.id,
            "type": self.type,
            "text": self.texts or self.text,
            "choices": choices,
            "min": self.min,
            "max": self.max,
            "required": self.required,
            "case_property": self.case_property,
            "flag_if": self.flag_if.to_dict() if self.flag_if is not None else None,
        }
        # Branching only when the question has it: surveys without it keep their JSON.
        for name in ("show_if", "end_if", "end_text"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body

    def _check_choices(self) -> None:
        if self.type not in ("select", "multiselect"):
            if self.choices is not None:
                raise ValueError("choices: only select and multiselect questions have choices")
            return
        if not isinstance(self.choices, list) or len(self.choices) < 2:
            raise ValueError(f"choices: a {self.type} question needs at least 2 choices")
        seen = set()
        for position, choice in enumerate(self.choices, start=1):
            if not isinstance(choice, str) or not choice.strip():
                raise ValueError(f"choices: choice {position} is empty")
            key = _choice_key(choice)
            if key in seen:
                raise ValueError(f"choices: {choice!r} appears twice")
            seen.add(key)
            # A reply "2" means choice number 2; a choice whose text is another number would be unreachable.
            if key.isdecimal() and int(key) != position:
                raise ValueError(
                    f"choices: choice {position} is the number {choice!r}; put it at position {key}"
                )

    def _check_range(self) -> None:
        if self.min is None and self.max is None:
            return
        if self.type not in ("integer", "decimal"):
            raise ValueError("min: only integer and decimal questions have a range")
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is None:
                continue
            if not _is_number(value):
                raise ValueError(f"{name}: must be a number")
            if self.type == "integer" and value != int(value):
                raise ValueError(f"{name}: must be a whole number for an integer question")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("max: must not be less than min")


@dataclass(frozen=True)
class Answer:
    """A parsed reply: ``value`` is JSON-serialisable; ``error`` is the SMS to send back when not ``ok``."""

    ok: bool
    value: Any = None
    error: str | None = None


def parse_answer(question: Question, raw: str | None, language: str | None = None) -> Answer:
    """Validate and convert one SMS reply to ``question`` (rules in the module docstring); a
    refusal says why in ``language`` (:mod:`messaging.lib.participant_texts`)."""
    text = clean_text(raw)
    if not question.required and (not text or _is_skip(text)):
        return Answer(True, None)
    parser = _PARSERS[question.type]
    value = parser(question, text) if text else None
    if value is None:
        return Answer(False, None, _error(question, language))
    return Answer(True, value)


def question_prompt(question: Question, language: str | None = None) -> str:
    """The SMS text of a question in ``language`` (else its default): the text, numbered
    choices one per line, short hints."""
    lines = [question.text_in(language).strip()]
    if question.type == "date":
        lines[0] += " " + say("survey.hint.date", language)
    if question.choices:
        lines += [f"{n}. {choice.strip()}" for n, choice in enumerate(question.choices_in(language), start=1)]
    if question.type == "multiselect":
        lines.append(say("survey.hint.multiselect", language))
    if not question.required:
        lines.append(say("survey.hint.skip", language, skip=SKIP_WORD))
    return "\n".join(lines)


# --- parsers: return the value, or None when the reply is not valid -----------


def _parse_text(question: Question, text: str) -> str:
    return text


def _parse_integer(question: Question, text: str) -> int | None:
    text = text.translate(_MINUS_SIGNS)
    if len(text) > _MAX_NUMBER_LEN or not _INTEGER.fullmatch(text):
        return None
    value = int(text.replace(",", ""))
    return value if _in_range(question, Decimal(value)) else None


def _parse_decimal(question: Question, text: str) -> float | None:
    text = text.translate(_MINUS_SIGNS)
    if len(text) > _MAX_NUMBER_LEN or not _DECIMAL.fullmatch(text):
        return None
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None
    return float(value) if _in_range(question, value) else None


def _parse_select(question: Question, text: str) -> str | None:
    return _match_choice(question.choices, text, aliases=question.aliases)


def _parse_multiselect(question: Question, text: str) -> list[str] | None:
    picked: set[str] = set()
    pieces = [p for p in re.split(r"[,;]", text) if p.strip()]
    if not pieces:
        return None
    for piece in pieces:
        tokens = piece.split()
        start = 0
        while start < len(tokens):
            # Longest run of words first, so "not sure" beats "not" + "sure".
            for end in range(len(tokens), start, -1):
                choice = _match_choice(
                    question.choices,
                    " ".join(tokens[start:end]),
                    number_ok=end == start + 1,
                    aliases=question.aliases,
                )
                if choice is not None:
                    picked.add(choice)
                    start = end
                    break
            else:
                return None
    return [c for c in question.choices if c in picked]


def _parse_date(question: Question, text: str) -> str | None:
    text = _without_accents(text)
    for pattern, parts in _DATE_FORMS:
        match = pattern.fullmatch(text)
        if not match:
            continue
        found = dict(zip(parts, match.groups(), strict=True))
        if "mon" in found:
            month = _MONTHS.get(found["mon"].lower())
        else:
            month = int(found["m"])
        if month is None:
            return None
        year = int(found["y"])
        if not _MIN_YEAR <= year <= _MAX_YEAR:
            return None
        try:
            return date(year, month, int(found["d"])).isoformat()
        except ValueError:  # 31/02/2026
            return None
    return None


_PARSERS = {
    "text": _parse_text,
    "integer": _parse_integer,
    "decimal": _parse_decimal,
    "select": _parse_select,
    "multiselect": _parse_multiselect,
    "date": _parse_date,
}


# --- helpers -------------------------------------------------------------------


def _match_choice(
    choices: list[str], text: str, number_ok: bool = True, aliases: dict[str, str] | None = None
) -> str | None:
    number = _CHOICE_NUMBER.fullmatch(text)
    if number and number_ok:
        index = int(number[1])
        return choices[index - 1] if 1 <= index <= len(choices) else None
    by_key = aliases or {_choice_key(c): c for c in choices}
    key = _choice_key(text)
    if key in by_key:
        return by_key[key]
    # "Yes." or "No!" still mean the choice, unless a choice really ends that way (matched above).
    return by_key.get(_choice_key(text.rstrip(_TRAILING_PUNCTUATION)))


def _translations(value: Any, field: str) -> dict[str, str] | None:
    """``{language: text}`` checked (None for a plain text, checked by the question)."""
    if not isinstance(value, Mapping):
        return None
    if not value:
        raise ValueError(f"{field}: give at least one language")
    clean = {}
    for lang, text in value.items():
        if not isinstance(lang, str) or not lang.strip() or len(lang.strip()) > MAX_LANGUAGE:
            raise ValueError(f"{field}: {lang!r} is not a language code such as en or sw")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{field}: the {lang} text is empty")
        clean[lang.strip()] = text
    return clean


def _in_default(texts: dict[str, str], default: str, field: str) -> str:
    if default not in texts:
        raise ValueError(f"{field}: has no {default} text (the question's first language)")
    return texts[default]


def _without_accents(text: str) -> str:
    """``1 février`` read as ``1 fevrier``: month names are compared without accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _choice_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _is_skip(text: str) -> bool:
    return text.rstrip(_TRAILING_PUNCTUATION).strip().upper() == SKIP_WORD


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == value
        and abs(value) != float("inf")
    )


def _in_range(question: Question, value: Decimal) -> bool:
    if question.min is not None and value < Decimal(str(question.min)):
        return False
    return question.max is None or value <= Decimal(str(question.max))


def _fmt(number: int | float) -> str:
    """A bound as people write it: 120, 0.5, 1000000 (never 1e+06)."""
    text = format(Decimal(str(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _error(question: Question, language: str | None = None) -> str:
    low = None if question.min is None else _fmt(question.min)
    high = None if question.max is None else _fmt(question.max)
    if question.type in ("integer", "decimal"):
        what = say("survey.what.whole" if question.type == "integer" else "survey.what.number", language)
        if low is not None and high is not None:
            message = say("survey.error.between", language, what=what, low=low, high=high)
        elif low is not None:
            message = say("survey.error.min", language, what=what, low=low)
        elif high is not None:
            message = say("survey.error.max", language, what=what, high=high)
        else:
            message = say("survey.error.number", language, what=what)
    elif question.type == "select":
        message = say("survey.error.choice", language, count=len(question.choices))
    elif question.type == "multiselect":
        message = say("survey.error.choices", language, count=len(question.choices))
    elif question.type == "date":
        message = say("survey.error.date", language)
    else:
        message = say("survey.error.text", language)
    if not question.required:
        message += say("survey.error.or_skip", language, skip=SKIP_WORD)
    return message
