"""Safe Excel (.xlsx) reading and writing for uploads and reports (no Flask, no database).

Reading an uploaded workbook is two steps: :func:`check_xlsx_bytes` looks at the
bytes before any XML is parsed, then :func:`iter_rows` streams the first
worksheet as ``(row_number, dict)`` pairs. Every refusal is a
:class:`SpreadsheetError` with a snake_case ``code`` and a ``message`` a case
manager can act on. Reports are written so that participant text never becomes
a formula. ``from messaging.lib.xlsx import X`` is the package's public face.

Modules:

- ``errors``: :class:`SpreadsheetError`, and the ``unreadable`` refusal.
- ``sniff``: what kind of file an upload is, from its bytes, and the sentence that says so.
- ``check``: :func:`check_xlsx_bytes`: size, file type and zip-bomb checks before any XML parse.
- ``engines``: the first worksheet's raw rows from python-calamine or openpyxl, with the same values.
- ``read``: :func:`iter_rows`, :func:`count_rows`, :class:`SheetReader`: header row, records, row limits.
- ``text``: what a cell may hold: text Excel accepts, numbers it keeps exactly, sheet titles, widths.
- ``write``: :func:`write_report` and :func:`make_example_workbook` with openpyxl, any cell values.
- ``plain_report``: :class:`PlainReportWriter`, the fast streaming writer for large plain reports.
"""

from __future__ import annotations

from messaging.lib.xlsx.check import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNCOMPRESSED,
    check_xlsx_bytes,
)
from messaging.lib.xlsx.engines import ENGINES
from messaging.lib.xlsx.errors import SpreadsheetError
from messaging.lib.xlsx.plain_report import PlainReportWriter, write_plain_report
from messaging.lib.xlsx.read import SheetReader, count_rows, iter_rows, normalize_header
from messaging.lib.xlsx.write import make_example_workbook, write_report

# The media type of an .xlsx file (uploads' examples, exports, reports).
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

__all__ = [
    "XLSX_MIMETYPE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_UNCOMPRESSED",
    "ENGINES",
    "PlainReportWriter",
    "SheetReader",
    "SpreadsheetError",
    "check_xlsx_bytes",
    "count_rows",
    "iter_rows",
    "make_example_workbook",
    "normalize_header",
    "write_plain_report",
    "write_report",
]
