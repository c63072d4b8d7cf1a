"""Capture: a new form or a changed case becomes one ``pending`` record per location.

Rules:
- ``capture_form(form, blocks)`` / ``capture_case(case)`` run INSIDE the transaction that
  saves the form or changes the case. They look up the project's locations of that
  kind (one indexed query, cached for the transaction) and insert one ``pending``
  ``forward_records`` row per location with a JSON snapshot of the object as it is
  now: the object's one JSON shape, the API's (``messaging.cases.serialize``;
  the caller gives a form's case blocks, which it has in hand), or CommCare HQ's for a
  location in the ``commcare`` format (``messaging.forwarding.commcare_format``). Nothing else
  happens there: no Redis, no HTTP. With no location, that one
  query is all they cost.
- Each location that got records has its sender enqueued after the commit
  (``dispatch_location``); a rollback drops both the records and the dispatch.
- Every record has ordering keys (cases: the case id; forms: each case id the form
  touched, or the form id when it touched none); the sender keeps the order per key.
- A case is captured after its change is flushed: the case row is then locked, so
  changes of one case are captured in order.
- Message events (``capture_events``) go to the project's webhooks that receive that
  event: ``{event, id, occurred_at, data}``, ordered per participant's phone number,
  many occurrences in one insert (a send chunk's statuses).
"""

from __future__ import annotations

from sqlalchemy import insert

from messaging.cases.serialize import case_json, form_json
from messaging.db.after_commit import after_commit
from messaging.extensions import db
from messaging.forwarding import commcare_format
from messaging.forwarding.dispatch import dispatch_location
from messaging.forwarding.locations import event_location_ids, location_ids_for
from messaging.lib import clock
from messaging.models import ForwardRecord, ForwardRecordKey, new_id
from messaging.models.forwarding import ForwardKind


def form_payload(form, blocks: list[dict]) -> dict:
    """What is forwarded for a form: its JSON (``messaging.cases.serialize``), as the API shows it."""
    return form_json(form, blocks)


def case_payload(case) -> dict:
    """What is forwarded for a case: its JSON (``messaging.cases.serialize``), as the API shows it."""
    return case_json(case)


def _insert_records(project_id: int, kind: str, object_id: str, payloads: dict, keys: list[str]) -> int:
    """One record per location of the kind, in the location's format; ``payloads[format]()`` is
    called only for a format some location has."""
    added = 0
    for shape, locations in location_ids_for(project_id, kind).items():
        added += _insert(project_id, kind, locations, [(object_id, payloads[shape](), keys)])
    return added


def _insert(
    project_id: int, kind: str, locations: list[str], objects: list[tuple[str, dict, list[str]]]
) -> int:
    """One record per (location, object) and its ordering keys, in two statements; each
    location's sender is dispatched after the commit."""
    now = clock.now()
    pairs = [(location_id, obj) for obj in objects for location_id in locations]
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
        for location_id, (object_id, payload, _keys) in pairs
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
            for (location_id, (_object_id, _payload, keys)), record_id in zip(pairs, record_ids, strict=True)
            for key in keys
        ],
    )
    for location_id in locations:
        after_commit(dispatch_location, location_id)
    return len(record_ids)


def capture_form(form, blocks: list[dict]) -> int:
    """Queue a new form for every forms location of its project; returns the records added.

    Call inside the transaction that saves the form, after it is flushed."""
    keys = list(dict.fromkeys(str(c) for c in (form.case_ids or []) if c)) or [form.form_id]
    payloads = {
        "native": lambda: form_payload(form, blocks),
        "commcare": lambda: commcare_format.form_payload(form, blocks),
    }
    return _insert_records(form.project_id, "forms", form.form_id, payloads, keys)


def capture_case(case) -> int:
    """Queue a changed (or new) case for every cases location of its project.

    Call inside the transaction that changes the case, after the change is flushed
    (the case row is then locked, so changes of one case are captured in order)."""
    payloads = {"native": lambda: case_payload(case), "commcare": lambda: commcare_format.case_payload(case)}
    return _insert_records(case.project_id, "cases", case.case_id, payloads, [case.case_id])


def event_payload(event: str, data: dict) -> dict:
    """What a webhook receives: the event's name, a unique id (a receiver's de-duplication
    key: delivery is at least once), when it happened and its data."""
    return {"event": event, "id": new_id(), "occurred_at": clock.isoformat(clock.now()), "data": data}


def capture_events(project_id: int, event: str, items: list[tuple[str, str, dict]]) -> int:
    """Queue ``event`` for every webhook of the project that receives it; returns the records added.

    ``items``: ``(object id, participant's phone, data)``, one per occurrence (a chunk of
    status changes is one call). Records keep order per phone number. Call inside the
    transaction that makes the change; with no such webhook, one cached query is all it costs.
    """
    locations = event_location_ids(project_id, event) if items else []
    if not locations:
        return 0
    objects = [
        (str(object_id), event_payload(event, data), [phone or str(object_id)])
        for object_id, phone, data in items
    ]
    return _insert(project_id, ForwardKind.EVENTS.value, locations, objects)
