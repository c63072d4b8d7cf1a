"""Errors that services raise and both the API and the web UI turn into answers."""


class ApiError(Exception):
    """A refusal with an HTTP status, a snake_case code and a sentence for a person."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class BusinessRuleError(ApiError):
    """A request refused by a business rule (422)."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(422, code, message, details)
