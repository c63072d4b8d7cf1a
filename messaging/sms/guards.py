"""Guards on automated messages: a project's daily SMS limit and its sending windows.

Rules:
- **Automated** means every outbound message no person wrote: broadcasts, alerts,
  survey questions and reminders, keyword and default replies, API sends. Never held:
  a case manager's own reply (``author_id`` set; a person is waiting on it) and the
  STOP/START confirmations (``bypass_opt_out``: carriers expect them at once, and
  they answer the participant's own message).
- The guards act in the send job's claim (:func:`hold_back`, called by
  ``messaging.sms.claims.claim`` before it commits): every outbound message passes
  there, whatever wrote it (a broadcast's set-based fan-out, a keyword reply, an
  alert). A held message is never ``sending``: it goes back to ``queued`` with
  ``due_at`` at the time it may go, ``held_reason`` saying why, the attempt not
  counted and no job; the sweep queues it when due (the claim then looks again).
- **Sending windows** (project time zone, :mod:`messaging.lib.sending_windows`):
  while none is open, the automated rows of a claim wait for the next opening
  (``held_reason='sending_window'``).
- **Daily limit**: at most ``daily_sms_limit`` automated messages are handed to
  the gateway per local day of the project. ``daily_send_counts`` counts them; a
  claim takes what is left of the day's allowance with a compare-and-set UPDATE on
  the count it read (retried when another worker moved it first), so workers on
  any number of machines never overshoot. Rows beyond it wait for the next local
  midnight (``held_reason='daily_limit'``), where the windows apply again.
- Only a message's first handing counts (a claim that makes ``attempts`` 1): a
  retry after a gateway error is the same message. A claim given back unsent
  (the lease ran out) counts again when re-claimed: the limit errs on the safe side.
- No limit and no windows (the default): one read of the project's settings, nothing held.
- The broadcast preview asks :func:`preview_warnings` what the guards would do to a
  send: wait for a window, a window closing mid-send, messages beyond the day's
  remaining allowance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, update

from messaging.db.dialect import insert_ignoring_conflicts
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.localtime import get_zone, local_to_utc, utc_to_local
from messaging.lib.sending_windows import SendingWindow, is_open, next_open, parse_windows
from messaging.models import DailySendCount, Message, Project

log = logging.getLogger(__name__)

MESSAGES = Message.__table__
COUNTS = DailySendCount.__table__
DAILY_LIMIT = "daily_limit"
SENDING_WINDOW = "sending_window"
# Compare-and-set rounds before a claim gives up its share for now (its rows wait a day).
_CAS_ROUNDS = 50


@dataclass(frozen=True)
class Guards:
    """A project's guards: its daily limit (None: none), windows (empty: any time) and time zone."""

    daily_limit: int | None
    windows: list[SendingWindow]
    timezone: str

    @property
    def active(self) -> bool:
        return self.daily_limit is not None or bool(self.windows)

    def local_day(self, now: datetime) -> date:
        return utc_to_local(now, get_zone(self.timezone)).date()

    def next_day_start(self, now: datetime) -> datetime:
        """The next local midnight of the project (naive UTC)."""
        return local_to_utc(self.local_day(now) + timedelta(days=1), time(0), get_zone(self.timezone))

    def may_send_from(self, at: datetime) -> datetime:
        """``at``, or the next opening of a window when none is open then."""
        return next_open(at, self.timezone, self.windows) if self.windows else at


def project_guards(project_id: int) -> Guards:
    """The guards of one project, read from its settings."""
    limit, windows, timezone = db.session.execute(
        select(Project.daily_sms_limit, Project.sending_windows, Project.timezone).where(
            Project.id == project_id
        )
    ).one()
    return Guards(limit, parse_windows(windows), timezone or "UTC")


def is_automated(row) -> bool:
    """Whether the guards apply to a claimed row (no person wrote it, not a STOP/START confirmation)."""
    return row.author_id is None and not row.bypass_opt_out


def hold_back(project_id: int, rows: list, now: datetime) -> list:
    """Hold the claimed ``rows`` the guards keep back now (in the caller's transaction; no
    commit); returns the rows that may be sent."""
    automated = [r for r in rows if is_automated(r)]
    if not automated:
        return rows
    guards = project_guards(project_id)
    if not guards.active:
        return rows
    held: dict[str, tuple[datetime, list[int]]] = {}
    if guards.windows and not is_open(guards.windows, utc_to_local(now, get_zone(guards.timezone))):
        held[SENDING_WINDOW] = (guards.may_send_from(now), [r.id for r in automated])
    elif guards.daily_limit is not None:
        first_handings = [r for r in automated if r.attempts <= 1]
        granted = take_allowance(project_id, guards.local_day(now), len(first_handings), guards.daily_limit)
        over = [r.id for r in first_handings[granted:]]
        if over:
            held[DAILY_LIMIT] = (guards.may_send_from(guards.next_day_start(now)), over)
    if not held:
        return rows
    kept_back: set[int] = set()
    for reason, (until, ids) in held.items():
        _hold(project_id, ids, until, reason, now)
        kept_back.update(ids)
        log.info("held project_id=%s messages=%s reason=%s until=%s", project_id, len(ids), reason, until)
    return [r for r in rows if r.id not in kept_back]


def _hold(project_id: int, ids: list[int], until: datetime, reason: str, now: datetime) -> None:
    db.session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(ids), MESSAGES.c.status == "sending")
        .values(
            status="queued",
            attempts=MESSAGES.c.attempts - 1,
            claimed_at=None,
            job_id=None,
            due_at=until,
            held_reason=reason,
            updated_at=now,
        )
    )


def take_allowance(project_id: int, day: date, wanted: int, limit: int) -> int:
    """Take up to ``wanted`` of the day's remaining allowance; returns how many were granted.
    No commit: the count moves with the claim it belongs to."""
    if wanted <= 0:
        return 0
    db.session.execute(
        insert_ignoring_conflicts(COUNTS, "project_id", "day").values(project_id=project_id, day=day, sent=0)
    )
    where = (COUNTS.c.project_id == project_id, COUNTS.c.day == day)
    for _ in range(_CAS_ROUNDS):
        sent = db.session.execute(select(COUNTS.c.sent).where(*where)).scalar_one()
        granted = max(0, min(wanted, limit - sent))
        if granted == 0:
            return 0
        moved = db.session.execute(
            update(COUNTS).where(*where, COUNTS.c.sent == sent).values(sent=sent + granted)
        ).rowcount
        if moved:
            return granted
    log.warning("daily allowance contended project_id=%s day=%s: nothing taken this round", project_id, day)
    return 0


def sent_today(project_id: int, now: datetime, guards: Guards | None = None) -> int:
    """Automated messages counted against the daily limit on the project's local day of ``now``
    (``guards``: the project's, when the caller has read them already)."""
    guards = guards or project_guards(project_id)
    return (
        db.session.execute(
            select(COUNTS.c.sent).where(
                COUNTS.c.project_id == project_id, COUNTS.c.day == guards.local_day(now)
            )
        ).scalar()
        or 0
    )


def preview_warnings(project_id: int, messages: int, at: datetime, seconds: float | None) -> list[dict]:
    """What the guards will do to ``messages`` automated messages starting at ``at`` and taking
    ``seconds`` at the gateway's rate: ``[{code, message, ...}]`` for the broadcast preview."""
    guards = project_guards(project_id)
    if not guards.active or messages <= 0:
        return []
    warnings = []
    zone = get_zone(guards.timezone)
    if guards.windows:
        opens = guards.may_send_from(at)
        finish = at + timedelta(seconds=seconds or 0)
        if opens > at:
            local = utc_to_local(opens, zone)
            warnings.append(
                {
                    "code": "outside_sending_window",
                    "message": f"No sending window is open then: the messages will wait until "
                    f"{local:%a %d %b %H:%M} ({guards.timezone}).",
                    "until": clock.isoformat(opens),
                    "until_local": f"{local:%a %d %b %H:%M} ({guards.timezone})",
                }
            )
        elif not is_open(guards.windows, utc_to_local(finish, zone)):
            warnings.append(
                {
                    "code": "window_closes",
                    "message": "The sending window closes before all of them can go: the rest will wait "
                    "for the next one.",
                    "until": None,
                }
            )
    if guards.daily_limit is not None:
        today = guards.local_day(at) == guards.local_day(clock.now())
        used = sent_today(project_id, at, guards) if today else 0
        left = max(0, guards.daily_limit - used)
        if messages > left:
            warnings.append(
                {
                    "code": "daily_limit",
                    "message": f"The daily limit is {guards.daily_limit:,} automated messages and {left:,} "
                    f"remain that day: {messages - left:,} will wait for the next day.",
                    "over": messages - left,
                    "left": left,
                    "limit": guards.daily_limit,
                }
            )
    return warnings
