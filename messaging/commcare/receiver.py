"""The XForm receiver: CommCare's form submission, applied with the rules of every form.

Rules:
- The XForm is the request body itself or, multipart, its ``xml_submission_file``
  part (the HTTP layer picks it); at most ``MAX_BYTES``. It is parsed with
  defusedxml, refusing any DTD, entity or external reference (billion laughs,
  XXE): what is not such XML is refused as ``unreadable`` and changes nothing.
- Case blocks are found anywhere in the form: every element named ``case`` with a
  ``case_id`` attribute. Its namespace must be CommCare's v2
  (``http://commcarehq.org/case/transaction/v2``), else the form is refused.
- In ``create``: ``case_type``, ``case_name``, ``owner_id``. In ``update``:
  ``case_name`` renames, ``external_id``, ``owner_id`` and ``language`` set those,
  ``contact_phone_number`` (CommCare's name) is the phone number, ``date_opened``
  and ``user_id`` are CommCare's own bookkeeping and ignored, every other child is
  a case property (a repeated one takes the last value). ``close`` present (even
  empty) closes. In ``index``: each child's tag names the index, ``@case_type`` is
  required, ``@relationship`` defaults to ``child``, its text is the case it points
  at (empty removes the index).
- ``meta/instanceID`` is the form's id (a new one without it: OpenFn sends no
  meta); ``meta/userID`` the mobile worker, else the worker who logged in; a web
  user's key with no userID submits as no worker (``messaging.cases.forms``).
  The root's ``xmlns`` and ``name``, the meta block and the XML itself are kept, and
  the answers are CommCare's JSON of the form (``messaging.lib.xml2json``).
- The form is applied by ``apply_submission`` with the case-sharing rules of
  every form; a resubmitted instanceID changes nothing and is a success.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from messaging.cases.blocks import checked_id, parse_blocks
from messaging.cases.forms import FormResult, Submission, apply_submission
from messaging.commcare.serialize import CASE_XMLNS
from messaging.errors import Invalid
from messaging.lib.xml2json import local_name, namespace_of, xform_json

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
IGNORED_UPDATE_KEYS = {"date_opened", "user_id"}
RENAMED_UPDATE_KEYS = {"contact_phone_number": "phone_number"}


@dataclass(frozen=True)
class XForm:
    """A parsed submission: its root, its JSON, and what CommCare reads from it."""

    root: Element
    form: dict
    xml: str


def parse_xform(body: bytes) -> XForm:
    """Parse a submitted XForm safely; ``Invalid('unreadable')`` for anything else."""
    if len(body) > MAX_BYTES:
        raise Invalid("too_large", f"The form is over {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Invalid("unreadable", f"The form's XML is refused: {type(exc).__name__}.") from None
    except Exception:  # noqa: BLE001 - any parse error: the XML is not readable
        raise Invalid("unreadable", "The form is not readable XML.") from None
    return XForm(root, xform_json(root), body.decode("utf-8", "replace"))


def _children(element: Element) -> dict[str, Element]:
    return {local_name(child.tag): child for child in element}


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _raw_block(case: Element) -> tuple[dict, dict]:
    """A case element as the JSON API's block, and its index."""
    if namespace_of(case.tag) != CASE_XMLNS:
        raise Invalid(
            "unsupported_case_block",
            f"Case {case.get('case_id')!r} is not a CommCare v2 case block (namespace {CASE_XMLNS}).",
        )
    parts = _children(case)
    raw: dict = {"case_id": case.get("case_id")}
    if (create := parts.get("create")) is not None:
        fields = _children(create)
        raw["create"] = {
            "case_type": _text(fields.get("case_type")),
            "case_name": _text(fields.get("case_name")),
            "owner_id": _text(fields.get("owner_id")) or None,
        }
    if (update := parts.get("update")) is not None:
        values = {}
        for child in update:
            key = local_name(child.tag)
            if key not in IGNORED_UPDATE_KEYS:
                values[RENAMED_UPDATE_KEYS.get(key, key)] = (child.text or "").strip()
        raw["update"] = values
    if "close" in parts:
        raw["close"] = True
    index = {}
    if (indices := parts.get("index")) is not None:
        for child in indices:
            identifier = local_name(child.tag)
            if not child.get("case_type"):
                raise Invalid(
                    "invalid_index", f"Index {identifier!r} of case {raw['case_id']!r} has no case_type."
                )
            index[identifier] = {
                "case_type": child.get("case_type"),
                "case_id": _text(child),
                "relationship": child.get("relationship") or "child",
            }
    return raw, index


def submission_of(xform: XForm, app_id: str | None, worker_id: str | None) -> Submission:
    """The submission an XForm makes (its case blocks checked as the JSON API's)."""
    cases = [el for el in xform.root.iter() if local_name(el.tag) == "case" and el.get("case_id")]
    raws, indexes = zip(*(_raw_block(case) for case in cases), strict=True) if cases else ((), ())
    blocks = parse_blocks(list(raws))
    for block, index in zip(blocks, indexes, strict=True):
        block.index = index
    meta = next((el for el in xform.root.iter() if local_name(el.tag) == "meta"), None)
    meta_fields = (
        {local_name(child.tag): (child.text or "").strip() for child in meta} if meta is not None else {}
    )
    form_id = checked_id(meta_fields.get("instanceID") or None, "meta.instanceID", required=False)
    user_id = checked_id(meta_fields.get("userID") or None, "meta.userID", required=False) or worker_id
    return Submission(
        form_id=form_id,
        app_id=app_id,
        user_id=user_id,
        answers=xform.form,
        blocks=blocks,
        source="xform",
        xmlns=namespace_of(xform.root.tag) or None,
        name=(xform.root.get("name") or "").strip()[:255] or None,
        meta=meta_fields or None,
        xml=xform.xml,
    )


def receive_xform(body: bytes, app_id: str | None, worker_id: str | None) -> FormResult:
    """Parse and apply one submission; raises the ``DomainError`` that refused it (nothing kept)."""
    result = apply_submission(submission_of(parse_xform(body), app_id, worker_id))
    log.info(
        "xform received form_id=%s duplicate=%s cases=%s",
        result.form.form_id,
        result.duplicate,
        len(result.case_ids),
    )
    return result
