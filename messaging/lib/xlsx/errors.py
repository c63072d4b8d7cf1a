"""A refusal of an uploaded spreadsheet, with a sentence a case manager can act on.

Rules:

- Every refusal is a :class:`SpreadsheetError` with a snake_case ``code`` and a
  ``message`` a case manager can act on; ``details`` says what was found, for logs
  and the API.
- A file that cannot be opened or parsed is ``unreadable``: the message asks for the
  list to be saved again in Excel, and the underlying error (cut to 300
  characters) is kept in ``details["error"]``.
"""

from __future__ import annotations

UNREADABLE = (
    "This Excel file is damaged and could not be read. Open it in Excel, save it again as an "
    "Excel workbook (.xlsx) and upload it again."
)


class SpreadsheetError(Exception):
    """An uploaded spreadsheet that cannot be used, with a sentence saying why.

    ``code`` is one of ``not_xlsx``, ``too_large``, ``zip_bomb``,
    ``empty_sheet``, ``missing_header``, ``too_many_rows``, ``unreadable``.
    """

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def __repr__(self) -> str:
        return f"SpreadsheetError({self.code!r}, {self.message!r})"


def unreadable(error: object) -> SpreadsheetError:
    """The ``unreadable`` refusal for a file that failed to open or parse with ``error``."""
    return SpreadsheetError("unreadable", UNREADABLE, {"error": str(error)[:300]})
