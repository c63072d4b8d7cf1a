"""Telling a case's owner: an SMS to the mobile worker, or to every member of the owning group.

Rules:
- A case's owner (``owner_id``) is a mobile worker or a user group (CommCare's case
  sharing, :mod:`messaging.cases.ownership`). The recipients are that worker, or
  the group's members; only active workers with a phone number are texted, each
  number once. A case with no owner, or whose owner has nobody to text, sends
  nothing (the count says so, and a log line names the case).
- The SMS quotes the participant's message (at most ``QUOTE_CHARS`` characters, an
  ellipsis marks a cut), names the case and its phone so the worker can call back,
  and says why it was sent (the keyword, or the flagged survey question).
- Owner alerts are not replies to the participant: they are not ``auto_reply``
  (the loop guard does not count them) and carry no ``case_id`` (they would
  otherwise show in the participant's own conversation). They go through the send
  pipeline like any message, so an opted-out worker's number is not texted.
- Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import logging

from messaging.extensions import db
from messaging.models import Case, MobileWorker, UserGroup
from messaging.sms import outbox

log = logging.getLogger(__name__)

QUOTE_CHARS = 300


def owner_phones(case: Case) -> list[str]:
    """The numbers to text about ``case``: its worker's, or its group's members' (active, with a phone)."""
    if not case.owner_id:
        return []
    worker = db.session.get(MobileWorker, case.owner_id)
    if worker is not None:
        workers = [worker]
    else:
        group = db.session.get(UserGroup, case.owner_id)
        workers = list(group.members) if group is not None else []
    return list(dict.fromkeys(w.phone_number for w in workers if w.is_active and w.phone_number))


def alert_text(case: Case, quoted: str, why: str) -> str:
    """The owner's SMS: who wrote, what (quoted, cut at ``QUOTE_CHARS``) and why they are told."""
    quoted = " ".join((quoted or "").split())
    if len(quoted) > QUOTE_CHARS:
        quoted = quoted[: QUOTE_CHARS - 1].rstrip() + "…"
    who = case.name or "A participant"
    phone = f" ({case.phone_number})" if case.phone_number else ""
    return f'{who}{phone} wrote: "{quoted}" ({why})'


def notify_owner(project_id: int, case: Case | None, quoted: str, why: str) -> int:
    """Text the owner(s) of ``case`` about the participant's message; returns how many were texted."""
    if case is None:
        return 0
    phones = owner_phones(case)
    if not phones:
        log.info("owner alert: nobody to text project_id=%s case_id=%s", project_id, case.case_id)
        return 0
    text = alert_text(case, quoted, why)
    for phone in phones:
        outbox.send_sms(project_id, phone, text, urgent=True)
    log.info("owner alert project_id=%s case_id=%s recipients=%s", project_id, case.case_id, len(phones))
    return len(phones)
