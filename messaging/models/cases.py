"""Cases, the forms that change them, and each case's history (which form did what)."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging.extensions import db
from messaging.models.base import BigIntPK, TenantScoped, new_id, utcnow


class CaseTransaction(db.Model, TenantScoped):
    """One form's effect on one case (a row per case block).

    ``actions`` is the case block as applied (``create``/``update``/``close``),
    so the case data page can show what each form changed, and a form's case
    blocks can be read back from its transactions.
    """

    __tablename__ = "case_transactions"
    __table_args__ = (
        Index("ix_case_transactions_case", "case_pk", "id"),
        Index("ix_case_transactions_form", "form_pk", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    form_pk: Mapped[int] = mapped_column(ForeignKey("forms.id", ondelete="CASCADE"))
    # "create", "update", "close" joined by commas, e.g. "create,update".
    kind: Mapped[str] = mapped_column(String(32))
    actions: Mapped[dict] = mapped_column(JSON, default=dict)
    server_date: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Case(db.Model, TenantScoped):
    """A participant or other tracked thing."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("project_id", "case_id"),
        Index("ix_cases_project_phone", "project_id", "phone_number"),
        Index("ix_cases_project_external", "project_id", "external_id"),
        Index("ix_cases_project_owner", "project_id", "owner_id", "closed"),
        Index("ix_cases_project_modified", "project_id", "modified_on"),
        Index("ix_cases_project_indexed", "project_id", "indexed_on", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), default=new_id)
    case_type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255), default="")
    external_id: Mapped[str | None] = mapped_column(String(255))
    phone_raw: Mapped[str | None] = mapped_column(String(64))
    # E.164 when the raw value parsed as a valid number; None otherwise.
    phone_number: Mapped[str | None] = mapped_column(String(20))
    phone_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_on: Mapped[datetime | None] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    properties: Mapped[dict] = mapped_column(JSON, default=dict)
    # When the case last changed, distinct per row and in commit order (messaging.cases.indexing):
    # what CommCare's API pages incremental exports by.
    indexed_on: Mapped[datetime | None] = mapped_column(DateTime)
    # CommCare case indices: {identifier: {case_type, case_id, relationship}} (an XForm's index block).
    indices: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))


class Form(db.Model, TenantScoped):
    """One submission; applied once, in the order the server received it."""

    __tablename__ = "forms"
    __table_args__ = (
        UniqueConstraint("project_id", "form_id"),
        Index("ix_forms_project_received", "project_id", "received_on"),
        Index("ix_forms_project_indexed", "project_id", "indexed_on", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    form_id: Mapped[str] = mapped_column(String(64), default=new_id)
    app_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    received_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    case_ids: Mapped[list] = mapped_column(JSON, default=list)
    # Where the form came from: "api", "sms_survey", "import", ...
    source: Mapped[str] = mapped_column(String(32), default="api")
    # CommCare's identity of the form (its XML root's xmlns and name attributes) and its meta block.
    xmlns: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    meta: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # The XForm as submitted to the receiver (None for forms that arrived as JSON).
    xml: Mapped[str | None] = mapped_column(Text)
    indexed_on: Mapped[datetime | None] = mapped_column(DateTime)


class IndexStamp(db.Model, TenantScoped):
    """The last ``indexed_on`` a project's forms and cases were given: taken under a row lock just
    before a commit, so stamps follow commit order (messaging.cases.indexing)."""

    __tablename__ = "index_stamps"
    __table_args__ = (UniqueConstraint("project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[datetime] = mapped_column(DateTime)
