"""The JSON of data forwarding's objects: a location, a record and an attempt (one shape each).

Rules:
- A location's headers are shown masked (see ``locations.mask_value``); its ``counts``
  give its records by status (every status, zeros included).
- A record's ``next_attempt_at`` is shown only while it is pending; its ``payload``
  (the JSON that is POSTed) only when asked for (one record, not lists).
- Times are ISO 8601 UTC (``clock.isoformat``), or null.
"""

from __future__ import annotations

from messaging.forwarding.locations import masked_headers, status_counts
from messaging.lib import clock
from messaging.models import ForwardAttempt, ForwardLocation, ForwardRecord


def location_json(location: ForwardLocation, counts: dict | None = None) -> dict:
    if counts is None:
        counts = status_counts([location.id])[location.id]
    return {
        "id": location.id,
        "name": location.name,
        "url": location.url,
        "kind": location.kind,
        "format": location.format or "native",
        "events": list(location.events) if location.events is not None else None,
        "headers": masked_headers(location.headers),
        "notify_emails": list(location.notify_emails or []),
        "paused": location.paused,
        "created_at": clock.isoformat(location.created_at),
        "last_notified_at": clock.isoformat(location.last_notified_at),
        "counts": counts,
    }


def record_json(record: ForwardRecord, with_payload: bool = False) -> dict:
    body = {
        "id": record.id,
        "location_id": record.location_id,
        "kind": record.kind,
        "object_id": record.object_id,
        "status": record.status,
        "attempts": record.attempts,
        "next_attempt_at": clock.isoformat(record.next_attempt_at) if record.status == "pending" else None,
        "last_attempt_at": clock.isoformat(record.last_attempt_at),
        "last_status_code": record.last_status_code,
        "last_error": record.last_error,
        "created_at": clock.isoformat(record.created_at),
        "succeeded_at": clock.isoformat(record.succeeded_at),
        "notified_at": clock.isoformat(record.notified_at),
    }
    if with_payload:
        body["payload"] = record.payload
    return body


def attempt_json(attempt: ForwardAttempt) -> dict:
    return {
        "id": attempt.id,
        "record_id": attempt.record_id,
        "attempt": attempt.attempt_number,
        "started_at": clock.isoformat(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "succeeded": attempt.succeeded,
        "response_excerpt": attempt.response_excerpt,
        "error": attempt.error,
    }
