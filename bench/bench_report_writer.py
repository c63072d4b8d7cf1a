"""The import report's writer: the hand-written PlainReportWriter against XlsxWriter.

    .venv/bin/python bench/bench_report_writer.py                 # 100,000 rows, 5 rounds each
    .venv/bin/python bench/bench_report_writer.py --rows 20000 --rounds 3

Writes the same import report (row number, identifier, result, case id, message;
written 2,000 rows at a time into a BytesIO, as the import job does) with
``messaging.lib.xlsx.PlainReportWriter`` and with XlsxWriter in its
``constant_memory`` mode behind the same interface and the same text rules
(strings never become formulas). For each it prints the median and best time of
the rounds, the peak Python memory of one more round under tracemalloc (XlsxWriter's
constant_memory mode keeps the sheet XML in a temporary file until it zips it: that
is disk, not counted), and the file size; then checks that both files read back
identically with openpyxl.
No database, no Redis: CPU only, so run it when the machine is quiet.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from messaging.lib.xlsx import PlainReportWriter  # noqa: E402
from messaging.lib.xlsx.text import MAX_EXCEL_INT, cell_text, column_width, safe_sheet_title  # noqa: E402

HEADERS = ["row", "identifier", "result", "case_id", "message"]
BATCH = 2000
RESULTS = [
    ("added", "Added."),
    ("updated", "Updated: name, village."),
    ("invalid", "The phone number 0712 345 67 is too short: it needs 9 digits after 07."),
    ("duplicate", "This identifier appears earlier in the file (row 12)."),
]


class XlsxWriterReport:
    """PlainReportWriter's interface and text rules on XlsxWriter's constant_memory mode."""

    def __init__(self, path_or_stream: Any, headers: Sequence[str], *, sheet_title: str):
        import xlsxwriter

        self._workbook = xlsxwriter.Workbook(
            path_or_stream,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
            },
        )
        self._sheet = self._workbook.add_worksheet(safe_sheet_title(sheet_title))
        bold = self._workbook.add_format({"bold": True})
        headers = [str(h) for h in headers]
        for index, header in enumerate(headers):
            self._sheet.set_column(index, index, column_width(header))
        self._sheet.freeze_panes(1, 0)
        for index, header in enumerate(headers):
            self._sheet.write_string(0, index, cell_text(header), bold)
        self._row = 0

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        sheet = self._sheet
        row = self._row
        for row, values in enumerate(rows, self._row + 1):
            for col, value in enumerate(values):
                if value is None or value == "":
                    continue
                if type(value) is str:
                    sheet.write_string(row, col, cell_text(value))
                elif isinstance(value, bool):
                    sheet.write_boolean(row, col, value)
                elif isinstance(value, int) and abs(value) < MAX_EXCEL_INT:
                    sheet.write_number(row, col, value)
                elif isinstance(value, (float, Decimal)):
                    if math.isfinite(value):
                        sheet.write_number(row, col, value)
                else:
                    sheet.write_string(row, col, cell_text(str(value)))
        self._row = row

    def close(self) -> None:
        self._workbook.close()

    def __enter__(self) -> XlsxWriterReport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def report_rows(count: int) -> list[list]:
    rows = []
    for i in range(count):
        result, message = RESULTS[i % 7 % len(RESULTS)]
        case_id = f"{i:032x}" if result in ("added", "updated") else None
        rows.append([i + 2, f"2547{i:08d}", result, case_id, message])
    return rows


def write(writer: Callable, rows: list[list]) -> bytes:
    buffer = io.BytesIO()
    with writer(buffer, HEADERS, sheet_title="Results") as report:
        for start in range(0, len(rows), BATCH):
            report.write_rows(rows[start : start + BATCH])
    return buffer.getvalue()


def values(data: bytes) -> list[list]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True)
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def measure(name: str, writer: Callable, rows: list[list], rounds: int) -> tuple[float, bytes]:
    times = []
    data = b""
    for _ in range(rounds):
        started = time.perf_counter()
        data = write(writer, rows)
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    write(writer, rows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(times)
    print(
        f"{name:18} median {median:6.2f} s  best {min(times):6.2f} s  "
        f"peak traced memory {peak / 2**20:5.1f} MB  file {len(data) / 2**20:5.2f} MB",
        flush=True,
    )
    return median, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = report_rows(args.rows)
    print(f"{args.rows:,} rows, {args.rounds} rounds each, written {BATCH:,} rows at a time", flush=True)
    xlsxwriter_time, xlsxwriter_data = measure("XlsxWriter", XlsxWriterReport, rows, args.rounds)
    plain_time, plain_data = measure("PlainReportWriter", PlainReportWriter, rows, args.rounds)
    same = values(plain_data) == values(xlsxwriter_data) == [HEADERS, *rows]
    print(f"read back with openpyxl: {'identical' if same else 'DIFFERENT'}")
    print(f"XlsxWriter takes {xlsxwriter_time / plain_time:.2f}x PlainReportWriter's time")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
