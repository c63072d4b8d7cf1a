"""Opt-outs: the numbers that asked a project to stop sending to them, and each change in the ledger.

Rules:
- An opt-out is per project: a number opted out of one project still gets
  the messages of another.
- Recording one is idempotent: True only when it is new, also when two
  requests record the same number at the same moment. Its ``source`` is one
  of ``OPT_OUT_SOURCES``: a keyword, the gateway's error 21610, the API, a
  case manager (``staff``), or an imported list.
- **Every change is in the consent ledger** (``messaging.sms.consent``): an
  opt-out or opt-in that changes the state writes one event, in the same
  transaction, with the details given (the word and its language, the
  message that proves it, the reason, the web user, the import). A change
  that changes nothing (the number was already in that state) writes no event,
  except a STOP or START word sent by the participant (``source='keyword'``):
  that is their own request, kept as proof of it, with the reason "repeated:
  already opted out" (or "repeated: was not opted out").
- A change of state (not a repeat) is an ``opt_out.changed`` event for the
  project's webhooks (its ledger event's JSON, ``consent.event_json``), in the
  same transaction.
- Undoing an opt-out (``undo_opt_out``) always needs a reason; a number that
  is not opted out is ``NotFound`` (checked first: the number names nothing to undo).
- A search (``search_text``) finds a number however it is spelled, or
  the numbers containing the digits typed.
- Numbers typed by a person (``parse_number``) are read as E.164, else as
  the spellings people and Excel use, in the project's country; anything
  else is ``Invalid`` on the field ``phone``.
- Sending to an opted-out number fails with ``skip_reason='opted_out'`` and
  never calls the gateway, except with ``bypass_opt_out`` (STOP/START
  confirmations).
- The export (``opt_outs_workbook``) lists every opted-out number, oldest
  first, with how it opted out (the event that did it), read in batches.
- Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Iterator

from sqlalchemy import select

from messaging.db.dialect import insert_ignoring_conflicts
from messaging.errors import Invalid, NotFound
from messaging.extensions import db
from messaging.forwarding.capture import capture_events
from messaging.lib import clock
from messaging.lib.phones import normalize_phone
from messaging.lib.redact import mask_phone
from messaging.lib.xlsx import write_report
from messaging.models import OptOut
from messaging.models.forwarding import EventName
from messaging.models.sms import OPT_OUT_SOURCES, ConsentChange, OptOutSource
from messaging.sms import consent
from messaging.sms.e164 import E164

log = logging.getLogger(__name__)

OPT_OUTS = OptOut.__table__
MAX_REASON = 1000
REPEATED_OPT_OUT = "repeated: already opted out"
REPEATED_OPT_IN = "repeated: was not opted out"
EXPORT_HEADERS = ["phone", "opted_out_at", "method", "word", "language", "reason", "message_id"]
EXPORT_BATCH = 1000
# What a search by digits may hold: an optional "+" and up to 15 digits.
SEARCH_DIGITS = re.compile(r"^\+?\d{1,15}$")


def opt_out(  # noqa: PLR0913 - the ledger's details, all keywords
    project_id: int,
    phone: str,
    source: str = "api",
    *,
    word: str | None = None,
    language: str | None = None,
    message_id: int | None = None,
    reason: str | None = None,
    web_user_id: int | None = None,
    import_id: str | None = None,
) -> bool:
    """Record that ``phone`` (E.164) opted out of this project, with its ledger event; True when
    it is new. Does not commit."""
    if source not in OPT_OUT_SOURCES:
        raise ValueError(f"unknown opt-out source {source!r}")
    details = {
        "word": word,
        "language": language,
        "message_id": message_id,
        "reason": reason,
        "web_user_id": web_user_id,
        "import_id": import_id,
    }
    new = not is_opted_out(project_id, phone) and _insert_opt_out(project_id, phone, source)
    if new:
        log.info("opt-out project_id=%s phone=%s source=%s", project_id, mask_phone(phone), source)
    elif source == OptOutSource.KEYWORD:
        details["reason"] = reason or REPEATED_OPT_OUT
    else:
        return False
    event = consent.record(project_id, phone, ConsentChange.OPT_OUT, source, **details)
    if new:
        _tell_webhooks(project_id, [event])
    return new


def _insert_opt_out(project_id: int, phone: str, source: str) -> bool:
    """Insert the opt-out unless it exists (also when another request inserts it at the same
    moment); True when this one did. No savepoint: on SQLite a savepoint opened before the
    transaction's first write commits on release, which would split the opt-out from its event."""
    inserted = db.session.execute(
        insert_ignoring_conflicts(OPT_OUTS, OPT_OUTS.c.project_id, OPT_OUTS.c.phone)
        .values(project_id=project_id, phone=phone, source=source, created_at=clock.now())
        .returning(OPT_OUTS.c.id)
    ).first()
    return inserted is not None


def opt_in(  # noqa: PLR0913 - the ledger's details, all keywords
    project_id: int,
    phone: str,
    source: str = "api",
    *,
    word: str | None = None,
    language: str | None = None,
    message_id: int | None = None,
    reason: str | None = None,
    web_user_id: int | None = None,
    import_id: str | None = None,
) -> bool:
    """Remove ``phone``'s opt-out, with its ledger event; True when there was one. Does not commit."""
    if source not in OPT_OUT_SOURCES:
        raise ValueError(f"unknown opt-in source {source!r}")
    result = db.session.execute(
        OPT_OUTS.delete().where(OPT_OUTS.c.project_id == project_id, OPT_OUTS.c.phone == phone)
    )
    removed = bool(result.rowcount)
    if removed:
        log.info("opt-in project_id=%s phone=%s source=%s", project_id, mask_phone(phone), source)
    elif source == OptOutSource.KEYWORD:
        reason = reason or REPEATED_OPT_IN
    else:
        return False
    event = consent.record(
        project_id,
        phone,
        ConsentChange.OPT_IN,
        source,
        word=word,
        language=language,
        message_id=message_id,
        reason=reason,
        web_user_id=web_user_id,
        import_id=import_id,
    )
    if removed:
        _tell_webhooks(project_id, [event])
    return removed


def opt_out_many(
    project_id: int,
    phones: Iterable[str],
    source: str,
    *,
    web_user_id: int | None = None,
    import_id: str | None = None,
) -> set[str]:
    """Opt out each of ``phones`` that is not opted out yet (an import's batch: a few
    statements, not a few per number), with one ledger event each; returns the new ones
    (not those another request opted out meanwhile). Does not commit."""
    if source not in OPT_OUT_SOURCES:
        raise ValueError(f"unknown opt-out source {source!r}")
    wanted = list(dict.fromkeys(p for p in phones if p))
    already = opted_out_among(project_id, wanted)
    new = [p for p in wanted if p not in already]
    if not new:
        return set()
    now = clock.now()
    inserted = db.session.execute(
        insert_ignoring_conflicts(OPT_OUTS, OPT_OUTS.c.project_id, OPT_OUTS.c.phone).returning(
            OPT_OUTS.c.phone
        ),
        [{"project_id": project_id, "phone": p, "source": source, "created_at": now} for p in new],
    )
    new = [row[0] for row in inserted]  # less any opted out by another request meanwhile
    if not new:
        return set()
    events = consent.record_many(
        project_id, new, ConsentChange.OPT_OUT, source, web_user_id=web_user_id, import_id=import_id
    )
    _tell_webhooks(project_id, events)
    log.info("opt-outs project_id=%s source=%s count=%s", project_id, source, len(new))
    return set(new)


def _tell_webhooks(project_id: int, events: list) -> None:
    """The ``opt_out.changed`` events of these ledger events, for the project's webhooks."""
    capture_events(
        project_id,
        EventName.OPT_OUT_CHANGED,
        [(event.id, event.phone, consent.event_json(event)) for event in events],
    )


def undo_opt_out(
    project_id: int, phone: str, *, reason: str | None, source: str = "staff", web_user_id: int | None = None
) -> None:
    """A case manager (or the API) undoes ``phone``'s opt-out, saying why. ``NotFound`` when it
    is not opted out, ``Invalid`` (field ``reason``) without a reason. Does not commit."""
    if not is_opted_out(project_id, phone):
        raise NotFound("not_found", "This number has not opted out.", field="phone")
    reason = checked_reason(reason)
    if not opt_in(project_id, phone, source, reason=reason, web_user_id=web_user_id):
        raise NotFound("not_found", "This number has not opted out.", field="phone")


def checked_reason(reason: str | None) -> str:
    """``reason`` stripped; ``Invalid`` (field ``reason``) when it is missing or too long."""
    if reason is not None and not isinstance(reason, str):
        raise Invalid("validation_error", "reason: must be a string.", field="reason")
    text = (reason or "").strip()
    if not text:
        raise Invalid(
            "reason_required", "reason: say why (it is kept in the consent history).", field="reason"
        )
    if len(text) > MAX_REASON:
        raise Invalid("validation_error", f"reason: must be at most {MAX_REASON} characters.", field="reason")
    return text


def parse_number(raw: object, region: str | None = None) -> str:
    """``raw`` as E.164: as is when it already is, else read as people and Excel write
    numbers (``0712 345 678`` in a project whose country is ``region``, ``254712345678``);
    ``Invalid`` on the field ``phone`` otherwise."""
    text = raw.replace(" ", "") if isinstance(raw, str) else raw
    if isinstance(text, str) and E164.match(text):
        return text
    phone = normalize_phone(raw, region)
    if phone is None:
        raise Invalid("invalid_phone", "phone: must be a phone number like +254712345678.", field="phone")
    return phone


def search_text(raw: str | None, region: str | None = None) -> str | None:
    """What a search for ``raw`` looks for in the numbers: the number it spells when it is
    one (however spelled), else its digits; None when blank; ``Invalid`` (field ``phone``)
    when it is neither."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return parse_number(text, region)
    except Invalid:
        pass
    digits = text.replace(" ", "")
    if not SEARCH_DIGITS.match(digits):
        raise Invalid(
            "validation_error", "phone: search by digits (with an optional +), like +2547.", field="phone"
        )
    return digits


def is_opted_out(project_id: int, phone: str) -> bool:
    return bool(opted_out_among(project_id, [phone]))


def opted_out_among(project_id: int, phones: Iterable[str]) -> set[str]:
    """The numbers of ``phones`` that opted out of this project (one query)."""
    phones = list({p for p in phones if p})
    if not phones:
        return set()
    rows = db.session.execute(
        select(OPT_OUTS.c.phone).where(OPT_OUTS.c.project_id == project_id, OPT_OUTS.c.phone.in_(phones))
    )
    return {r[0] for r in rows}


def opt_outs_statement(project_id: int, phone_contains: str | None = None):
    """The SELECT of this project's opt-outs, those whose number contains ``phone_contains``
    when given (a search by digits), for a caller that pages them by ``OptOut.id``."""
    stmt = select(OptOut).where(OptOut.project_id == project_id)
    if phone_contains:
        stmt = stmt.where(OptOut.phone.contains(phone_contains, autoescape=True))
    return stmt


def export_rows(project_id: int) -> Iterator[list]:
    """The export's rows (``EXPORT_HEADERS``), oldest opt-out first, read ``EXPORT_BATCH`` at a time."""
    after = 0
    while True:
        stmt = opt_outs_statement(project_id).where(OptOut.id > after)
        page = db.session.execute(stmt.order_by(OptOut.id).limit(EXPORT_BATCH)).scalars().all()
        if not page:
            return
        events = consent.opting_out_events(project_id, [o.phone for o in page])
        for row in page:
            data = consent.opt_out_json(row, events.get(row.phone))
            yield [data[header] for header in EXPORT_HEADERS]
        after = page[-1].id


def opt_outs_workbook(project_id: int) -> bytes:
    """Every opted-out number of the project as an .xlsx (text stays text, never a formula)."""
    buffer = io.BytesIO()
    write_report(buffer, EXPORT_HEADERS, export_rows(project_id), sheet_title="Opt-outs")
    return buffer.getvalue()
