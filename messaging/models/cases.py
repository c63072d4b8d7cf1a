"""Case history: which forms touched which case, and what each one did."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from messaging.extensions import db
from messaging.models.base import TenantScoped, utcnow
from messaging.models.core import BigIntPK


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
