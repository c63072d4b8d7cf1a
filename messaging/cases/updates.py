"""Changing a case's fields from an ``update`` dict (forms and the bulk case upload alike).

- ``update`` keys ``external_id``, ``phone_number`` and ``language`` set those
  fields; ``case_name``, ``case_type`` and ``owner_id`` set those (as in
  CommCare's update block); every other key is a case property. A property set
  to ``null`` is removed.
- A phone number is parsed with ``phonenumbers`` (national spellings in the
  project's default country, ``US`` when it has none) and stored in E.164 beside
  the raw text (at most 64 characters); an invalid one is kept raw and flagged
  (``phone_invalid``). A blank one clears all three.
"""

from sqlalchemy import select

from messaging.db import tenancy
from messaging.extensions import db
from messaging.lib.phones import normalize_phone
from messaging.models import Case, Project


def project_country(project_id: int | None = None) -> str:
    """The project's default country for national phone spellings (``US`` when it has none)."""
    project_id = project_id or tenancy.current_project_id()
    return (
        db.session.execute(select(Project.default_country).where(Project.id == project_id)).scalar() or "US"
    )


def set_case_phone(case: Case, raw, default_region: str) -> None:
    """Store the number in E.164 beside the raw value; an invalid one is kept raw and flagged."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        case.phone_raw = None
        case.phone_number = None
        case.phone_invalid = False
        return
    e164 = normalize_phone(raw, default_region)
    case.phone_raw = text[:64]
    case.phone_number = e164
    case.phone_invalid = e164 is None


def apply_update(case: Case, update: dict, default_region: str) -> None:
    """Apply an ``update`` dict to a case (fields, CommCare keys, properties)."""
    props = dict(case.properties or {})
    for key, value in update.items():
        if key == "phone_number":
            set_case_phone(case, value, default_region)
        elif key == "external_id":
            case.external_id = value or None
        elif key == "language":
            case.language = value or None
        elif key == "case_name":
            case.name = value or ""
        elif key == "case_type":
            case.case_type = value
        elif key == "owner_id":
            case.owner_id = value
        elif value is None:
            props.pop(key, None)
        else:
            props[key] = value
    if props != (case.properties or {}):
        case.properties = props  # a new dict so the JSON column is marked changed
