"""The shape of a form's case blocks: checked before anything is written.

- Malformed input is 400 ``validation_error`` naming the field (``cases[2].update.owner_id``).
- Ids (``form_id``, ``app_id``, ``user_id``, ``case_id``, ``owner_id``) are 1 to 64
  letters, digits, ``-``, ``_``, ``.`` or ``:``, trimmed.
- At most ``MAX_BLOCKS`` blocks; a block has only ``case_id``, ``create``,
  ``update`` and ``close``; ``close`` is true or false.
- ``create`` has ``case_type`` (required, at most 100 characters), ``case_name``
  (at most 255) and ``owner_id``. A create may leave out ``case_id``: the server
  then makes one. Without ``create``, ``case_id`` is required.
- ``update`` keys are property names (a letter or ``_`` first, then letters, digits,
  ``_``, ``.``, ``-``; at most 100). ``owner_id`` must be an id; ``case_type`` must
  not be empty; ``external_id``, ``phone_number`` and ``case_name`` are text of at
  most 255 characters, ``language`` at most 16; any other key is a property whose
  value is a string (at most ``MAX_VALUE_LENGTH`` characters), number, true/false
  or null.
"""

import re
from dataclasses import dataclass, field

from messaging.errors import field_error as invalid_field  # one refusal of one field
from messaging.models import new_id

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
FIELD_KEYS = {"external_id", "phone_number", "language"}
PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
MAX_BLOCKS = 1000
MAX_VALUE_LENGTH = 10_000


@dataclass
class Block:
    """One case block as checked: ``create`` is ``None`` or its three keys."""

    case_id: str
    create: dict | None
    update: dict
    close: bool
    # CommCare indices set by the block: {identifier: {case_type, case_id, relationship}};
    # an empty case_id removes that index. Only XForms carry them (messaging.commcare.receiver).
    index: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        parts = (["create"] if self.create is not None else []) + (["update"] if self.update else [])
        return ",".join(parts + (["close"] if self.close else [])) or "noop"


def checked_id(value, field_name: str, *, required: bool) -> str | None:
    """An id, trimmed (``None`` when absent and not required)."""
    if value is None:
        if required:
            raise invalid_field(field_name, "is required.")
        return None
    if not isinstance(value, str) or not ID_PATTERN.match(value.strip()):
        raise invalid_field(field_name, "must be an id: 1 to 64 letters, digits, '-', '_', '.' or ':'.")
    return value.strip()


def parse_blocks(raw_blocks) -> list[Block]:
    """Check the shape of the case blocks (400 on anything malformed)."""
    if raw_blocks is None:
        return []
    if not isinstance(raw_blocks, list):
        raise invalid_field("cases", "must be a list of case blocks.")
    if len(raw_blocks) > MAX_BLOCKS:
        raise invalid_field("cases", f"must have at most {MAX_BLOCKS} case blocks.")
    return [_parse_block(raw, f"cases[{i}]") for i, raw in enumerate(raw_blocks)]


def _parse_block(raw, where: str) -> Block:
    if not isinstance(raw, dict):
        raise invalid_field(where, "must be an object.")
    unknown = set(raw) - {"case_id", "create", "update", "close"}
    if unknown:
        raise invalid_field(where, f"unknown keys: {', '.join(sorted(unknown))}.")
    create = _parse_create(raw.get("create"), f"{where}.create")
    # A create may leave out case_id: the server then makes one.
    case_id = checked_id(raw.get("case_id"), f"{where}.case_id", required=create is None)
    if case_id is None:
        case_id = new_id()
    update = _parse_update(raw.get("update") or {}, f"{where}.update")
    close = raw.get("close", False)
    if not isinstance(close, bool):
        raise invalid_field(f"{where}.close", "must be true or false.")
    return Block(case_id, create, update, close)


def _parse_create(create, where: str) -> dict | None:
    if create is None:
        return None
    if not isinstance(create, dict):
        raise invalid_field(where, "must be an object.")
    extra = set(create) - {"case_type", "case_name", "owner_id"}
    if extra:
        raise invalid_field(where, f"unknown keys: {', '.join(sorted(extra))}.")
    case_type = _text(create.get("case_type"), f"{where}.case_type", 100)
    if not case_type:
        raise invalid_field(f"{where}.case_type", "is required.")
    return {
        "case_type": case_type,
        "case_name": _text(create.get("case_name"), f"{where}.case_name", 255) or "",
        "owner_id": checked_id(create.get("owner_id"), f"{where}.owner_id", required=False),
    }


def _parse_update(update, where: str) -> dict:
    if not isinstance(update, dict):
        raise invalid_field(where, "must be an object.")
    clean = {}
    for key, value in update.items():
        if not isinstance(key, str) or not PROPERTY_KEY.match(key):
            raise invalid_field(where, f"{key!r} is not a valid property name.")
        clean[key] = _update_value(key, value, where)
    return clean


def _update_value(key: str, value, where: str):
    if key == "owner_id":
        return checked_id(value, f"{where}.owner_id", required=True)
    if key == "case_type":
        case_type = _text(value, f"{where}.case_type", 100) or None
        if not case_type:
            raise invalid_field(f"{where}.case_type", "must not be empty.")
        return case_type
    if key in FIELD_KEYS | {"case_name"}:
        return _text(value, f"{where}.{key}", 255 if key != "language" else 16)
    return _scalar(value, f"{where}.{key}")


def _scalar(value, field_name: str):
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_VALUE_LENGTH:
            raise invalid_field(field_name, f"must be at most {MAX_VALUE_LENGTH} characters.")
        return value
    raise invalid_field(field_name, "must be a string, number, true/false or null.")


def _text(value, field_name: str, max_length: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid_field(field_name, "must be a string.")
    text = str(value).strip()
    if len(text) > max_length:
        raise invalid_field(field_name, f"must be at most {max_length} characters.")
    return text
