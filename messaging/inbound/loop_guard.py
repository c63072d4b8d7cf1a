"""The loop guard: automatic replies to one number are rationed, so two auto-responders never text
each other forever at the programme's cost.

Rules:

- An automatic reply is one inbound handling sends by itself: the default reply, a keyword's reply,
  the STOP/START/HELP confirmations (``messages.auto_reply``). A survey's questions and a person's
  replies are not automatic replies and are never held back here.
- **Identical message**: a number gets at most one automatic reply per identical message within
  ``IDENTICAL_WINDOW`` (10 minutes). A reply is held back when the same reply text already went to
  the number within the window, after an earlier message of the number that reads the same as this
  one arrived (compared normalised: NFKC, case-folded, runs of spaces collapsed, invisible marks
  dropped).
- **Hourly cap**: at most ``HOURLY_CAP`` (5) automatic replies to a number within ``HOURLY_WINDOW``
  (an hour). The opt-out confirmation is exempt from the cap (whoever texts STOP gets told at least
  once that it worked) but not from the identical rule: a second STOP within 10 minutes still opts
  out, and is not confirmed again.
- What counts is read from the database: ``messages`` rows with ``auto_reply`` to that phone in the
  project, created within the window (strictly: one exactly a window old no longer counts), and
  without a ``skip_reason`` (a reply held back, or refused for an opted-out number, was never sent).
  Inbound handling of one number is serialised by its lock (``messaging.inbound.per_number``), so
  this check-then-write is race-free across processes; nothing is kept in memory.
- What is held back is not sent: it is written as an outbound ``messages`` row, ``failed`` with
  ``skip_reason='loop_guard'`` and an ``error_message`` naming the limit, in the caller's
  transaction, so the message log shows it. An INFO line names the ids and the limit (never the
  phone or the text).
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.segments import count_segments
from messaging.lib.text import clean_text
from messaging.models import Message
from messaging.sms import outbox

log = logging.getLogger(__name__)

IDENTICAL_WINDOW = timedelta(minutes=10)
HOURLY_WINDOW = timedelta(hours=1)
HOURLY_CAP = 5
SKIP_REASON = "loop_guard"

IDENTICAL = "identical"
HOURLY = "hourly_cap"
_EXPLAINED = {
    IDENTICAL: "Held back by the loop guard: this number already got an automatic reply to the same "
    "message within 10 minutes.",
    HOURLY: f"Held back by the loop guard: this number already got {HOURLY_CAP} automatic replies "
    "within the last hour.",
}


@dataclass(frozen=True)
class AutoReply:
    """What became of an automatic reply: its ``messages`` row, and the limit that held it back
    (``identical`` or ``hourly_cap``), or None when it went to the send pipeline."""

    message_id: int
    held_back: str | None


def normalised_text(body: str | None) -> str:
    """An inbound text as the identical-message rule compares it."""
    return " ".join(unicodedata.normalize("NFKC", clean_text(body)).casefold().split())


def send_auto_reply(
    inbound: Message,
    body: str,
    case_id: int | None,
    *,
    bypass_opt_out: bool = False,
    exempt_from_hourly_cap: bool = False,
) -> AutoReply:
    """Send ``body`` as the automatic reply to the ``inbound`` message, unless a limit holds it back.

    The row joins the caller's transaction (as with ``outbox.send_sms``); the caller holds the
    number's inbound lock and commits.
    """
    limit = _limit_reached(inbound, body, exempt_from_hourly_cap)
    if limit is None:
        message_id = outbox.send_sms(
            inbound.project_id,
            inbound.phone,
            body,
            case_id,
            bypass_opt_out=bypass_opt_out,
            auto_reply=True,
            urgent=True,
        )
        return AutoReply(message_id, None)
    message_id = _write_held_back(inbound, body, case_id, limit, bypass_opt_out)
    log.info(
        "automatic reply held back project_id=%s inbound_id=%s message_id=%s limit=%s",
        inbound.project_id,
        inbound.id,
        message_id,
        limit,
    )
    return AutoReply(message_id, limit)


def _limit_reached(inbound: Message, body: str, exempt_from_hourly_cap: bool) -> str | None:
    """``identical``, ``hourly_cap`` or None (rules in the module docstring)."""
    now = clock.now()
    sent = db.session.execute(
        select(Message.body, Message.created_at).where(
            Message.project_id == inbound.project_id,
            Message.phone == inbound.phone,
            Message.direction == "outbound",
            Message.auto_reply.is_(True),
            Message.skip_reason.is_(None),
            Message.created_at > now - HOURLY_WINDOW,
        )
    ).all()
    same_text = [at for text, at in sent if text == body and at > now - IDENTICAL_WINDOW]
    if same_text and _sent_the_same_before(inbound, now - IDENTICAL_WINDOW, max(same_text)):
        return IDENTICAL
    if len(sent) >= HOURLY_CAP and not exempt_from_hourly_cap:
        return HOURLY
    return None


def _sent_the_same_before(inbound: Message, since, until) -> bool:
    """Whether the number sent a message reading the same as ``inbound`` before it, within
    (``since``, ``until``]: that message then got the reply sent at ``until`` or earlier."""
    earlier = db.session.execute(
        select(Message.body).where(
            Message.project_id == inbound.project_id,
            Message.phone == inbound.phone,
            Message.direction == "inbound",
            Message.id < inbound.id,
            Message.created_at > since,
            Message.created_at <= until,
        )
    ).scalars()
    wanted = normalised_text(inbound.body)
    return any(normalised_text(text) == wanted for text in earlier)


def _write_held_back(
    inbound: Message, body: str, case_id: int | None, limit: str, bypass_opt_out: bool
) -> int:
    now = clock.now()
    info = count_segments(body)
    row = Message(
        project_id=inbound.project_id,
        direction="outbound",
        case_id=case_id,
        phone=inbound.phone,
        to_number=inbound.phone,
        body=body,
        segments=info.segments,
        encoding=info.encoding,
        status="failed",
        skip_reason=SKIP_REASON,
        error_message=_EXPLAINED[limit],
        bypass_opt_out=bypass_opt_out,
        auto_reply=True,
        attempts=0,
        created_at=now,
        queued_at=now,
        failed_at=now,
        updated_at=now,
    )
    db.session.add(row)
    db.session.flush()
    return row.id
