"""Refuse an upload that is not a safe-looking .xlsx, before any XML is parsed.

Rules:

- The bytes are looked at before any XML is parsed: an empty file, or one whose
  magic number is not a zip's, is ``not_xlsx`` with a sentence naming what it is
  (:mod:`messaging.lib.xlsx.sniff`); so is a zip that is not an .xlsx.
- A file larger than ``max_bytes`` (50 MB by default) is ``too_large``; the
  sentence gives its size and the limit in MB and says how to make it smaller.
- The zip directory is judged before anything is inflated; each of these is a
  ``zip_bomb`` with its ``reason``: more than ``max_members`` members (1,000),
  more than ``max_uncompressed`` bytes declared in all (300 MB: 100,000 rows x 5
  columns is about 25 MB of sheet XML, so there is room for wide sheets), a
  member or the whole that inflates to more than ``max_ratio`` (100) times its
  compressed size. Members smaller than ``RATIO_FLOOR`` (1 MB) are not judged by
  their ratio: tiny XML parts compress well and cannot hurt.
- An encrypted member is ``unreadable`` with the password sentence; a compression
  method other than stored or deflated, or a zip that cannot be opened, is
  ``unreadable``.
- With ``verify`` (the default) every member is inflated once without keeping
  it, so a zip whose declared sizes lie is caught too (``zip_bomb``), and a bad
  CRC (``unreadable``); the work is bounded by the declared sizes just checked,
  about 0.1 s for a 100,000-row sheet.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any

from messaging.lib.xlsx.errors import SpreadsheetError, unreadable
from messaging.lib.xlsx.sniff import (
    NOT_XLSX_MESSAGES,
    SNIFF,
    ZIP_MAGIC,
    kind_of_non_zip,
    kind_of_zip,
    not_xlsx,
)

MB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * MB
# 100,000 rows x 5 columns is about 25 MB of sheet XML: leave room for wide sheets.
DEFAULT_MAX_UNCOMPRESSED = 300 * MB
DEFAULT_MAX_RATIO = 100
DEFAULT_MAX_MEMBERS = 1000
# Members smaller than this are not judged by their ratio: tiny XML parts
# compress well and cannot hurt.
RATIO_FLOOR = 1 * MB

_CHUNK = 1 * MB
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ZIP_BOMB = (
    "This file unpacks to far more data than a spreadsheet of cases would, so it was not "
    "opened. It may be damaged or made to overload the server. Save the list again in Excel "
    "and upload it again."
)


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
            raise not_xlsx("empty_file")
        if size > max_bytes:
            raise SpreadsheetError(
                "too_large",
                f"This file is {_megabytes(size)}, larger than the {_megabytes(max_bytes)} "
                "limit. Remove unused sheets, columns and pictures, or split the list into "
                "smaller files.",
                {"size": size, "max_bytes": max_bytes},
            )
        head = fh.read(SNIFF)
        fh.seek(0)
        if not head.startswith(ZIP_MAGIC):
            raise not_xlsx(kind_of_non_zip(head, fh))
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise unreadable(exc) from None
        with archive:
            infos = archive.infolist()
            total = _check_zip_directory(infos, max_uncompressed, max_ratio, max_members)
            kind = kind_of_zip(infos)
            if kind != "xlsx":
                raise not_xlsx(kind)
            if verify:
                _verify_members(archive, infos, max_uncompressed)
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
                "unreadable", NOT_XLSX_MESSAGES["encrypted"], {"reason": "encrypted_member"}
            )
        if info.compress_type not in _ZIP_METHODS:
            raise unreadable(f"unsupported compression {info.compress_type} in {info.filename}")
    return total


def _verify_members(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], max_uncompressed: int) -> None:
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
            raise unreadable(exc) from None
        if real != info.file_size or crc != info.CRC:
            raise unreadable(f"member {info.filename} is damaged")
        total += real
        if total > max_uncompressed:  # pragma: no cover - declared sizes already checked
            raise _zip_bomb("too_large_uncompressed", uncompressed=total, limit=max_uncompressed)


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


def _zip_bomb(reason: str, **details: Any) -> SpreadsheetError:
    return SpreadsheetError("zip_bomb", _ZIP_BOMB, {"reason": reason, **details})


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB".replace(".0 MB", " MB")
