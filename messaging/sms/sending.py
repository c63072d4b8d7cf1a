"""The send job's body: claim a chunk, send it at the rate limit, record the outcomes, repeat.

Rules:
- :func:`send_batch` (the ``workers.jobs.sms.send_messages`` job) claims rows
  with a conditional UPDATE (``queued`` and due -> ``sending``), so a job that
  runs twice, or two workers with the same job, send each message once. It
  waits for a rate-limit slot in Redis, calls the gateway and records the sid.
- Messages that are not ``queued`` (sent already, cancelled, claimed by
  another worker) are skipped, ones not yet due are re-scheduled (a job at
  their time). One message's failure never stops the others.
- A send job works in chunks of about one second of its senders' rate (at
  most 250 rows): claimed rows never wait long in ``sending``, and on a fast
  gateway the claim and record statements' own cost (a round trip, planning,
  a commit, on top of their cost per row) is shared by many messages. A
  worker killed mid-chunk leaves at most one chunk in `sending` for the sweep
  to resolve.
- **A live worker never races the sweep.** The sweep takes a row that has
  been `sending` for `SMS_SENDING_TIMEOUT` for one whose worker died. So a
  job sends the rows of one claim for at most half that time (its lease);
  when a slow gateway (timeouts, hangs) makes a chunk outlast it, the job
  gives the unsent rows back (`queued`, the attempt not counted) and queues
  them again. Without this, a chunk slowed by many timeouts could be
  "resolved" and re-queued by the sweep while its worker was still sending
  it: the fault bench (10,000 messages, chunks of 250) had 41 duplicates
  before the lease and none after.
- A job handing rows back (the lease ran out, or the senders stayed
  saturated) records what it sent, gives the unsent claimed rows back, and
  queues them with the job's unclaimed rest at the back of the queue.
- A job orders its ids so that it takes the pool's senders in turn: every
  chunk then holds about as many rows for each sender, and no sender idles
  while another finishes a chunk (3 senders at 10/s with 2 workers: 9.2–9.8
  messages/s each, was 8.3–9.3). A recipient always gets the same number of
  the pool (sha1 of the number, modulo the pool size).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable

from sqlalchemy import BigInteger, select

from messaging.db.dialect import in_values
from messaging.extensions import db
from messaging.gateways.settings import messages_per_second
from messaging.lib import clock
from messaging.models import GatewayConfig, Message
from messaging.sms.claims import claim, unclaim
from messaging.sms.outbox import hand_to_jobs, new_job_id
from messaging.sms.outcomes import record_outcomes
from messaging.sms.pacing import send_paced
from messaging.sms.send_job import BatchStats, SendJob
from messaging.sms.tuning import sending_lease

log = logging.getLogger(__name__)

MESSAGES = Message.__table__
# The most rows a job claims at once (see chunk_size).
MAX_CHUNK = 250


def chunk_size(gateways: list[GatewayConfig]) -> int:
    """About one second of sending through all the project's gateways, at most ``MAX_CHUNK``
    rows: claimed rows never wait long in ``sending``, and on a fast gateway the claim and
    record statements' own cost (a round trip, planning, a commit, on top of their cost per
    row) is shared by many messages."""
    total = sum(messages_per_second(cfg, unset_mps=100) for cfg in gateways)
    return int(max(1, min(MAX_CHUNK, total)))


def send_batch(project_id: int, ids: list[int], job_id: str | None = None) -> BatchStats:
    """Send the given messages of one project (the body of the send job). Idempotent.

    Each message is claimed before it is sent; messages that are not
    ``queued`` (sent already, cancelled, claimed by another worker) are
    skipped, ones not yet due are re-scheduled. One message's failure never
    stops the others.
    """
    job = SendJob.start(project_id, job_id)
    stats = job.stats
    size = chunk_size([route.cfg for route in job.routes])
    remaining = sorted(set(ids))
    if sum(max(1, len(route.pool)) for route in job.routes) > 1 and len(remaining) > size:
        remaining = interleave_senders(project_id, remaining, job.lane)
    while remaining:
        chunk, remaining = remaining[:size], remaining[size:]
        now = clock.now()
        claimed = claim(project_id, chunk, now, job_id)
        lease_ends = time.monotonic() + sending_lease()
        stats.claimed += len(claimed)
        if len(claimed) < len(chunk):
            stats.skipped_claim += len(chunk) - len(claimed)
            _reschedule_not_due(project_id, set(chunk) - {r.id for r in claimed})
        if not claimed:
            continue
        outcomes, by_lane = _route(job, claimed)
        unsent = send_paced(job, by_lane, outcomes, lease_ends)
        job.journal.flush()  # the last answers, before the outcomes are written
        if unsent is not None:
            rest, why = unsent
            _hand_back(job, outcomes, rest, remaining, why)
            return stats
        record_outcomes(project_id, outcomes, stats)
    return stats


def _route(job: SendJob, claimed: list) -> tuple[list[tuple], dict[tuple, list]]:
    """The claimed rows that are not sent (no gateway, opted out) as outcomes; the rest by
    lane (their route and sender)."""
    outcomes: list[tuple] = []
    by_lane: dict[tuple, list] = defaultdict(list)
    for row in claimed:
        route, sender = job.lane(row.phone, row.gateway_id)
        if route.gateway is None:
            outcomes.append(("error", row, route.gateway_error, None))
        elif row.opted_out and not row.bypass_opt_out:
            outcomes.append(("opted_out", row, None, None))
        else:
            by_lane[(route, sender)].append(row)
    return outcomes, by_lane


def interleave_senders(project_id: int, ids: list[int], lane: Callable[[str], Hashable]) -> list[int]:
    """``ids`` in an order that takes the lanes (a gateway's sender, ``lane(phone)``) in turn
    (each lane's ids still ascending), so that every chunk has about as many rows for each.

    A chunk is about one second of the pool's rate; with ids in plain order a
    chunk can hold 14 rows for one sender and 8 for another, and the second
    sender idles while the first finishes. Rows no longer ``queued`` keep their
    place at the end: the claim skips them.
    """
    phones = dict(
        db.session.execute(
            select(MESSAGES.c.id, MESSAGES.c.phone).where(
                MESSAGES.c.project_id == project_id,
                in_values(MESSAGES.c.id, ids, BigInteger),
                MESSAGES.c.status == "queued",
            )
        ).all()
    )
    db.session.commit()  # no transaction held open while sending
    by_lane: dict[Hashable, list[int]] = defaultdict(list)
    for message_id in ids:
        if message_id in phones:
            by_lane[lane(phones[message_id])].append(message_id)
    turns = itertools.zip_longest(*by_lane.values())
    ordered = [message_id for turn in turns for message_id in turn if message_id is not None]
    return ordered + [message_id for message_id in ids if message_id not in phones]


def _reschedule_not_due(project_id: int, ids: set[int]) -> None:
    """Ids this job could not claim because they are not due yet get a job at their time."""
    if not ids:
        return
    now = clock.now()
    rows = db.session.execute(
        select(MESSAGES.c.id, MESSAGES.c.next_attempt_at, MESSAGES.c.due_at).where(
            MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(list(ids)), MESSAGES.c.status == "queued"
        )
    ).all()
    if not rows:
        return
    when = max(max((r.next_attempt_at or now), (r.due_at or now)) for r in rows)
    delay = max(0.0, (when - now).total_seconds())
    hand_to_jobs(project_id, [(new_job_id(), [r.id for r in rows])], delay=delay)


def _hand_back(
    job: SendJob, outcomes: list[tuple], unsent: list[int], remaining: list[int], why: str
) -> None:
    """Record what was sent, give the unsent claimed rows back (``queued``, the attempt not
    counted), and queue them with the job's unclaimed rest at the back of the queue."""
    project_id, stats = job.project_id, job.stats
    record_outcomes(project_id, outcomes, stats)
    unclaim(project_id, unsent)
    db.session.commit()
    stats.handed_back += len(unsent) + len(remaining)
    log.info("%s: handing back project_id=%s messages=%s", why, project_id, len(unsent) + len(remaining))
    hand_to_jobs(project_id, [(new_job_id(), unsent + remaining)])  # no scheduler needed
