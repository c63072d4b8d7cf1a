"""Excel imports: one row per upload, its stored file(s), and a result per sheet row."""

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from messaging.extensions import db
from messaging.models.base import TenantScoped, public_id_column, utcnow
from messaging.models.core import BigIntPK


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


class ImportRow(db.Model):
    __tablename__ = "import_rows"
    __table_args__ = (
        UniqueConstraint("import_id", "row_number"),
        # Handlers look up earlier rows of the same import by case or by identifier
        # (duplicates in a file) once per batch: keep that O(batch), not O(rows so far).
        Index("ix_import_rows_import_case", "import_id", "case_id"),
        Index("ix_import_rows_import_identifier", "import_id", "identifier"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    identifier: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
