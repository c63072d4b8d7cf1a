"""How to make one resource of each kind in a project, for the tenancy walk.

Each URL parameter name used by an API or web route maps to a function that
creates such a resource through the API of the given project and returns its
id. A route whose parameter is missing here makes the tenancy test fail, so
every new route is checked against another project's ids.
"""


def _application(api):
    return api.post("/api/v1/applications", json={"name": "App"}).get_json()["id"]


def _user(api):
    return api.post("/api/v1/users", json={"username": "walker"}).get_json()["id"]


def _group(api):
    return api.post("/api/v1/groups", json={"name": "Walkers", "case_sharing": True}).get_json()["id"]


def _token(api):
    # API tokens are only listed in the UI; the project's first token has id 1+.
    from sqlalchemy import select

    from messaging.extensions import db
    from messaging.models import ApiToken, hash_token

    return db.session.execute(
        select(ApiToken.id).where(ApiToken.token_hash == hash_token(api.key))
    ).scalar_one()


def _message(api):
    response = api.post("/api/v1/messages", json={"phone": "+254712000999", "text": "theirs"})
    return response.get_json()["id"]


FACTORIES = {
    "app_id": _application,
    "user_id": _user,
    "group_id": _group,
    "token_id": _token,
    "message_id": _message,
}
