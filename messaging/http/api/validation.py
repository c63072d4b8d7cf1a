"""Small, explicit checks of request fields (JSON body, query string, form), answering 400 with details.

Rules:
- A refused field is a 400 whose code is ``validation_error`` unless the caller
  names another, whose message starts with the field's name and whose details
  name the field.
- A query argument is read stripped; absent or blank, it is not given (None).
- A flag (query or form) is one of ``true``/``1``/``yes``/``on`` or
  ``false``/``0``/``no``/``off``, in any case; any other word is refused, never
  guessed.
- A time in the query string is ISO 8601 (``messaging.lib.clock.parse_iso``).
"""

from flask import request

from messaging.http.api.errors import ApiError
from messaging.lib import clock

_MISSING = object()
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def invalid(field: str, message: str, code: str = "validation_error"):
    return ApiError(400, code, f"{field}: {message}", {"field": field})


def get_str(body: dict, field: str, *, required: bool = False, max_length: int = 255, default=None):
    value = body.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise invalid(field, "is required.")
        return default
    if not isinstance(value, str):
        raise invalid(field, "must be a string.")
    value = value.strip()
    if required and not value:
        raise invalid(field, "must not be empty.")
    if len(value) > max_length:
        raise invalid(field, f"must be at most {max_length} characters.")
    return value


def get_bool(body: dict, field: str, *, default: bool = False) -> bool:
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise invalid(field, "must be true or false.")
    return value


def get_int(body: dict, field: str, *, required=False, default=None, minimum=None, maximum=None):
    value = body.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise invalid(field, "is required.")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "must be a whole number.")
    if minimum is not None and value < minimum:
        raise invalid(field, f"must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise invalid(field, f"must be at most {maximum}.")
    return value


def get_list(body: dict, field: str, *, item_type=str, default=None, max_items=10_000):
    value = body.get(field, _MISSING)
    if value is _MISSING or value is None:
        return list(default or [])
    if not isinstance(value, list) or not all(isinstance(v, item_type) for v in value):
        raise invalid(field, f"must be a list of {item_type.__name__}.")
    if len(value) > max_items:
        raise invalid(field, f"must have at most {max_items} items.")
    return value


def get_dict(body: dict, field: str, *, default=None):
    value = body.get(field, _MISSING)
    if value is _MISSING or value is None:
        return dict(default or {})
    if not isinstance(value, dict):
        raise invalid(field, "must be an object.")
    return value


def arg_str(name: str) -> str | None:
    """The query argument ``name``, stripped; None when absent or blank."""
    return (request.args.get(name) or "").strip() or None


def arg_choice(name: str, choices, *, code: str = "validation_error") -> str | None:
    """The query argument ``name``, one of ``choices``; None when not given."""
    value = arg_str(name)
    if value is not None and value not in choices:
        raise invalid(name, f"must be one of {', '.join(choices)}.", code)
    return value


def arg_time(name: str):
    """The query argument ``name`` as a naive UTC datetime; None when not given."""
    value = arg_str(name)
    if value is None:
        return None
    try:
        return clock.parse_iso(value)
    except ValueError as exc:
        raise invalid(name, "must be an ISO 8601 time, e.g. 2024-05-01T00:00:00Z.") from exc


def arg_flag(name: str) -> bool | None:
    """The query argument ``name`` as a flag; None when not given."""
    value = arg_str(name)
    return None if value is None else flag(name, value)


def form_flag(name: str) -> bool:
    """The multipart form field ``name`` (or else the query argument) as a flag; False when not given."""
    value = (request.form.get(name) or request.args.get(name) or "").strip()
    return flag(name, value) if value else False


def flag(field: str, value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise invalid(field, "must be true or false.")
