"""The fan-out of one firing: walk its recipient snapshot batch by batch, write and queue the messages.

Rules:
- The job walks the snapshot ``FANOUT_BATCH`` rows at a time, writes the
  message rows in bulk and enqueues their send jobs in bulk. Memory is one
  batch.
- The firing's ``cursor`` moves with a conditional UPDATE in the same
  transaction as the message rows, so a firing job that runs twice (or two
  workers on it) writes each recipient's message once. A job that loses the
  claim (another moved the cursor, or the firing was cancelled) stops.
- Two algorithms, same rows: when every recipient's text is fixed by their
  language (no placeholders, no quiet hours; a survey's first question is)
  the database writes the rows itself, ``SET_FANOUT_BATCH`` recipients a
  statement (``INSERT ... SELECT``, same values and checks as
  ``sms.insert_messages``); else they are built row by row.
- Survey content opens one session per recipient whose message can go
  (closing their open one; an opted-out or invalid number gets its failed
  message and no session); a keyword that opened a session for one of them
  meanwhile makes the batch roll back and run again (at most 5 times).
- The set-based walk closes open sessions only when it must: the job first asks
  once whether any recipient has an open session it did not open itself (another
  firing's, a keyword's). When none has, the batches skip the close: it cost a scan
  of the open sessions per batch, planned on the statistics of a table that the
  walk itself fills (about 2 s of a 100,000-recipient survey). A session a keyword
  opens meanwhile breaks the one-open-session-per-number index: that batch rolls
  back and the walk closes from then on.
- The send jobs are enqueued after the commit; the firing is ``done`` when
  the snapshot is walked.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import String, and_, case, cast, func, insert, literal, null, select, update
from sqlalchemy.exc import IntegrityError

from messaging.broadcasts.content import Content
from messaging.db import dialect
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.segments import count_segments
from messaging.models import Broadcast, BroadcastFiring, BroadcastRecipient, Message, OptOut, SurveySession
from messaging.models.base import new_id
from messaging.sms import e164, optouts, outbox, tuning

FANOUT_BATCH = 2000
# Recipients a batch when the database writes the rows itself (constant text).
SET_FANOUT_BATCH = 2000
FIRINGS = BroadcastFiring.__table__
RECIPIENTS = BroadcastRecipient.__table__
MESSAGES = Message.__table__
SESSIONS = SurveySession.__table__


def constant_bodies(firing_id: str, content: Content) -> dict | None:
    """{language: text} when every recipient's text is fixed by their language (no
    placeholders, no quiet hours; a survey's first question is): then the fan-out is
    set-based; else None (row by row)."""
    if content.needs_context or content.window is not None:
        return None
    if content.survey is not None:
        body_for = content.first_question_for
    elif content.broadcast.text:
        return {None: content.broadcast.text}
    else:
        body_for = content.text_for
    languages = db.session.execute(
        select(RECIPIENTS.c.language).where(RECIPIENTS.c.firing_id == firing_id).distinct()
    ).scalars()
    bodies = {None: body_for(None), **{lang: body_for(lang) for lang in languages}}
    if any(not t.strip() for t in bodies.values()):
        return None  # rare (a deleted survey): the row-by-row path fails them with a reason
    return bodies


def fan_out(b: Broadcast, firing_id: str, content: Content, batch_size: int) -> Counter:
    """Walk the firing's snapshot from its cursor until it is done (or another job has it).

    Returns ``batches``, ``messages`` and ``retries`` (those that happened).
    """
    stats: Counter = Counter()
    closing = content.survey is None or _opened_elsewhere(b, firing_id)
    while True:
        db.session.expire_all()
        row = db.session.execute(
            select(FIRINGS.c.cursor, FIRINGS.c.status).where(FIRINGS.c.id == firing_id)
        ).one()
        cursor, status = row
        if status != "sending":
            break
        batch = _read_batch(firing_id, cursor, batch_size, content)
        if not batch:
            _finish(firing_id)
            break
        try:
            written = fan_out_batch(b, firing_id, cursor, batch, content, closing=closing)
        except IntegrityError:  # a keyword opened a survey session for one of them meanwhile
            db.session.rollback()
            closing = True
            stats["retries"] += 1
            if stats["retries"] > 5:
                raise
            continue
        if written is None:
            db.session.rollback()
            break  # another job moved the cursor, or the firing was cancelled
        stats["batches"] += 1
        stats["messages"] += written
    return stats


class _Window(NamedTuple):
    seq: int  # the last seq of the window
    count: int


def _read_batch(firing_id: str, cursor: int, batch_size: int, content: Content) -> list:
    """The snapshot rows after ``cursor`` (set-based: only the window's last seq and count)."""
    # seq is dense (1..total, row_number() in the snapshot), so the window is the batch. Its
    # upper bound matters: a new firing's id is not in the table's statistics, and with
    # ``seq > cursor`` alone the planner scans and sorts every row left, for every batch.
    window = (
        RECIPIENTS.c.firing_id == firing_id,
        RECIPIENTS.c.seq > cursor,
        RECIPIENTS.c.seq <= cursor + batch_size,
    )
    if content.bodies is not None:  # set-based: the database writes the rows
        last, count = db.session.execute(
            select(func.max(RECIPIENTS.c.seq), func.count()).where(*window)
        ).one()
        return [_Window(last, count)] if count else []
    return db.session.execute(
        select(RECIPIENTS).where(*window).order_by(RECIPIENTS.c.seq).limit(batch_size)
    ).all()


def _finish(firing_id: str) -> None:
    now = clock.now()
    db.session.execute(
        update(FIRINGS)
        .where(FIRINGS.c.id == firing_id, FIRINGS.c.status == "sending")
        .values(status="done", finished_at=now, updated_at=now)
    )
    db.session.commit()


def _claim(
    firing_id: str, cursor: int, last: int, processed: int, now: datetime, messages: int | None = None
) -> bool:
    """Move the cursor from ``cursor`` to ``last``: False when another job moved it first."""
    values = {"cursor": last, "processed": FIRINGS.c.processed + processed}
    if messages is not None:
        values["messages"] = FIRINGS.c.messages + messages
    values["updated_at"] = now
    return (
        db.session.execute(
            update(FIRINGS)
            .where(FIRINGS.c.id == firing_id, FIRINGS.c.cursor == cursor, FIRINGS.c.status == "sending")
            .values(**values)
        ).rowcount
        == 1
    )


def _opened_elsewhere(b: Broadcast, firing_id: str) -> bool:
    """Whether a recipient of the firing has an open survey session this firing did not open."""
    r, s = RECIPIENTS, SESSIONS
    started = select(FIRINGS.c.started_at).where(FIRINGS.c.id == firing_id).scalar_subquery()
    theirs = and_(s.c.broadcast_id == b.id, s.c.started_at >= func.coalesce(started, s.c.started_at))
    found = db.session.execute(
        select(s.c.id)
        .join(r, and_(r.c.phone == s.c.phone, r.c.firing_id == firing_id))
        .where(s.c.project_id == b.project_id, s.c.status == "open", ~theirs)
        .limit(1)
    ).first()
    return found is not None


def fan_out_batch(
    b: Broadcast, firing_id: str, cursor: int, batch, content: Content, *, closing: bool = True
) -> int | None:
    """Claim this batch (move the cursor) and write its messages in one transaction.
    ``closing``: close the recipients' open survey sessions first (see the module docstring).

    Returns how many messages were written, or None when the claim was lost.
    """
    if content.bodies is not None:
        return _fan_out_range(b, firing_id, cursor, batch[0], content, closing=closing)
    now = clock.now()
    sendable = [r for r in batch if r.skip_reason is None]
    if not _claim(firing_id, cursor, batch[-1].seq, len(batch), now, messages=len(sendable)):
        return None
    tz_cache: dict = {}
    rows = []
    if content.survey is not None:
        rows = _open_sessions(b, content, sendable, now, tz_cache)
    else:
        contexts = content.contexts(sendable)
        for r in sendable:
            text = content.render(r, contexts).text if content.needs_context else content.text_for(r.language)
            rows.append(
                {
                    "case_id": r.case_pk,
                    "phone": r.phone,
                    "body": text,
                    "broadcast_id": b.id,
                    "firing_id": firing_id,
                    "due_at": content.due_at(r.phone, now, tz_cache),
                }
            )
    result = outbox.QueueResult()
    send_jobs = outbox.insert_messages(b.project_id, rows, result) if rows else []
    db.session.commit()
    outbox.enqueue_send_jobs(b.project_id, send_jobs)
    return len(rows)


def _open_sessions(b: Broadcast, content: Content, sendable, now: datetime, tz_cache: dict) -> list[dict]:
    """Survey content: one open session per recipient (closing their open one), first question queued."""
    from messaging.surveys import starting, state

    if not sendable:
        return []
    session_rows, message_rows = [], []
    opted = optouts.opted_out_among(b.project_id, [r.phone for r in sendable])
    for r in sendable:
        due = content.due_at(r.phone, now, tz_cache)
        message = {
            "case_id": r.case_pk,
            "phone": r.phone,
            "body": content.first_question_for(r.language),
            "broadcast_id": b.id,
            "firing_id": r.firing_id,
            "due_at": due,
        }
        message_rows.append(message)
        if r.phone in opted or not e164.E164.match(r.phone or ""):  # its message fails, with no session
            continue
        # Reminders and expiry count from when the first question goes out (quiet hours may defer it).
        timings = state.survey_timings(content.survey, due or now)
        row = starting.new_session_row(
            b.project_id,
            content.survey.id,
            r.case_pk,
            r.phone,
            source="broadcast",
            broadcast_id=b.id,
            now=now,
            timings=timings,
        )
        session_rows.append(row)
        message["survey_session_id"] = row["id"]
    starting.close_open_sessions([row["phone"] for row in session_rows], "replaced")
    if session_rows:
        dialect.insert_each(SESSIONS, session_rows, returning=(SESSIONS.c.id,))
    return message_rows


def _fan_out_range(
    b: Broadcast, firing_id: str, cursor: int, window: _Window, content: Content, *, closing: bool = True
) -> int | None:
    """Set-based :func:`fan_out_batch`: claim seq (cursor, last] and write its messages with
    one INSERT ... SELECT (same values and checks as ``sms.insert_messages``); a survey's
    sessions first, with one UPDATE (closing the numbers' open ones) and one INSERT ... SELECT."""
    now = clock.now()
    last = window.seq
    if not _claim(firing_id, cursor, last, window.count, now):
        return None
    bodies = content.bodies
    r, opt = RECIPIENTS, OptOut.__table__
    valid = r.c.phone.regexp_match(e164.E164.pattern)
    opted = opt.c.id.is_not(None)
    src = (
        select(
            r.c.seq,
            r.c.case_pk,
            r.c.phone,
            r.c.language,
            valid.label("valid"),
            opted.label("opted"),
            func.row_number().over(partition_by=and_(valid, ~opted), order_by=r.c.seq).label("n"),
        )
        .select_from(r.outerjoin(opt, and_(opt.c.project_id == b.project_id, opt.c.phone == r.c.phone)))
        .where(r.c.firing_id == firing_id, r.c.seq > cursor, r.c.seq <= last, r.c.skip_reason.is_(None))
        .subquery("src")
    )
    ok = and_(src.c.valid, ~src.c.opted)
    session_id = null()
    if content.survey is not None:
        session_ids = dialect.derived_ids(new_id(), src.c.seq)
        _open_window_sessions(b, content, src, ok, session_ids, now, closing=closing)
        session_id = case((ok, session_ids), else_=null())

    def by_language(values: dict):
        default = values.pop(None)
        if not values or all(v == default for v in values.values()):
            return literal(default)
        return case(*((src.c.language == lang, v) for lang, v in values.items()), else_=literal(default))

    infos = {lang: count_segments(text) for lang, text in bodies.items()}
    per_job = tuning.batch_size()
    prefix = "sms-" + new_id()[:24] + "-"
    columns = {
        "project_id": literal(b.project_id),
        "direction": literal("outbound"),
        "case_id": src.c.case_pk,
        "phone": func.substr(src.c.phone, 1, 20),
        "to_number": func.substr(src.c.phone, 1, 40),
        "body": by_language(dict(bodies)),
        "segments": by_language({k: i.segments for k, i in infos.items()}),
        "encoding": by_language({k: i.encoding for k, i in infos.items()}),
        "status": case((ok, "queued"), else_="failed"),
        "broadcast_id": literal(b.id),
        "firing_id": literal(firing_id),
        "survey_session_id": session_id,
        "bypass_opt_out": literal(False),
        "attempts": literal(0),
        "job_id": case((ok, literal(prefix) + cast((src.c.n - 1) // per_job, String)), else_=null()),
        "skip_reason": case((~src.c.valid, "invalid_number"), (src.c.opted, "opted_out"), else_=null()),
        "error_message": case(
            (~src.c.valid, literal("'") + src.c.phone + literal("' is not an E.164 phone number.")),
            (src.c.opted, "The recipient has opted out; not sent."),
            else_=null(),
        ),
        "created_at": literal(now),
        "queued_at": literal(now),
        "failed_at": case((ok, null()), else_=literal(now)),
        "updated_at": literal(now),
    }
    written = db.session.execute(
        insert(MESSAGES)
        .from_select(list(columns), select(*columns.values()))
        .returning(MESSAGES.c.id, MESSAGES.c.job_id)
    ).all()
    db.session.execute(
        update(FIRINGS).where(FIRINGS.c.id == firing_id).values(messages=FIRINGS.c.messages + len(written))
    )
    by_job: dict[str, list[int]] = {}
    for message_id, job_id in written:
        if job_id is not None:
            by_job.setdefault(job_id, []).append(message_id)
    send_jobs = [
        (job_id, sorted(ids))
        for job_id, ids in sorted(by_job.items(), key=lambda kv: int(kv[0].rsplit("-", 1)[1]))
    ]
    db.session.commit()
    outbox.enqueue_send_jobs(b.project_id, send_jobs)
    return len(written)


def _open_window_sessions(
    b: Broadcast, content: Content, src, ok, session_ids, now: datetime, *, closing: bool = True
) -> None:
    """One open session per sendable recipient of the window (ids ``session_ids``, which the
    messages compute too), their open ones closed first (reason ``replaced``) when ``closing``."""
    from messaging.surveys import starting, state

    if closing:
        # The numbers are read, then matched by value: a subquery here would be planned against
        # the sessions table's statistics of before the fan-out (empty), one scan per number.
        phones = db.session.execute(select(src.c.phone).where(ok)).scalars().all()
        starting.close_open_sessions(phones, "replaced")
    timings = state.survey_timings(content.survey, now)
    columns = {
        "id": session_ids,
        "project_id": literal(b.project_id),
        "survey_id": literal(content.survey.id),
        "case_pk": src.c.case_pk,
        "phone": src.c.phone,
        "status": literal("open"),
        "current_index": literal(0),
        "answers": dialect.constant({}, SESSIONS.c.answers),
        "invalid_attempts": literal(0),
        "reminders_sent": literal(0),
        "source": literal("broadcast"),
        "broadcast_id": literal(b.id),
        "started_at": literal(now),
        "last_activity_at": literal(now),
        "expires_at": dialect.constant(timings["expires_at"], SESSIONS.c.expires_at),
        "reminder_due_at": dialect.constant(timings["reminder_due_at"], SESSIONS.c.reminder_due_at),
    }
    db.session.execute(insert(SESSIONS).from_select(list(columns), select(*columns.values()).where(ok)))
