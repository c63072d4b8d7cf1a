"""Settings: the new API key stays out of cookies; web users are added without telling where an e-mail
is used, and deactivated (sessions and API tokens end) or reactivated by an admin."""

from sqlalchemy import select

from tests.conftest import login
from tests.integration.accounts.helpers import REMEMBER_COOKIE, client_with, cookie, is_logged_in, log_in

NEUTRAL = "This e-mail cannot be added; ask the person to use another address."


def _cookies_set_by(app, response) -> list[str]:
    """Every Set-Cookie of ``response``, with the Flask session's signed payload decoded."""
    serializer = app.session_interface.get_signing_serializer(app)
    seen = []
    for header in response.headers.getlist("Set-Cookie"):
        seen.append(header)
        name, _, rest = header.partition("=")
        value = rest.split(";", 1)[0]
        if name == app.config["SESSION_COOKIE_NAME"] and value:
            seen.append(repr(serializer.loads(value)))
    return seen


def test_the_new_api_key_is_shown_once_and_never_sent_in_a_cookie(app, project):
    web = login(app, project.admin_email, project.password)
    response = web.post("/settings/tokens", data={"name": "OpenFn"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    key = page.split('id="new-api-key">')[1].split("<")[0]
    assert key.startswith("msk_")
    assert "Token created. Copy it now" in page

    after = web.get("/settings")
    assert key not in after.get_data(as_text=True)
    for set_cookie in _cookies_set_by(app, response) + _cookies_set_by(app, after):
        assert key not in set_cookie and key[4:] not in set_cookie
    session_now = app.session_interface.get_signing_serializer(app).loads(cookie(web.client, "session"))
    assert key not in repr(session_now)
    ok = app.test_client().get("/api/v1/users", headers={"Authorization": f"Token {key}"})
    assert ok.status_code == 200


def test_an_email_used_in_another_project_gets_a_neutral_answer(app, project, other_project):
    web = login(app, project.admin_email, project.password)
    response = web.post(
        "/settings/users",
        data={"email": other_project.admin_email.upper(), "password": "long enough pw", "role": "viewer"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert NEUTRAL in page
    for telling in ("already", "Someone", "another project", "exists"):
        assert telling not in page.split("<main", 1)[1]
    assert log_in(app.test_client(), other_project.admin_email, other_project.password).status_code == 302


def test_an_email_already_in_this_project_says_so(app, project):
    web = login(app, project.admin_email, project.password)
    data = {"email": "nurse@alpha.example.org", "password": "long enough pw", "role": "viewer"}
    assert "can now log in as viewer" in web.post(
        "/settings/users", data=data, follow_redirects=True
    ).get_data(as_text=True)
    again = web.post("/settings/users", data=data, follow_redirects=True).get_data(as_text=True)
    assert "nurse@alpha.example.org is already a user of this project." in again
    assert NEUTRAL not in again


def _user_id(project, email: str) -> int:
    from messaging.extensions import db
    from messaging.models import WebUser

    with project.scope():
        return db.session.execute(select(WebUser.id).where(WebUser.email == email)).scalar_one()


def _api_key_for(project, user_id: int) -> str:
    from messaging.extensions import db
    from messaging.models import ApiToken, WebUser

    with project.scope():
        _token, key = ApiToken.issue(db.session.get(WebUser, user_id), "viewer's")
        db.session.commit()
    return key


def test_a_deactivated_user_is_logged_out_everywhere_cannot_log_in_and_their_api_token_stops(app, project):
    admin = login(app, project.admin_email, project.password)
    admin.post(
        "/settings/users",
        data={"email": "viewer@alpha.example.org", "password": "viewer pass 1", "role": "viewer"},
    )
    viewer_id = _user_id(project, "viewer@alpha.example.org")
    viewer = app.test_client()
    assert log_in(viewer, "viewer@alpha.example.org", "viewer pass 1", remember=True).status_code == 302
    remember = cookie(viewer, REMEMBER_COOKIE)
    key = _api_key_for(project, viewer_id)
    assert (
        app.test_client().get("/api/v1/users", headers={"Authorization": f"Token {key}"}).status_code == 200
    )

    response = admin.post(f"/settings/users/{viewer_id}/deactivate", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "viewer@alpha.example.org can no longer log in" in page
    assert "deactivated" in page

    assert not is_logged_in(viewer)
    assert not is_logged_in(client_with(app, remember_token=remember))
    refused = log_in(app.test_client(), "viewer@alpha.example.org", "viewer pass 1")
    assert refused.status_code == 401 and "Wrong email or password." in refused.get_data(as_text=True)
    api = app.test_client().get("/api/v1/users", headers={"Authorization": f"Token {key}"})
    assert api.status_code == 401

    admin.post(f"/settings/users/{viewer_id}/reactivate")
    assert log_in(app.test_client(), "viewer@alpha.example.org", "viewer pass 1").status_code == 302
    assert not is_logged_in(client_with(app, remember_token=remember))  # ended sessions stay ended


def test_an_admin_cannot_deactivate_themself_nor_a_user_of_another_project(app, project, other_project):
    admin = login(app, project.admin_email, project.password)
    own_id = _user_id(project, project.admin_email)
    response = admin.post(f"/settings/users/{own_id}/deactivate", follow_redirects=True)
    assert "You cannot deactivate your own account." in response.get_data(as_text=True)
    assert is_logged_in(admin.client)

    stranger_id = _user_id(other_project, other_project.admin_email)
    assert admin.post(f"/settings/users/{stranger_id}/deactivate").status_code == 404
    assert log_in(app.test_client(), other_project.admin_email, other_project.password).status_code == 302


def test_only_admins_deactivate(app, project):
    admin = login(app, project.admin_email, project.password)
    for email in ("m@alpha.example.org", "v@alpha.example.org"):
        admin.post("/settings/users", data={"email": email, "password": "long enough pw", "role": "manager"})
    manager = login(app, "m@alpha.example.org", "long enough pw")
    target = _user_id(project, "v@alpha.example.org")
    assert manager.post(f"/settings/users/{target}/deactivate").status_code == 403
    assert log_in(app.test_client(), "v@alpha.example.org", "long enough pw").status_code == 302


def test_the_page_that_shows_the_key_fills_no_other_form_with_the_posted_name(app, project):
    web = login(app, project.admin_email, project.password)
    page = web.post("/settings/tokens", data={"name": "OpenFn"}).get_data(as_text=True)
    assert 'value="OpenFn"' not in page
    assert 'name="name" required type="text" value="Alpha"' in page  # the project's own name
