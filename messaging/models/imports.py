"""Excel imports: one row per upload, its stored file(s), and the rows' results in batches."""

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from messaging.extensions import db
from messaging.models.base import TenantScoped, public_id_column, utcnow


class Import(db.Model, TenantScoped):
    __tablename__ = "imports"

    id: Mapped[str] = public_id_column()
    kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued/running/done/failed
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    total: Mapped[int | None] = mapped_column(Integer)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class ImportFile(db.Model):
    """The uploaded workbook and the finished report, kept in the database so
    that a worker on any machine can read them (no local files as shared state)."""

    __tablename__ = "import_files"

    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)  # upload / report
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportBatch(db.Model):
    """The results of one batch of rows, stored together.

    One record per batch (not one row per sheet row): writing 100,000 rows'
    results as 50 records is what keeps an import close to the speed of
    reading the sheet. ``outcomes`` is a JSON list of ``[row_number,
    identifier, result, case_id, message]`` in row order; ``position`` is
    how many results come before this batch (for paging by offset).
    """

    __tablename__ = "import_batches"

    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True)
    first_row: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_row: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    outcomes: Mapped[str] = mapped_column(Text)
