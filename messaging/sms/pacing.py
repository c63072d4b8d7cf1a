"""Pacing: sending a chunk's claimed rows at the rate-limit slots booked for their senders.

Rules:
- **Rate limits** hold across all workers and machines: a GCRA limiter in
  Redis (one Lua script, Redis' clock) books slots per sender number (`mps`)
  and optionally per project (`project_mps`); a worker books a quarter second
  of slots at a time and sends at them; when a sender is saturated for 10 s
  the job hands its rest back to the queue.
- Slots are booked a quarter second of sending at a time per sender, up to
  one second ahead, and the messages go in slot order, so a worker keeps
  every sender of the pool busy at its rate. The unsent rows are released
  and handed back to the queue when no slot comes for ``MAX_RATE_WAIT``
  seconds (other jobs saturate the senders), or when the chunk's lease
  (``tuning.sending_lease``) runs out before they are sent.
- Each gateway has its own limits: ``mps`` per sender and ``project_mps`` for
  the whole gateway. A sender without a number of its own (a Messaging
  Service, a sender ID, the console) is limited under the service's sid, or
  the gateway.
- A gateway that cannot be asked about a message (``resolves`` false) gets
  each attempt noted in the send journal (``messaging.gateways.journal``):
  leaving, then its answer; and a request to it that may have arrived without
  an answer fails ``unknown_outcome`` instead of going again.
- **Redis going away mid-chunk loses nothing.** When the limiter cannot book
  slots (Redis is down), the rows of the chunk not sent yet are handed back
  like a lease that ran out: what was sent is recorded at once (not left
  ``sending`` for the sweep to ask the gateway about minutes later), and the
  rest goes back to ``queued`` for the sweep to queue once Redis is back.
- One message's failure never stops the others: a gateway error is its
  outcome, and anything unexpected is an unknown outcome (the sweep resolves
  it), logged with the message and job ids.
"""

from __future__ import annotations

import itertools
import logging
import time

from redis.exceptions import RedisError

from messaging.gateways import recent_errors
from messaging.gateways.base import GatewayError
from messaging.models import GatewayConfig
from messaging.sms.ratelimit import gateway_key, sender_key
from messaging.sms.send_job import Route, SendJob

log = logging.getLogger(__name__)

# A job hands its remaining messages back to the queue after waiting this long for rate-limit slots.
MAX_RATE_WAIT = 10.0


def _limits(project_id: int, cfg: GatewayConfig, sender: str | None) -> dict[str, float]:
    key = sender or cfg.messaging_service_sid or f"{cfg.kind}:{project_id}:{cfg.id or 0}"
    limits = {sender_key(project_id, key): float(cfg.mps or 0)}
    if cfg.project_mps:
        limits[gateway_key(project_id, cfg.id)] = float(cfg.project_mps)
    return limits


def send_paced(
    job: SendJob, by_lane: dict[tuple[Route, str | None], list], outcomes: list[tuple], lease_ends: float
) -> tuple[list[int], str] | None:
    """Send the claimed rows of each sender at the slots booked for them; all senders interleaved.

    Each message's outcome is appended to ``outcomes``. Returns None when all
    were sent, else the ids of the claimed rows left unsent and why (no slot
    came for ``MAX_RATE_WAIT`` seconds, or the lease ran out): the caller
    hands them back.
    """
    parts = []
    for lane, group in by_lane.items():
        route, sender = lane
        limits = _limits(job.project_id, route.cfg, sender)
        step = max(1, int(min(limits.values()) * 0.25))
        parts.append([(lane, limits, group[i : i + step]) for i in range(0, len(group), step)])
    # Interleave: the first part of every sender, then the second of every sender...
    todo = [p for round_ in itertools.zip_longest(*parts) for p in round_ if p is not None]
    waited_since = None
    order = itertools.count()
    while todo:
        booked, deferred, soonest = [], [], None
        for lane, limits, part in todo:
            try:
                res = job.limiter.reserve(limits, max_ahead=1.0, count=len(part))
            except RedisError as exc:
                log.warning(
                    "rate limiter unavailable project_id=%s job_id=%s: %s", job.project_id, job.job_id, exc
                )
                return [row.id for _, _, rows in todo for row in rows], "the rate limiter's Redis is away"
            if res.granted:
                booked.extend((res.slot(i), next(order), row, lane) for i, row in enumerate(part))
            else:
                deferred.append((lane, limits, part))
                soonest = res.wait if soonest is None else min(soonest, res.wait)
        if not booked:
            waited_since = waited_since or time.monotonic()
            if time.monotonic() - waited_since > MAX_RATE_WAIT:
                return [row.id for _, _, part in deferred for row in part], "rate limited"
            pause = max(0.01, min((soonest or 0.5) - 0.9, 0.5))
            job.stats.rate_wait += pause
            time.sleep(pause)
        else:
            waited_since = None
        booked.sort(key=lambda b: (b[0], b[1]))
        for index, (at, _, row, lane) in enumerate(booked):
            if time.monotonic() > lease_ends:
                rest = [b[2].id for b in booked[index:]] + [r.id for _, _, part in deferred for r in part]
                return rest, "lease ran out"
            delay = at - time.monotonic()
            if delay > 0:
                job.stats.rate_wait += delay
                time.sleep(delay)
            outcomes.append(_send_one(job, row, *lane))
        todo = deferred
    return None


def _send_one(job: SendJob, row, route: Route, sender: str | None) -> tuple:
    gateway = route.gateway
    noted = not gateway.resolves
    if noted:
        job.journal.before(row.id, row.attempts)
    try:
        result = gateway.send(row.phone, row.body, sender, route.callback)
    except GatewayError as exc:
        if noted and not exc.outcome_unknown:
            job.journal.not_sent(row.id, row.attempts)
        if exc.outcome_unknown and not gateway.resolves:
            exc = GatewayError(
                "unknown_outcome",
                f"{exc.message} The {gateway.label} gateway cannot be asked whether it sent it, "
                "so it is not sent again.",
                retryable=False,
            )
        recent_errors.note(job.project_id, route.cfg.id, row.id, row.phone, exc)
        exc.gateway_id = route.cfg.id
        return ("error", row, exc, sender)
    except Exception as exc:  # a bug or an odd failure: the outcome is unknown, the sweep resolves it
        log.exception(
            "send crashed project_id=%s message_id=%s job_id=%s", job.project_id, row.id, job.job_id
        )
        if gateway.resolves:
            error = GatewayError("internal_error", repr(exc), retryable=True, outcome_unknown=True)
        else:  # it may have been sent, and cannot be asked: never again
            error = GatewayError("unknown_outcome", f"The send crashed: {exc!r}", retryable=False)
        error.gateway_id = route.cfg.id
        return ("error", row, error, sender)
    result.gateway_id = route.cfg.id
    if noted:
        job.journal.answered(row.id, row.attempts, result)
    return ("sent", row, result, sender)
