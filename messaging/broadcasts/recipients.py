"""Who a broadcast reaches: one SELECT of its recipients with their skip reasons, and the snapshot.

Rules:
- **Recipients** are case groups, single cases, mobile workers and user groups
  (their members), and the non-responders of earlier broadcasts (``non_responders``:
  the cases that did not finish a broadcast's survey, or whose message of it failed,
  and have not completed one of its surveys since: a survey re-asked to those who
  did not answer), and the open cases a ``filter`` chooses at the time of each send
  (:mod:`messaging.cases.filters`); a dynamic case group's members are its filter's
  cases at the time of each send. A case found twice (in two groups, or in a group and by
  itself) is one recipient.
- Each recipient is sent to, or skipped with a reason, in this order:
  ``closed_case`` (closed or deleted; an inactive mobile worker), ``no_phone``,
  ``invalid_number`` (a worker's number did not parse: only E.164 is
  sendable), ``duplicate_phone`` (another recipient of this send has the same
  number: the first, in a stable order, gets it), ``opted_out``.
- The order is stable (``seq``: cases by primary key, then mobile workers by
  id), and ``seq`` is dense: 1 to the number of recipients.
- When a firing starts, its recipients are snapshotted in one
  ``INSERT ... SELECT`` (with their skip reasons) into ``broadcast_recipients``,
  once: the job that moves the firing from ``pending`` to ``sending`` writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import (
    BigInteger,
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)

from messaging.cases import filters
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import (
    Broadcast,
    BroadcastFiring,
    BroadcastRecipient,
    Case,
    CaseGroup,
    CaseGroupMember,
    GroupMembership,
    Message,
    MobileWorker,
    OptOut,
    SurveySession,
)
from messaging.sms import e164

log = logging.getLogger(__name__)

FIRINGS = BroadcastFiring.__table__
RECIPIENTS = BroadcastRecipient.__table__


def recipients_select(project_id: int, recipients: Mapping):
    """One SELECT of every recipient with its skip reason, in a stable order (``seq``)."""
    parts = [
        part
        for part in (_cases_part(project_id, recipients), _workers_part(project_id, recipients))
        if part is not None
    ]
    if not parts:
        raise ValueError("a broadcast needs at least one recipient")
    u = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("u")
    closed_flag = case((u.c.closed, 1), else_=0)
    ranked = select(
        u,
        func.row_number().over(order_by=(u.c.kind, u.c.case_pk, u.c.worker_id)).label("seq"),
        func.row_number()
        .over(partition_by=(u.c.e164, closed_flag), order_by=(u.c.kind, u.c.case_pk, u.c.worker_id))
        .label("phone_rank"),
    ).subquery("r")
    opt = OptOut.__table__
    reason = case(
        (ranked.c.closed, "closed_case"),
        (and_(ranked.c.e164.is_(None), or_(ranked.c.raw.is_(None), ranked.c.raw == "")), "no_phone"),
        (ranked.c.e164.is_(None), "invalid_number"),
        (ranked.c.phone_rank > 1, "duplicate_phone"),
        (opt.c.id.is_not(None), "opted_out"),
        else_=null(),
    )
    return select(
        ranked.c.seq,
        ranked.c.case_pk,
        ranked.c.worker_id,
        func.coalesce(ranked.c.e164, ranked.c.raw).label("phone"),
        ranked.c.language,
        reason.label("skip_reason"),
    ).select_from(ranked.outerjoin(opt, and_(opt.c.project_id == project_id, opt.c.phone == ranked.c.e164)))


def non_responders(broadcast_ids: list[str]):
    """The cases that did not finish the survey of these broadcasts (a session that ended any
    other way, or is still open), or whose message of them failed, and never completed one
    of their surveys since: a SELECT of case primary keys."""
    sessions = SurveySession.__table__
    messages = Message.__table__
    completed = select(sessions.c.case_pk).where(
        sessions.c.broadcast_id.in_(broadcast_ids), sessions.c.status == "completed"
    )
    unfinished = select(sessions.c.case_pk).where(
        sessions.c.broadcast_id.in_(broadcast_ids),
        sessions.c.status != "completed",
        sessions.c.case_pk.is_not(None),
    )
    failed = select(messages.c.case_id).where(
        messages.c.broadcast_id.in_(broadcast_ids),
        messages.c.status == "failed",
        messages.c.case_id.is_not(None),
    )
    return (
        select(Case.id)
        .where(or_(Case.id.in_(unfinished), Case.id.in_(failed)), Case.id.not_in(completed))
        .scalar_subquery()
    )


def _cases_part(project_id: int, recipients: Mapping):
    """The cases of the chosen case groups, the single cases, the non-responders of the chosen
    broadcasts and the cases the filter chooses (None without any)."""
    groups, case_ids = recipients.get("case_groups") or [], recipients.get("cases") or []
    unfinished = recipients.get("non_responders") or []
    case_filter = recipients.get("filter")
    if not (groups or case_ids or unfinished or case_filter):
        return None
    conditions = []
    if case_filter:
        conditions.append(filters.condition_of(case_filter))
    if unfinished:
        conditions.append(Case.id.in_(non_responders(unfinished)))
    if groups:
        conditions.append(
            Case.id.in_(select(CaseGroupMember.case_pk).where(CaseGroupMember.group_id.in_(groups)))
        )
        for dynamic in db.session.execute(
            select(CaseGroup.filter).where(CaseGroup.id.in_(groups), CaseGroup.filter.is_not(None))
        ).scalars():
            conditions.append(filters.condition_of(dynamic))
    if case_ids:
        conditions.append(Case.case_id.in_(case_ids))
    return select(
        literal(0).label("kind"),
        Case.id.label("case_pk"),
        cast(null(), String(32)).label("worker_id"),
        Case.phone_number.label("e164"),
        Case.phone_raw.label("raw"),
        or_(Case.closed, Case.deleted).label("closed"),
        Case.language.label("language"),
    ).where(Case.__table__.c.project_id == project_id, or_(*conditions))


def _workers_part(project_id: int, recipients: Mapping[str, list[str]]):
    """The chosen mobile workers and the members of the chosen user groups (None without either)."""
    users, user_groups = recipients.get("users") or [], recipients.get("groups") or []
    if not (users or user_groups):
        return None
    conditions = []
    if users:
        conditions.append(MobileWorker.id.in_(users))
    if user_groups:
        conditions.append(
            MobileWorker.id.in_(
                select(GroupMembership.user_id).where(GroupMembership.group_id.in_(user_groups))
            )
        )
    phone = MobileWorker.phone_number
    return select(
        literal(1).label("kind"),
        cast(null(), BigInteger).label("case_pk"),
        MobileWorker.id.label("worker_id"),
        # A worker's number is stored as typed when it did not parse: only E.164 is sendable.
        case((phone.regexp_match(e164.E164.pattern), phone), else_=null()).label("e164"),
        phone.label("raw"),
        (MobileWorker.is_active.is_(False)).label("closed"),
        MobileWorker.language.label("language"),
    ).where(MobileWorker.__table__.c.project_id == project_id, or_(*conditions))


def snapshot(b: Broadcast, firing: BroadcastFiring) -> None:
    """Claim the pending firing (``sending``) and write its recipients, then commit.

    Another job that claimed it first wrote them already: then nothing happens.
    """
    now = clock.now()
    claimed = db.session.execute(
        update(FIRINGS)
        .where(FIRINGS.c.id == firing.id, FIRINGS.c.status == "pending")
        .values(status="sending", started_at=now, updated_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return
    snap = recipients_select(b.project_id, b.recipients or {}).subquery("snap")
    db.session.execute(
        insert(RECIPIENTS).from_select(
            ["firing_id", "seq", "case_pk", "worker_id", "phone", "language", "skip_reason"],
            select(
                literal(firing.id),
                snap.c.seq,
                snap.c.case_pk,
                snap.c.worker_id,
                func.substr(snap.c.phone, 1, 64),
                snap.c.language,
                snap.c.skip_reason,
            ),
        )
    )
    total = db.session.execute(select(func.count()).where(RECIPIENTS.c.firing_id == firing.id)).scalar_one()
    db.session.execute(update(FIRINGS).where(FIRINGS.c.id == firing.id).values(total=total))
    db.session.commit()
    log.info(
        "firing snapshot project_id=%s broadcast_id=%s firing_id=%s recipients=%s",
        b.project_id,
        b.id,
        firing.id,
        total,
    )
