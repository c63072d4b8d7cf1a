"""User groups: named sets of mobile workers; a case-sharing group owns cases together.

- A group name is required and unique in the project, whatever its letter case
  (409 ``duplicate_name``).
- Members must be mobile workers of the project (400 ``unknown_users`` lists the
  others); a member listed twice counts once, in the order first given.
- Turning case sharing on or off never changes case owners.
- A user's case-sharing groups are listed by name (CommCare's user-groups fixture).
"""

from sqlalchemy import func, or_, select

from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.models import GroupMembership, MobileWorker, UserGroup


def create_group(name: str, case_sharing: bool = False, member_ids: list[str] | None = None) -> UserGroup:
    group = UserGroup(name=_check_group_name(name), case_sharing=case_sharing)
    group.members = _members(member_ids or [])
    db.session.add(group)
    db.session.flush()
    return group


def update_group(
    group: UserGroup,
    name: str | None = None,
    case_sharing: bool | None = None,
    member_ids: list[str] | None = None,
) -> UserGroup:
    """Change a group. Turning case sharing on or off never changes case owners."""
    if name is not None:
        group.name = _check_group_name(name, exclude_id=group.id)
    if case_sharing is not None:
        group.case_sharing = case_sharing
    if member_ids is not None:
        group.members = _members(member_ids)
    db.session.flush()
    return group


def case_sharing_groups(user_id: str) -> list[UserGroup]:
    """The user's case-sharing groups, by name (CommCare's user-groups fixture)."""
    return list(
        db.session.execute(
            select(UserGroup)
            .join(GroupMembership, GroupMembership.group_id == UserGroup.id)
            .where(GroupMembership.user_id == user_id, UserGroup.case_sharing.is_(True))
            .order_by(UserGroup.name)
        ).scalars()
    )


def _members(member_ids: list[str]) -> list[MobileWorker]:
    unique_ids = list(dict.fromkeys(member_ids))
    if not unique_ids:
        return []
    found = db.session.execute(select(MobileWorker).where(MobileWorker.id.in_(unique_ids))).scalars().all()
    missing = sorted(set(unique_ids) - {w.id for w in found})
    if missing:
        raise Invalid(
            "unknown_users",
            "Some members are not mobile workers of this project.",
            details={"user_ids": missing},
        )
    by_id = {w.id: w for w in found}
    return [by_id[i] for i in unique_ids]


def _check_group_name(name: str, exclude_id: str | None = None) -> str:
    name = name.strip()
    if not name:
        raise Invalid("validation_error", "name: is required.", field="name")
    # The exact name too: SQLite's lower() folds ASCII letters only ("Émile").
    stmt = select(UserGroup.id).where(or_(func.lower(UserGroup.name) == name.lower(), UserGroup.name == name))
    if exclude_id:
        stmt = stmt.where(UserGroup.id != exclude_id)
    if db.session.execute(stmt).first():
        raise Conflict("duplicate_name", f"A group named '{name}' already exists.")
    return name
