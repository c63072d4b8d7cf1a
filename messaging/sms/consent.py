"""The consent ledger: every change of a number's consent, as an append-only event.

Rules:
- An event says what changed (``ConsentChange``: ``opt_out``, ``opt_in``, or
  ``exception``, one message let through to an opted-out number), how
  (``method``, an ``OptOutSource``: ``keyword``, ``gateway_21610``, ``api``,
  ``staff``, ``import``), when, by whom (``web_user_id``: the case manager or
  the API token's user), and what proves it: the message (``message_id``: the
  STOP the participant sent, the message the gateway refused with 21610), the
  word and its language, a reason, the import.
- Events are only ever inserted: nothing here (or anywhere) updates or
  deletes one. The current state stays in ``opt_outs`` (``messaging.sms.optouts``
  writes both, in one transaction).
- Nothing here commits: the event is written in the caller's transaction, so
  it exists exactly when the change it records does.
- ``history`` is oldest first: the order in which things happened.
- ``opting_out_events``: for each opted-out number, the event that opted it
  out, i.e. the first ``opt_out`` event after its last ``opt_in`` (a repeated
  STOP is recorded too, but did not opt the number out). A number opted out
  before the ledger existed has none.
- A case manager's exception (``record_exception``) is recorded as it is
  asked: the caller checks the number is opted out and sends the message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select

from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.redact import mask_phone
from messaging.models import ConsentEvent
from messaging.models.sms import CONSENT_CHANGES, OPT_OUT_SOURCES, ConsentChange, OptOutSource

log = logging.getLogger(__name__)

# Longest word kept (the column's size): a longer "word" is not one of ours anyway.
MAX_WORD = 40


def record(  # noqa: PLR0913 - one keyword per column of the ledger
    project_id: int,
    phone: str,
    change: str,
    method: str,
    *,
    word: str | None = None,
    language: str | None = None,
    reason: str | None = None,
    message_id: int | None = None,
    web_user_id: int | None = None,
    import_id: str | None = None,
) -> ConsentEvent:
    """Append one event to the ledger (flushed, not committed) and return it."""
    if change not in CONSENT_CHANGES:
        raise ValueError(f"unknown consent change {change!r}")
    if method not in OPT_OUT_SOURCES:
        raise ValueError(f"unknown consent method {method!r}")
    event = ConsentEvent(
        project_id=project_id,
        phone=phone,
        change=change,
        method=method,
        word=(word or None) and word[:MAX_WORD],
        language=language or None,
        reason=reason or None,
        message_id=message_id,
        web_user_id=web_user_id,
        import_id=import_id,
        created_at=clock.now(),
    )
    db.session.add(event)
    db.session.flush()
    log.info(
        "consent event project_id=%s phone=%s change=%s method=%s message_id=%s",
        project_id,
        mask_phone(phone),
        change,
        method,
        message_id,
    )
    return event


def record_many(
    project_id: int, phones: Iterable[str], change: str, method: str, **details
) -> list[ConsentEvent]:
    """Append the same change for each of ``phones`` (one flush; an import's batch). No commit."""
    if change not in CONSENT_CHANGES or method not in OPT_OUT_SOURCES:
        raise ValueError(f"unknown consent change or method {change!r} {method!r}")
    now = clock.now()
    events = [
        ConsentEvent(
            project_id=project_id, phone=phone, change=change, method=method, created_at=now, **details
        )
        for phone in phones
    ]
    db.session.add_all(events)
    db.session.flush()
    return events


def record_exception(
    project_id: int, phone: str, *, web_user_id: int | None, message_id: int | None, reason: str | None = None
) -> ConsentEvent:
    """A case manager confirmed one message to an opted-out number: the ``exception`` event
    (method ``staff``) naming the message and who confirmed it. Does not commit."""
    return record(
        project_id,
        phone,
        ConsentChange.EXCEPTION,
        OptOutSource.STAFF,
        reason=reason,
        message_id=message_id,
        web_user_id=web_user_id,
    )


def history(project_id: int, phone: str) -> list[ConsentEvent]:
    """The number's events in this project, oldest first."""
    return list(
        db.session.execute(
            select(ConsentEvent)
            .where(ConsentEvent.project_id == project_id, ConsentEvent.phone == phone)
            .order_by(ConsentEvent.id)
        ).scalars()
    )


def history_statement(project_id: int, phone: str):
    """The SELECT of the number's events (for a caller that pages them by ``ConsentEvent.id``)."""
    return select(ConsentEvent).where(ConsentEvent.project_id == project_id, ConsentEvent.phone == phone)


def has_history(project_id: int, phone: str) -> bool:
    """Whether the ledger holds any event of this number in this project."""
    found = db.session.execute(
        select(ConsentEvent.id)
        .where(ConsentEvent.project_id == project_id, ConsentEvent.phone == phone)
        .limit(1)
    ).first()
    return found is not None


def opting_out_events(project_id: int, phones: Iterable[str]) -> dict[str, ConsentEvent]:
    """For each of ``phones``, the event that opted it out (see the module docstring); a number
    without one (never opted out, or opted out before the ledger) is absent. One query."""
    phones = list(set(phones))
    if not phones:
        return {}
    events = db.session.execute(
        select(ConsentEvent)
        .where(
            ConsentEvent.project_id == project_id,
            ConsentEvent.phone.in_(phones),
            ConsentEvent.change.in_((ConsentChange.OPT_OUT.value, ConsentChange.OPT_IN.value)),
        )
        .order_by(ConsentEvent.id)
    ).scalars()
    found: dict[str, ConsentEvent] = {}
    for event in events:
        if event.change == ConsentChange.OPT_IN:
            found.pop(event.phone, None)
        else:
            found.setdefault(event.phone, event)
    return found


def event_json(event: ConsentEvent) -> dict:
    """One event as the API shows it."""
    return {
        "id": event.id,
        "phone": event.phone,
        "change": event.change,
        "method": event.method,
        "word": event.word,
        "language": event.language,
        "reason": event.reason,
        "message_id": event.message_id,
        "web_user_id": event.web_user_id,
        "import_id": event.import_id,
        "created_at": clock.isoformat(event.created_at),
    }


def opt_out_json(opt_out, event: ConsentEvent | None) -> dict:
    """One opted-out number (an ``OptOut`` row) with the event that opted it out, if recorded."""
    return {
        "phone": opt_out.phone,
        "opted_out_at": clock.isoformat(opt_out.created_at),
        "method": opt_out.source,
        "source": opt_out.source,
        "word": event.word if event else None,
        "language": event.language if event else None,
        "reason": event.reason if event else None,
        "message_id": event.message_id if event else None,
        "web_user_id": event.web_user_id if event else None,
        "import_id": event.import_id if event else None,
    }
