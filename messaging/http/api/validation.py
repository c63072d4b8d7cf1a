"""Small, explicit checks of JSON request fields, answering 400 with details."""

from messaging.http.api.errors import ApiError

_MISSING = object()


def invalid(field: str, message: str):
    return ApiError(400, "validation_error", f"{field}: {message}", {"field": field})


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
