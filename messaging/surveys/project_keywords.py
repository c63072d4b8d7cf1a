"""Project keywords: the first word of an inbound SMS that replies and/or starts a survey.

Rules:

- A keyword is one word of letters, digits, _ or - (at most 40 characters),
  stored uppercased; the opt-out words (every shipped language) and the English
  opt-in and help words are reserved.
- It has a ``reply_text`` (at most 1600 characters, blank is none), a
  ``survey_id`` of the current project, ``notify_owner`` (the case's owner gets
  an SMS quoting the message, :mod:`messaging.conversations.owner_alerts`), or
  several; ``yields_to_session`` (true by default) lets an open survey session
  take the message first.
- A keyword that exists already is ``Conflict("duplicate_keyword")``; bad input
  is ``Invalid("validation_error")`` naming the field, a body that is not a JSON
  object ``invalid_json``, an unknown field is refused; nothing is written.
- Services flush, never commit.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy.exc import IntegrityError

from messaging.db import tenancy
from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.inbound.command_words import RESERVED_FOR_COMMANDS
from messaging.models import Keyword
from messaging.surveys.definitions import invalid_field, survey_exists
from messaging.surveys.settings import project_command_words

log = logging.getLogger(__name__)

_KEYWORD = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{0,39}$")
_FIELDS = {"keyword", "reply_text", "survey_id", "yields_to_session", "notify_owner"}


def normalize_keyword(raw) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise invalid_field("keyword", "is required.")
    word = raw.strip().upper()
    if not _KEYWORD.match(word):
        raise invalid_field("keyword", "one word of letters, digits, _ or - (at most 40 characters).")
    if word in RESERVED_FOR_COMMANDS:
        raise invalid_field("keyword", f"{word} is reserved for opt-out, opt-in and help.")
    own = project_command_words(tenancy.current_project_id())
    if any(word in (own.get(kind) or {}) for kind in ("opt_out", "opt_in")):
        raise invalid_field("keyword", f"{word} is one of this project's opt-out or opt-in words.")
    return word


def create_keyword(body: dict) -> Keyword:
    if not isinstance(body, dict):
        raise Invalid("invalid_json", "The keyword must be a JSON object.")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise invalid_field(unknown[0], "unknown field.")
    word = normalize_keyword(body.get("keyword"))
    reply = body.get("reply_text")
    if reply is not None and not isinstance(reply, str):
        raise invalid_field("reply_text", "must be a text.")
    reply = (reply or "").strip() or None
    if reply and len(reply) > 1600:
        raise invalid_field("reply_text", "at most 1600 characters.")
    survey_id = body.get("survey_id")
    if survey_id is not None:
        if not isinstance(survey_id, str) or not survey_exists(survey_id):
            raise invalid_field("survey_id", "no such survey in this project.")
    notify_owner = body.get("notify_owner", False)
    if not isinstance(notify_owner, bool):
        raise invalid_field("notify_owner", "must be true or false.")
    if not reply and not survey_id and not notify_owner:
        raise invalid_field("reply_text", "give a reply_text, a survey_id, notify_owner, or several.")
    yields = body.get("yields_to_session", True)
    if not isinstance(yields, bool):
        raise invalid_field("yields_to_session", "must be true or false.")
    keyword = Keyword(
        keyword=word,
        reply_text=reply,
        survey_id=survey_id,
        yields_to_session=yields,
        notify_owner=notify_owner,
    )
    try:
        with db.session.begin_nested():
            db.session.add(keyword)
    except IntegrityError:
        raise Conflict("duplicate_keyword", f"The keyword {word} already exists.", field="keyword") from None
    log.info("keyword created keyword_id=%s keyword=%s", keyword.id, word)
    return keyword
