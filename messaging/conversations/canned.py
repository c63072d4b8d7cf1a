"""Canned replies: saved texts a case manager picks from when replying, per project.

Rules:

- A canned reply has a title (required, runs of spaces collapsed, at most
  ``MAX_TITLE`` = 80 characters: it is what the picker lists) and a body
  (required, trimmed, line breaks ``\\n``, at most the reply's own limit,
  ``MAX_REPLY_CHARS``: picking it must give a reply that can be sent).
  Bad input is ``Invalid("validation_error")`` naming the field.
- A title is unique in the project whatever its letter case, accents included
  (``Conflict("duplicate_title")``): two entries of one name in the picker
  cannot be told apart. The check is the domain's (there is no unique index on
  titles), so two requests racing with one title can both win; harmless.
- The list is by title, whatever its letter case. Deleting one removes it from the picker; replies
  already sent keep their text.
- Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from messaging.conversations.replies import MAX_REPLY_CHARS, normalize_reply_text
from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import CannedReply

log = logging.getLogger(__name__)

MAX_TITLE = 80
# A canned reply becomes a reply as it is: the same limit (see ``replies``).
MAX_BODY = MAX_REPLY_CHARS


def list_canned_replies() -> list[CannedReply]:
    """The project's canned replies by title."""
    replies = db.session.execute(select(CannedReply).order_by(CannedReply.id)).scalars()
    return sorted(replies, key=lambda r: r.title.casefold())


def create_canned_reply(title: str | None, body: str | None) -> CannedReply:
    """A new canned reply (flushed, not committed)."""
    title = " ".join((title or "").split())
    if not title:
        raise Invalid("validation_error", "title: is required.", field="title")
    if len(title) > MAX_TITLE:
        raise Invalid("validation_error", f"title: must be at most {MAX_TITLE} characters.", field="title")
    body = normalize_reply_text(body)
    if not body:
        raise Invalid("validation_error", "body: is required.", field="body")
    if len(body) > MAX_BODY:
        raise Invalid("validation_error", f"body: must be at most {MAX_BODY:,} characters.", field="body")
    # A project has tens of them: compared in Python, casefold() is the same on both databases
    # (SQLite's lower() folds ASCII letters only).
    titles = db.session.execute(select(CannedReply.title)).scalars()
    if title.casefold() in {t.casefold() for t in titles}:
        raise Conflict(
            "duplicate_title",
            f"A canned reply titled '{title}' already exists. Choose another title.",
            field="title",
        )
    reply = CannedReply(title=title, body=body, created_at=clock.now())
    db.session.add(reply)
    db.session.flush()
    log.info("canned reply created id=%s", reply.id)
    return reply


def delete_canned_reply(reply: CannedReply) -> None:
    db.session.delete(reply)
    db.session.flush()
    log.info("canned reply deleted id=%s", reply.id)
