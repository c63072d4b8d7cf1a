"""The sender job: POST a location's due records, oldest first, and record each outcome.

Rules:
- ``forward_location(location_id)`` claims a chunk of due records atomically
  (``pending`` -> ``sending`` with a claim token), POSTs each with a keep-alive
  session (timeout ``FORWARDING_TIMEOUT`` for connecting and for each read), records
  one ``forward_attempts`` row per POST (status code, the first 500 characters of the
  answer, error) and updates the record:

  - 2xx: ``succeeded``;
  - anything else (3xx included: redirects are not followed), a timeout, a connection
    error or a refused address: back to ``pending`` with ``next_attempt_at`` after the
    next delay of ``FORWARDING_RETRY_DELAYS``, or, after the last one (6 attempts),
    ``failed``: the record has given up (and can be resent by hand: nothing is lost).
- The location's URL is checked again before each chunk (its name may resolve elsewhere
  now, the allow list may have changed; ``locations.checked_destination``) and the POSTs
  connect to the address that was checked (``messaging.lib.outbound_http``). A refused
  address sends nothing: every record of the chunk gets a failed attempt saying why.
- The answer's excerpt is kept only for 2xx-4xx answers: a 5xx answer (often a proxy's
  or an internal server's error page) and a refused address keep none.
- Safe to run twice or concurrently: records are claimed atomically. Delivery is at
  least once (see the sweep); receivers can de-duplicate with the
  ``X-Forwarding-Record-Id`` header (or the form/case id and ``modified_on``).
- Order: a record is sent only when no OLDER record of the same location sharing an
  ordering key is ``pending`` or ``sending``; so a later change of case X waits while
  an earlier change of X is being retried. A claimed chunk therefore holds at most one
  record per ordering key, and its POSTs go out in parallel (``FORWARDING_PARALLEL``
  at a time, 8 by default): different cases' records do not wait for each other, and
  each case's stay in order. The requests are prepared (headers, body) before the
  threads start, so the threads touch no database session. A record that gave up (``failed``) or was
  ``cancelled`` no longer blocks: the later ones then go out (the receiver gets the
  newer snapshot; the failed one can still be resent by hand, out of order by nature).
- Pause: a paused location's sender does nothing; resuming sends the backlog in order.
- A sender re-enqueues itself after ``RUN_BUDGET_SECONDS``, so other jobs get a turn,
  and leaves the location's next retry scheduled.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from flask import current_app
from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from messaging.db import tenancy
from messaging.extensions import db
from messaging.forwarding import commcare_format
from messaging.forwarding.dispatch import clear_marker, dispatch_location, retry_delays, schedule_next_retry
from messaging.forwarding.locations import checked_destination, location_in_any_project
from messaging.forwarding.notify import notify_failures
from messaging.lib import clock, outbound_http
from messaging.lib.outbound import Destination, OutboundRefused
from messaging.models import ForwardAttempt, ForwardLocation, ForwardRecord, ForwardRecordKey

log = logging.getLogger(__name__)

# Records claimed, sent and committed together: at worst CHUNK x timeout in "sending"
# (50 x 10 s), well under the sweep's STALE_SENDING, after which it would send them again.
CHUNK = 50
RUN_BUDGET_SECONDS = 30.0  # a sender re-enqueues itself after this, so other jobs get a turn
EXCERPT_CHARS = 500
MAX_READ_BYTES = 64 * 1024
ACTIVE = ("pending", "sending")
DEFAULT_PARALLEL = 8  # POSTs of one chunk at a time (FORWARDING_PARALLEL)


def forward_location(location_id: str) -> dict:
    """The sender job: send the location's due records, oldest first, in chunks.

    Safe to run twice or concurrently: records are claimed atomically."""
    clear_marker(location_id)  # new records from now on enqueue another sender
    location = location_in_any_project(location_id)
    totals = {"sent": 0, "succeeded": 0, "gave_up": 0}
    if location is None:
        log.info("forwarding sender: location gone location_id=%s", location_id)
        return totals
    project_id = location.project_id
    timeout = float(current_app.config.get("FORWARDING_TIMEOUT") or 10.0)
    parallel = max(1, int(current_app.config.get("FORWARDING_PARALLEL") or DEFAULT_PARALLEL))
    deadline = time.monotonic() + RUN_BUDGET_SECONDS
    with tenancy.project_scope(project_id):
        while True:
            db.session.expire_all()
            location = db.session.get(ForwardLocation, location_id)
            if location is None or location.paused:
                log.info("forwarding sender stops: location paused or gone location_id=%s", location_id)
                break
            if not _send_one_chunk(location, timeout, parallel, totals):
                break
            if time.monotonic() > deadline:
                dispatch_location(location_id)
                break
        if location is not None and not location.paused:
            schedule_next_retry(location_id)
    return totals


def _send_one_chunk(location: ForwardLocation, timeout: float, parallel: int, totals: dict) -> bool:
    """Claim, send and record one chunk, adding to ``totals``; False when there was
    nothing to send or the location was deleted meanwhile."""
    location_id = location.id
    token, records = _claim_chunk(location_id)
    if not records:
        return False
    destination = _destination_or_refusal(location)
    prepared = [prepare_post(location, record) for record in records]
    threads = _posting_threads(parallel)
    outcomes = list(
        threads.map(
            lambda request: post_prepared(
                _with_query(destination, request[2]), request[0], request[1], timeout
            ),
            prepared,
        )
    )
    try:
        ok, gave_up, waits = _record_outcomes(location, token, records, outcomes)
    except IntegrityError:
        db.session.rollback()
        log.warning("forwarding sender: location deleted while sending location_id=%s", location_id)
        return False
    totals["sent"] += len(records)
    totals["succeeded"] += ok
    totals["gave_up"] += gave_up
    log.info(
        "forwarding chunk location_id=%s records=%s-%s sent=%d ok=%d retry=%d gave_up=%d",
        location_id,
        records[0].id,
        records[-1].id,
        len(records),
        ok,
        len(waits),
        gave_up,
    )
    if gave_up:
        notify_failures(location_id)
    return True


# --- claiming ---------------------------------------------------------------------------------------

_SENDABLE = {}


def _sendable_statement():
    """Due pending records of a location that no older active record with a shared key
    blocks, oldest first (built once; bound per call)."""
    if "stmt" not in _SENDABLE:
        key_self = aliased(ForwardRecordKey)
        key_older = aliased(ForwardRecordKey)
        older = aliased(ForwardRecord)
        blocked = (
            exists()
            .where(key_self.record_id == ForwardRecord.id)
            .where(key_older.location_id == key_self.location_id)
            .where(key_older.ordering_key == key_self.ordering_key)
            .where(key_older.record_id < key_self.record_id)
            .where(older.id == key_older.record_id)
            .where(older.status.in_(ACTIVE))
        )
        _SENDABLE["stmt"] = (
            select(ForwardRecord.id)
            .where(ForwardRecord.location_id == bindparam("location_id"))
            .where(ForwardRecord.status == "pending")
            .where(ForwardRecord.next_attempt_at <= bindparam("now"))
            .where(~blocked)
            .order_by(ForwardRecord.id)
            .limit(CHUNK)
        )
    return _SENDABLE["stmt"]


def _claim_chunk(location_id: str) -> tuple[str, list[ForwardRecord]]:
    now = clock.now()
    ids = db.session.execute(_sendable_statement(), {"location_id": location_id, "now": now}).scalars().all()
    if not ids:
        db.session.commit()
        return "", []
    token = uuid.uuid4().hex
    db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.id.in_(ids), ForwardRecord.status == "pending")
        .values(status="sending", claimed_at=now, claim_token=token)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    records = (
        db.session.execute(
            select(ForwardRecord)
            .where(ForwardRecord.claim_token == token, ForwardRecord.status == "sending")
            .order_by(ForwardRecord.id)
        )
        .scalars()
        .all()
    )
    return token, records


# --- posting ----------------------------------------------------------------------------------------


def _destination_or_refusal(location: ForwardLocation) -> Destination | OutboundRefused:
    """The location's URL checked now (once per chunk), or why it may not be sent to."""
    try:
        return checked_destination(location.url)
    except OutboundRefused as refusal:
        log.warning("forwarding sender: address refused location_id=%s code=%s", location.id, refusal.code)
        return refusal


def _read_excerpt(response) -> tuple[str, str | None]:
    chunks, total = [], 0
    error = None
    try:
        for chunk in response.iter_content(4096):
            chunks.append(chunk)
            total += len(chunk)
            if total >= MAX_READ_BYTES:
                break
    except requests.RequestException as exc:
        error = f"reading the answer failed: {type(exc).__name__}"
    finally:
        response.close()
    text = b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
    return text[:EXCERPT_CHARS], error


def prepare_post(location: ForwardLocation, record: ForwardRecord) -> tuple[dict, bytes, dict]:
    """The headers, the JSON body and the query parameters of a record's POST (read here, in the
    job's thread). A location in CommCare's format adds CommCare's headers and ``?app_id=``."""
    headers = {
        "User-Agent": "messaging-forwarder/1",
        "X-Forwarding-Record-Id": str(record.id),
        "X-Forwarding-Attempt": str(record.attempts + 1),
    }
    query: dict = {}
    if location.format == "commcare":  # a format only forms and cases locations take
        extra_headers, query = commcare_format.request_extras(record.kind, record.payload)
        headers.update(extra_headers)
    headers.update(location.headers or {})
    headers["Content-Type"] = "application/json"
    return headers, json.dumps(record.payload, separators=(",", ":"), ensure_ascii=False).encode(), query


def _with_query(destination: Destination | OutboundRefused, query: dict) -> Destination | OutboundRefused:
    return destination.with_query(query) if query and isinstance(destination, Destination) else destination


def post_prepared(
    destination: Destination | OutboundRefused, headers: dict, body: bytes, timeout: float
) -> dict:
    """POST a prepared record to the address the chunk's check gave (or record why it may not
    be sent); returns the attempt's fields. Never raises for HTTP trouble; touches no database."""
    started_at = clock.now()
    t0 = time.perf_counter()
    status_code, excerpt, error = None, "", None
    try:
        if isinstance(destination, OutboundRefused):
            error = f"not sent: {destination.reason}"
        else:
            response = outbound_http.post(destination, body, headers, timeout)
            status_code = response.status_code
            excerpt, read_error = _read_excerpt(response)
            if status_code >= 500:
                excerpt = ""  # an internal error page says nothing the receiver's owner needs here
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
            elif read_error:
                error = read_error
    except requests.Timeout:
        error = f"timed out after {timeout:g} s"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    return {
        "started_at": started_at,
        "duration_ms": int((time.perf_counter() - t0) * 1000),
        "status_code": status_code,
        "succeeded": status_code is not None and 200 <= status_code < 300,
        "response_excerpt": excerpt,
        "error": error,
    }


_threads: dict = {"pid": None, "size": 0, "pool": None}


def _posting_threads(size: int) -> ThreadPoolExecutor:
    """The process's pool of POSTing threads (re-made after a fork or for another size)."""
    if _threads["pid"] != os.getpid() or _threads["size"] != size:
        pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="forward")
        _threads.update(pid=os.getpid(), size=size, pool=pool)
    return _threads["pool"]


# --- recording --------------------------------------------------------------------------------------


def _record_outcomes(location: ForwardLocation, token: str, records, outcomes) -> tuple[int, int, list]:
    """Write the attempts and the records' new state; returns (succeeded, gave_up, retry delays)."""
    delays = retry_delays()
    now = clock.now()
    db.session.execute(
        insert(ForwardAttempt),
        [
            {
                "project_id": location.project_id,
                "location_id": location.id,
                "record_id": record.id,
                "attempt_number": record.attempts + 1,
                **outcome,
            }
            for record, outcome in zip(records, outcomes, strict=True)
        ],
    )
    succeeded, gave_up, waits = 0, 0, []
    ok_by_code: dict[int, list[int]] = {}
    for record, outcome in zip(records, outcomes, strict=True):
        if outcome["succeeded"]:
            ok_by_code.setdefault(outcome["status_code"], []).append(record.id)
            continue
        attempts = record.attempts + 1
        values = {
            "attempts": attempts,
            "last_attempt_at": outcome["started_at"],
            "last_status_code": outcome["status_code"],
            "last_error": outcome["error"],
            "claim_token": None,
        }
        if attempts > len(delays):
            values.update(status="failed")
            gave_up += 1
        else:
            values.update(status="pending", next_attempt_at=now + timedelta(seconds=delays[attempts - 1]))
            waits.append(delays[attempts - 1])
        db.session.execute(
            update(ForwardRecord)
            .where(ForwardRecord.id == record.id, ForwardRecord.claim_token == token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    for code, ids in ok_by_code.items():
        db.session.execute(
            update(ForwardRecord)
            .where(ForwardRecord.id.in_(ids), ForwardRecord.claim_token == token)
            .values(
                status="succeeded",
                attempts=ForwardRecord.attempts + 1,
                succeeded_at=now,
                last_attempt_at=now,
                last_status_code=code,
                last_error=None,
                claim_token=None,
            )
            .execution_options(synchronize_session=False)
        )
        succeeded += len(ids)
    db.session.commit()
    return succeeded, gave_up, waits
