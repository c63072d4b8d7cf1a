"""Broadcasts: content to recipients now, once later, or on a repeating schedule.

Rules (the API, the web UI, the jobs and the tests all call these functions):

- **Recipients** are case groups, single cases, mobile workers and user groups
  (their members). A case found twice (in two groups, or in a group and by
  itself) is one recipient. Each recipient is sent to, or skipped with a
  reason, in this order: ``closed_case`` (closed or deleted), ``no_phone``,
  ``invalid_number``, ``duplicate_phone`` (another recipient of this send has
  the same number: the first, in a stable order, gets it), ``opted_out``.
- **Content** is an SMS text with placeholders (``{case.name}``,
  ``{case.<property>}``, ``{user.username}``), or translations chosen by the
  recipient's language (exact, then base language, then the default), or an
  SMS survey (the first question goes out and a session opens).
- **When**: now; once at ``send_at``; or ``repeat`` (daily, weekly on chosen
  days, monthly) in local time, stable across DST (:mod:`messaging.lib.schedule`),
  with an end date. Each firing is its own send (a ``broadcast_firings`` row,
  unique per broadcast and instant) with its own counts. A scheduler that was
  down fires a repeating broadcast once for the latest missed instant, never
  once per missed day.
- **Fan-out**: when a firing starts, its recipients are snapshotted in one
  ``INSERT ... SELECT`` (with their skip reasons) into
  ``broadcast_recipients``; the job then walks the snapshot ``FANOUT_BATCH``
  rows at a time, writes the message rows in bulk and enqueues their send jobs
  in bulk. The firing's ``cursor`` moves with a conditional UPDATE in the same
  transaction as the message rows, so a firing job that runs twice (or two
  workers on it) writes each recipient's message once. Memory is one batch.
- **Quiet hours** (optional): a message due outside the window in the
  recipient's local time (zone from the phone number, else the project's)
  gets ``due_at`` at the next opening; the SMS sweep sends it then.
- **Cancel** stops future firings and fails every message not yet claimed by
  a sender (``skip_reason='cancelled'``); messages already at the gateway go on.
- **Edit / delete**: a broadcast can be edited while it is scheduled, and
  deleted until it has fired once (then cancel it instead).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from messaging import jobs
from messaging.db.after_commit import after_commit
from messaging.db.tenancy import current_project_id, project_scope
from messaging.errors import Conflict, Invalid, NotFound
from messaging.extensions import db
from messaging.lib import clock, schedule, templating
from messaging.lib.localtime import get_zone, local_to_utc, utc_to_local
from messaging.lib.quiet_hours import QuietHours, next_allowed, recipient_timezone
from messaging.lib.segments import count_segments
from messaging.models import (
    Broadcast,
    BroadcastFiring,
    BroadcastRecipient,
    Case,
    CaseGroup,
    CaseGroupMember,
    GroupMembership,
    Message,
    MobileWorker,
    OptOut,
    Project,
    Survey,
    SurveySession,
    UserGroup,
)
from messaging.models.base import new_id
from messaging.sms import service as sms

log = logging.getLogger(__name__)

FANOUT_BATCH = 500
# Recipients a batch when the database writes the rows itself (constant text, PostgreSQL).
SET_FANOUT_BATCH = 2000
MAX_TEXT = 1600
MAX_NAME = 200
RECIPIENT_KINDS = ("case_groups", "cases", "users", "groups")
MAX_IDS = 1000
# Preview renders at most this many recipients to report missing placeholders and segments.
PREVIEW_RENDER_LIMIT = 5000
# A firing whose job has not moved it for this long is enqueued again (safe: the cursor claims).
FIRING_STALE_SECONDS = 120
STATUSES = ("scheduled", "sending", "sent", "cancelled")
FIRINGS = BroadcastFiring.__table__
RECIPIENTS = BroadcastRecipient.__table__
MESSAGES = Message.__table__


def _invalid(field: str, message: str, **details) -> Invalid:
    return Invalid("validation_error", f"{field}: {message}", details={"field": field, **details})


# --- the broadcast's definition ----------------------------------------------------


def parse_spec(project: Project, body: Mapping[str, Any], current: Broadcast | None = None) -> dict:
    """Validate an API/web body into the broadcast's fields; ``Invalid`` names the field.

    With ``current`` (an edit), missing fields keep their current values.
    """
    if not isinstance(body, Mapping):
        raise Invalid("invalid_json", "The request body must be a JSON object.")
    base = _spec_of(current) if current is not None else {}
    merged = {**base, **{k: v for k, v in body.items()}}
    spec: dict[str, Any] = {}

    name = merged.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("name", "is required.")
    if len(name.strip()) > MAX_NAME:
        raise _invalid("name", f"must be at most {MAX_NAME} characters.")
    spec["name"] = name.strip()
    spec["recipients"] = _parse_recipients(merged.get("recipients"))

    content = [k for k in ("text", "translations", "survey_id") if merged.get(k) not in (None, "", {})]
    if current is not None and any(
        body.get(k) not in (None, "", {}) for k in ("text", "translations", "survey_id")
    ):
        content = [k for k in ("text", "translations", "survey_id") if body.get(k) not in (None, "", {})]
    if len(content) != 1:
        raise _invalid("text", "give exactly one of text, translations or survey_id.")
    spec.update(text=None, translations={}, default_language=None, survey_id=None)
    if content == ["text"]:
        spec["text"] = _parse_text("text", merged["text"])
    elif content == ["translations"]:
        translations = merged["translations"]
        if not isinstance(translations, Mapping) or not translations:
            raise _invalid("translations", "must be an object of language code to text.")
        clean = {}
        for lang, text in translations.items():
            if not isinstance(lang, str) or not lang.strip() or len(lang.strip()) > 16:
                raise _invalid("translations", f"{lang!r} is not a language code such as en or sw.")
            clean[lang.strip()] = _parse_text(f"translations.{lang.strip()}", text)
        default = merged.get("default_language") or ("en" if "en" in clean else next(iter(clean)))
        if not isinstance(default, str):
            raise _invalid("default_language", "must be a language code.")
        try:
            templating.choose_text(clean, default, None)
        except ValueError:
            message = f"there is no text for the default language {default!r}."
            raise _invalid("default_language", message) from None
        spec["translations"], spec["default_language"] = clean, default
    else:
        survey_id = merged["survey_id"]
        if not isinstance(survey_id, str):
            raise _invalid("survey_id", "must be a survey id.")
        if db.session.execute(select(Survey.id).where(Survey.id == survey_id)).first() is None:
            raise NotFound(
                "not_found", f"There is no survey '{survey_id}' in this project.", field="survey_id"
            )
        spec["survey_id"] = survey_id

    spec.update(_parse_timing(project, merged, body if current is not None else None))
    spec.update(_parse_quiet_hours(merged.get("quiet_hours")))
    return spec


def _spec_of(b: Broadcast) -> dict:
    return {
        "name": b.name,
        "recipients": b.recipients,
        "text": b.text,
        "translations": b.translations or None,
        "default_language": b.default_language,
        "survey_id": b.survey_id,
        "send_at": clock.isoformat(b.send_at) if b.send_at and not b.schedule else None,
        "repeat": b.schedule,
        "quiet_hours": {"start": b.quiet_start, "end": b.quiet_end} if b.quiet_start else None,
    }


def _parse_text(field: str, text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise _invalid(field, "must be a non-empty text.")
    if len(text) > MAX_TEXT:
        raise _invalid(field, f"must be at most {MAX_TEXT} characters.")
    problems = templating.validate_template(text)
    if problems:
        raise Invalid(
            "invalid_template", f"{field}: {problems[0]}", details={"field": field, "problems": problems}
        )
    return text


def _parse_recipients(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, Mapping):
        raise _invalid("recipients", "must be an object with case_groups, cases, users and/or groups.")
    unknown = [k for k in raw if k not in RECIPIENT_KINDS]
    if unknown:
        raise _invalid("recipients", f"unknown key {unknown[0]!r}; use {', '.join(RECIPIENT_KINDS)}.")
    clean: dict[str, list[str]] = {}
    for kind in RECIPIENT_KINDS:
        ids = raw.get(kind) or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _invalid(f"recipients.{kind}", "must be a list of ids.")
        if len(ids) > MAX_IDS:
            raise _invalid(f"recipients.{kind}", f"must list at most {MAX_IDS} ids.")
        clean[kind] = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    if not any(clean.values()):
        raise _invalid("recipients", "choose at least one case group, case, mobile worker or user group.")
    lookups = {
        "case_groups": (CaseGroup.id, "case group"),
        "cases": (Case.case_id, "case"),
        "users": (MobileWorker.id, "mobile worker"),
        "groups": (UserGroup.id, "user group"),
    }
    for kind, (column, label) in lookups.items():
        if not clean[kind]:
            continue
        found = set(db.session.execute(select(column).where(column.in_(clean[kind]))).scalars())
        missing = [i for i in clean[kind] if i not in found]
        if missing:
            raise NotFound(
                "not_found",
                f"There is no {label} '{missing[0]}' in this project.",
                details={"field": f"recipients.{kind}", "ids": missing[:20]},
            )
    return clean


def _parse_timing(project: Project, merged: Mapping, edit_body: Mapping | None) -> dict:
    now = clock.now()
    send_at_raw, repeat = merged.get("send_at"), merged.get("repeat")
    if edit_body is not None:  # an edit that gives one of them replaces the other
        if edit_body.get("send_at") not in (None, ""):
            repeat = None
        elif edit_body.get("repeat") not in (None, {}):
            send_at_raw = None
    if send_at_raw not in (None, "") and repeat not in (None, {}):
        raise _invalid("send_at", "give send_at (once) or repeat (a schedule), not both.")
    if repeat not in (None, {}):
        if not isinstance(repeat, Mapping):
            raise _invalid("repeat", "must be a schedule object.")
        data = dict(repeat)
        data.setdefault("timezone", project.timezone or "UTC")
        if data.get("start_date") in (None, ""):
            zone = (
                data["timezone"]
                if isinstance(data["timezone"], str) and _zone_ok(data["timezone"])
                else "UTC"
            )
            data["start_date"] = utc_to_local(now, get_zone(zone)).date().isoformat()
        try:
            rec = schedule.from_dict(data)
        except schedule.RecurrenceError as exc:
            field = f"repeat.{exc.field}" if exc.field else "repeat"
            raise _invalid(field, str(exc).split(": ", 1)[-1]) from None
        first = schedule.next_firing(rec, now)
        if first is None:
            raise _invalid("repeat", "this schedule has no firing left (its end date has passed).")
        return {"schedule": schedule.to_dict(rec), "send_at": None, "next_fire_at": first}
    if send_at_raw not in (None, ""):
        if not isinstance(send_at_raw, str):
            raise _invalid("send_at", "must be an ISO 8601 time such as 2026-12-24T07:00:00Z.")
        try:
            send_at = clock.parse_iso(send_at_raw)
        except ValueError:
            raise _invalid("send_at", "must be an ISO 8601 time such as 2026-12-24T07:00:00Z.") from None
        if send_at < now - timedelta(seconds=60):
            raise _invalid("send_at", "is in the past; leave it out to send now.")
        return {"schedule": None, "send_at": send_at, "next_fire_at": max(send_at, now)}
    return {"schedule": None, "send_at": None, "next_fire_at": None}


def _zone_ok(name: str) -> bool:
    try:
        get_zone(name)
    except ValueError:
        return False
    return True


def _parse_quiet_hours(raw: Any) -> dict:
    if raw in (None, {}, ""):
        return {"quiet_start": None, "quiet_end": None}
    if not isinstance(raw, Mapping):
        raise _invalid("quiet_hours", "must be an object {start, end} with local times such as 08:00.")
    parsed = {}
    for key in ("start", "end"):
        value = raw.get(key)
        try:
            hour, minute = (int(p) for p in str(value).strip().split(":"))
            parsed[key] = time(hour, minute)
        except (ValueError, TypeError):
            raise _invalid(f"quiet_hours.{key}", "must be a local time such as 08:00.") from None
    try:
        QuietHours(parsed["start"], parsed["end"])
    except ValueError as exc:
        raise _invalid("quiet_hours", str(exc)) from None
    return {"quiet_start": parsed["start"].strftime("%H:%M"), "quiet_end": parsed["end"].strftime("%H:%M")}


def quiet_window(b: Broadcast) -> QuietHours | None:
    if not b.quiet_start or not b.quiet_end:
        return None
    start, end = (time(*map(int, v.split(":"))) for v in (b.quiet_start, b.quiet_end))
    return QuietHours(start, end)


def create_broadcast(project: Project, body: Mapping, user_id: int | None = None) -> Broadcast:
    """Create a broadcast; one to send now gets its firing at once. No commit (the job is
    enqueued when the caller commits)."""
    spec = parse_spec(project, body)
    b = Broadcast(project_id=project.id, created_by=user_id, created_at=clock.now(), updated_at=clock.now())
    _apply_spec(b, spec)
    db.session.add(b)
    db.session.flush()
    if b.next_fire_at is None:
        _new_firing(b, clock.now())
    log.info(
        "broadcast created project_id=%s broadcast_id=%s next_fire_at=%s", project.id, b.id, b.next_fire_at
    )
    return b


def _apply_spec(b: Broadcast, spec: dict) -> None:
    for key, value in spec.items():
        setattr(b, key, value)
    b.updated_at = clock.now()


def update_broadcast(project: Project, b: Broadcast, body: Mapping) -> Broadcast:
    """Edit a scheduled broadcast (its next firings change). No commit."""
    if broadcast_status(b) != "scheduled":
        raise Conflict(
            "not_editable",
            f"Only a scheduled broadcast can be edited; this one has status '{broadcast_status(b)}'.",
        )
    spec = parse_spec(project, body, current=b)
    if spec["next_fire_at"] is None:
        raise _invalid("send_at", "an edit keeps the broadcast scheduled: give send_at or repeat.")
    _apply_spec(b, spec)
    db.session.flush()
    return b


def delete_broadcast(b: Broadcast) -> None:
    """Delete a broadcast that has never fired. No commit."""
    fired = db.session.execute(select(func.count()).where(FIRINGS.c.broadcast_id == b.id)).scalar_one()
    if fired:
        raise Conflict("already_fired", "This broadcast has already been sent; cancel it instead.")
    db.session.delete(b)
    db.session.flush()


def cancel_broadcast(b: Broadcast) -> dict:
    """Stop future firings and everything not yet handed to the gateway. No commit."""
    now = clock.now()
    if b.cancelled_at is None:
        b.cancelled_at = now
    b.next_fire_at = None
    b.updated_at = now
    firings = db.session.execute(
        update(FIRINGS)
        .where(FIRINGS.c.broadcast_id == b.id, FIRINGS.c.status.in_(("pending", "sending")))
        .values(status="cancelled", finished_at=now, updated_at=now)
    ).rowcount
    messages = sms.cancel_messages(b.project_id, b.id)
    sessions = db.session.execute(
        update(SurveySession)
        .where(
            SurveySession.broadcast_id == b.id,
            SurveySession.status == "open",
            SurveySession.current_index == 0,
        )
        .values(status="cancelled", end_reason="broadcast_cancelled", ended_at=now, reminder_due_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    log.info(
        "broadcast cancelled project_id=%s broadcast_id=%s firings=%s messages=%s sessions=%s",
        b.project_id,
        b.id,
        firings,
        messages,
        sessions,
    )
    return {"firings": firings, "messages": messages}


# --- firing ------------------------------------------------------------------------


def _new_firing(b: Broadcast, fire_at: datetime) -> BroadcastFiring | None:
    """Insert the firing of ``b`` at ``fire_at`` (once: a duplicate is ignored); job after commit."""
    firing = BroadcastFiring(
        id=new_id(),
        project_id=b.project_id,
        broadcast_id=b.id,
        fire_at=fire_at,
        status="pending",
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(firing)
            db.session.flush()
    except IntegrityError:
        log.info("firing exists already broadcast_id=%s fire_at=%s", b.id, fire_at)
        return None
    after_commit(enqueue_firing, b.project_id, firing.id)
    return firing


def enqueue_firing(project_id: int, firing_id: str) -> None:
    """Enqueue the fan-out job; a Redis error is logged (the tick enqueues stale firings again)."""
    try:
        jobs.enqueue(jobs.RUN_FIRING, project_id, firing_id, job_id=f"firing-{firing_id}-{new_id()[:8]}")
    except Exception:
        log.exception(
            "enqueue failed project_id=%s firing_id=%s (the tick will retry)", project_id, firing_id
        )


def tick(now: datetime | None = None, limit: int = 200) -> dict:
    """Periodic: start the firings that are due; enqueue again firings whose job went quiet."""
    now = now or clock.now()
    stats = Counter()
    due = db.session.execute(
        select(Broadcast.id, Broadcast.project_id, Broadcast.next_fire_at)
        .where(Broadcast.next_fire_at <= now, Broadcast.cancelled_at.is_(None))
        .order_by(Broadcast.next_fire_at)
        .limit(limit)
        .execution_options(all_projects=True)
    ).all()
    for broadcast_id, project_id, fire_at in due:
        with project_scope(project_id):
            try:
                if _fire_due(broadcast_id, fire_at, now):
                    stats["fired"] += 1
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception(
                    "firing failed to start project_id=%s broadcast_id=%s", project_id, broadcast_id
                )
                stats["errors"] += 1
    stale = db.session.execute(
        select(FIRINGS.c.id, FIRINGS.c.project_id)
        .where(
            FIRINGS.c.status.in_(("pending", "sending")),
            FIRINGS.c.updated_at < now - timedelta(seconds=FIRING_STALE_SECONDS),
        )
        .limit(limit)
    ).all()
    for firing_id, project_id in stale:
        db.session.execute(update(FIRINGS).where(FIRINGS.c.id == firing_id).values(updated_at=now))
        db.session.commit()
        enqueue_firing(project_id, firing_id)
        stats["requeued"] += 1
    return dict(stats)


def _fire_due(broadcast_id: str, fire_at: datetime, now: datetime) -> bool:
    b = db.session.get(Broadcast, broadcast_id)
    rec = schedule.from_dict(b.schedule) if b.schedule else None
    following = schedule.next_firing(rec, now) if rec else None
    if rec is not None:
        # Missed several instants (the scheduler was down): fire once, for the latest.
        missed = schedule.firings_between(rec, fire_at, now, limit=10_000)
        if missed:
            log.info("broadcast missed firings broadcast_id=%s skipped=%s", broadcast_id, len(missed))
            fire_at = missed[-1]
    claimed = db.session.execute(
        update(Broadcast.__table__)
        .where(Broadcast.__table__.c.id == broadcast_id, Broadcast.__table__.c.next_fire_at == b.next_fire_at)
        .values(next_fire_at=following, updated_at=now)
    ).rowcount
    if claimed != 1:
        return False  # another scheduler took it
    return _new_firing(b, fire_at) is not None


def _recipients_select(project_id: int, recipients: Mapping[str, list[str]]):
    """One SELECT of every recipient with its skip reason, in a stable order (``seq``)."""
    groups, case_ids = recipients.get("case_groups") or [], recipients.get("cases") or []
    users, user_groups = recipients.get("users") or [], recipients.get("groups") or []
    parts = []
    if groups or case_ids:
        conditions = []
        if groups:
            conditions.append(
                Case.id.in_(select(CaseGroupMember.case_pk).where(CaseGroupMember.group_id.in_(groups)))
            )
        if case_ids:
            conditions.append(Case.case_id.in_(case_ids))
        parts.append(
            select(
                literal(0).label("kind"),
                Case.id.label("case_pk"),
                cast(null(), String(32)).label("worker_id"),
                Case.phone_number.label("e164"),
                Case.phone_raw.label("raw"),
                or_(Case.closed, Case.deleted).label("closed"),
                Case.language.label("language"),
            ).where(Case.__table__.c.project_id == project_id, or_(*conditions))
        )
    if users or user_groups:
        conditions = []
        if users:
            conditions.append(MobileWorker.id.in_(users))
        if user_groups:
            conditions.append(
                MobileWorker.id.in_(
                    select(GroupMembership.user_id).where(GroupMembership.group_id.in_(user_groups))
                )
            )
        phone = MobileWorker.phone_number
        parts.append(
            select(
                literal(1).label("kind"),
                cast(null(), BigInteger).label("case_pk"),
                MobileWorker.id.label("worker_id"),
                # A worker's number is stored as typed when it did not parse: only E.164 is sendable.
                case((phone.regexp_match(sms.E164.pattern), phone), else_=null()).label("e164"),
                phone.label("raw"),
                (MobileWorker.is_active.is_(False)).label("closed"),
                MobileWorker.language.label("language"),
            ).where(MobileWorker.__table__.c.project_id == project_id, or_(*conditions))
        )
    if not parts:
        raise ValueError("a broadcast needs at least one recipient")
    u = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("u")
    closed_flag = case((u.c.closed, 1), else_=0)
    ranked = select(
        u,
        func.row_number().over(order_by=(u.c.kind, u.c.case_pk, u.c.worker_id)).label("seq"),
        func.row_number()
        .over(partition_by=(u.c.e164, closed_flag), order_by=(u.c.kind, u.c.case_pk, u.c.worker_id))
        .label("phone_rank"),
    ).subquery("r")
    opt = OptOut.__table__
    reason = case(
        (ranked.c.closed, "closed_case"),
        (and_(ranked.c.e164.is_(None), or_(ranked.c.raw.is_(None), ranked.c.raw == "")), "no_phone"),
        (ranked.c.e164.is_(None), "invalid_number"),
        (ranked.c.phone_rank > 1, "duplicate_phone"),
        (opt.c.id.is_not(None), "opted_out"),
        else_=null(),
    )
    return select(
        ranked.c.seq,
        ranked.c.case_pk,
        ranked.c.worker_id,
        func.coalesce(ranked.c.e164, ranked.c.raw).label("phone"),
        ranked.c.language,
        reason.label("skip_reason"),
    ).select_from(ranked.outerjoin(opt, and_(opt.c.project_id == project_id, opt.c.phone == ranked.c.e164)))


def run_firing(project_id: int, firing_id: str, batch_size: int | None = None) -> dict:
    """The fan-out job: snapshot the recipients (once), then write and queue their messages
    batch by batch. Safe to run twice or on two workers at once. Call in the project's scope."""
    firing = db.session.get(BroadcastFiring, firing_id)
    if firing is None or firing.status in ("done", "cancelled"):
        return {"status": firing.status if firing else "missing"}
    b = db.session.get(Broadcast, firing.broadcast_id)
    if firing.status == "pending":
        _snapshot(b, firing)
    stats = Counter()
    content = _Content(b)
    content.bodies = _constant_bodies(firing_id, content)
    if batch_size is None:
        batch_size = FANOUT_BATCH if content.bodies is None else SET_FANOUT_BATCH
    while True:
        db.session.expire_all()
        row = db.session.execute(
            select(FIRINGS.c.cursor, FIRINGS.c.status).where(FIRINGS.c.id == firing_id)
        ).one()
        cursor, status = row
        if status != "sending":
            break
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
            batch = [_Window(last, count)] if count else []
        else:
            batch = db.session.execute(
                select(RECIPIENTS).where(*window).order_by(RECIPIENTS.c.seq).limit(batch_size)
            ).all()
        if not batch:
            now = clock.now()
            db.session.execute(
                update(FIRINGS)
                .where(FIRINGS.c.id == firing_id, FIRINGS.c.status == "sending")
                .values(status="done", finished_at=now, updated_at=now)
            )
            db.session.commit()
            break
        try:
            written = _fan_out_batch(b, firing_id, cursor, batch, content)
        except IntegrityError:  # a keyword opened a survey session for one of them meanwhile
            db.session.rollback()
            stats["retries"] += 1
            if stats["retries"] > 5:
                raise
            continue
        if written is None:
            db.session.rollback()
            break  # another job moved the cursor, or the firing was cancelled
        stats["batches"] += 1
        stats["messages"] += written
    log.info(
        "firing run project_id=%s broadcast_id=%s firing_id=%s %s", project_id, b.id, firing_id, dict(stats)
    )
    return dict(stats)


def _snapshot(b: Broadcast, firing: BroadcastFiring) -> None:
    now = clock.now()
    claimed = db.session.execute(
        update(FIRINGS)
        .where(FIRINGS.c.id == firing.id, FIRINGS.c.status == "pending")
        .values(status="sending", started_at=now, updated_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return
    snap = _recipients_select(b.project_id, b.recipients or {}).subquery("snap")
    db.session.execute(
        insert(RECIPIENTS).from_select(
            ["firing_id", "seq", "case_pk", "worker_id", "phone", "language", "skip_reason"],
            select(
                literal(firing.id),
                snap.c.seq,
                snap.c.case_pk,
                snap.c.worker_id,
                func.substr(snap.c.phone, 1, 64),
                snap.c.language,
                snap.c.skip_reason,
            ),
        )
    )
    total = db.session.execute(select(func.count()).where(RECIPIENTS.c.firing_id == firing.id)).scalar_one()
    db.session.execute(update(FIRINGS).where(FIRINGS.c.id == firing.id).values(total=total))
    db.session.commit()
    log.info(
        "firing snapshot project_id=%s broadcast_id=%s firing_id=%s recipients=%s",
        b.project_id,
        b.id,
        firing.id,
        total,
    )


class _Content:
    """What each recipient gets: rendered text, or a survey's first question."""

    def __init__(self, b: Broadcast):
        self.broadcast = b
        self.survey = db.session.get(Survey, b.survey_id) if b.survey_id else None
        self.window = quiet_window(b)
        project = db.session.get(Project, b.project_id)
        self.project_tz = project.timezone or "UTC"
        texts = [b.text] if b.text else list((b.translations or {}).values())
        self.needs_context = any(templating.placeholders(t) for t in texts if t)
        self.bodies: dict | None = None  # {language: text} when the fan-out is set-based
        if self.survey is not None:
            from messaging.surveys.answers import question_prompt
            from messaging.surveys.definitions import survey_questions

            self.first_question = question_prompt(survey_questions(self.survey)[0])

    def text_for(self, language: str | None) -> str:
        b = self.broadcast
        if b.text:
            return b.text
        if not b.translations:
            return ""  # the survey was deleted: the message fails as empty_body, with its reason
        return templating.choose_text(b.translations, b.default_language, language)[1]

    def contexts(self, rows) -> dict:
        """Placeholder contexts by (case_pk, worker_id), loaded in two queries per batch."""
        if not self.needs_context:
            return {}
        case_pks = [r.case_pk for r in rows if r.case_pk is not None]
        worker_ids = [r.worker_id for r in rows if r.worker_id is not None]
        out = {}
        if case_pks:
            for c in db.session.execute(
                select(
                    Case.id,
                    Case.case_id,
                    Case.case_type,
                    Case.name,
                    Case.external_id,
                    Case.phone_number,
                    Case.owner_id,
                    Case.properties,
                ).where(Case.id.in_(case_pks))
            ):
                out[(c.id, None)] = {
                    "case": {
                        "case_id": c.case_id,
                        "case_type": c.case_type,
                        "name": c.name,
                        "external_id": c.external_id,
                        "phone_number": c.phone_number,
                        "owner_id": c.owner_id,
                        "properties": c.properties or {},
                    }
                }
        if worker_ids:
            for w in db.session.execute(
                select(MobileWorker.id, MobileWorker.username, MobileWorker.phone_number).where(
                    MobileWorker.id.in_(worker_ids)
                )
            ):
                out[(None, w.id)] = {"user": {"username": w.username, "phone_number": w.phone_number}}
        return out

    def due_at(self, phone: str, now: datetime, cache: dict) -> datetime | None:
        if self.window is None:
            return None
        zone = recipient_timezone(phone, self.project_tz)
        if zone not in cache:
            cache[zone] = next_allowed(now, zone, self.window)
        due = cache[zone]
        return due if due > now else None


def _fan_out_batch(b: Broadcast, firing_id: str, cursor: int, batch, content: _Content) -> int | None:
    """Claim this batch (move the cursor) and write its messages in one transaction."""
    if content.bodies is not None:
        return _fan_out_range(b, firing_id, cursor, batch[0], content.bodies)
    now = clock.now()
    sendable = [r for r in batch if r.skip_reason is None]
    claimed = db.session.execute(
        update(FIRINGS)
        .where(FIRINGS.c.id == firing_id, FIRINGS.c.cursor == cursor, FIRINGS.c.status == "sending")
        .values(
            cursor=batch[-1].seq,
            processed=FIRINGS.c.processed + len(batch),
            messages=FIRINGS.c.messages + len(sendable),
            updated_at=now,
        )
    ).rowcount
    if claimed != 1:
        return None
    tz_cache: dict = {}
    rows = []
    if content.survey is not None:
        rows = _open_sessions(b, content, sendable, now, tz_cache)
    else:
        contexts = content.contexts(sendable)
        for r in sendable:
            text = content.text_for(r.language)
            if content.needs_context:
                text = templating.render(text, contexts.get((r.case_pk, r.worker_id), {})).text
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
    result = sms.QueueResult()
    jobs = sms.insert_messages(b.project_id, rows, result) if rows else []
    db.session.commit()
    sms.enqueue_send_jobs(b.project_id, jobs)
    return len(rows)


def _constant_bodies(firing_id: str, content: _Content) -> dict | None:
    """{language: text} when every recipient's text is fixed (no placeholders, no survey,
    no quiet hours): then the fan-out is set-based; else None (row by row)."""
    if content.survey is not None or content.needs_context or content.window is not None:
        return None
    if content.broadcast.text:
        bodies = {None: content.broadcast.text}
    else:
        languages = db.session.execute(
            select(RECIPIENTS.c.language).where(RECIPIENTS.c.firing_id == firing_id).distinct()
        ).scalars()
        bodies = {None: content.text_for(None), **{lang: content.text_for(lang) for lang in languages}}
    if any(not t.strip() for t in bodies.values()):
        return None  # rare (a deleted survey): the row-by-row path fails them with a reason
    return bodies


class _Window(NamedTuple):
    seq: int  # the last seq of the window
    count: int


def _fan_out_range(b: Broadcast, firing_id: str, cursor: int, window: _Window, bodies: dict) -> int | None:
    """Set-based :func:`_fan_out_batch`: claim seq (cursor, last] and write its messages with
    one INSERT ... SELECT (same values and checks as ``sms.insert_messages``)."""
    now = clock.now()
    last = window.seq
    claimed = db.session.execute(
        update(FIRINGS)
        .where(FIRINGS.c.id == firing_id, FIRINGS.c.cursor == cursor, FIRINGS.c.status == "sending")
        .values(cursor=last, processed=FIRINGS.c.processed + window.count, updated_at=now)
    ).rowcount
    if claimed != 1:
        return None
    r, opt = RECIPIENTS, OptOut.__table__
    valid = r.c.phone.regexp_match(sms.E164.pattern)
    opted = opt.c.id.is_not(None)
    src = (
        select(
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

    def by_language(values: dict):
        default = values.pop(None)
        if not values or all(v == default for v in values.values()):
            return literal(default)
        return case(*((src.c.language == lang, v) for lang, v in values.items()), else_=literal(default))

    infos = {lang: count_segments(text) for lang, text in bodies.items()}
    per_job = sms.batch_size()
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
    jobs = [
        (job_id, sorted(ids))
        for job_id, ids in sorted(by_job.items(), key=lambda kv: int(kv[0].rsplit("-", 1)[1]))
    ]
    db.session.commit()
    sms.enqueue_send_jobs(b.project_id, jobs)
    return len(written)


def _open_sessions(b: Broadcast, content: _Content, sendable, now: datetime, tz_cache: dict) -> list[dict]:
    """Survey content: one open session per recipient (closing their open one), first question queued."""
    from messaging.surveys import sessions

    if not sendable:
        return []
    session_rows, message_rows = [], []
    for r in sendable:
        session_id = new_id()
        due = content.due_at(r.phone, now, tz_cache)
        # Reminders and expiry count from when the first question goes out (quiet hours may defer it).
        timings = sessions.survey_timings(content.survey, due or now)
        session_rows.append(
            {
                "id": session_id,
                "project_id": b.project_id,
                "survey_id": content.survey.id,
                "case_pk": r.case_pk,
                "phone": r.phone,
                "status": "open",
                "current_index": 0,
                "answers": {},
                "invalid_attempts": 0,
                "reminders_sent": 0,
                "source": "broadcast",
                "broadcast_id": b.id,
                "started_at": now,
                "last_activity_at": now,
                **timings,
            }
        )
        message_rows.append(
            {
                "case_id": r.case_pk,
                "phone": r.phone,
                "body": content.first_question,
                "broadcast_id": b.id,
                "firing_id": r.firing_id,
                "survey_session_id": session_id,
                "due_at": due,
            }
        )
    sessions.close_open_sessions([r.phone for r in sendable], "replaced")
    db.session.execute(insert(SurveySession.__table__), session_rows)
    return message_rows


# --- reading -----------------------------------------------------------------------


def broadcast_status(b: Broadcast, active_firings: int | None = None) -> str:
    """``cancelled``; ``sending`` (a firing fanning out, or its messages not all at the gateway
    yet, quiet hours included); ``scheduled`` (a firing to come); else ``sent``."""
    if b.cancelled_at is not None:
        return "cancelled"
    if active_firings is None:
        active_firings = _active_counts([b.id]).get(b.id, 0)
    if active_firings:
        return "sending"
    return "scheduled" if b.next_fire_at is not None else "sent"


def _active_counts(broadcast_ids: list[str]) -> dict[str, int]:
    """Per broadcast: firings still fanning out plus messages still waiting to be sent."""
    if not broadcast_ids:
        return {}
    counts: Counter = Counter()
    for broadcast_id, n in db.session.execute(
        select(FIRINGS.c.broadcast_id, func.count())
        .where(FIRINGS.c.broadcast_id.in_(broadcast_ids), FIRINGS.c.status.in_(("pending", "sending")))
        .group_by(FIRINGS.c.broadcast_id)
    ):
        counts[broadcast_id] += n
    for broadcast_id, n in db.session.execute(
        select(FIRINGS.c.broadcast_id, func.count())
        .select_from(FIRINGS.join(MESSAGES, MESSAGES.c.firing_id == FIRINGS.c.id))
        .where(FIRINGS.c.broadcast_id.in_(broadcast_ids), MESSAGES.c.status.in_(("queued", "sending")))
        .group_by(FIRINGS.c.broadcast_id)
    ):
        counts[broadcast_id] += n
    return dict(counts)


def firing_progress(firing: BroadcastFiring) -> dict:
    """Counts of one firing: messages by status, skipped by reason, and the percent finished."""
    statuses = dict(
        db.session.execute(
            select(MESSAGES.c.status, func.count())
            .where(MESSAGES.c.firing_id == firing.id)
            .group_by(MESSAGES.c.status)
        ).all()
    )
    skipped = Counter(
        dict(
            db.session.execute(
                select(RECIPIENTS.c.skip_reason, func.count())
                .where(RECIPIENTS.c.firing_id == firing.id, RECIPIENTS.c.skip_reason.is_not(None))
                .group_by(RECIPIENTS.c.skip_reason)
            ).all()
        )
    )
    recipients_skipped = sum(skipped.values())
    for reason, n in db.session.execute(
        select(MESSAGES.c.skip_reason, func.count())
        .where(MESSAGES.c.firing_id == firing.id, MESSAGES.c.skip_reason.is_not(None))
        .group_by(MESSAGES.c.skip_reason)
    ):
        skipped[reason] += n
    total = firing.total
    finished = recipients_skipped + sum(n for s, n in statuses.items() if s not in ("queued", "sending"))
    if total is None:
        percent = 0
    elif total == 0:
        percent = 100 if firing.status in ("done", "cancelled") else 0
    else:
        percent = min(100, int(100 * finished / total))
    return {
        "id": firing.id,
        "fire_at": clock.isoformat(firing.fire_at),
        "status": firing.status,
        "recipients": total,
        "processed": firing.processed,
        "messages": firing.messages,
        "statuses": statuses,
        "skipped": dict(skipped),
        "percent": percent,
        "started_at": clock.isoformat(firing.started_at),
        "finished_at": clock.isoformat(firing.finished_at),
    }


def firings_of(b: Broadcast, limit: int = 20) -> list[BroadcastFiring]:
    return list(
        db.session.execute(
            select(BroadcastFiring)
            .where(BroadcastFiring.broadcast_id == b.id)
            .order_by(BroadcastFiring.fire_at.desc())
            .limit(limit)
        ).scalars()
    )


def broadcast_json(b: Broadcast, with_firings: bool = True, status: str | None = None) -> dict:
    """The API's view of a broadcast (``status`` when the caller has it already)."""
    firings = firings_of(b) if with_firings else []
    body = {
        "id": b.id,
        "name": b.name,
        "status": status or broadcast_status(b),
        "recipients": b.recipients,
        "text": b.text,
        "translations": b.translations or None,
        "default_language": b.default_language,
        "survey_id": b.survey_id,
        "send_at": clock.isoformat(b.send_at),
        "repeat": b.schedule,
        "quiet_hours": {"start": b.quiet_start, "end": b.quiet_end} if b.quiet_start else None,
        "next_fire_at": clock.isoformat(b.next_fire_at),
        "created_at": clock.isoformat(b.created_at),
        "cancelled_at": clock.isoformat(b.cancelled_at),
    }
    if with_firings:
        progress = [firing_progress(f) for f in firings]
        body["firings"] = progress
        latest = progress[0] if progress else None
        body["counts"] = {
            "statuses": latest["statuses"] if latest else {},
            "skipped": latest["skipped"] if latest else {},
        }
        body["percent"] = latest["percent"] if latest else 0
    return body


def _status_condition(status: str):
    """SQL for "this broadcast has ``status``" (as :func:`broadcast_status` decides it)."""
    waiting = (
        select(MESSAGES.c.id)
        .where(MESSAGES.c.firing_id == FIRINGS.c.id, MESSAGES.c.status.in_(("queued", "sending")))
        .exists()
    )
    active = Broadcast.id.in_(
        select(FIRINGS.c.broadcast_id).where(
            FIRINGS.c.project_id == current_project_id(),
            or_(FIRINGS.c.status.in_(("pending", "sending")), waiting),
        )
    )
    live = Broadcast.cancelled_at.is_(None)
    return {
        "cancelled": Broadcast.cancelled_at.is_not(None),
        "sending": and_(live, active),
        "scheduled": and_(live, ~active, Broadcast.next_fire_at.is_not(None)),
        "sent": and_(live, ~active, Broadcast.next_fire_at.is_(None)),
    }[status]


def page_broadcasts(
    status: str | None = None, after: tuple | None = None, limit: int = 50
) -> tuple[list[tuple[Broadcast, str]], tuple | None]:
    """One page of broadcasts with their status, newest first (optionally only one status).

    ``after`` is the ``(created_at, id)`` of the last broadcast of the previous
    page; returns the page and the key to ask for the next one (None at the end).
    """
    stmt = select(Broadcast)
    if status is not None:
        stmt = stmt.where(_status_condition(status))
    if after is not None:
        stmt = stmt.where(tuple_(Broadcast.created_at, Broadcast.id) < tuple_(*after))
    rows = list(
        db.session.execute(
            stmt.order_by(Broadcast.created_at.desc(), Broadcast.id.desc()).limit(limit + 1)
        ).scalars()
    )
    page = rows[:limit]
    active = _active_counts([b.id for b in page])
    items = [(b, broadcast_status(b, active.get(b.id, 0))) for b in page]
    return items, ((page[-1].created_at, page[-1].id) if len(rows) > limit else None)


def status_counts() -> dict[str, int]:
    """How many broadcasts of the project have each status."""
    return {
        status: db.session.execute(
            select(func.count()).select_from(Broadcast).where(_status_condition(status))
        ).scalar_one()
        for status in STATUSES
    }


def preview(project: Project, body: Mapping) -> dict:
    """What a broadcast would do now: recipients, who gets a message, the skipped by reason,
    SMS segments, placeholders some recipients lack, and the time the gateway needs."""
    if not isinstance(body, Mapping):
        raise Invalid("invalid_json", "The request body must be a JSON object.")
    data = {k: v for k, v in body.items() if k not in ("send_at", "repeat")}
    if not data.get("name"):
        data["name"] = "preview"
    spec = parse_spec(project, data)
    snap = _recipients_select(project.id, spec["recipients"]).subquery("snap")
    by_reason = dict(
        db.session.execute(select(snap.c.skip_reason, func.count()).group_by(snap.c.skip_reason)).all()
    )
    will_send = by_reason.pop(None, 0)
    recipients = will_send + sum(by_reason.values())
    b = Broadcast(project_id=project.id)
    _apply_spec(b, spec)
    content = _Content(b)
    rows = db.session.execute(
        select(snap).where(snap.c.skip_reason.is_(None)).order_by(snap.c.seq).limit(PREVIEW_RENDER_LIMIT)
    ).all()
    missing: Counter = Counter()
    max_segments, total_segments, samples = 0, 0, []
    contexts = content.contexts(rows)
    for r in rows:
        if content.survey is not None:
            text = content.first_question
        else:
            text = content.text_for(r.language)
            if content.needs_context:
                rendered = templating.render(text, contexts.get((r.case_pk, r.worker_id), {}))
                text = rendered.text
                missing.update(rendered.missing)
        info = count_segments(text)
        max_segments = max(max_segments, info.segments)
        total_segments += info.segments
        if len(samples) < 3:
            samples.append(
                {"phone": r.phone, "text": text, "segments": info.segments, "encoding": info.encoding}
            )
    if not rows:
        text = content.first_question if content.survey is not None else content.text_for(None)
        max_segments = count_segments(text).segments
    if rows and len(rows) < will_send:  # estimate the rest from the rendered sample
        total_segments = round(total_segments * will_send / len(rows))
    rate = send_rate(project.id)
    return {
        "recipients": recipients,
        "will_send": will_send,
        "skipped": by_reason,
        "segments": max_segments,
        "total_segments": total_segments,
        "missing_placeholders": dict(missing),
        "checked": len(rows),
        "samples": samples,
        "messages_per_second": rate,
        "estimated_seconds": round(will_send / rate, 1) if rate else None,
    }


def send_rate(project_id: int) -> float:
    """Messages per second the project's gateway allows: ``mps`` per sender, capped by ``project_mps``."""
    cfg = sms.gateway_config(project_id)
    senders = 1 if cfg.messaging_service_sid or not cfg.from_numbers else len(cfg.from_numbers)
    rate = float((cfg.mps or 10) * senders)
    if cfg.project_mps:
        rate = min(rate, float(cfg.project_mps))
    return rate


def sends_today(project: Project) -> dict:
    """Dashboard: broadcast firings started and outbound messages sent since local midnight."""
    zone = get_zone(project.timezone or "UTC")
    local_now = utc_to_local(clock.now(), zone)
    midnight = local_to_utc(local_now.date(), time(0, 0), zone)
    firings = db.session.execute(
        select(func.count()).select_from(BroadcastFiring).where(BroadcastFiring.started_at >= midnight)
    ).scalar_one()
    messages = db.session.execute(
        select(func.count())
        .select_from(Message)
        .where(Message.direction == "outbound", Message.sent_at >= midnight)
    ).scalar_one()
    return {"firings": firings, "messages": messages}
