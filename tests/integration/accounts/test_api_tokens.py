"""API tokens in Settings (``messaging.accounts.api_tokens``): a manager revokes only their own
tokens, an admin anyone's; a revoked token stops working at once."""

from tests.conftest import login

MANAGER_EMAIL, MANAGER_PASSWORD = "manager@alpha.example.org", "manager password 1"


def _add_manager(app, project) -> None:
    from messaging.accounts import web_users
    from messaging.extensions import db

    with project.scope():
        web_users.add_web_user(project.id, MANAGER_EMAIL, "Manager", MANAGER_PASSWORD, "manager")
        db.session.commit()


def _new_token(project, web, name: str) -> tuple[int, str]:
    """Create a token from the settings page; its id and its one-time key."""
    from messaging.extensions import db
    from messaging.models import ApiToken

    page = web.post("/settings/tokens", data={"name": name}).get_data(as_text=True)
    key = page.split('id="new-api-key">')[1].split("<")[0]
    with project.scope():
        token_id = db.session.query(ApiToken.id).filter_by(name=name).scalar()
    return token_id, key


def _works(app, key: str) -> bool:
    answer = app.test_client().get("/api/v1/users", headers={"Authorization": f"Token {key}"})
    assert answer.status_code in (200, 401)
    return answer.status_code == 200


def test_a_manager_cannot_revoke_an_admins_token(app, project, web):
    _add_manager(app, project)
    token_id, key = _new_token(project, web, "admin-token")
    manager = login(app, MANAGER_EMAIL, MANAGER_PASSWORD)
    refused = manager.post(f"/settings/tokens/{token_id}/revoke", follow_redirects=True)
    assert "Only an admin can revoke another person&#39;s token." in refused.get_data(as_text=True)
    assert _works(app, key)


def test_a_manager_revokes_their_own_token_and_an_admin_anyones(app, project, web):
    _add_manager(app, project)
    manager = login(app, MANAGER_EMAIL, MANAGER_PASSWORD)
    own_id, own_key = _new_token(project, manager, "own-token")
    other_id, other_key = _new_token(project, manager, "other-token")
    done = manager.post(f"/settings/tokens/{own_id}/revoke", follow_redirects=True)
    assert "Token &#39;own-token&#39; revoked." in done.get_data(as_text=True)
    assert not _works(app, own_key)
    assert web.post(f"/settings/tokens/{other_id}/revoke").status_code == 302
    assert not _works(app, other_key)


def test_revoke_refuses_a_manager_before_changing_anything(app, project):
    import pytest

    from messaging.accounts import api_tokens
    from messaging.errors import RuleBroken
    from messaging.extensions import db
    from messaging.models import WebUser

    _add_manager(app, project)
    with project.scope():
        admin = db.session.query(WebUser).filter_by(email=project.admin_email).one()
        manager = db.session.query(WebUser).filter_by(email=MANAGER_EMAIL).one()
        token, _key = api_tokens.issue(admin, "  admin's  ")
        assert token.name == "admin's"
        with pytest.raises(RuleBroken) as refused:
            api_tokens.revoke(manager, token)
        assert refused.value.code == "not_your_token" and token.revoked_at is None
        api_tokens.revoke(admin, token)
        assert token.revoked_at is not None
