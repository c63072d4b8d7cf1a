"""THE JSON of cases and forms, one shape per object (the API, forwarding and exports alike).

- Times are ISO 8601 UTC (``clock.isoformat``); a missing time is ``null``.
- A case's ``phone_number`` is E.164, or ``null`` when the number is invalid
  (``phone_raw`` keeps the text as given, ``phone_invalid`` says so);
  ``user_id`` is the last submitter.
- A form lists the case ids it touched and its case blocks as applied.
- A form's result (the answer to a submission) is its id, receipt time and case ids.
- A case block as stored in the case's history: ``case_id``, then ``create``,
  ``update`` and ``close`` only when the block has them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.cases.queries import form_blocks
from messaging.lib import clock
from messaging.models import Case, Form

if TYPE_CHECKING:
    from messaging.cases.blocks import Block
    from messaging.cases.forms import FormResult


# What a message's placeholders read of a case (``{case.name}``, ``{case.<property>}``).
PLACEHOLDER_FIELDS = ("case_id", "case_type", "name", "external_id", "phone_number", "owner_id")


def placeholder_context(case) -> dict:
    """The placeholder context of a case (a ``Case`` or a row with ``PLACEHOLDER_FIELDS`` and
    ``properties``): ``{"case": {...}}`` for ``messaging.lib.templating.render``."""
    return {
        "case": {
            **{name: getattr(case, name) for name in PLACEHOLDER_FIELDS},
            "properties": case.properties or {},
        }
    }


def case_json(case: Case) -> dict:
    return {
        "case_id": case.case_id,
        "case_type": case.case_type,
        "name": case.name,
        "external_id": case.external_id,
        "phone_number": case.phone_number,
        "phone_raw": case.phone_raw,
        "phone_invalid": case.phone_invalid,
        "language": case.language,
        "owner_id": case.owner_id,
        "user_id": case.user_id,
        "closed": case.closed,
        "closed_on": clock.isoformat(case.closed_on),
        "deleted": case.deleted,
        "opened_on": clock.isoformat(case.opened_on),
        "modified_on": clock.isoformat(case.modified_on),
        "properties": dict(case.properties or {}),
    }


def form_json(form: Form, blocks: list[dict] | None = None) -> dict:
    """``blocks``: the form's case blocks when the caller has them (else they are read)."""
    return {
        "form_id": form.form_id,
        "app_id": form.app_id,
        "user_id": form.user_id,
        "received_on": clock.isoformat(form.received_on),
        "source": form.source,
        "xmlns": form.xmlns,
        "name": form.name,
        "answers": form.answers or {},
        "case_ids": list(form.case_ids or []),
        "cases": form_blocks(form) if blocks is None else blocks,
    }


def form_result_json(result: FormResult) -> dict:
    return {
        "form_id": result.form.form_id,
        "received_on": clock.isoformat(result.form.received_on),
        "case_ids": result.case_ids,
    }


def block_json(block: Block) -> dict:
    body: dict = {"case_id": block.case_id}
    if block.create is not None:
        body["create"] = block.create
    if block.update:
        body["update"] = block.update
    if block.close:
        body["close"] = True
    if block.index:
        body["index"] = block.index
    return body
