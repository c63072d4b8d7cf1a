"""Forwarding in CommCare's format: what CommCare HQ's "Forward Forms" and "Forward Cases" (JSON)
send, so OpenFn jobs and triggers written for CommCare match unchanged.

Rules (../shared/COMMCARE.md e):
- A form is the form API's object (``messaging.commcare.serialize.form_json``): a top-level
  ``form`` with ``@xmlns``, ``@name`` and the answers (what OpenFn's
  ``{"form": {"@xmlns": ...}}`` triggers match). It is POSTed to the location's URL
  with ``?app_id=<app id>`` when the form has one, and a ``received-on`` header.
- A case is CommCare's lite case: ``{domain, case_id, user_id, closed, xform_ids,
  date_closed, date_modified, server_date_modified, properties, indices,
  attachments}`` (no ``id``, no ``indexed_on``), with a ``server-modified-on`` header.
- The payload is made when the record is captured (the object as it is then), as
  the native one is; the headers and the query are read from it when it is sent.
"""

from __future__ import annotations

from sqlalchemy import select

from messaging.commcare import listing, serialize
from messaging.db.after_commit import transaction_cache
from messaging.extensions import db
from messaging.models import Project

LITE_CASE_KEYS = (
    "domain",
    "case_id",
    "user_id",
    "closed",
    "xform_ids",
    "date_closed",
    "date_modified",
    "server_date_modified",
    "properties",
    "indices",
)


def _slug(project_id: int) -> str:
    cache = transaction_cache("project_slugs")
    if project_id not in cache:
        cache[project_id] = db.session.execute(
            select(Project.slug).where(Project.id == project_id)
        ).scalar_one()
    return cache[project_id]


def form_payload(form, blocks: list[dict]) -> dict:
    return serialize.form_json(form, _slug(form.project_id), blocks)


def case_payload(case) -> dict:
    [full] = listing.objects_json("case", [case], _slug(case.project_id))
    return {**{key: full[key] for key in LITE_CASE_KEYS}, "attachments": {}}


def request_extras(kind: str, payload: dict) -> tuple[dict, dict]:
    """The headers and the query parameters CommCare adds to a record's POST."""
    if kind == "forms":
        query = {"app_id": payload["app_id"]} if payload.get("app_id") else {}
        return {"received-on": payload.get("received_on") or ""}, query
    return {"server-modified-on": payload.get("server_date_modified") or ""}, {}
