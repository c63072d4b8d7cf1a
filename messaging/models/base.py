"""Shared column helpers and the tenant mixin."""

import uuid

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from messaging.lib import clock

# BigInteger primary keys that still autoincrement on SQLite.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def new_id() -> str:
    """A public identifier: 32 hex characters, like CommCare's ids."""
    return uuid.uuid4().hex


def utcnow():
    return clock.now()


class TenantScoped:
    """A row that belongs to one project.

    Every ORM query of a ``TenantScoped`` model is filtered to the current
    project by ``messaging.db.tenancy`` (a session event), so no view has to
    remember to add the filter, and new rows get the project automatically.
    """

    @declared_attr
    def project_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False)


def public_id_column() -> Mapped[str]:
    return mapped_column(String(32), primary_key=True, default=new_id)
