"""A case group's members: listing and searching them, taking a case out, asking who is in.

- Members are listed newest added first (the keyset ends with the case, so it is unique).
- A search ``q`` matches the case name and external ID (contains, any letter
  case), the case ID (starts with), and the phone number (the same number in
  any spelling, or a run of at least 3 digits anywhere in it).
- Removing a case by its public ``case_id``: 404 ``not_found`` when the project
  has no such case; a case that was not a member changes nothing.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from sqlalchemy import BigInteger, delete, or_, select
from sqlalchemy.orm import contains_eager

from messaging.case_groups.groups import group_project, refuse_if_dynamic
from messaging.case_groups.resolve import MAX_IDENTIFIER
from messaging.cases import filters
from messaging.db.dialect import in_values
from messaging.errors import NotFound
from messaging.extensions import db
from messaging.lib.phones import looks_like_phone, normalize_phone
from messaging.models import Case, CaseGroup, CaseGroupMember

log = logging.getLogger(__name__)


def members_query(group: CaseGroup, q: str | None = None):
    """A select of the group's ``CaseGroupMember`` rows with their ``case`` loaded.

    ``q`` searches the case name and external ID (contains, any case), the
    case ID (starts with), and the phone number (the same number in any
    spelling, or a run of at least 3 digits anywhere in it).
    """
    stmt = (
        select(CaseGroupMember)
        .join(Case, Case.id == CaseGroupMember.case_pk)
        .where(CaseGroupMember.group_id == group.id)
        .options(contains_eager(CaseGroupMember.case))
    )
    found = search_condition(group, q)
    return stmt if found is None else stmt.where(found)


def search_condition(group: CaseGroup, q: str | None):
    """What ``q`` finds among cases (see ``members_query``), or None for no search."""
    q = (q or "").strip()[:MAX_IDENTIFIER]
    if not q:
        return None
    conditions = [
        Case.name.ilike(f"%{_escape_like(q)}%", escape="\\"),
        Case.external_id.ilike(f"%{_escape_like(q)}%", escape="\\"),
        Case.case_id.startswith(q.lower(), autoescape=True),
    ]
    digits = "".join(ch for ch in q if ch.isdigit())
    if looks_like_phone(q):
        e164 = normalize_phone(q, group_project(group).default_country)
        if e164:
            conditions.append(Case.phone_number == e164)
    if len(digits) >= 3 and all(ch.isdigit() or ch in "+ -()." for ch in q):
        conditions.append(Case.phone_number.contains(digits, autoescape=True))
    return or_(*conditions)


def member_condition(group: CaseGroup):
    """A WHERE clause on ``Case`` of the group's cases (a dynamic group's: its filter now)."""
    if group.filter is not None:
        return filters.condition_of(group.filter)
    return Case.id.in_(select(CaseGroupMember.case_pk).where(CaseGroupMember.group_id == group.id))


class DynamicMember(NamedTuple):
    """A dynamic group's member as the member lists show it: the case, never added by hand."""

    case: Case
    added_at: None = None


def member_listing(group: CaseGroup, q: str | None = None):
    """``(select, key columns, row -> member)`` to page through the group's members: the
    cases added by hand, newest first; a dynamic group's cases (its filter now) by primary key."""
    if group.filter is None:
        return members_query(group, q), member_order(), lambda member: member
    stmt = select(Case).where(member_condition(group))
    found = search_condition(group, q)
    return (stmt if found is None else stmt.where(found)), [Case.id], DynamicMember


def member_order():
    """Key columns for the member list: newest first, unique (ends with the case)."""
    return [CaseGroupMember.added_at, CaseGroupMember.case_pk]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def remove_case(group: CaseGroup, case_id: str) -> bool:
    """Take the case (by its public ``case_id``) out of the group.

    Raises 404 when the project has no such case; returns False when the case
    was not a member.
    """
    refuse_if_dynamic(group)
    pk = db.session.execute(select(Case.id).where(Case.case_id == case_id)).scalar_one_or_none()
    if pk is None:
        raise NotFound("not_found", "There is no case with this case ID.", details={"case_id": case_id})
    removed = db.session.execute(
        delete(CaseGroupMember).where(CaseGroupMember.group_id == group.id, CaseGroupMember.case_pk == pk)
    ).rowcount
    if removed:
        log.info("case removed from group group_id=%s case_id=%s", group.id, case_id)
    return bool(removed)


def members_among(group_id: str, pks: set[int]) -> set[int]:
    """Which of these case pks are members of the group (one query, the pks bound as one value)."""
    if not pks:
        return set()
    members = CaseGroupMember.__table__
    return set(
        db.session.connection()
        .execute(
            select(members.c.case_pk).where(
                members.c.group_id == group_id, in_values(members.c.case_pk, pks, BigInteger)
            )
        )
        .scalars()
    )
