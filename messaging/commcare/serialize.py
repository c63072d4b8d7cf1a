"""CommCare's JSON of this server's objects: what ``/a/<slug>/api/v0.5/`` and CommCare-format
forwarding send, one shape per object.

Rules (the shapes of ../shared/COMMCARE.md b.1-b.6):
- Times are CommCare's: UTC with microseconds and ``Z`` (``messaging.lib.commcare_time``).
- **Case**: ``id`` and ``case_id`` the case id; ``case_name``, ``case_type``,
  ``owner_id``, ``external_id`` and ``date_opened`` only inside ``properties``, with
  the case's properties as strings (CommCare's come from XML) and its phone as
  ``contact_phone_number``; ``indexed_on`` the case's stamp; ``xform_ids`` the forms
  that touched it, oldest first; ``indices`` ``{}`` when none.
- **Form**: a form the receiver got shows its XML's JSON as ``form``; any other
  form (the JSON API, an SMS survey, a bulk upload) is given the same shape:
  ``#type``, ``@xmlns``, ``@name``, its answers as strings, its case blocks as
  CommCare v2 blocks (one block a dict, several a list) and a ``meta`` block.
  ``metadata`` is the meta block's fields; ``resource_uri`` is ``""`` as in HQ.
- **Mobile worker** and **group** as HQ's v0.5 resources; the username as stored.
- **Messaging event**: one per message of the log (``date_last_activity`` its last change).
"""

from __future__ import annotations

from messaging.lib.commcare_time import hq_datetime
from messaging.models import Case, Form, Message, MobileWorker, UserGroup

META_XMLNS = "http://openrosa.org/jr/xforms"
CASE_XMLNS = "http://commcarehq.org/case/transaction/v2"
API = "/a/{slug}/api/v0.5"


def _string(value):
    """A property or answer value as CommCare shows it: text (lists and objects kept, their leaves text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return {k: _string(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string(v) for v in value]
    return str(value)


def case_json(case: Case, slug: str, xform_ids: list[str]) -> dict:
    properties = {k: _string(v) for k, v in (case.properties or {}).items()}
    properties.update(
        {
            "case_name": case.name or "",
            "case_type": case.case_type,
            "owner_id": case.owner_id or "",
            "external_id": case.external_id or "",
            "date_opened": hq_datetime(case.opened_on),
        }
    )
    if case.phone_number or case.phone_raw:
        properties["contact_phone_number"] = case.phone_number or case.phone_raw
    if case.language:
        properties["language"] = case.language
    return {
        "id": case.case_id,
        "case_id": case.case_id,
        "domain": slug,
        "user_id": case.user_id,
        "closed": bool(case.closed),
        "date_closed": hq_datetime(case.closed_on),
        "date_modified": hq_datetime(case.modified_on),
        "server_date_modified": hq_datetime(case.modified_on),
        "server_date_opened": hq_datetime(case.opened_on),
        "indexed_on": hq_datetime(case.indexed_on or case.modified_on),
        "opened_by": None,
        "closed_by": None,
        "xform_ids": xform_ids,
        "properties": properties,
        "indices": dict(case.indices or {}),
        "resource_uri": f"{API.format(slug=slug)}/case/{case.case_id}/",
    }


def _v2_block(block: dict, form: Form) -> dict:
    out = {
        "@case_id": block["case_id"],
        "@date_modified": hq_datetime(form.received_on),
        "@user_id": form.user_id or "",
        "@xmlns": CASE_XMLNS,
    }
    if block.get("create"):
        out["create"] = {k: _string(v) for k, v in block["create"].items()}
    if block.get("update"):
        out["update"] = {k: _string(v) for k, v in block["update"].items()}
    if block.get("close"):
        out["close"] = ""
    for identifier, index in (block.get("index") or {}).items():
        out.setdefault("index", {})[identifier] = {
            "@case_type": index["case_type"],
            "@relationship": index.get("relationship", "child"),
            "#text": index.get("case_id", ""),
        }
    return out


def _meta(form: Form) -> dict:
    meta = dict(form.meta or {})
    meta.setdefault("instanceID", form.form_id)
    meta.setdefault("userID", form.user_id or "")
    meta.setdefault("timeEnd", hq_datetime(form.received_on))
    return meta


def form_body(form: Form, blocks: list[dict], meta: dict) -> dict:
    """The ``form`` object: the XForm's own JSON, or one made in its shape."""
    if form.xml is not None:
        return form.answers or {}
    answers = {k: _string(v) for k, v in (form.answers or {}).items()}
    body = {
        "#type": "data",
        "@xmlns": form.xmlns or "",
        "@name": form.name or "",
        "@uiVersion": "1",
        "@version": "1",
    }
    body.update(answers)
    if blocks:
        cases = [_v2_block(b, form) for b in blocks]
        body["case"] = cases[0] if len(cases) == 1 else cases
    body["meta"] = {"@xmlns": META_XMLNS, **meta}
    return body


def form_json(form: Form, slug: str, blocks: list[dict]) -> dict:
    meta = _meta(form)
    return {
        "id": form.form_id,
        "domain": slug,
        "app_id": form.app_id,
        "build_id": None,
        "type": "data",
        "version": "1",
        "uiversion": "1",
        "received_on": hq_datetime(form.received_on),
        "server_modified_on": hq_datetime(form.received_on),
        "indexed_on": hq_datetime(form.indexed_on or form.received_on),
        "edited_on": None,
        "edited_by_user_id": None,
        "archived": False,
        "is_phone_submission": form.source == "xform",
        "initial_processing_complete": True,
        "problem": None,
        "submit_ip": None,
        "metadata": {
            key: meta.get(key)
            for key in (
                "instanceID",
                "userID",
                "username",
                "deviceID",
                "timeStart",
                "timeEnd",
                "appVersion",
                "location",
            )
        },
        "form": form_body(form, blocks, meta),
        "attachments": {},
        "resource_uri": "",
    }


def user_json(worker: MobileWorker, slug: str, group_ids: list[str], sharing_ids: list[str]) -> dict:
    phones = [worker.phone_number] if worker.phone_number else []
    user_data = {"commcare_project": slug}
    if len(sharing_ids) == 1:
        user_data["commcare_primary_case_sharing_id"] = sharing_ids[0]
    return {
        "id": worker.id,
        "username": worker.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "default_phone_number": phones[0] if phones else None,
        "phone_numbers": phones,
        "groups": group_ids,
        "user_data": user_data,
        "primary_location": None,
        "locations": [],
        "eulas": "[]",
        "resource_uri": f"{API.format(slug=slug)}/user/{worker.id}/",
    }


def group_json(group: UserGroup, slug: str, user_ids: list[str]) -> dict:
    return {
        "id": group.id,
        "domain": slug,
        "name": group.name,
        "case_sharing": bool(group.case_sharing),
        "reporting": True,
        "metadata": {},
        "users": user_ids,
        "resource_uri": f"{API.format(slug=slug)}/group/{group.id}/",
    }


def event_json(message: Message, slug: str, case_id: str | None) -> dict:
    """A message of the log as CommCare's messaging event (one SMS each)."""
    failed = message.status in ("failed", "undelivered")
    return {
        "id": message.id,
        "date": hq_datetime(message.created_at),
        "date_last_activity": hq_datetime(message.updated_at),
        "domain": slug,
        "content_type": "sms",
        "case_id": case_id,
        "status": "error" if failed else "completed",
        "error": {
            "code": message.skip_reason or message.error_code,
            "message": message.error_message,
            "message_detail": None,
        }
        if failed
        else None,
        "form": None,
        "recipient": {"recipient_id": case_id, "type": "case" if case_id else None, "name": None},
        "source": {
            "source_id": message.broadcast_id or message.alert_id or message.survey_session_id,
            "type": "broadcast" if message.broadcast_id else ("alert" if message.alert_id else "other"),
            "name": None,
        },
        "messages": [
            {
                "message_id": message.id,
                "date": hq_datetime(message.created_at),
                "date_modified": hq_datetime(message.updated_at),
                "type": "sms",
                "direction": "incoming" if message.direction == "inbound" else "outgoing",
                "content": message.body,
                "status": message.status,
                "backend": message.gateway,
                "phone_number": message.phone,
                "error_message": message.error_message,
            }
        ],
    }
