"""The settings that tune sending, read from the app's config each time they are used.

Rules:
- ``SMS_BATCH_SIZE`` (500): message ids per send job. RQ's own work per job
  (about 4 ms) and the job's gateway look-up are shared by this many messages.
- ``SMS_SENDING_TIMEOUT`` (120 s): after it the sweep takes a row still in
  ``sending`` for one whose worker died, and may queue it again; a live worker
  stops well before that (its lease is half of it) and hands its unsent rows
  back, so the two never race.
- ``SMS_RETRY_DELAYS`` (30 s, 2 min, 10 min): the wait before each retry; a
  message gets one attempt more than there are delays.
- ``SMS_UNKNOWN_CHECK_DELAY`` (60 s): how long after an unknown outcome the
  sweep asks the gateway about the message.
- ``SMS_SWEEP_GRACE`` (10 s): how long a queued row may go without a live
  job before the sweep queues it again (its job may just be on its way: every
  path enqueues right after its commit, well within it; queuing a job twice is
  harmless, since the claims send each row once, while waiting longer delays
  every message Redis lost).
- ``SMS_JOB_STALE_SECONDS`` (900 s): a job "started" for longer than this is
  taken for one whose worker was killed.
"""

from __future__ import annotations

from flask import current_app

DEFAULT_BATCH_SIZE = 500


def setting(name: str, default):
    """The app's ``name`` setting, or ``default``."""
    return current_app.config.get(name, default)


def batch_size() -> int:
    """Message ids per send job (``SMS_BATCH_SIZE``)."""
    return int(setting("SMS_BATCH_SIZE", DEFAULT_BATCH_SIZE))


def sending_timeout() -> float:
    """Seconds after which the sweep takes a row still in ``sending`` for one whose worker died."""
    return float(setting("SMS_SENDING_TIMEOUT", 120.0))


def dead_claimer_check_delay() -> float:
    """Seconds after its claim that a row still in ``sending`` whose job's worker is gone (its
    pulse expired) is settled by asking the gateway, without waiting for ``SMS_SENDING_TIMEOUT``.

    The pulse outlives its worker by up to ``messaging.jobs.ALIVE_TTL`` (10 s), so the gateway
    is never asked sooner than that after the dead worker's last request, whatever this is."""
    return float(setting("SMS_DEAD_CLAIMER_DELAY", 10.0))


def sending_lease() -> float:
    """Seconds a job may go on sending the rows of one claim: half ``SMS_SENDING_TIMEOUT``.

    After ``SMS_SENDING_TIMEOUT`` the sweep takes a row still in ``sending``
    for one whose worker died, and may queue it again; a live worker stops
    well before that and hands its unsent rows back, so the two never race.
    """
    return sending_timeout() / 2


def retry_delays() -> tuple[float, ...]:
    return tuple(setting("SMS_RETRY_DELAYS", (30.0, 120.0, 600.0)))


def max_attempts() -> int:
    return len(retry_delays()) + 1


def unknown_check_delay() -> float:
    """Seconds after an unknown outcome before the sweep asks the gateway (``SMS_UNKNOWN_CHECK_DELAY``)."""
    return float(setting("SMS_UNKNOWN_CHECK_DELAY", 60.0))


def sweep_grace() -> float:
    """Seconds a queued row is left to its job before the sweep may queue it again."""
    return float(setting("SMS_SWEEP_GRACE", 10.0))


def job_stale_seconds() -> float:
    """Seconds after which a "started" send job is taken for one whose worker was killed."""
    return float(setting("SMS_JOB_STALE_SECONDS", 900.0))
