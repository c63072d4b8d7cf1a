"""The fast plain report writer gives the same values as write_report, read by both engines."""

import io

import openpyxl
import pytest

from messaging.lib.xlsx import PlainReportWriter, iter_rows, write_plain_report, write_report

DANGEROUS = ["=1+1", "+254712345678", "-5+3", "@SUM(A1:A2)", '=HYPERLINK("http://x","y")']


def _both(rows, headers=("row", "identifier", "result", "case_id", "message")):
    fast, slow = io.BytesIO(), io.BytesIO()
    write_plain_report(fast, headers, rows, sheet_title="Results")
    write_report(slow, headers, rows, sheet_title="Results")
    return fast.getvalue(), slow.getvalue()


def _values(data):
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_same_values_as_write_report_and_text_stays_text():
    rows = [[2, text, "added", None, f'  {text} <&> "quoted"  '] for text in DANGEROUS] + [
        [7, "bell\x07 and tab\t", True, 1.5, "x" * 40000],
        [8, 1234567890123456, -3, 12345, "ünïcödé ✓ 𝄞"],
    ]
    fast, slow = _both(rows)
    assert _values(fast) == _values(slow)
    sheet = openpyxl.load_workbook(io.BytesIO(fast)).active
    assert sheet.title == "Results"
    assert sheet["B2"].value == "=1+1" and sheet["B2"].data_type == "s"
    assert sheet["B7"].value == "bell and tab\t"
    assert len(sheet["E7"].value) == 32767
    assert sheet["B8"].value == "1234567890123456"  # 16 digits: text, not rounded
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["E"].width == 12


@pytest.mark.parametrize("engine", ["calamine", "openpyxl"])
def test_our_readers_read_it(engine):
    fast, _ = _both([[2, "254712345678", "added", "abc", "Added."], [3, None, "invalid", None, ""]])
    with iter_rows(fast, None, "identifier", engine=engine) as reader:
        rows = list(reader)
    first = {"row": 2, "identifier": "254712345678", "result": "added", "case_id": "abc", "message": "Added."}
    blank = {"row": 3, "identifier": None, "result": "invalid", "case_id": None, "message": None}
    assert rows == [(2, first), (3, blank)]


def test_many_rows_stream_from_a_generator():
    def rows():
        for i in range(20_000):
            yield [i + 2, f"EXT-{i}", "added", None, "Added."]

    buffer = io.BytesIO()
    write_plain_report(buffer, ["row", "identifier", "result", "case_id", "message"], rows())
    with iter_rows(buffer.getvalue(), None) as reader:
        got = list(reader)
    assert len(got) == 20_000 and got[-1][1]["identifier"] == "EXT-19999"


def test_rows_wider_than_the_headers_keep_their_values():
    buffer = io.BytesIO()
    write_plain_report(buffer, ["a"], [[1, "extra"]])
    assert _values(buffer.getvalue()) == [["a", None], [1, "extra"]]


def test_rows_written_a_few_at_a_time_make_the_same_sheet():
    headers = ["row", "identifier", "result"]
    rows = [[n, f"=id {n}" if n % 3 else None, "added"] for n in range(2, 40)]
    whole, pieces = io.BytesIO(), io.BytesIO()
    write_plain_report(whole, headers, rows, sheet_title="Results")
    with PlainReportWriter(pieces, headers, sheet_title="Results") as report:
        for start in range(0, len(rows), 7):
            report.write_rows(rows[start : start + 7])
        report.write_rows([])
    assert _values(pieces.getvalue()) == _values(whole.getvalue()) == [headers, *rows]
