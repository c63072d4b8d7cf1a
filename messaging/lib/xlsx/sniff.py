"""What kind of file an upload is, told from its bytes, and the sentence that says so.

Rules:

- The kind is told from the bytes, never from the file's name, before any XML is
  parsed: a CSV, a PDF or an old ``.xls`` renamed to ``.xlsx`` gets a sentence that
  says so (a ``not_xlsx`` refusal with the ``kind`` in its details).
- A file that does not start with a zip signature is a PDF (``%PDF-`` in its first
  KB), an OLE2 file (a password-protected workbook if it holds an
  ``EncryptedPackage`` stream, else an old Excel 97-2003 ``.xls``), or text, which
  is recognised in any common encoding (a UTF-8 or UTF-16 byte-order mark, UTF-8,
  or Windows-1252 / Latin-1 as older Excel saves CSVs): a web page (HTML), an old
  Excel 2003 XML spreadsheet, a CSV (a separator in the first line) or plain text.
  Anything else is ``unknown``.
- A zip is an .xlsx only if it holds ``[Content_Types].xml`` and
  ``xl/workbook.xml``; an Excel binary workbook (.xlsb), a Word document, a
  PowerPoint presentation and an OpenDocument spreadsheet are named as such, any
  other zip is a ``zip`` archive.
"""

from __future__ import annotations

import zipfile
from typing import IO

from messaging.lib.xlsx.errors import SpreadsheetError

SNIFF = 8192
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_CHUNK = 1024 * 1024
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")

_SAVE_AS = "Open it in Excel, save it as an Excel workbook (.xlsx) and upload it again."
NOT_XLSX_MESSAGES = {
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


def not_xlsx(kind: str) -> SpreadsheetError:
    """The ``not_xlsx`` refusal for a file of ``kind`` (a key of ``NOT_XLSX_MESSAGES``)."""
    return SpreadsheetError("not_xlsx", NOT_XLSX_MESSAGES[kind], {"kind": kind})


def kind_of_zip(infos: list[zipfile.ZipInfo]) -> str:
    """``xlsx``, ``xlsb``, ``docx``, ``pptx``, ``ods`` or ``zip``, from the zip's member names."""
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


def is_old_excel_file(path) -> bool:
    """Whether the file at ``path`` starts as an Excel 97-2003 workbook (.xls, OLE2) does."""
    with open(path, "rb") as fh:
        return fh.read(len(OLE2_MAGIC)) == OLE2_MAGIC


def kind_of_non_zip(head: bytes, fh: IO[bytes]) -> str:
    """The kind of a file that is not a zip, from its first ``SNIFF`` bytes ``head``
    (``fh`` is read through only to look for an encrypted stream, and put back at 0)."""
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(OLE2_MAGIC):
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
