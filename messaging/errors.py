"""Domain refusals: what the domains raise when a request breaks a rule.

Rules:
- A refusal carries a snake_case ``code`` a client can switch on, a sentence
  for a person, the ``field`` of the input at fault (or None) and optional
  ``details``; never an HTTP status. ``messaging.http`` maps each kind to one
  status (``Invalid`` 400, ``NotFound`` 404, ``Conflict`` 409, ``RuleBroken``
  422, ``TooLarge`` 413, ``Unsupported`` 415); the web UI shows the message;
  the CLI prints it.
- Nothing is changed when one is raised: the caller rolls back.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal with a code, a sentence for a person and the field at fault."""

    def __init__(self, code: str, message: str, *, field: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = dict(details or {})
        if field is not None:
            self.details.setdefault("field", field)


class Invalid(DomainError):
    """The input is malformed or out of range."""


class NotFound(DomainError):
    """An identifier names nothing in this project."""


class Conflict(DomainError):
    """The request conflicts with the current state (a duplicate name, a finished import)."""


class RuleBroken(DomainError):
    """A well-formed request that a business rule refuses (case sharing's owner rules)."""


class TooLarge(DomainError):
    """An upload or a list over its limit."""


class Unsupported(DomainError):
    """A file of a type the server does not read."""


def field_error(field: str, message: str, **details) -> Invalid:
    """``validation_error`` for one field: the message is ``"<field>: <message>"``."""
    return Invalid("validation_error", f"{field}: {message}", field=field, details=details)
