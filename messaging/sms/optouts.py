"""Opt-outs: the numbers that asked a project to stop sending to them.

Rules:
- An opt-out is per project: a number opted out of one project still gets
  the messages of another.
- Recording one is idempotent: True only when it is new, also when two
  requests record the same number at the same moment. Its ``source`` is one
  of ``OPT_OUT_SOURCES``: a keyword, the API, or the gateway's error 21610.
- Sending to an opted-out number fails with ``skip_reason='opted_out'`` and
  never calls the gateway, except with ``bypass_opt_out`` (STOP/START
  confirmations).
- Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.redact import mask_phone
from messaging.models import OptOut
from messaging.models.sms import OPT_OUT_SOURCES

log = logging.getLogger(__name__)

OPT_OUTS = OptOut.__table__


def opt_out(project_id: int, phone: str, source: str = "api") -> bool:
    """Record that ``phone`` (E.164) opted out of this project; True when it is new. Does not commit."""
    if source not in OPT_OUT_SOURCES:
        raise ValueError(f"unknown opt-out source {source!r}")
    if is_opted_out(project_id, phone):
        return False
    try:
        with db.session.begin_nested():
            db.session.execute(
                insert(OPT_OUTS).values(
                    project_id=project_id, phone=phone, source=source, created_at=clock.now()
                )
            )
    except IntegrityError:  # another request recorded it at the same moment
        return False
    log.info("opt-out project_id=%s phone=%s source=%s", project_id, mask_phone(phone), source)
    return True


def opt_in(project_id: int, phone: str) -> bool:
    """Remove ``phone``'s opt-out; True when there was one. Does not commit."""
    result = db.session.execute(
        OPT_OUTS.delete().where(OPT_OUTS.c.project_id == project_id, OPT_OUTS.c.phone == phone)
    )
    if result.rowcount:
        log.info("opt-in project_id=%s phone=%s", project_id, mask_phone(phone))
    return bool(result.rowcount)


def is_opted_out(project_id: int, phone: str) -> bool:
    return bool(opted_out_among(project_id, [phone]))


def opted_out_among(project_id: int, phones: Iterable[str]) -> set[str]:
    """The numbers of ``phones`` that opted out of this project (one query)."""
    phones = list({p for p in phones if p})
    if not phones:
        return set()
    rows = db.session.execute(
        select(OPT_OUTS.c.phone).where(OPT_OUTS.c.project_id == project_id, OPT_OUTS.c.phone.in_(phones))
    )
    return {r[0] for r in rows}
