"""The JSON of a broadcast and of its firings: one shape each, for the API and the web UI alike.

Rules:
- A broadcast's definition has the shape of the body that creates it (name,
  recipients, content, ``send_at`` or ``repeat``, ``quiet_hours``), so an
  edit's body is merged over it.
- A broadcast's JSON is its definition with its id, its status, its next
  firing and, unless a list asks without them, its latest firings with their
  counts; ``counts`` and ``percent`` are the latest firing's.
- Times are ISO 8601 UTC (``...Z``), or null.
"""

from __future__ import annotations

from messaging.broadcasts import reading
from messaging.lib import clock
from messaging.models import Broadcast, BroadcastFiring


def definition_json(b: Broadcast) -> dict:
    """What defines the broadcast, in the shape of the body that creates it."""
    return {
        "name": b.name,
        "recipients": b.recipients,
        "text": b.text,
        "translations": b.translations or None,
        "default_language": b.default_language,
        "survey_id": b.survey_id,
        "send_at": clock.isoformat(b.send_at),
        "repeat": b.schedule,
        "quiet_hours": {"start": b.quiet_start, "end": b.quiet_end} if b.quiet_start else None,
    }


def broadcast_json(b: Broadcast, with_firings: bool = True, status: str | None = None) -> dict:
    """The API's view of a broadcast (``status`` when the caller has it already)."""
    firings = reading.firings_of(b) if with_firings else []
    body = {"id": b.id, "name": b.name, "status": status or reading.broadcast_status(b)}
    body.update(definition_json(b))
    body.update(
        next_fire_at=clock.isoformat(b.next_fire_at),
        created_at=clock.isoformat(b.created_at),
        cancelled_at=clock.isoformat(b.cancelled_at),
    )
    if with_firings:
        progress = [firing_json(f) for f in firings]
        body["firings"] = progress
        latest = progress[0] if progress else None
        body["counts"] = {
            "statuses": latest["statuses"] if latest else {},
            "skipped": latest["skipped"] if latest else {},
        }
        body["percent"] = latest["percent"] if latest else 0
    return body


def firing_json(firing: BroadcastFiring) -> dict:
    """One firing: messages by status, skipped by reason, and the percent finished."""
    return {
        "id": firing.id,
        "fire_at": clock.isoformat(firing.fire_at),
        "status": firing.status,
        "recipients": firing.total,
        "processed": firing.processed,
        "messages": firing.messages,
        **reading.firing_counts(firing),
        "started_at": clock.isoformat(firing.started_at),
        "finished_at": clock.isoformat(firing.finished_at),
    }
