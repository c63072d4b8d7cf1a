"""Write a report or an example workbook with openpyxl: any cell values, text kept as text.

Rules:

- One sheet: a bold header row, frozen, with column widths from the headers,
  then the rows (sequences, or dicts by header).
- Streams with openpyxl's write-only mode.
- Text is always written as text, never as a formula (its cells are typed as
  text, so ``=1+1`` stays the text ``=1+1``); control characters Excel refuses
  are removed, text over 32,767 characters is cut, integers over 15 digits are
  written as text (Excel would round them) (:mod:`messaging.lib.xlsx.text`).
- ``""`` and ``None`` are empty cells; NaN and infinite numbers are empty cells;
  timezone-aware datetimes are written in UTC, and times lose their timezone;
  booleans, dates and durations are written as themselves; anything else as its
  text.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

from messaging.lib.xlsx.text import MAX_EXCEL_INT, cell_text, column_width, safe_sheet_title


def write_report(
    path_or_stream: str | os.PathLike | IO[bytes],
    headers: Sequence[str],
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    *,
    sheet_title: str = "Report",
) -> None:
    """Write one sheet: a bold header row, then ``rows`` (sequences or dicts by header).

    Streams with openpyxl's write-only mode. Text is always written as text,
    never as a formula; control characters Excel refuses are removed, text
    over 32,767 characters is cut, integers over 15 digits are written as text
    (Excel would round them), timezone-aware datetimes are written in UTC.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=safe_sheet_title(sheet_title))
    headers = [str(h) for h in headers]
    for index, header in enumerate(headers, 1):
        sheet.column_dimensions[get_column_letter(index)].width = column_width(header)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header_cells = []
    for header in headers:
        cell = _text_cell(sheet, header)
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    for row in rows:
        values = [row.get(h) for h in headers] if isinstance(row, Mapping) else row
        sheet.append([_report_value(sheet, v) for v in values])
    workbook.save(path_or_stream)


def make_example_workbook(headers: Sequence[str], rows: Iterable[Sequence[Any]] = ()) -> bytes:
    """An .xlsx to download as an example (``cases_bulk_example.xlsx``), as bytes."""
    buffer = io.BytesIO()
    write_report(buffer, headers, rows, sheet_title="Sheet1")
    return buffer.getvalue()


def _report_value(sheet: Any, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text_cell(sheet, value) if value else None
    if isinstance(value, int):
        return value if abs(value) < MAX_EXCEL_INT else _text_cell(sheet, str(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, (date, timedelta)):
        return value
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    return _text_cell(sheet, str(value))


def _text_cell(sheet: Any, text: str) -> Any:
    from openpyxl.cell.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=cell_text(text))
    cell.data_type = "s"  # never "f" (or "e"): "=1+1" stays the text "=1+1"
    return cell
