"""Who owns a case: CommCare's case-sharing rules (seeds 000-002), and reading owners.

- New case, no ``owner_id``: with case sharing on in the application, the
  user's one case-sharing group owns it; a user in none or in several is
  refused (422 ``case_sharing_no_group`` / ``case_sharing_multiple_groups``,
  CommCare's message) and nothing is written. With case sharing off, the user
  owns it.
- An explicit ``owner_id`` (in ``create`` or ``update``) must be the user or one
  of the user's case-sharing groups, else 422 ``owner_not_allowed``.
- Turning case sharing on later changes no existing owner (nothing here ever
  reassigns an owner except a form that sets ``owner_id``).
- Callers without a submitting user (bulk upload) accept any mobile worker or
  case-sharing group of the project as an owner (``known_owner``).
- The user's case list: open cases owned by the user or any of their case-sharing groups.
- An owner reads as the worker's username or as ``"<group name> (group)"``.
"""

from collections.abc import Iterable

from sqlalchemy import select

from messaging.errors import RuleBroken
from messaging.extensions import db
from messaging.models import Application, Case, GroupMembership, MobileWorker, UserGroup
from messaging.people.groups import case_sharing_groups

# CommCare's own words (PRODUCT.md, seeds 000-002).
CASE_SHARING_MESSAGE = (
    "The case sharing settings for your user are incorrect. This user must be in exactly one "
    "case sharing group. Please contact your supervisor."
)


def resolve_new_owner(app: Application | None, user: MobileWorker | None, owner_id: str | None) -> str | None:
    """The owner of a case ``user`` creates with ``app`` (CommCare's rules). Without an
    application, case sharing is off; without a user (a web user's XForm), the owner named,
    if any."""
    if owner_id:
        check_owner_allowed(user, owner_id)
        return owner_id
    if user is None:
        return None
    if app is None or not app.case_sharing:
        return user.id
    groups = case_sharing_groups(user.id)
    if len(groups) == 1:
        return groups[0].id
    code = "case_sharing_no_group" if not groups else "case_sharing_multiple_groups"
    raise RuleBroken(
        code,
        CASE_SHARING_MESSAGE,
        details={"user_id": user.id, "case_sharing_groups": [g.id for g in groups]},
    )


def check_owner_allowed(user: MobileWorker | None, owner_id: str) -> None:
    """An explicit owner must be the user or one of the user's case-sharing groups; with no
    user (a web user's XForm, as a bulk upload), any mobile worker or case-sharing group."""
    if user is None:
        if known_owner(owner_id) is None:
            raise RuleBroken(
                "owner_not_allowed",
                f"'{owner_id}' is neither a mobile worker nor a case-sharing group of this project.",
                details={"owner_id": owner_id},
            )
        return
    if owner_id == user.id:
        return
    allowed = [g.id for g in case_sharing_groups(user.id)]
    if owner_id not in allowed:
        raise RuleBroken(
            "owner_not_allowed",
            "owner_id must be the submitting user or one of the user's case-sharing groups.",
            details={"owner_id": owner_id, "allowed": [user.id, *allowed]},
        )


def known_owner(owner_id: str):
    """The mobile worker or case-sharing group with this id in the project, or None."""
    worker = db.session.execute(select(MobileWorker).where(MobileWorker.id == owner_id)).scalar_one_or_none()
    if worker is not None:
        return worker
    group = db.session.execute(
        select(UserGroup).where(UserGroup.id == owner_id, UserGroup.case_sharing.is_(True))
    ).scalar_one_or_none()
    return group


def owner_ids_for(user_id: str) -> list[str]:
    """The ids whose cases are in the user's case list: the user and their case-sharing groups."""
    group_ids = db.session.execute(
        select(UserGroup.id)
        .join(GroupMembership, GroupMembership.group_id == UserGroup.id)
        .where(GroupMembership.user_id == user_id, UserGroup.case_sharing.is_(True))
    ).scalars()
    return [user_id, *group_ids]


def user_case_list_stmt(user_id: str):
    """Open cases owned by the user or any of their case-sharing groups (a supervisor sees all)."""
    return select(Case).where(
        Case.owner_id.in_(owner_ids_for(user_id)), Case.closed.is_(False), Case.deleted.is_(False)
    )


def owner_names(owner_ids: Iterable[str | None]) -> dict[str, str]:
    """Readable names for owner ids: workers by username, groups as 'name (group)'."""
    ids = {i for i in owner_ids if i}
    if not ids:
        return {}
    names = dict(
        db.session.execute(
            select(MobileWorker.id, MobileWorker.username).where(MobileWorker.id.in_(ids))
        ).all()
    )
    for gid, name in db.session.execute(
        select(UserGroup.id, UserGroup.name).where(UserGroup.id.in_(ids))
    ).all():
        names[gid] = f"{name} (group)"
    return names
