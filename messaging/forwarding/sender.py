"""Data forwarding: POST each new form and each changed case as JSON to a project's URLs.

A transactional outbox:

1. ``capture_form(form)`` / ``capture_case(case)`` run INSIDE the transaction that
   saves the form or changes the case. They look up the project's locations of
   that kind (one indexed query, cached for the transaction) and insert one
   ``pending`` ``forward_records`` row per location with a JSON snapshot of the
   object as it is now. Nothing else happens there: no Redis, no HTTP. With no
   location, that one query is all they cost.
2. AFTER the commit (``messaging.db.after_commit``), ``dispatch_location`` enqueues
   one sender job per location that got records in the transaction. If Redis is down or loses the job,
   the periodic ``sweep()`` enqueues it later: the records are in the database.
3. The sender job ``forward_location(location_id)`` claims a chunk of due records
   atomically (``pending`` -> ``sending`` with a claim token), POSTs each with a
   keep-alive ``requests.Session`` (timeout ``FORWARDING_TIMEOUT`` for connecting
   and for each read), records one ``forward_attempts`` row per POST (status code,
   the first 500 characters of the answer, error) and updates the record:

   - 2xx: ``succeeded``;
   - anything else (3xx included: redirects are not followed), a timeout or a
     connection error: back to ``pending`` with ``next_attempt_at`` after the next
     delay of ``FORWARDING_RETRY_DELAYS`` (1 min, 5 min, 30 min, 2 h, 12 h), or,
     after the last one (6 attempts), ``failed``: the record has given up.

   Retries are scheduled with RQ ``enqueue_in``; the sweep also picks up due
   records, so losing Redis's scheduled jobs only delays them.

Delivery is at least once: a worker that dies between the POST and recording its
outcome leaves the record ``sending``; the sweep puts it back to ``pending`` after
``STALE_SENDING`` and it is sent again. Receivers can de-duplicate with the
``X-Forwarding-Record-Id`` header (or the form/case id and ``modified_on``).

Order: every record has ordering keys (cases: the case id; forms: each case id
the form touched, or the form id when it touched none). A record is sent only
when no OLDER record of the same location sharing a key is ``pending`` or
``sending``; so a later change of case X waits while an earlier change of X is
being retried. A record that gave up (``failed``) or was ``cancelled`` no longer
blocks: the later ones then go out (the receiver gets the newer snapshot; the
failed one can still be resent by hand, out of order by nature).

Pause: a paused location still captures, but its sender does nothing; resuming
sends the backlog in order.

E-mail: when records give up, the location's ``notify_emails`` get ONE e-mail
listing them, and then at most one per ``FORWARDING_NOTIFY_INTERVAL`` (1 h) per
location; records that give up in between are reported by the next e-mail (the
sweep sends it once the interval has passed), so a dead endpoint does not send
one e-mail per record and no failure goes unreported.
"""

import json
import logging
import os
import re
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_request_context, url_for
from redis.exceptions import RedisError
from sqlalchemy import bindparam, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from messaging import jobs
from messaging.db import tenancy
from messaging.db.after_commit import after_commit, transaction_cache
from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import (
    ForwardAttempt,
    ForwardLocation,
    ForwardRecord,
    ForwardRecordKey,
)
from messaging.models.forwarding import FORWARD_KINDS, RECORD_STATUSES

log = logging.getLogger(__name__)

# Records claimed, sent and committed together: at worst CHUNK x timeout in "sending"
# (50 x 10 s), well under STALE_SENDING, after which the sweep would send them again.
CHUNK = 50
RUN_BUDGET_SECONDS = 30.0  # a sender re-enqueues itself after this, so other jobs get a turn
STALE_SENDING = timedelta(minutes=15)
EXCERPT_CHARS = 500
MAX_READ_BYTES = 64 * 1024
MARKER_TTL = 600
ACTIVE = ("pending", "sending")
DEFAULT_RETRY_DELAYS = [60, 300, 1800, 7200, 43200]

MAX_HEADERS = 20
MAX_EMAILS = 20
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_RESERVED_HEADERS = {"host", "content-length", "content-type", "transfer-encoding", "connection"}
_SECRET_HINTS = ("auth", "token", "key", "secret", "pass", "cookie", "signature", "session", "credential")
MASK = "****"

_CACHE = "forwarding_locations"


# --- locations --------------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> Invalid:
    return Invalid("validation_error", f"{field}: {message}", field=field)


def validate_url(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("url", "is required.")
    url = value.strip()
    if len(url) > 2000:
        raise _invalid("url", "must be at most 2000 characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise _invalid("url", "must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise _invalid("url", "is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _invalid("url", "must start with http:// or https://.")
    if not parts.hostname:
        raise _invalid("url", "must name a host, e.g. https://example.org/inbox.")
    if parts.username or parts.password:
        raise _invalid("url", "must not contain a user name or password; send them in a header instead.")
    del port
    return url


def validate_kind(value) -> str:
    if value not in FORWARD_KINDS:
        raise _invalid("kind", "must be 'forms' or 'cases'.")
    return value


def validate_headers(value, existing: dict | None = None) -> dict:
    """A dict of header name -> string value. A value equal to the masked form of the
    stored one (as GET shows it) keeps the stored value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid("headers", "must be an object of header names to string values.")
    if len(value) > MAX_HEADERS:
        raise _invalid("headers", f"must have at most {MAX_HEADERS} headers.")
    old = {k.lower(): (k, v) for k, v in (existing or {}).items()}
    clean: dict = {}
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise _invalid("headers", f"{name!r} is not a valid header name.")
        if name.lower() in _RESERVED_HEADERS:
            raise _invalid("headers", f"{name} is set by the server and cannot be changed.")
        if name.lower() in {k.lower() for k in clean}:
            raise _invalid("headers", f"{name} is given twice.")
        if not isinstance(header_value, str):
            raise _invalid("headers", f"the value of {name} must be a string.")
        if "\r" in header_value or "\n" in header_value or len(header_value) > 4000:
            raise _invalid("headers", f"the value of {name} must be one line of at most 4000 characters.")
        previous = old.get(name.lower())
        if previous is not None and header_value == mask_value(previous[0], previous[1]):
            header_value = previous[1]
        clean[name] = header_value
    return clean


def validate_emails(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in re.split(r"[,;\s]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid("notify_emails", "must be a list of e-mail addresses.")
    if len(value) > MAX_EMAILS:
        raise _invalid("notify_emails", f"must have at most {MAX_EMAILS} addresses.")
    clean = []
    for address in value:
        try:
            normalized = validate_email(address.strip(), check_deliverability=False).normalized
        except EmailNotValidError:
            raise _invalid("notify_emails", f"{address!r} is not a valid e-mail address.") from None
        if normalized not in clean:
            clean.append(normalized)
    return clean


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


def mask_value(name: str, value: str) -> str:
    """How a stored header value is shown: secrets as ``****`` plus, for long ones, the last 4."""
    if not _looks_secret(name):
        return value
    return MASK + value[-4:] if len(value) >= 16 else MASK


def masked_headers(headers: dict) -> dict:
    return {name: mask_value(name, value) for name, value in (headers or {}).items()}


def create_location(
    url,
    kind,
    headers=None,
    notify_emails=None,
    name: str = "",
    paused: bool = False,
) -> ForwardLocation:
    """Validate and add a location to the current project (caller commits)."""
    location = ForwardLocation(
        url=validate_url(url),
        kind=validate_kind(kind),
        headers=validate_headers(headers),
        notify_emails=validate_emails(notify_emails),
        name=(name or "").strip()[:200],
        paused=bool(paused),
    )
    db.session.add(location)
    db.session.flush()
    transaction_cache(_CACHE).clear()
    log.info("forwarding location created location_id=%s kind=%s", location.id, location.kind)
    return location


def update_location(location: ForwardLocation, changes: dict) -> bool:
    """Apply validated changes (url, headers, notify_emails, name, paused); caller commits.
    Returns True when the location was resumed (its sender is enqueued after the commit)."""
    if "kind" in changes and changes["kind"] != location.kind:
        raise _invalid("kind", "cannot be changed; add another location instead.")
    if "url" in changes:
        location.url = validate_url(changes["url"])
    if "headers" in changes:
        location.headers = validate_headers(changes["headers"], existing=location.headers)
    if "notify_emails" in changes:
        location.notify_emails = validate_emails(changes["notify_emails"])
    if "name" in changes:
        name = changes["name"]
        if name is not None and not isinstance(name, str):
            raise _invalid("name", "must be a string.")
        location.name = (name or "").strip()[:200]
    resumed = False
    if "paused" in changes:
        if not isinstance(changes["paused"], bool):
            raise _invalid("paused", "must be true or false.")
        resumed = location.paused and not changes["paused"]
        location.paused = changes["paused"]
        if resumed:
            after_commit(dispatch_location, location.id)
    log.info("forwarding location changed location_id=%s fields=%s", location.id, sorted(changes))
    return resumed


def delete_location(location: ForwardLocation) -> None:
    """Delete a location with its records and attempts (caller commits)."""
    db.session.delete(location)
    transaction_cache(_CACHE).clear()
    log.info("forwarding location deleted location_id=%s", location.id)


def status_counts(location_ids: list[str]) -> dict[str, dict[str, int]]:
    """{location id: {status: count}} for the given locations, in one query."""
    counts = {loc: dict.fromkeys(RECORD_STATUSES, 0) for loc in location_ids}
    if not location_ids:
        return counts
    rows = db.session.execute(
        select(ForwardRecord.location_id, ForwardRecord.status, func.count())
        .where(ForwardRecord.location_id.in_(location_ids))
        .group_by(ForwardRecord.location_id, ForwardRecord.status)
    )
    for location_id, status, n in rows:
        counts[location_id][status] = n
    return counts


# --- capture (inside the caller's transaction) ------------------------------------------------------


def _locations_for(project_id: int, kind: str) -> list[str]:
    cache = transaction_cache(_CACHE)
    key = (project_id, kind)
    if key not in cache:
        cache[key] = list(
            db.session.execute(
                select(ForwardLocation.id)
                .where(ForwardLocation.project_id == project_id, ForwardLocation.kind == kind)
                .execution_options(all_projects=True)
            ).scalars()
        )
    return cache[key]


def form_payload(form) -> dict:
    return {
        "form_id": form.form_id,
        "received_on": clock.isoformat(form.received_on),
        "app_id": form.app_id,
        "user_id": form.user_id,
        "answers": dict(form.answers or {}),
        "case_ids": list(form.case_ids or []),
    }


def case_payload(case) -> dict:
    return {
        "case_id": case.case_id,
        "case_type": case.case_type,
        "name": case.name,
        "external_id": case.external_id,
        "phone_number": case.phone_number,
        "owner_id": case.owner_id,
        "user_id": case.user_id,
        "closed": bool(case.closed),
        "opened_on": clock.isoformat(case.opened_on),
        "modified_on": clock.isoformat(case.modified_on),
        "closed_on": clock.isoformat(case.closed_on),
        "properties": dict(case.properties or {}),
    }


def _insert_records(project_id: int, kind: str, object_id: str, payload: dict, keys: list[str]) -> int:
    locations = _locations_for(project_id, kind)
    if not locations:
        return 0
    now = clock.now()
    rows = [
        {
            "project_id": project_id,
            "location_id": location_id,
            "kind": kind,
            "object_id": object_id,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for location_id in locations
    ]
    record_ids = (
        db.session.execute(
            insert(ForwardRecord).returning(ForwardRecord.id, sort_by_parameter_order=True), rows
        )
        .scalars()
        .all()
    )
    db.session.execute(
        insert(ForwardRecordKey),
        [
            {"location_id": location_id, "ordering_key": key, "record_id": record_id}
            for location_id, record_id in zip(locations, record_ids, strict=True)
            for key in keys
        ],
    )
    for location_id in locations:
        after_commit(dispatch_location, location_id)
    return len(record_ids)


def capture_form(form) -> int:
    """Queue a new form for every forms location of its project; returns the records added.

    Call inside the transaction that saves the form, after it is flushed."""
    keys = list(dict.fromkeys(str(c) for c in (form.case_ids or []) if c)) or [form.form_id]
    return _insert_records(form.project_id, "forms", form.form_id, form_payload(form), keys)


def capture_case(case) -> int:
    """Queue a changed (or new) case for every cases location of its project.

    Call inside the transaction that changes the case, after the change is flushed
    (the case row is then locked, so changes of one case are captured in order)."""
    return _insert_records(case.project_id, "cases", case.case_id, case_payload(case), [case.case_id])


# --- dispatch (after the commit) --------------------------------------------------------------------


def _marker(location_id: str) -> str:
    return f"forwarding:queued:{location_id}"


def dispatch_location(location_id: str) -> bool:
    """Make sure a sender job is queued for the location. Never raises on Redis trouble
    (the sweep catches up). Returns True when a job was enqueued."""
    job_id = f"forward-{location_id}-{uuid.uuid4().hex[:12]}"
    try:
        if not jobs.redis_conn().set(_marker(location_id), job_id, nx=True, ex=MARKER_TTL):
            return False  # a sender is already queued and will see the new records
        jobs.enqueue(jobs.FORWARD_LOCATION, location_id, job_id=job_id)
    except RedisError as exc:
        log.warning("forwarding dispatch failed location_id=%s (the sweep will retry): %s", location_id, exc)
        return False
    return True


def _ensure_dispatched(location_id: str) -> None:
    """The sweep's version: replace a marker whose job is gone (Redis lost it)."""
    try:
        r = jobs.redis_conn()
        job_id = r.get(_marker(location_id))
        if job_id is not None:
            job = jobs.queue(jobs.FORWARD_LOCATION.queue).fetch_job(job_id.decode())
            if job is not None and job.get_status(refresh=True) in ("queued", "started", "deferred"):
                return
            r.delete(_marker(location_id))
    except RedisError as exc:
        log.warning("forwarding sweep cannot reach Redis location_id=%s: %s", location_id, exc)
        return
    dispatch_location(location_id)


def _schedule_retry(location_id: str, delay_seconds: float) -> None:
    due = clock.now() + timedelta(seconds=delay_seconds)
    bucket = int(due.timestamp() // 60)
    try:
        jobs.enqueue(
            jobs.FORWARD_LOCATION,
            location_id,
            job_id=f"forward-retry-{location_id}-{bucket}",
            delay=timedelta(seconds=max(delay_seconds, 0) + 1),
        )
    except RedisError as exc:
        log.warning("forwarding retry not scheduled location_id=%s (the sweep will): %s", location_id, exc)


def retry_delays() -> list[int]:
    """Seconds to wait before each retry; the record gives up after the last one."""
    delays = current_app.config.get("FORWARDING_RETRY_DELAYS")
    return list(DEFAULT_RETRY_DELAYS if delays is None else delays)


# --- sending ----------------------------------------------------------------------------------------

_http = {"pid": None, "session": None}


def http_session() -> requests.Session:
    """One keep-alive session per process (re-made after a fork)."""
    if _http["pid"] != os.getpid() or _http["session"] is None:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=20, pool_maxsize=20, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.trust_env = False
        _http.update(pid=os.getpid(), session=session)
    return _http["session"]


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


def post_record(location: ForwardLocation, record: ForwardRecord, timeout: float) -> dict:
    """POST one record; returns the attempt's fields. Never raises for HTTP trouble."""
    headers = {
        "User-Agent": "messaging-forwarder/1",
        "X-Forwarding-Record-Id": str(record.id),
        "X-Forwarding-Attempt": str(record.attempts + 1),
    }
    headers.update(location.headers or {})
    headers["Content-Type"] = "application/json"
    body = json.dumps(record.payload, separators=(",", ":"), ensure_ascii=False).encode()
    started_at = clock.now()
    t0 = time.perf_counter()
    status_code, excerpt, error = None, "", None
    try:
        response = http_session().post(
            location.url,
            data=body,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
        status_code = response.status_code
        excerpt, read_error = _read_excerpt(response)
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


def forward_location(location_id: str) -> dict:
    """The sender job: send the location's due records, oldest first, in chunks.

    Safe to run twice or concurrently: records are claimed atomically."""
    try:
        jobs.redis_conn().delete(_marker(location_id))  # new records from now on enqueue another sender
    except RedisError:
        pass
    location = db.session.execute(
        select(ForwardLocation).where(ForwardLocation.id == location_id).execution_options(all_projects=True)
    ).scalar_one_or_none()
    totals = {"sent": 0, "succeeded": 0, "gave_up": 0}
    if location is None:
        log.info("forwarding sender: location gone location_id=%s", location_id)
        return totals
    project_id = location.project_id
    timeout = float(current_app.config.get("FORWARDING_TIMEOUT") or 10.0)
    deadline = time.monotonic() + RUN_BUDGET_SECONDS
    with tenancy.project_scope(project_id):
        while True:
            db.session.expire_all()
            location = db.session.get(ForwardLocation, location_id)
            if location is None or location.paused:
                log.info("forwarding sender stops: location paused or gone location_id=%s", location_id)
                break
            token, records = _claim_chunk(location_id)
            if not records:
                break
            outcomes = [post_record(location, record, timeout) for record in records]
            try:
                ok, gave_up, waits = _record_outcomes(location, token, records, outcomes)
            except IntegrityError:
                db.session.rollback()
                log.warning("forwarding sender: location deleted while sending location_id=%s", location_id)
                break
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
            if time.monotonic() > deadline:
                dispatch_location(location_id)
                break
        if location is not None and not location.paused:
            _schedule_next_retry(location_id)
    return totals


def _schedule_next_retry(location_id: str) -> None:
    """Schedule a sender for the location's earliest future retry, if any: every run
    leaves the next one scheduled, even when a scheduled run came early."""
    now = clock.now()
    next_at = db.session.execute(
        select(func.min(ForwardRecord.next_attempt_at))
        .where(ForwardRecord.location_id == location_id, ForwardRecord.status == "pending")
        .where(ForwardRecord.next_attempt_at > now)
    ).scalar()
    db.session.commit()
    if next_at is not None:
        _schedule_retry(location_id, (next_at - now).total_seconds())


# --- resend, cancel -----------------------------------------------------------------------------------


def resend_record(record: ForwardRecord) -> None:
    """Send a record again now (caller commits; its sender is enqueued after the commit).

    A pending record waiting for its retry is tried now; a succeeded, failed or
    cancelled one starts a new series of attempts. 409 while it is being sent."""
    now = clock.now()
    values = {"next_attempt_at": now}
    if record.status != "pending":
        values.update(status="pending", attempts=0, notified_at=None, succeeded_at=None, claim_token=None)
    if record.status == "sending":
        raise Conflict("record_sending", "This record is being sent right now; try again in a moment.")
    if not _conditional_update(record, values):
        raise Conflict("record_changed", "This record changed meanwhile; reload and try again.")
    after_commit(dispatch_location, record.location_id)
    log.info("forwarding record resent record_id=%s was=%s", record.id, record.status)


def cancel_record(record: ForwardRecord) -> None:
    """Stop a pending record from being sent (caller commits). 409 unless pending."""
    if record.status != "pending" or not _conditional_update(record, {"status": "cancelled"}):
        raise Conflict(
            "record_not_pending",
            f"Only a pending record can be cancelled; this one is {record.status}.",
            details={"status": record.status},
        )
    log.info("forwarding record cancelled record_id=%s", record.id)


def _conditional_update(record: ForwardRecord, values: dict) -> bool:
    result = db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.id == record.id, ForwardRecord.status == record.status)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(record)
    return result.rowcount == 1


def resend_failed(location: ForwardLocation) -> int:
    """Put every given-up record of the location back in the queue (caller commits)."""
    result = db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.location_id == location.id, ForwardRecord.status == "failed")
        .values(status="pending", attempts=0, next_attempt_at=clock.now(), notified_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        after_commit(dispatch_location, location.id)
    log.info("forwarding failed records resent location_id=%s count=%s", location.id, result.rowcount)
    return result.rowcount


# --- failure e-mails ----------------------------------------------------------------------------------


def _page_url(location_id: str) -> str:
    base = current_app.config.get("PUBLIC_BASE_URL") or ""
    if has_request_context():
        return url_for("web.forwarding_location", forwarding_id=location_id, _external=True)
    return f"{base}/settings/forwarding/{location_id}"


def notify_failures(location_id: str) -> bool:
    """E-mail the location's addresses about records that gave up and were not reported
    yet, unless an e-mail went out less than FORWARDING_NOTIFY_INTERVAL ago.
    Returns True when an e-mail was sent."""
    from messaging.notifications.mail import send_mail

    location = db.session.execute(
        select(ForwardLocation).where(ForwardLocation.id == location_id).execution_options(all_projects=True)
    ).scalar_one_or_none()
    if location is None:
        return False
    unreported = (
        select(ForwardRecord)
        .where(ForwardRecord.location_id == location_id)
        .where(ForwardRecord.status == "failed", ForwardRecord.notified_at.is_(None))
        .execution_options(all_projects=True)
    )
    failed = db.session.execute(unreported.order_by(ForwardRecord.id).limit(20)).scalars().all()
    if not failed:
        return False
    now = clock.now()
    if location.notify_emails:
        interval = timedelta(seconds=int(current_app.config.get("FORWARDING_NOTIFY_INTERVAL", 3600)))
        claimed = db.session.execute(
            update(ForwardLocation)
            .where(ForwardLocation.id == location_id)
            .where(
                or_(
                    ForwardLocation.last_notified_at.is_(None),
                    ForwardLocation.last_notified_at <= now - interval,
                )
            )
            .values(last_notified_at=now)
            .execution_options(synchronize_session=False, all_projects=True)
        )
        if claimed.rowcount != 1:
            db.session.rollback()
            return False  # e-mailed recently; the sweep reports these after the interval
    total = db.session.execute(select(func.count()).select_from(unreported.subquery())).scalar_one()
    db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.location_id == location_id)
        .where(ForwardRecord.status == "failed", ForwardRecord.notified_at.is_(None))
        .values(notified_at=now)
        .execution_options(synchronize_session=False, all_projects=True)
    )
    db.session.commit()
    if not location.notify_emails:
        log.info("forwarding gave up location_id=%s records=%d (no address to notify)", location_id, total)
        return False
    lines = [
        f"Data forwarding to {location.url} ({location.kind}) gave up on {total} record(s) after "
        f"{len(retry_delays()) + 1} attempts each.",
        "",
    ]
    for record in failed:
        reason = record.last_error or (f"HTTP {record.last_status_code}" if record.last_status_code else "")
        lines.append(f"- {record.kind[:-1]} {record.object_id} (record {record.id}): {reason}")
    if total > len(failed):
        lines.append(f"- ... and {total - len(failed)} more")
    lines += ["", f"Resend or cancel them on the data forwarding page: {_page_url(location_id)}"]
    send_mail(
        location.notify_emails,
        f"Data forwarding failed: {total} record(s) to {location.url}",
        "\n".join(lines),
        project_id=location.project_id,
        topic=f"forward_location:{location_id}",
    )
    log.info("forwarding failure e-mail location_id=%s records=%d", location_id, total)
    return True


# --- the sweep ----------------------------------------------------------------------------------------


def sweep() -> dict:
    """Periodic: put back records whose sender died, make sure every location with due
    records has a sender queued, and send the failure e-mails that were held back."""
    now = clock.now()
    reset = db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.status == "sending", ForwardRecord.claimed_at < now - STALE_SENDING)
        .values(status="pending", claim_token=None, next_attempt_at=now)
        .execution_options(synchronize_session=False, all_projects=True)
    ).rowcount
    db.session.commit()
    if reset:
        log.warning("forwarding sweep: %d record(s) stuck in sending put back to pending", reset)
    due = (
        db.session.execute(
            select(ForwardRecord.location_id)
            .join(ForwardLocation, ForwardLocation.id == ForwardRecord.location_id)
            .where(ForwardRecord.status == "pending", ForwardRecord.next_attempt_at <= now)
            .where(ForwardLocation.paused.is_(False))
            .distinct()
            .execution_options(all_projects=True)
        )
        .scalars()
        .all()
    )
    for location_id in due:
        _ensure_dispatched(location_id)
    unreported = (
        db.session.execute(
            select(ForwardRecord.location_id)
            .where(ForwardRecord.status == "failed", ForwardRecord.notified_at.is_(None))
            .distinct()
            .execution_options(all_projects=True)
        )
        .scalars()
        .all()
    )
    emailed = sum(notify_failures(location_id) for location_id in unreported)
    db.session.commit()
    return {"reset": reset, "dispatched": len(due), "emailed": emailed}
