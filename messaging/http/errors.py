"""Domain refusals to HTTP: the one place that knows which status each kind of refusal gets.

Rules:
- ``messaging.errors`` kinds map to one status each: ``Invalid`` 400,
  ``NotFound`` 404, ``Conflict`` 409, ``RuleBroken`` 422, ``TooLarge`` 413,
  ``Unsupported`` 415; any other ``DomainError`` is a 400.
- ``ApiError`` is the HTTP layer's own refusal (a missing token, a role that
  may not, a body that is not JSON), for what only a request can get wrong:
  it carries its status. Domain code never raises it.
- The JSON of an error is ``{"error": {"code", "message", "details"}}``
  (API.md); ``details.field`` names the input at fault.
"""

from __future__ import annotations

from messaging.errors import Conflict, DomainError, Invalid, NotFound, RuleBroken, TooLarge, Unsupported

_STATUS = (
    (NotFound, 404),
    (Conflict, 409),
    (RuleBroken, 422),
    (TooLarge, 413),
    (Unsupported, 415),
    (Invalid, 400),
)


class ApiError(DomainError):
    """A refusal made by the HTTP layer itself, with its status."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(code, message, details=details)
        self.status = status


def status_of(exc: DomainError) -> int:
    """The HTTP status of a refusal."""
    if isinstance(exc, ApiError):
        return exc.status
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400
