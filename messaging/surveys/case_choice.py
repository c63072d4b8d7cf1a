"""Family phones: asking which case a survey is about when several share the sender's number.

Rules:
- When a survey starts for a number that several open cases share and nothing
  tells which one is meant, the session keeps those cases (``candidate_case_ids``,
  at most ``MAX_CANDIDATES``, in the order shown) and its first SMS asks "Is this
  about 1. Amina 2. Juma?" instead of a silent guess.
- The reply is the case's number in the list or its name (without regard to
  case). It becomes the session's case for the rest of the session, and the
  survey's first question follows. Anything else is an invalid answer under the
  survey's ``max_invalid_attempts`` like any other.
- The question and its refusal are participant texts (``survey.which_case``): in the
  language the cases share, else the project's default language.
- Pure functions over names: no database here (``messaging.surveys.replies`` applies them).
"""

from __future__ import annotations

from messaging.lib.participant_texts import say
from messaging.lib.text import clean_text

MAX_CANDIDATES = 9


def label(name: str | None, position: int) -> str:
    return (name or "").strip() or f"case {position}"


def choice_prompt(names: list[str | None], language: str | None = None) -> str:
    """The question: "Is this about 1. Amina 2. Juma?" (a case without a name is "case N"), in
    ``language`` (a participant text, ``survey.which_case``)."""
    listed = " ".join(f"{n}. {label(name, n)}" for n, name in enumerate(names, start=1))
    return say("survey.which_case", language, cases=listed)


def invalid_choice(language: str | None = None) -> str:
    """Why a reply to the question was refused, in ``language``."""
    return say("survey.which_case.invalid", language)


def shared_language(languages: list[str | None]) -> str | None:
    """The language the cases share, else None (the project's default language applies)."""
    distinct = {(language or "").strip().lower() for language in languages}
    return distinct.pop() or None if len(distinct) == 1 else None


def pick(names: list[str | None], reply: str) -> int | None:
    """The position (0-based) the reply names, by number or by name; None when it names none."""
    text = clean_text(reply or "").strip().rstrip(".!?)").casefold()
    if text.isdecimal():
        position = int(text)
        return position - 1 if 1 <= position <= len(names) else None
    matches = [i for i, name in enumerate(names) if label(name, i + 1).casefold() == text]
    return matches[0] if len(matches) == 1 else None
