"""JSON errors in the shape API.md promises."""

from flask import current_app, jsonify
from werkzeug.exceptions import HTTPException

from messaging.http.errors import ApiError  # noqa: F401  (the API modules raise it)


def error_response(status: int, code: str, message: str, details: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


# How long a client should wait before trying again while the database is away.
RETRY_AFTER_SECONDS = 5


def database_unavailable_response():
    """503 ``database_unavailable`` with ``Retry-After``: the request may be sent again as it is."""
    response = error_response(
        503, "database_unavailable", "The database is not answering; nothing was saved. Try again shortly."
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# Codes for plain HTTP errors, so a client can switch on them.
_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "An API token is required: send 'Authorization: Token <key>'."),
    403: ("forbidden", "Your role does not allow this."),
    404: ("not_found", "Nothing found at this address."),
    405: ("method_not_allowed", "This method is not allowed here."),
    409: ("conflict", "This conflicts with the current state."),
    413: ("too_large", "The upload is larger than the limit."),
    415: ("unsupported_media_type", "Send JSON with 'Content-Type: application/json'."),
    429: ("rate_limited", "Too many requests; slow down."),
    500: ("server_error", "Something went wrong on our side; it has been logged."),
}


def http_error_response(exc: HTTPException):
    code, message = _HTTP_CODES.get(exc.code or 500, ("error", exc.description or "Error"))
    if exc.code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_response(413, code, message, {"max_bytes": limit})
    return error_response(exc.code or 500, code, message)
