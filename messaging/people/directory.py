"""Mobile workers, user groups and applications: the service functions.

Views (web and API) call these; they validate business rules and leave the
commit to the caller.
"""

from sqlalchemy import func, select

from messaging.db.tenancy import current_project_id
from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.lib.phones import normalize_phone
from messaging.models import Application, GroupMembership, MobileWorker, Project, UserGroup


def create_mobile_worker(
    username: str, password: str | None = None, language: str | None = None, phone_number: str | None = None
) -> MobileWorker:
    username = username.strip()
    if not username:
        raise Invalid("validation_error", "username: is required.", field="username")
    exists = db.session.execute(
        select(MobileWorker.id).where(func.lower(MobileWorker.username) == username.lower())
    ).first()
    if exists:
        raise Conflict("duplicate_username", f"A mobile worker named '{username}' already exists.")
    worker = MobileWorker(
        username=username, language=language or None, phone_number=_worker_phone(phone_number)
    )
    if password:
        worker.set_password(password)
    db.session.add(worker)
    db.session.flush()
    return worker


def _worker_phone(raw: str | None) -> str | None:
    """E.164 when the number parses (project's country for national spellings), else the raw text."""
    raw = (raw or "").strip()
    if not raw:
        return None
    project = db.session.get(Project, current_project_id()) if current_project_id() else None
    return normalize_phone(raw, project.default_country if project else None) or raw[:20]


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
    stmt = select(UserGroup.id).where(func.lower(UserGroup.name) == name.lower())
    if exclude_id:
        stmt = stmt.where(UserGroup.id != exclude_id)
    if db.session.execute(stmt).first():
        raise Conflict("duplicate_name", f"A group named '{name}' already exists.")
    return name


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


def create_application(name: str, case_sharing: bool = False) -> Application:
    name = name.strip()
    if not name:
        raise Invalid("validation_error", "name: is required.", field="name")
    app = Application(name=name, case_sharing=case_sharing)
    db.session.add(app)
    db.session.flush()
    return app
