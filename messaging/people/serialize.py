"""THE JSON of the people objects, one shape per object (API, exports and all).

- Times are ISO 8601 UTC (``clock.isoformat``).
- A user group lists its members by id.
"""

from messaging.lib import clock
from messaging.models import Application, MobileWorker, UserGroup


def application_json(app: Application) -> dict:
    return {
        "id": app.id,
        "name": app.name,
        "case_sharing": app.case_sharing,
        "created_at": clock.isoformat(app.created_at),
    }


def user_json(user: MobileWorker) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "language": user.language,
        "phone_number": user.phone_number,
        "created_at": clock.isoformat(user.created_at),
    }


def group_json(group: UserGroup) -> dict:
    return {
        "id": group.id,
        "name": group.name,
        "case_sharing": group.case_sharing,
        "members": [m.id for m in group.members],
        "created_at": clock.isoformat(group.created_at),
    }
