"""The first worksheet's raw rows, numbered as Excel shows them, from python-calamine or openpyxl.

Rules:

- ``python-calamine`` is the default engine (about ten times faster);
  ``openpyxl`` in read-only mode is the fallback and gives the same values.
- Each row is ``(row_number, values)``: ``row_number`` is the row number Excel
  shows and ``values`` start at column A, even when the data starts further down
  or right (calamine's padding is detected, not assumed from one version).
- A forged ``<dimension ref="A1:A2">`` must not cut rows.
- Values (:func:`clean_value`): text stripped (``""`` is ``None``), whole numbers
  as ``int`` (below 2**53, where floats are exact), dates at midnight as
  ``date``, other dates as ``datetime``, formulas as their cached value, error
  values (``#N/A``) as ``None`` (openpyxl returns them as text, calamine as an
  empty cell: both engines give None), NaN and infinities as ``None``.
- Memory: openpyxl streams the XML. calamine holds the sheet's cells in native
  memory (about 30 MB for 100,000 x 5) and hands rows to Python one at a time;
  neither builds a Python list of the sheet.
- A Rust panic on a malformed file is "unreadable", not a reason to stop the
  worker: only the exceptions :func:`is_fatal` names are let through.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from datetime import datetime, time
from typing import Any

ENGINES = ("calamine", "openpyxl")

# Cached values of formulas that failed. openpyxl returns them as text,
# calamine as an empty cell: both engines give None.
_EXCEL_ERRORS = frozenset(
    {
        "#NULL!",
        "#DIV/0!",
        "#VALUE!",
        "#REF!",
        "#NAME?",
        "#NUM!",
        "#N/A",
        "#GETTING_DATA",
        "#SPILL!",
        "#CALC!",
        "#FIELD!",
        "#BLOCKED!",
        "#CONNECT!",
        "#BUSY!",
        "#UNKNOWN!",
        "#EXTERNAL!",
        "#PYTHON!",
    }
)
_MIDNIGHT = time(0, 0)
_MAX_EXACT_FLOAT = 2**53


def calamine_rows(source: Any) -> Iterator[tuple[int, list]]:
    """The first worksheet's rows read by python-calamine (a path or a binary file)."""
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    if isinstance(source, (str, os.PathLike)):
        workbook = CalamineWorkbook.from_path(os.fspath(source))
    else:
        workbook = CalamineWorkbook.from_filelike(source)
    try:
        index = next(
            (i for i, meta in enumerate(workbook.sheets_metadata) if meta.typ == SheetTypeEnum.WorkSheet),
            None,
        )
        if index is None:
            return
        sheet = workbook.get_sheet_by_index(index)
    finally:
        workbook.close()  # the sheet keeps its own copy of the cells
    start = sheet.start
    if start is None:  # no cell at all; iter_rows() would panic
        return
    first_row, first_col = start
    padding = [None] * first_col
    rows = iter(sheet.iter_rows())
    # python-calamine pads the rows above the first used row with empty rows
    # (absolute row numbers) but not the columns left of the first used
    # column. Detect the row behaviour rather than rely on one version.
    first = next(rows, None)
    if first is None:
        return
    padded = first_row > 0 and all(v == "" or v is None for v in first)
    first_number = 1 if padded else first_row + 1
    yield first_number, padding + [clean_value(v) for v in first]
    if not padding:
        for number, row in enumerate(rows, first_number + 1):
            yield number, [clean_value(v) for v in row]
        return
    for number, row in enumerate(rows, first_number + 1):
        yield number, padding + [clean_value(v) for v in row]


def openpyxl_rows(source: Any) -> Iterator[tuple[int, list]]:
    """The first worksheet's rows read by openpyxl in read-only mode (a path or a binary file)."""
    from openpyxl import load_workbook

    with warnings.catch_warnings():
        # "Data Validation extension is not supported", "no default style"...
        warnings.simplefilter("ignore")
        workbook = load_workbook(source, read_only=True, data_only=True, keep_links=False)
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # a forged <dimension ref="A1:A2"> must not cut rows
        rows = sheet.iter_rows(min_row=1, min_col=1, values_only=True)
        number = 0
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row = next(rows, None)
            if row is None:
                return
            number += 1
            yield number, [clean_value(v) for v in row]
    finally:
        workbook.close()


def clean_value(value: Any) -> Any:
    """One cell value, the same from both engines."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return None if not value or value in _EXCEL_ERRORS else value
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < _MAX_EXACT_FLOAT:
            return int(value)
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None and value.time() == _MIDNIGHT:
            return value.date()
        return value
    return value


def is_fatal(exc: BaseException) -> bool:
    """Whether an error met while reading must stop the caller rather than make the file unreadable."""
    # pyo3's PanicException derives from BaseException: a Rust panic on a
    # malformed file is "unreadable", not a reason to stop the worker.
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError))
