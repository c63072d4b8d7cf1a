"""Classify an inbound SMS: opt-out, opt-in, help, a project keyword, or empty.

Opt-out/opt-in/help words (English and the shipped languages,
``messaging.inbound.command_words``) count only when they are the WHOLE message
(as at Twilio): any case and accents, surrounding spaces, punctuation and symbols trimmed
(``"Stop."``, ``"STOP!"``, ``"*stop*"``), invisible marks ignored, full-width
letters read as ASCII (NFKC). ``"STOP please"`` is a keyword message ``STOP``
with rest ``"please"`` so that the caller decides.

For a keyword message, ``word`` is the first whitespace-separated word,
uppercased, with punctuation at its ends trimmed (``"Join,"`` -> ``JOIN``; a
word made only of punctuation is kept as is); ``rest`` is the remaining text,
trimmed, with runs of spaces collapsed (newlines kept), otherwise as sent.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from messaging.inbound.command_words import ENGLISH, command_for, named_words, words_of
from messaging.lib.participant_texts import resolve
from messaging.lib.segments import count_segments, is_gsm7
from messaging.lib.text import clean_text

__all__ = [
    "HELP_WORDS",
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "Classification",
    "classify",
    "confirmation_text",
]

OPT_OUT_WORDS = words_of("opt_out")
OPT_IN_WORDS = words_of("opt_in")
HELP_WORDS = words_of("help")

_SMS_LIMIT = 160  # GSM-7 characters in one SMS
_ELLIPSIS = "..."  # "…" is not GSM-7 and would turn the reply into a 70-character UCS-2 SMS


@dataclass(frozen=True)
class Classification:
    """What an inbound message is: ``kind``, its (uppercased) ``word``, the ``rest`` of the text,
    and for an opt-out, opt-in or help word the ``language`` it belongs to."""

    kind: str
    word: str
    rest: str
    language: str = ENGLISH


def classify(body: str | None, project_words: dict | None = None) -> Classification:
    """Classify one inbound SMS body (rules in the module docstring); ``project_words`` are the
    project's own opt-out and opt-in words (``command_words.command_for``)."""
    text = clean_text(body)
    if not text:
        return Classification("empty", "", "")
    whole = _strip_edges(unicodedata.normalize("NFKC", text), _trim_whole).upper()
    command = command_for(whole, project_words)
    if command is not None:
        return Classification(command.kind, whole, "", command.language)
    first, rest = _split_first_word(text)
    word = _strip_edges(unicodedata.normalize("NFKC", first), _is_punctuation) or first
    return Classification("keyword", word.upper(), rest)


def confirmation_text(
    kind: str,
    project_name: str,
    help_text: str = "",
    language: str = ENGLISH,
    project_words: dict | None = None,
) -> str:
    """The reply confirming an opt-out, opt-in or help request in ``language`` (a code, or a
    ``participant_texts.Speaker`` carrying the project's wordings), saying how to undo it
    with the words of the language the text is written in.

    One SMS (160 GSM-7 characters) when the project name has at most 40
    characters and the texts are GSM-7; a long help text is cut at a word
    with "..." to keep the reply within 160 characters. A blank help text
    falls back to a one-line description of the project.
    """
    project = " ".join(project_name.split())

    def phrase(name: str) -> str:
        written_in, template = resolve(f"confirm.{name}", language)
        return template.format(project=project, **named_words(written_in, project_words))

    if kind in ("opt_out", "opt_in"):
        return phrase(kind)
    if kind == "help":
        suffix = phrase("help_suffix")
        body = " ".join((help_text or "").split()) or phrase("help_default")
        return _fit(body, _SMS_LIMIT - _gsm_units(suffix)) + suffix
    raise ValueError(f"no confirmation for {kind!r} (use opt_out, opt_in or help)")


# --- internals ---------------------------------------------------------------


def _split_first_word(text: str) -> tuple[str, str]:
    parts = text.split(maxsplit=1)
    return parts[0], (parts[1].strip() if len(parts) > 1 else "")


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _trim_whole(ch: str) -> bool:
    # Punctuation, symbols (emoji, "*") and spaces around a whole-message command.
    return ch.isspace() or unicodedata.category(ch)[0] in "PS"


def _strip_edges(text: str, trim) -> str:
    start, end = 0, len(text)
    while start < end and trim(text[start]):
        start += 1
    while end > start and trim(text[end - 1]):
        end -= 1
    return text[start:end]


def _gsm_units(text: str) -> int:
    return count_segments(text).units


def _fit(text: str, limit: int) -> str:
    """``text`` cut at a word so that it (plus "...") fits ``limit`` GSM-7 units."""
    if not is_gsm7(text):
        # A non-GSM help text makes the reply UCS-2 (70 characters per SMS):
        # it cannot be one SMS anyway, so keep the 160 bound on characters
        # rather than cutting the project's help down to 70.
        return text if len(text) <= limit else _cut(text, limit, len)
    return text if _gsm_units(text) <= limit else _cut(text, limit, _gsm_units)


def _cut(text: str, limit: int, measure) -> str:
    room = limit - len(_ELLIPSIS)
    words = text.split(" ")
    kept = ""
    for word in words:
        candidate = f"{kept} {word}" if kept else word
        if measure(candidate) > room:
            break
        kept = candidate
    if not kept:  # one very long word: cut inside it
        kept = text
        while measure(kept) > room:
            kept = kept[:-1]
    return kept.rstrip(" ,;:.") + _ELLIPSIS
