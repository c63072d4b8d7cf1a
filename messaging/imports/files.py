"""An import's stored files: the upload until the import ends, then the .xlsx report.

Rules:
- Files live in the database (``import_files``, one per import and purpose), written
  and read without the session's ORM flush, in pieces on PostgreSQL so memory stays
  flat whatever the file's size.
- Storing a file replaces the one of the same purpose.
- The caller owns the transaction: nothing here commits.
"""

from __future__ import annotations

from typing import IO

from sqlalchemy import delete

from messaging.db import dialect
from messaging.extensions import db
from messaging.models import Import, ImportFile


def _this_file(import_id: str, purpose: str):
    files = ImportFile.__table__
    return (files.c.import_id == import_id) & (files.c.purpose == purpose)


def store_file(import_id: str, purpose: str, data: bytes | memoryview) -> None:
    """Store (or replace) one of an import's files without the session's ORM flush,
    in pieces on PostgreSQL so memory stays flat whatever the file's size."""
    files = ImportFile.__table__
    connection = db.session.connection()
    this_file = _this_file(import_id, purpose)
    connection.execute(delete(files).where(this_file))
    dialect.write_blob(
        connection, files, this_file, "data", data, {"import_id": import_id, "purpose": purpose}
    )


def copy_file(import_id: str, purpose: str, out: IO[bytes]) -> bool:
    """Write one of an import's stored files to ``out`` (in pieces on PostgreSQL);
    False when there is no such file."""
    files = ImportFile.__table__
    return dialect.read_blob(db.session.connection(), files, _this_file(import_id, purpose), "data", out)


def report_bytes(imp: Import) -> bytes | None:
    stored = db.session.get(ImportFile, (imp.id, "report"))
    return stored.data if stored else None


def delete_files(import_id: str, purpose: str | None = None) -> None:
    """Delete the import's file of ``purpose``, or all its files."""
    stmt = delete(ImportFile).where(ImportFile.import_id == import_id)
    if purpose is not None:
        stmt = stmt.where(ImportFile.purpose == purpose)
    db.session.execute(stmt)
