"""A project's inbound settings: its default reply, and the SMS survey actor's ids.

Rules:

- One row per project, created on first use; two requests creating it at once
  end with the same row.
- The default reply is sent to an inbound SMS nothing else handles; blank is
  none; at most 1600 characters (``Invalid("validation_error")`` on the field
  ``default_reply``).
- The project's own opt-out and opt-in words (``command_words``), each with its language:
  one word of letters or digits, not a shipped command word, not both kinds, not a
  project keyword; at most 20 of each kind. They work as the shipped words do
  (``messaging.inbound.command_words``); a language with no shipped confirmation
  confirms in English.
- Services flush, never commit.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from messaging.db.after_commit import transaction_cache
from messaging.extensions import db
from messaging.inbound.command_words import COMMANDS_BY_WORD, fold
from messaging.lib import clock
from messaging.models import InboundSettings, Keyword
from messaging.surveys.definitions import invalid_field

MAX_PROJECT_WORDS = 20
_WORD = re.compile(r"^[A-Z0-9]{1,20}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


def inbound_settings(project_id: int, create: bool = False) -> InboundSettings | None:
    """The project's inbound settings (None when it has none and ``create`` is false), read
    once per transaction: handling one message asks for its words, then its replies."""
    cache = transaction_cache("inbound_settings")
    row = cache.get(project_id)
    if row is None:
        row = db.session.execute(select(InboundSettings)).scalar_one_or_none()
    if row is None and create:
        try:
            with db.session.begin_nested():
                row = InboundSettings(project_id=project_id, updated_at=clock.now())
                db.session.add(row)
        except IntegrityError:
            row = db.session.execute(select(InboundSettings)).scalar_one()
    if row is not None:
        cache[project_id] = row
    return row


def project_command_words(project_id: int) -> dict:
    """The project's own opt-out and opt-in words: ``{"opt_out": {WORD: language}, "opt_in": {...}}``."""
    row = inbound_settings(project_id)
    return (row.command_words if row is not None else None) or {}


def parse_command_words(kind: str, lines: str | None) -> dict[str, str]:
    """``HAGARIKA rw`` lines (a word, then its language) as ``{WORD: language}``, words folded;
    ``Invalid`` naming the word at fault."""
    field = f"{kind}_words"
    found: dict[str, str] = {}
    for line in (lines or "").splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not _LANGUAGE.match(parts[1]):
            raise invalid_field(
                field, f"{line.strip()!r}: write a word and its language code, e.g. HAGARIKA rw."
            )
        word = fold(parts[0])
        if not _WORD.match(word):
            raise invalid_field(field, f"{parts[0]!r}: one word of letters or digits (at most 20).")
        shipped = COMMANDS_BY_WORD.get(word)
        if shipped is not None:
            raise invalid_field(field, f"{word} is already a shipped {shipped.kind.replace('_', '-')} word.")
        found[word] = parts[1].lower()
    if len(found) > MAX_PROJECT_WORDS:
        raise invalid_field(field, f"at most {MAX_PROJECT_WORDS} words.")
    return found


def set_command_words(
    project_id: int, opt_out_lines: str | None, opt_in_lines: str | None
) -> InboundSettings:
    """Replace the project's own opt-out and opt-in words. A word may be of one kind only and
    may not be a project keyword."""
    words = {
        "opt_out": parse_command_words("opt_out", opt_out_lines),
        "opt_in": parse_command_words("opt_in", opt_in_lines),
    }
    both = set(words["opt_out"]) & set(words["opt_in"])
    if both:
        raise invalid_field("opt_in_words", f"{sorted(both)[0]} cannot both stop and start messages.")
    taken = (
        db.session.execute(
            select(Keyword.keyword).where(Keyword.keyword.in_([*words["opt_out"], *words["opt_in"]]))
        )
        .scalars()
        .first()
    )
    if taken:
        raise invalid_field(
            "opt_out_words", f"{taken} is a keyword of this project; delete the keyword first."
        )
    row = inbound_settings(project_id, create=True)
    row.command_words = words if words["opt_out"] or words["opt_in"] else None
    row.updated_at = clock.now()
    db.session.flush()
    return row


def set_default_reply(project_id: int, text: str | None) -> InboundSettings:
    text = (text or "").strip() or None
    if text and len(text) > 1600:
        raise invalid_field("default_reply", "at most 1600 characters.")
    row = inbound_settings(project_id, create=True)
    row.default_reply = text
    row.updated_at = clock.now()
    db.session.flush()
    return row
