"""Safe Excel (.xlsx) reading and writing for uploads and reports.

Reading an uploaded workbook is done in two steps:

1. :func:`check_xlsx_bytes` looks at the bytes before any XML is parsed: the
   magic number (a CSV, a PDF or an old ``.xls`` renamed to ``.xlsx`` gets a
   sentence that says so), the upload size, and the zip directory (member
   count, declared sizes, compression ratios). By default it also inflates
   every member once without keeping it, so a zip whose declared sizes lie is
   caught too; the work is bounded by the declared sizes just checked.
2. :func:`iter_rows` streams the first worksheet as ``(row_number, dict)``
   pairs. ``python-calamine`` is the default engine (about ten times faster);
   ``openpyxl`` in read-only mode is the fallback and gives the same values.

Every refusal is a :class:`SpreadsheetError` with a snake_case ``code`` and a
``message`` a case manager can act on.

:func:`write_report` writes rows with openpyxl's write-only mode and forces
every text cell to be text, so participant input such as ``=HYPERLINK(...)``
or ``+1 234`` never becomes a formula in the downloaded report.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_UNCOMPRESSED",
    "SheetReader",
    "SpreadsheetError",
    "check_xlsx_bytes",
    "count_rows",
    "iter_rows",
    "make_example_workbook",
    "normalize_header",
    "write_report",
]

MB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * MB
# 100,000 rows x 5 columns is about 25 MB of sheet XML: leave room for wide sheets.
DEFAULT_MAX_UNCOMPRESSED = 300 * MB
DEFAULT_MAX_RATIO = 100
DEFAULT_MAX_MEMBERS = 1000
# Members smaller than this are not judged by their ratio: tiny XML parts
# compress well and cannot hurt.
RATIO_FLOOR = 1 * MB
ENGINES = ("calamine", "openpyxl")

_CHUNK = 1 * MB
_SNIFF = 8192
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)

_SAVE_AS = "Open it in Excel, save it as an Excel workbook (.xlsx) and upload it again."
_NOT_XLSX_MESSAGES = {
    "empty_file": "This file is empty. Choose the Excel workbook (.xlsx) with your list and upload it again.",
    "csv": f"This file is a CSV renamed to .xlsx. {_SAVE_AS}",
    "text": f"This file is plain text renamed to .xlsx, not an Excel workbook. {_SAVE_AS}",
    "html": f"This file is a web page (HTML) saved with an Excel name. {_SAVE_AS}",
    "xml_2003": f"This is an old Excel 2003 XML spreadsheet. {_SAVE_AS}",
    "pdf": "This file is a PDF, not an Excel workbook. Upload the Excel workbook (.xlsx) the "
    "list was made in, or copy the list into Excel and save it as .xlsx.",
    "xls": f"This is an old Excel 97-2003 (.xls) file. {_SAVE_AS}",
    "encrypted": "This workbook is protected with a password. Open it in Excel, remove the "
    "password (File > Info > Protect Workbook > Encrypt with Password), save it and "
    "upload it again.",
    "xlsb": f"This is an Excel binary workbook (.xlsb). {_SAVE_AS}",
    "ods": "This is an OpenDocument spreadsheet (.ods). Save it as an Excel workbook (.xlsx) "
    "and upload it again.",
    "docx": "This is a Word document, not an Excel workbook. Put the list in an Excel "
    "workbook, save it as .xlsx and upload it again.",
    "pptx": "This is a PowerPoint presentation, not an Excel workbook. Put the list in an "
    "Excel workbook, save it as .xlsx and upload it again.",
    "zip": "This file is a zip archive, not an Excel workbook. Upload the Excel workbook (.xlsx) itself.",
    "unknown": "This file is not an Excel workbook (.xlsx). Save your list as an Excel "
    "workbook and upload it again.",
}
_UNREADABLE = (
    "This Excel file is damaged and could not be read. Open it in Excel, save it again as an "
    "Excel workbook (.xlsx) and upload it again."
)
_ZIP_BOMB = (
    "This file unpacks to far more data than a spreadsheet of cases would, so it was not "
    "opened. It may be damaged or made to overload the server. Save the list again in Excel "
    "and upload it again."
)
_EMPTY_SHEET = (
    "The first sheet of this workbook is empty. Put the column names in the first row and "
    "one entry per row below them, then upload it again."
)

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
# Excel keeps 15 significant digits: longer integers are written as text.
_MAX_EXCEL_INT = 10**15
_MAX_CELL_TEXT = 32767
_ILLEGAL_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BAD_TITLE_CHARS = re.compile(r"[\[\]:*?/\\]")


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


# --- checking the bytes -------------------------------------------------------


def check_xlsx_bytes(
    path_or_bytes: str | os.PathLike | bytes | bytearray | memoryview | IO[bytes],
    max_bytes: int,
    max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_members: int = DEFAULT_MAX_MEMBERS,
    *,
    verify: bool = True,
) -> dict:
    """Refuse anything that is not a safe-looking .xlsx, before any XML parse.

    Takes a path, the bytes, or a seekable binary file (its position is put
    back). Returns ``{"size", "members", "uncompressed"}`` for a file that
    passes; raises :class:`SpreadsheetError` (``not_xlsx``, ``too_large``,
    ``zip_bomb`` or ``unreadable``) otherwise. With ``verify`` (the default)
    every member is inflated once and discarded, to catch declared sizes that
    lie and CRC errors; that costs about 0.1 s for a 100,000-row sheet.
    """
    with _binary_source(path_or_bytes) as fh:
        size = fh.seek(0, io.SEEK_END)
        fh.seek(0)
        if size == 0:
            raise _not_xlsx("empty_file")
        if size > max_bytes:
            raise SpreadsheetError(
                "too_large",
                f"This file is {_megabytes(size)}, larger than the {_megabytes(max_bytes)} "
                "limit. Remove unused sheets, columns and pictures, or split the list into "
                "smaller files.",
                {"size": size, "max_bytes": max_bytes},
            )
        head = fh.read(_SNIFF)
        fh.seek(0)
        if not head.startswith(_ZIP_MAGIC):
            raise _not_xlsx(_sniff_non_zip(head, fh))
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise _unreadable(exc) from None
        with archive:
            infos = archive.infolist()
            total = _check_zip_directory(infos, max_uncompressed, max_ratio, max_members)
            kind = _zip_kind(infos)
            if kind != "xlsx":
                raise _not_xlsx(kind)
            if verify:
                _verify_members(archive, infos, max_uncompressed, max_ratio)
    return {"size": size, "members": len(infos), "uncompressed": total}


def _check_zip_directory(
    infos: list[zipfile.ZipInfo], max_uncompressed: int, max_ratio: float, max_members: int
) -> int:
    if len(infos) > max_members:
        raise _zip_bomb("too_many_members", members=len(infos), max_members=max_members)
    total = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    if total > max_uncompressed:
        raise _zip_bomb("too_large_uncompressed", uncompressed=total, limit=max_uncompressed)
    for info in infos:
        if info.file_size > RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
            raise _zip_bomb(
                "compression_ratio",
                member=info.filename,
                uncompressed=info.file_size,
                compressed=info.compress_size,
            )
    if total > RATIO_FLOOR and total > max_ratio * max(compressed, 1):
        raise _zip_bomb("compression_ratio", uncompressed=total, compressed=compressed)
    for info in infos:
        if info.flag_bits & 0x1:
            raise SpreadsheetError(
                "unreadable", _NOT_XLSX_MESSAGES["encrypted"], {"reason": "encrypted_member"}
            )
        if info.compress_type not in _ZIP_METHODS:
            raise _unreadable(f"unsupported compression {info.compress_type} in {info.filename}")
    return total


def _zip_kind(infos: list[zipfile.ZipInfo]) -> str:
    names = {info.filename.lower() for info in infos}
    if "[content_types].xml" in names and "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "mimetype" in names and "content.xml" in names:
        return "ods"
    return "zip"


def _verify_members(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], max_uncompressed: int, max_ratio: float
) -> None:
    """Inflate each member once, bounded by its declared size + 1 byte.

    ``zipfile`` itself stops at the declared size; the probe allows one byte
    more so a member that inflates to more than it declares is seen (the Rust
    reader used by calamine would inflate it all).
    """
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        probe = copy.copy(info)
        probe.file_size = info.file_size + 1
        probe.CRC = None  # checked below, so a size mismatch is reported as such
        real = 0
        crc = 0
        try:
            with archive.open(probe) as member:
                while chunk := member.read(_CHUNK):
                    real += len(chunk)
                    crc = zlib.crc32(chunk, crc)
                    if real > info.file_size:
                        raise _zip_bomb("size_mismatch", member=info.filename, declared=info.file_size)
        except SpreadsheetError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise _unreadable(exc) from None
        if real != info.file_size or crc != info.CRC:
            raise _unreadable(f"member {info.filename} is damaged")
        total += real
        if total > max_uncompressed:  # pragma: no cover - declared sizes already checked
            raise _zip_bomb("too_large_uncompressed", uncompressed=total, limit=max_uncompressed)


def _sniff_non_zip(head: bytes, fh: IO[bytes]) -> str:
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(_OLE2_MAGIC):
        return "encrypted" if _contains(fh, _ENCRYPTED_STREAM) else "xls"
    text = _as_text(head)
    if text is None:
        return "unknown"
    lowered = text.lstrip().lower()
    if lowered.startswith(("<!doctype html", "<html")) or "<table" in lowered[:2048]:
        return "html"
    if lowered.startswith("<?xml"):
        return "xml_2003" if "urn:schemas-microsoft-com:office:spreadsheet" in lowered else "unknown"
    first_line = text.lstrip().splitlines()[0] if text.strip() else ""
    if any(sep in first_line for sep in (",", ";", "\t", "|")):
        return "csv"
    return "text"


def _as_text(head: bytes) -> str | None:
    """The head decoded as text if it looks like text (any common encoding)."""
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if head.startswith(bom):
            head = head[len(bom) :]
            if encoding != "utf-8":
                return head[: len(head) // 2 * 2].decode(encoding, errors="replace")
            break
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # a character cut by the sniff window
            text = head[: exc.start].decode("utf-8")
        else:  # Windows-1252 / Latin-1 CSVs saved by older Excel
            text = head.decode("cp1252", errors="replace")
    if not text:
        return None
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    replaced = text.count("\ufffd")
    return text if printable / len(text) > 0.95 and replaced / len(text) < 0.01 else None


def _contains(fh: IO[bytes], needle: bytes) -> bool:
    fh.seek(0)
    tail = b""
    try:
        while chunk := fh.read(_CHUNK):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle) :]
        return False
    finally:
        fh.seek(0)


@contextlib.contextmanager
def _binary_source(source: Any) -> Iterator[IO[bytes]]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            yield fh
    elif hasattr(source, "read") and hasattr(source, "seek"):
        position = source.tell()
        try:
            source.seek(0)
            yield source
        finally:
            source.seek(position)
    else:
        raise TypeError(f"expected a path, bytes or a binary file, not {type(source).__name__}")


def _not_xlsx(kind: str) -> SpreadsheetError:
    return SpreadsheetError("not_xlsx", _NOT_XLSX_MESSAGES[kind], {"kind": kind})


def _zip_bomb(reason: str, **details: Any) -> SpreadsheetError:
    return SpreadsheetError("zip_bomb", _ZIP_BOMB, {"reason": reason, **details})


def _unreadable(error: object) -> SpreadsheetError:
    return SpreadsheetError("unreadable", _UNREADABLE, {"error": str(error)[:300]})


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB".replace(".0 MB", " MB")


# --- reading rows -------------------------------------------------------------


def normalize_header(value: object) -> str:
    """A header cell as a column name: text, stripped, lowercased, single spaces."""
    value = _clean(value)
    if value is None:
        return ""
    return " ".join(str(value).split()).lower()


class SheetReader:
    """Rows of the first worksheet, streamed once.

    ``headers`` is the list of column names (normalised, ``""`` for a blank
    header cell) from the header row, the first non-blank row (usually row
    1). Iterating gives ``(row_number, {header: value})`` for each non-blank
    row below it; ``row_number`` is the row number Excel shows. Columns with a
    blank header are left out; a repeated header keeps its first column.
    Use as a context manager, or iterate to the end, to release the file.
    """

    def __init__(
        self,
        raw_rows: Iterator[tuple[int, list]],
        engine: str,
        max_rows: int | None,
        required_header: str | Iterable[str] | None,
    ):
        self.engine = engine
        self.max_rows = max_rows
        self.data_rows = 0
        self._raw = raw_rows
        self._closed = False
        try:
            header = self._first_non_blank()
            if header is None:
                raise SpreadsheetError("empty_sheet", _EMPTY_SHEET)
            self.header_row, values = header
            headers = [normalize_header(v) for v in values]
            while headers and not headers[-1]:
                headers.pop()
            self.headers: list[str] = headers
            seen: set[str] = set()
            self._columns: list[tuple[int, str]] = []
            for index, name in enumerate(headers):
                if name and name not in seen:
                    seen.add(name)
                    self._columns.append((index, name))
            self._check_required(required_header)
        except BaseException:
            self.close()
            raise

    def _first_non_blank(self) -> tuple[int, list] | None:
        while (item := self._next_raw()) is not None:
            if any(v is not None for v in item[1]):
                return item
        return None

    def _check_required(self, required_header: str | Iterable[str] | None) -> None:
        if required_header is None:
            return
        wanted = [required_header] if isinstance(required_header, str) else list(required_header)
        missing = [normalize_header(h) for h in wanted if normalize_header(h) not in self.headers]
        if not missing:
            return
        found = [h for h in self.headers if h]
        names = ", ".join(f"'{h}'" for h in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise SpreadsheetError(
            "missing_header",
            f"No {names} {noun}. Found: {', '.join(found) or 'no column names'}.",
            {"missing": missing, "found": found, "header_row": self.header_row},
        )

    def _next_raw(self) -> tuple[int, list] | None:
        if self._closed:
            return None
        try:
            return next(self._raw)
        except StopIteration:
            self.close()
            return None
        except (SpreadsheetError, FileNotFoundError, IsADirectoryError, PermissionError):
            self.close()
            raise
        except BaseException as exc:
            self.close()
            if _is_fatal(exc):
                raise
            raise _unreadable(exc) from None

    def _record(self, values: list) -> dict[str, Any]:
        width = len(values)
        return {name: values[i] if i < width else None for i, name in self._columns}

    def _count_data_row(self, number: int) -> None:
        self.data_rows += 1
        if self.max_rows is not None and self.data_rows > self.max_rows:
            self.close()
            raise SpreadsheetError(
                "too_many_rows",
                f"This file has more than {self.max_rows:,} rows. Split it into files of at "
                f"most {self.max_rows:,} rows and upload them one at a time.",
                {"max_rows": self.max_rows, "row_number": number},
            )

    def __iter__(self) -> SheetReader:
        return self

    def __next__(self) -> tuple[int, dict[str, Any]]:
        while (item := self._next_raw()) is not None:
            number, values = item
            record = self._record(values)
            if all(v is None for v in record.values()):
                continue
            self._count_data_row(number)
            return number, record
        raise StopIteration

    def count_remaining(self) -> int:
        """Count the non-blank data rows left, without building dicts."""
        count = 0
        indexes = [i for i, _ in self._columns]
        while (item := self._next_raw()) is not None:
            values = item[1]
            width = len(values)
            if any(values[i] is not None for i in indexes if i < width):
                count += 1
        self.data_rows += count
        return count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> SheetReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def iter_rows(
    path: str | os.PathLike | bytes | IO[bytes],
    max_rows: int | None,
    required_header: str | Iterable[str] | None = None,
    *,
    engine: str = "calamine",
    check: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SheetReader:
    """Open the first worksheet and read its header row; rows stream on iteration.

    Raises :class:`SpreadsheetError` at once for a file that fails
    :func:`check_xlsx_bytes` (unless ``check=False``, for a file checked
    already), ``empty_sheet``, ``missing_header`` (``required_header`` is a
    name or several) and ``unreadable``; while iterating, ``too_many_rows``
    when the data rows exceed ``max_rows`` (``None``: no limit) and
    ``unreadable``. Values: text stripped (``""`` is ``None``), whole numbers
    as ``int``, dates at midnight as ``date``, other dates as ``datetime``,
    formulas as their cached value, error values (``#N/A``) as ``None``.

    Memory: openpyxl streams the XML. calamine holds the sheet's cells in
    native memory (about 30 MB for 100,000 x 5) and hands rows to Python one
    at a time; neither builds a Python list of the sheet.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if check:
        check_xlsx_bytes(path, max_bytes)
    if isinstance(path, (bytes, bytearray, memoryview)):
        path = io.BytesIO(bytes(path))
    elif hasattr(path, "seek"):
        path.seek(0)
    if engine == "calamine":
        try:
            import python_calamine  # noqa: F401
        except ImportError:  # pragma: no cover - installed with the project
            engine = "openpyxl"
    raw = _calamine_rows(path) if engine == "calamine" else _openpyxl_rows(path)
    return SheetReader(raw, engine, max_rows, required_header)


def count_rows(
    path: str | os.PathLike | bytes | IO[bytes],
    *,
    engine: str = "calamine",
    check: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> int:
    """Number of non-blank data rows below the header row (a dry count).

    Raises what :func:`iter_rows` raises on opening (``empty_sheet``,
    ``unreadable``, the byte checks). About 0.5 s for 100,000 rows with
    calamine.
    """
    with iter_rows(path, None, engine=engine, check=check, max_bytes=max_bytes) as reader:
        return reader.count_remaining()


def _calamine_rows(source: Any) -> Iterator[tuple[int, list]]:
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
    yield first_number, padding + [_clean(v) for v in first]
    if not padding:
        for number, row in enumerate(rows, first_number + 1):
            yield number, [_clean(v) for v in row]
        return
    for number, row in enumerate(rows, first_number + 1):
        yield number, padding + [_clean(v) for v in row]


def _openpyxl_rows(source: Any) -> Iterator[tuple[int, list]]:
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
            yield number, [_clean(v) for v in row]
    finally:
        workbook.close()


def _clean(value: Any) -> Any:
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


def _is_fatal(exc: BaseException) -> bool:
    # pyo3's PanicException derives from BaseException: a Rust panic on a
    # malformed file is "unreadable", not a reason to stop the worker.
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError))


# --- writing --------------------------------------------------------------------


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
    sheet = workbook.create_sheet(title=_sheet_title(sheet_title))
    headers = [str(h) for h in headers]
    for index, header in enumerate(headers, 1):
        sheet.column_dimensions[get_column_letter(index)].width = min(max(len(header) + 4, 12), 60)
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
        return value if abs(value) < _MAX_EXCEL_INT else _text_cell(sheet, str(value))
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

    cell = WriteOnlyCell(sheet, value=_ILLEGAL_XML_CHARS.sub("", text)[:_MAX_CELL_TEXT])
    cell.data_type = "s"  # never "f" (or "e"): "=1+1" stays the text "=1+1"
    return cell


def _sheet_title(title: str) -> str:
    title = _BAD_TITLE_CHARS.sub(" ", str(title)).strip().strip("'")[:31]
    return title or "Sheet1"


# --- a fast writer for large plain reports ------------------------------------------

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_FAST_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_NS_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_NS_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_NS_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_NS_REL}/styles" Target="styles.xml"/>'
        "</Relationships>"
    ),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<styleSheet xmlns="{_NS_MAIN}">'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    ),
}
_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def write_plain_report(
    path_or_stream: str | os.PathLike | IO[bytes],
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    sheet_title: str = "Report",
) -> None:
    """Like :func:`write_report` for rows of text and numbers, about ten times faster.

    Writes the sheet XML directly (inline strings) into the zip while ``rows``
    streams, so memory stays flat for 100,000-row import reports. Same
    guarantees as :func:`write_report` for the values it takes: text is always
    text (never a formula), characters Excel refuses are removed, text is cut
    at 32,767 characters, integers of 15 digits or more become text; ``None``
    is an empty cell, ``bool`` a boolean; any other value is written as its
    text. A bold, frozen header row and column widths as :func:`write_report`.
    """
    with PlainReportWriter(path_or_stream, headers, sheet_title=sheet_title) as report:
        report.write_rows(rows)


class PlainReportWriter:
    """:func:`write_plain_report` a few rows at a time (``write_rows``, then ``close``),
    for a caller that gets its rows in batches, such as an import job."""

    def __init__(
        self, path_or_stream: str | os.PathLike | IO[bytes], headers: Sequence[str], *, sheet_title: str
    ):
        from openpyxl.utils import get_column_letter

        self._column_letter = get_column_letter
        headers = [str(h) for h in headers]
        self._letters = [get_column_letter(i) for i in range(1, len(headers) + 1)]
        title = _sheet_title(sheet_title).translate(_ATTR_ESCAPES)
        widths = "".join(
            f'<col min="{i}" max="{i}" width="{min(max(len(h) + 4, 12), 60)}" customWidth="1"/>'
            for i, h in enumerate(headers, 1)
        )
        head = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
            '<sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            f"<cols>{widths}</cols><sheetData>"
        )
        # Level 1: a third of level 6's time for a file about a tenth larger.
        self._archive = zipfile.ZipFile(path_or_stream, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        for name, text in _FAST_PARTS.items():
            self._archive.writestr(name, text)
        self._archive.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
            f'<sheets><sheet name="{title}" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        self._sheet = self._archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
        parts = [head, '<row r="1">']
        parts += [_plain_cell(f"{c}1", h, ' s="1"') for c, h in zip(self._letters, headers, strict=True)]
        parts.append("</row>")
        self._sheet.write("".join(parts).encode("utf-8"))
        self._number = 1
        self._closed = False

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        letters = self._letters
        number = self._number
        parts = []
        for number, row in enumerate(rows, self._number + 1):
            while len(letters) < len(row):
                letters.append(self._column_letter(len(letters) + 1))
            cells = []
            for i, value in enumerate(row):
                if value is None or value == "":
                    continue
                if type(value) is str:  # most cells: the same as _plain_cell, inlined
                    cells.append(
                        f'<c r="{letters[i]}{number}" t="inlineStr"><is><t xml:space="preserve">'
                        f"{_plain_text(value)}</t></is></c>"
                    )
                else:
                    cells.append(_plain_cell(f"{letters[i]}{number}", value, ""))
            parts.append(f'<row r="{number}">{"".join(cells)}</row>')
            if len(parts) > 2000:
                self._sheet.write("".join(parts).encode("utf-8"))
                parts = []
        self._number = number
        if parts:
            self._sheet.write("".join(parts).encode("utf-8"))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._sheet.write(b"</sheetData></worksheet>")
            self._sheet.close()
        finally:
            self._archive.close()

    def __enter__(self) -> PlainReportWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _plain_cell(ref: str, value: Any, style: str) -> str:
    if isinstance(value, bool):
        return f'<c r="{ref}"{style} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int) and abs(value) < _MAX_EXCEL_INT:
        return f'<c r="{ref}"{style}><v>{value}</v></c>'
    if isinstance(value, float):
        return f'<c r="{ref}"{style}><v>{value!r}</v></c>' if math.isfinite(value) else ""
    if isinstance(value, Decimal):
        return f'<c r="{ref}"{style}><v>{value}</v></c>' if value.is_finite() else ""
    text = _plain_text(str(value))
    return f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _plain_text(text: str) -> str:
    """Cell text made safe for the sheet XML: illegal characters dropped, cut, escaped."""
    if not (text.isascii() and text.isprintable()):  # printable ASCII has nothing to drop
        text = _ILLEGAL_XML_CHARS.sub("", text)
    if len(text) > _MAX_CELL_TEXT:
        text = text[:_MAX_CELL_TEXT]
    if "&" in text or "<" in text or ">" in text:
        text = text.translate(_XML_ESCAPES)
    return text
