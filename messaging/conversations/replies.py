"""A case manager's reply to a participant, from the conversation page or the API.

Rules:

- A reply is an outbound message like any other: ``messaging.sms.outbox.send_sms``
  writes it to the message log with the case and its author (the web user), in
  the caller's transaction, and its send job is enqueued after the commit. It is
  not an automatic reply (the loop guard does not count it).
- Its text is trimmed and its line breaks are ``\\n`` (a browser sends a
  textarea's as ``\\r\\n``, which would cost a character more per line and is
  not what the page's counter counted). Empty is refused, and so is more than
  ``MAX_REPLY_CHARS`` (1,600) characters: Twilio refuses a longer body (error
  21617) and 1,600 is the limit of every other text the app sends (keyword
  replies, the default reply, ``POST /api/v1/messages``). Both are
  ``Invalid("validation_error")`` on the field ``text``.
- The case must have a phone number (``RuleBroken("no_phone_number")``) and
  not be deleted (``NotFound``).
- A number that opted out is refused (``RuleBroken("opted_out")`` on the field
  ``confirm_opted_out``, with when and how it opted out) unless the case
  manager confirms a one-off exception: then the message goes with
  ``bypass_opt_out`` and the consent ledger records the exception
  (``messaging.sms.consent.record_exception``: who, which message), in the same
  transaction. The opt-out itself stays.
- Quiet hours, sending windows and the daily limit never hold a person's reply:
  the reply is written without ``due_at`` (quiet hours exist only as a
  broadcast's ``due_at``), so its send job is queued at once.
- Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from messaging.errors import Invalid, NotFound, RuleBroken
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Case, OptOut
from messaging.sms import consent
from messaging.sms.outbox import send_sms

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 1600


def normalize_reply_text(text: str | None) -> str:
    """``text`` trimmed, with ``\\n`` line breaks (what is sent, and what the counter counts)."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def clean_reply_text(text: str | None) -> str:
    """``text`` normalized; refuses an empty or oversize text."""
    text = normalize_reply_text(text)
    if not text:
        raise Invalid("validation_error", "text: write the reply first; it is empty.", field="text")
    if len(text) > MAX_REPLY_CHARS:
        raise Invalid(
            "validation_error",
            f"text: a reply is at most {MAX_REPLY_CHARS:,} characters; this one has {len(text):,}.",
            field="text",
            details={"max_chars": MAX_REPLY_CHARS, "chars": len(text)},
        )
    return text


def opt_out_of(phone: str | None) -> OptOut | None:
    """The current opt-out of ``phone`` in this project, or None."""
    if not phone:
        return None
    return db.session.execute(select(OptOut).where(OptOut.phone == phone)).scalar_one_or_none()


def send_reply(
    project_id: int, case: Case, text: str | None, *, author_id: int, confirm_opted_out: bool = False
) -> int:
    """Write the reply to ``case``'s number (sent once the caller commits); returns the message id."""
    text = clean_reply_text(text)
    if case.deleted:
        raise NotFound("not_found", "This case has been deleted.")
    phone = case.phone_number
    if not phone:
        raise RuleBroken("no_phone_number", "This case has no valid phone number to reply to.")
    opted = opt_out_of(phone)
    if opted is not None and not confirm_opted_out:
        raise _opted_out(opted)
    message_id = send_sms(
        project_id, phone, text, case.id, bypass_opt_out=opted is not None, author_id=author_id, urgent=True
    )
    if opted is not None:
        consent.record_exception(project_id, phone, web_user_id=author_id, message_id=message_id)
    log.info(
        "reply queued project_id=%s case_pk=%s message_id=%s author_id=%s opt_out_exception=%s",
        project_id,
        case.id,
        message_id,
        author_id,
        opted is not None,
    )
    return message_id


# How a number opted out, as the refusal says it.
_HOW = {
    "keyword": "by text message",
    "gateway_21610": "the carrier reported it unsubscribed (error 21610)",
    "api": "through the API",
    "staff": "by a case manager",
    "import": "from an imported list",
}


def describe_opt_out(opted: OptOut) -> str:
    """When and how the number opted out, for a person: "on 2026-03-02 09:00 UTC (by text message)"."""
    return f"on {opted.created_at.strftime('%Y-%m-%d %H:%M')} UTC ({_HOW.get(opted.source, opted.source)})"


def _opted_out(opted: OptOut) -> RuleBroken:
    return RuleBroken(
        "opted_out",
        f"This number opted out {describe_opt_out(opted)}. Send only if the participant asked for this "
        "message, by confirming a one-off exception; the consent record keeps it.",
        field="confirm_opted_out",
        details={"opted_out_at": clock.isoformat(opted.created_at), "source": opted.source},
    )
