"""Case groups themselves: create, rename, delete, list with member counts.

- A name is required, its runs of spaces collapsed, at most ``MAX_NAME`` characters.
- A name is unique in the project whatever its letter case: 409
  ``duplicate_name``, also when a concurrent request took the name between
  the check and the write (the unique index decides).
- Deleting a group deletes its member links; the cases stay.
- The list is by name, each group with its member count: one query for the
  groups of cases added by hand, one pass over the cases for all the dynamic ones.
- A **dynamic** group is a filter (``{case_type, criteria}``,
  :mod:`messaging.cases.filters`) instead of a list: its members are the open
  cases the filter chooses whenever it is read or sent to; cases are not added
  to it or removed from it by hand (``dynamic_group``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from messaging.cases import filters
from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import CaseGroup, CaseGroupMember, Project

log = logging.getLogger(__name__)

MAX_NAME = 200


def create_group(name: str, user_id: int | None = None, case_filter=None) -> CaseGroup:
    """A new, empty group, or a dynamic one (``case_filter``). A name already used in the
    project (any case) is a 409; a malformed filter is ``Invalid`` naming its field."""
    name = _check_name(name)
    clean = filters.parse_filter(case_filter) if case_filter is not None else None
    now = clock.now()
    group = CaseGroup(name=name, created_by=user_id, created_at=now, modified_at=now, filter=clean)
    db.session.add(group)
    flush_unique_name(name)
    log.info("case group created group_id=%s user_id=%s", group.id, user_id)
    return group


def rename_group(group: CaseGroup, name: str) -> CaseGroup:
    name = _check_name(name, exclude_id=group.id)
    group.name = name
    group.modified_at = clock.now()
    flush_unique_name(name)
    return group


def delete_group(group: CaseGroup) -> int:
    """Delete the group and its member links; the cases stay. Returns the member count."""
    removed = db.session.execute(delete(CaseGroupMember).where(CaseGroupMember.group_id == group.id)).rowcount
    db.session.delete(group)
    db.session.flush()
    log.info("case group deleted group_id=%s members=%s", group.id, removed)
    return removed


def member_counts(group_ids: Iterable[str]) -> dict[str, int]:
    ids = list(group_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(CaseGroupMember.group_id, func.count())
        .where(CaseGroupMember.group_id.in_(ids))
        .group_by(CaseGroupMember.group_id)
    )
    counts = dict.fromkeys(ids, 0)
    counts.update({group_id: n for group_id, n in rows})
    dynamic = db.session.execute(
        select(CaseGroup.id, CaseGroup.filter).where(CaseGroup.id.in_(ids), CaseGroup.filter.is_not(None))
    ).all()
    counts.update(filters.count_each(dict(dynamic)))
    return counts


def refuse_if_dynamic(group: CaseGroup) -> None:
    """Cases are not added to or removed from a dynamic group by hand."""
    if group.filter is not None:
        raise Invalid(
            "dynamic_group",
            "This group is defined by a filter: its cases are the open cases the filter chooses, "
            "so none are added or removed by hand.",
            field="filter",
        )


def list_groups() -> list[tuple[CaseGroup, int]]:
    """Every group of the project by name, with its member count (``member_counts``)."""
    groups = (
        db.session.execute(select(CaseGroup).order_by(func.lower(CaseGroup.name), CaseGroup.id))
        .scalars()
        .all()
    )
    counts = member_counts(g.id for g in groups)
    return [(group, counts[group.id]) for group in groups]


def group_project(group: CaseGroup) -> Project:
    """The group's project (its default country reads national phone spellings)."""
    return db.session.get(Project, group.project_id)


def flush_unique_name(name: str) -> None:
    """Flush; a concurrent request that took the name first makes this a 409."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise _duplicate(name) from None


def _check_name(name: str | None, exclude_id: str | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise Invalid("validation_error", "name: is required.", field="name")
    if len(name) > MAX_NAME:
        raise Invalid("validation_error", f"name: must be at most {MAX_NAME} characters.", field="name")
    stmt = select(CaseGroup.id).where(func.lower(CaseGroup.name) == name.lower())
    if exclude_id:
        stmt = stmt.where(CaseGroup.id != exclude_id)
    if db.session.execute(stmt).first():
        raise _duplicate(name)
    return name


def _duplicate(name: str) -> Conflict:
    return Conflict(
        "duplicate_name",
        f"A case group named '{name}' already exists. Choose another name.",
        details={"name": name},
    )
