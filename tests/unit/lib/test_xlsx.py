"""Safe .xlsx reading (both engines) and report writing, on files made at test time."""

import datetime as dt
import gc
import io
import re
import zipfile

import openpyxl
import pytest

from messaging.lib.xlsx import (
    SpreadsheetError,
    check_xlsx_bytes,
    count_rows,
    iter_rows,
    make_example_workbook,
    write_report,
)

ENGINES = ["calamine", "openpyxl"]
SHEET = "xl/worksheets/sheet1.xml"
MB = 1024 * 1024


# --- helpers -----------------------------------------------------------------


def make_xlsx(path, rows, cells=None):
    """Save ``rows`` (appended from row 1) and ``cells`` ({"B7": value}) with openpyxl."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    for ref, value in (cells or {}).items():
        sheet[ref] = value
    workbook.save(path)
    return path


def patch_zip(path, name, edit):
    """Rewrite one member of the zip at ``path`` with ``edit(text) -> text``."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in members:
            if info.filename == name:
                data = edit(data.decode()).encode()
            target.writestr(info, data)


def add_cached_values(path, values):
    """Give formula cells a cached value, as Excel does when it saves.

    ``values`` maps a cell reference to ``(cell_type, text)``: ``("n", "42")``,
    ``("str", "text")`` or ``("e", "#DIV/0!")``. openpyxl writes ``<v />``.
    """

    def edit(xml):
        for ref, (cell_type, text) in values.items():
            pattern = re.compile(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*/>')
            attr = "" if cell_type == "n" else f' t="{cell_type}"'
            xml, count = pattern.subn(rf'<c r="{ref}"\1{attr}><f>\2</f><v>{text}</v>', xml)
            assert count == 1, ref
        return xml

    patch_zip(path, SHEET, edit)


def read_all(path, engine, max_rows=None, required=None, **kwargs):
    with iter_rows(path, max_rows, required, engine=engine, **kwargs) as reader:
        return reader.headers, list(reader)


def refusal(source, max_bytes=10 * MB, **kwargs):
    with pytest.raises(SpreadsheetError) as caught:
        check_xlsx_bytes(source, max_bytes, **kwargs)
    return caught.value


def xlsx_bytes(rows):
    buffer = io.BytesIO()
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(buffer)
    return buffer.getvalue()


# --- reading -----------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_headers_values_and_types(tmp_path, engine):
    path = make_xlsx(
        tmp_path / "cases.xlsx",
        [
            [" Case_Identifier ", "Name", "Phone  Number", "Score", "Visit", "At", "Active"],
            [
                254712345678,
                "  Alice Wanjiru ",
                254712345678.0,
                1.5,
                dt.date(2024, 3, 1),
                dt.datetime(2024, 3, 1, 9, 30),
                True,
            ],
            ["EXT-7", "Bob", "+256 772 123456", 2.0, None, None, False],
        ],
    )
    headers, rows = read_all(path, engine)
    assert headers == ["case_identifier", "name", "phone number", "score", "visit", "at", "active"]
    first = rows[0][1]
    assert rows[0][0] == 2
    assert first["case_identifier"] == 254712345678
    assert type(first["case_identifier"]) is int
    assert first["phone number"] == 254712345678
    assert type(first["phone number"]) is int
    assert first["name"] == "Alice Wanjiru"
    assert first["score"] == 1.5
    assert first["visit"] == dt.date(2024, 3, 1)
    assert type(first["visit"]) is dt.date
    assert first["at"] == dt.datetime(2024, 3, 1, 9, 30)
    assert first["active"] is True
    assert rows[1] == (
        3,
        {
            "case_identifier": "EXT-7",
            "name": "Bob",
            "phone number": "+256 772 123456",
            "score": 2,
            "visit": None,
            "at": None,
            "active": False,
        },
    )
    assert type(rows[1][1]["score"]) is int


@pytest.mark.parametrize("engine", ENGINES)
def test_formula_cells_give_their_cached_values(tmp_path, engine):
    path = make_xlsx(
        tmp_path / "formulas.xlsx",
        [
            ["case_identifier", "double", "label", "broken", "never_calculated"],
            [21, "=A2*2", '="case-"&A2', "=1/0", "=A2+1"],
        ],
    )
    add_cached_values(
        path,
        {"B2": ("n", "42"), "C2": ("str", "  case-21 "), "D2": ("e", "#DIV/0!")},
    )
    _, rows = read_all(path, engine)
    assert rows == [
        (
            2,
            {
                "case_identifier": 21,
                "double": 42,
                "label": "case-21",
                "broken": None,
                "never_calculated": None,
            },
        )
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_blank_rows_are_skipped_but_row_numbers_match_excel(tmp_path, engine):
    path = make_xlsx(
        tmp_path / "blanks.xlsx",
        [],
        cells={
            "A3": "case_identifier",
            "B3": "name",
            "A4": "254712345678",
            "B5": "   ",
            "A7": " 256772123456 ",
            "D8": "outside every named column",
            "B9": "Carol",
        },
    )
    with iter_rows(path, None, "case_identifier", engine=engine) as reader:
        assert reader.header_row == 3
        assert reader.headers == ["case_identifier", "name"]
        rows = list(reader)
    assert rows == [
        (4, {"case_identifier": "254712345678", "name": None}),
        (7, {"case_identifier": "256772123456", "name": None}),
        (9, {"case_identifier": None, "name": "Carol"}),
    ]
    assert count_rows(path, engine=engine) == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_data_that_does_not_start_in_column_a(tmp_path, engine):
    path = make_xlsx(
        tmp_path / "offset.xlsx",
        [],
        cells={"C2": "Case_Identifier", "D2": "Name", "C3": 254712345678, "D4": "Dan"},
    )
    headers, rows = read_all(path, engine, required="case_identifier")
    assert headers == ["", "", "case_identifier", "name"]
    assert rows == [
        (3, {"case_identifier": 254712345678, "name": None}),
        (4, {"case_identifier": None, "name": "Dan"}),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_forged_dimension_does_not_truncate(tmp_path, engine):
    path = make_xlsx(
        tmp_path / "forged.xlsx",
        [["case_identifier"]] + [[f"2547123456{i:02d}"] for i in range(10)],
    )
    patch_zip(
        path, SHEET, lambda xml: re.sub(r'<dimension ref="[^"]*"\s*/>', '<dimension ref="A1:A2"/>', xml)
    )
    # The forged tag is effective: a plain read-only openpyxl pass stops early.
    workbook = openpyxl.load_workbook(path, read_only=True)
    assert len(list(workbook.active.iter_rows(values_only=True))) <= 2
    workbook.close()

    _, rows = read_all(path, engine, max_rows=10, required="case_identifier")
    assert [number for number, _ in rows] == list(range(2, 12))
    assert rows[-1][1] == {"case_identifier": "254712345609"}
    assert count_rows(path, engine=engine) == 10


def test_both_engines_give_the_same_rows(tmp_path):
    path = make_xlsx(
        tmp_path / "mixed.xlsx",
        [
            ["Case_Identifier", "Name", "n", "when", "t"],
            [254712345678, " Ann ", 3, dt.datetime(2024, 1, 2), dt.time(8, 15)],
            [None, None, None, None, None],
            ["2.54712345678E+11", "", 0.25, dt.datetime(2024, 1, 2, 12, 5), None],
            [-7, "#N/A", 1e20, dt.date(1999, 12, 31), None],
        ],
    )
    assert read_all(path, "calamine") == read_all(path, "openpyxl")


@pytest.mark.parametrize("engine", ENGINES)
def test_reads_bytes_and_file_objects(tmp_path, engine):
    data = xlsx_bytes([["case_identifier"], ["254712345678"]])
    expected = (["case_identifier"], [(2, {"case_identifier": "254712345678"})])
    assert read_all(data, engine) == expected
    assert read_all(io.BytesIO(data), engine) == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_sheet(tmp_path, engine):
    path = make_xlsx(tmp_path / "empty.xlsx", [])
    with pytest.raises(SpreadsheetError) as caught:
        iter_rows(path, 100, "case_identifier", engine=engine)
    assert caught.value.code == "empty_sheet"
    assert "empty" in caught.value.message

    path = make_xlsx(tmp_path / "blank_cells.xlsx", [[None, "  "], [""]])
    with pytest.raises(SpreadsheetError) as caught:
        iter_rows(path, 100, engine=engine)
    assert caught.value.code == "empty_sheet"


@pytest.mark.parametrize("engine", ENGINES)
def test_header_only_sheet_has_no_rows(tmp_path, engine):
    path = make_xlsx(tmp_path / "header.xlsx", [["case_identifier"]])
    assert read_all(path, engine, required="case_identifier") == (["case_identifier"], [])
    assert count_rows(path, engine=engine) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_header_lists_what_was_found(tmp_path, engine):
    path = make_xlsx(tmp_path / "wrong.xlsx", [["Name", " Phone "], ["Ann", "0712345678"]])
    with pytest.raises(SpreadsheetError) as caught:
        iter_rows(path, 100, "case_identifier", engine=engine)
    error = caught.value
    assert error.code == "missing_header"
    assert error.message == "No 'case_identifier' column. Found: name, phone."
    assert error.details["found"] == ["name", "phone"]
    assert error.details["missing"] == ["case_identifier"]


@pytest.mark.parametrize("engine", ENGINES)
def test_too_many_rows_is_raised_while_streaming(tmp_path, engine):
    path = make_xlsx(
        tmp_path / "five.xlsx",
        [["case_identifier"], ["a"], [None], ["b"], ["c"], ["d"], ["e"]],
    )
    seen = []
    with pytest.raises(SpreadsheetError) as caught:  # rows stream before the error
        for number, row in iter_rows(path, 3, "case_identifier", engine=engine):
            seen.append((number, row["case_identifier"]))
    assert caught.value.code == "too_many_rows"
    assert "3" in caught.value.message
    assert caught.value.details["row_number"] == 6
    assert seen == [(2, "a"), (4, "b"), (5, "c")]

    assert len(read_all(path, engine, max_rows=5)[1]) == 5
    assert count_rows(path, engine=engine) == 5


@pytest.mark.parametrize("engine", ENGINES)
def test_corrupt_workbook_is_unreadable(tmp_path, engine):
    path = tmp_path / "corrupt.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "this is not xml <<<")
    check_xlsx_bytes(path, 10 * MB)  # the zip itself is fine
    with pytest.raises(SpreadsheetError) as caught:
        iter_rows(path, 100, engine=engine)
    assert caught.value.code == "unreadable"
    assert "damaged" in caught.value.message


def test_abandoned_reader_releases_the_file(tmp_path):
    path = make_xlsx(tmp_path / "abandon.xlsx", [["case_identifier"], ["a"], ["b"]])
    for engine in ENGINES:
        reader = iter_rows(path, None, engine=engine)
        next(reader)
        del reader
        gc.collect()  # no ResourceWarning (pytest -W error would fail)


def test_unknown_engine():
    with pytest.raises(ValueError, match="engine"):
        iter_rows(b"", 1, engine="pandas")


# --- refusing what is not a safe .xlsx ----------------------------------------


def test_accepts_a_real_workbook_as_path_bytes_or_file(tmp_path):
    data = xlsx_bytes([["case_identifier"], ["254712345678"]])
    path = tmp_path / "ok.xlsx"
    path.write_bytes(data)
    assert check_xlsx_bytes(path, 10 * MB)["size"] == len(data)
    assert check_xlsx_bytes(str(path), 10 * MB)["members"] > 3
    stream = io.BytesIO(data)
    stream.seek(5)
    assert check_xlsx_bytes(stream, 10 * MB)["uncompressed"] > 0
    assert stream.tell() == 5


def test_csv_renamed_to_xlsx(tmp_path):
    path = tmp_path / "cases.xlsx"
    path.write_text("case_identifier,name\n254712345678,Ann\n")
    error = refusal(path)
    assert error.code == "not_xlsx"
    assert error.details["kind"] == "csv"
    assert error.message.startswith("This file is a CSV renamed to .xlsx.")
    assert "save it as an Excel workbook (.xlsx)" in error.message
    # iter_rows runs the same check first.
    with pytest.raises(SpreadsheetError) as caught:
        iter_rows(path, 10)
    assert caught.value.code == "not_xlsx"


def test_latin1_csv_and_plain_text():
    assert refusal("Nom;Téléphone\nZoé;0712345678\n".encode("latin-1")).details["kind"] == "csv"
    assert refusal(b"254712345678\n256772123456\n").details["kind"] == "text"


def test_pdf():
    error = refusal(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n")
    assert (error.code, error.details["kind"]) == ("not_xlsx", "pdf")
    assert "PDF" in error.message


def test_old_xls_and_password_protected_workbooks():
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    error = refusal(ole2 + "Workbook".encode("utf-16-le") + b"\x00" * 512)
    assert (error.code, error.details["kind"]) == ("not_xlsx", "xls")
    assert error.message.startswith("This is an old Excel 97-2003 (.xls) file.")

    encrypted = refusal(ole2 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 512)
    assert encrypted.details["kind"] == "encrypted"
    assert "password" in encrypted.message


def test_html_and_unknown_binary():
    assert refusal(b"<html><body><table><tr><td>1</td></tr></table>").details["kind"] == "html"
    assert refusal(bytes(range(256)) * 4).details["kind"] == "unknown"
    assert refusal(b"").details["kind"] == "empty_file"


def test_zip_that_is_not_a_workbook():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", b"\xff\xd8\xff" + b"x" * 100)
    error = refusal(buffer.getvalue())
    assert (error.code, error.details["kind"]) == ("not_xlsx", "zip")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    assert refusal(buffer.getvalue()).details["kind"] == "docx"


def test_truncated_workbook_is_unreadable():
    data = xlsx_bytes([["case_identifier"], ["254712345678"]])
    assert refusal(data[: len(data) // 2]).code == "unreadable"


def test_too_large():
    data = xlsx_bytes([["case_identifier"]])
    error = refusal(data, max_bytes=len(data) - 1)
    assert error.code == "too_large"
    assert "limit" in error.message


def _workbook_parts(archive):
    archive.writestr("[Content_Types].xml", "<Types/>")
    archive.writestr("xl/workbook.xml", "<workbook/>")


def test_zip_bomb_of_200_mb_of_zeros():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        _workbook_parts(archive)
        with archive.open(SHEET, "w", force_zip64=True) as member:
            zeros = bytes(MB)
            for _ in range(200):
                member.write(zeros)
    data = buffer.getvalue()
    assert len(data) < 2 * MB

    # Within a generous uncompressed limit, the compression ratio gives it away.
    error = refusal(data, max_uncompressed=1024 * MB)
    assert error.code == "zip_bomb"
    assert error.details["reason"] == "compression_ratio"
    # With the default limits, its declared size does.
    assert refusal(data, max_uncompressed=100 * MB).details["reason"] == "too_large_uncompressed"


def test_zip_bomb_that_lies_about_its_size():
    real = b"<row/>" * (2 * MB)  # 12 MB that compresses very well
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        _workbook_parts(archive)
        archive.writestr(SHEET, real)
    data = bytearray(buffer.getvalue())
    # Declare 1,000 bytes in the local header and the central directory.
    name = SHEET.encode()
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (local := data.find(signature, start)) != -1:
            name_offset = 30 if signature == b"PK\x03\x04" else 46
            if data[local + name_offset : local + name_offset + len(name)] == name:
                data[local + size_offset : local + size_offset + 4] = (1000).to_bytes(4, "little")
            start = local + 4
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        assert archive.getinfo(SHEET).file_size == 1000  # the directory looks harmless

    error = refusal(bytes(data))
    assert error.code == "zip_bomb"
    assert error.details["reason"] == "size_mismatch"


def test_too_many_members():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _workbook_parts(archive)
        for i in range(30):
            archive.writestr(f"xl/media/{i}.bin", b"x")
    error = refusal(buffer.getvalue(), max_members=20)
    assert (error.code, error.details["reason"]) == ("zip_bomb", "too_many_members")


# --- writing reports ----------------------------------------------------------

DANGEROUS = ["=1+1", "+254712345678", "-5+3", "@SUM(A1:A2)", '=HYPERLINK("http://x","y")']


def test_report_keeps_participant_text_as_text(tmp_path):
    path = tmp_path / "report.xlsx"
    headers = ["Row", "Identifier", "Message", "Sent at", "Count"]
    rows = [[i + 2, text, text, dt.datetime(2024, 5, 1, 8, 0), i] for i, text in enumerate(DANGEROUS)]
    rows.append({"Row": 9, "Identifier": "254712345678", "Message": "bell\x07 removed"})
    write_report(path, headers, rows)

    with zipfile.ZipFile(path) as archive:
        assert "<f>" not in archive.read(SHEET).decode()

    workbook = openpyxl.load_workbook(path)  # full mode: would show formulas as "=..."
    sheet = workbook.active
    assert [c.value for c in sheet[1]] == headers
    assert sheet["A1"].font.b is True
    for index, text in enumerate(DANGEROUS, start=2):
        assert sheet.cell(index, 3).value == text
        assert sheet.cell(index, 3).data_type == "s"
    assert sheet["A7"].value == 9
    assert sheet["C7"].value == "bell removed"
    workbook.close()

    for engine in ENGINES:
        headers_read, read = read_all(path, engine)
        assert headers_read == ["row", "identifier", "message", "sent at", "count"]
        assert [r["message"] for _, r in read[:5]] == DANGEROUS
        assert read[0][1]["sent at"] == dt.datetime(2024, 5, 1, 8, 0)
        assert read[-1] == (
            7,
            {
                "row": 9,
                "identifier": "254712345678",
                "message": "bell removed",
                "sent at": None,
                "count": None,
            },
        )


def test_report_value_types(tmp_path):
    path = tmp_path / "types.xlsx"
    aware = dt.datetime(2024, 5, 1, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    write_report(
        path,
        ["value"],
        [[aware], [12345678901234567890], [float("nan")], [None], [True], [{"a": 1}]],
    )
    _, rows = read_all(path, "openpyxl")
    assert [r["value"] for _, r in rows] == [
        dt.datetime(2024, 5, 1, 8, 0),
        "12345678901234567890",
        True,
        "{'a': 1}",
    ]


def test_example_workbook_round_trips():
    data = make_example_workbook(["case_identifier"], [["254712345678"], ["EXT-001"]])
    assert data[:4] == b"PK\x03\x04"
    check_xlsx_bytes(data, 1 * MB)
    headers, rows = read_all(data, "calamine", required="case_identifier")
    assert headers == ["case_identifier"]
    assert rows == [(2, {"case_identifier": "254712345678"}), (3, {"case_identifier": "EXT-001"})]
