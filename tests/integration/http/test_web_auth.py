from sqlalchemy import func, select

from tests.conftest import csrf_token_from, login


def _token_count(app):
    from messaging.extensions import db
    from messaging.models import ApiToken

    with app.app_context():
        count = db.session.execute(select(func.count()).select_from(ApiToken)).scalar_one()
        db.session.remove()
    return count


def test_login_page_and_redirect_when_logged_out(app):
    client = app.test_client()
    assert client.get("/login").status_code == 200
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_wrong_password_is_refused(app, project):
    client = app.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"email": project.admin_email, "password": "nope", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_without_csrf_token_is_refused(app, project):
    client = app.test_client()
    client.get("/login")
    response = client.post("/login", data={"email": project.admin_email, "password": project.password})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_form_post_without_csrf_changes_nothing(app, project, web):
    before = _token_count(app)
    response = web.client.post("/settings/tokens", data={"name": "no csrf"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert _token_count(app) == before


def test_api_token_is_shown_once_and_works(app, project, web):
    response = web.post("/settings/tokens", data={"name": "OpenFn"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    key = page.split('id="new-api-key">')[1].split("<")[0]
    assert key.startswith("msk_")
    again = web.get("/settings").get_data(as_text=True)
    assert key not in again
    assert (
        app.test_client().get("/api/v1/users", headers={"Authorization": f"Token {key}"}).status_code == 200
    )


def test_revoked_token_is_refused(app, project, web):
    from messaging.extensions import db
    from messaging.models import ApiToken, hash_token

    with app.app_context():
        token_id = db.session.execute(
            select(ApiToken.id).where(ApiToken.token_hash == hash_token(project.key))
        ).scalar_one()
        db.session.remove()
    assert web.post(f"/settings/tokens/{token_id}/revoke").status_code == 302
    response = project.api().get("/api/v1/users")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_token"


def test_viewer_cannot_create_tokens(app, project, web):
    web.post(
        "/settings/users", data={"email": "viewer@x.org", "password": "long enough pw", "role": "viewer"}
    )
    viewer = login(app, "viewer@x.org", "long enough pw")
    before = _token_count(app)
    assert viewer.post("/settings/tokens", data={"name": "x"}).status_code == 403
    assert _token_count(app) == before


def test_unknown_page_is_a_friendly_404(web):
    response = web.get("/no/such/page")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)


def test_unexpected_error_shows_no_stack_trace(app, web, monkeypatch):
    import messaging.http.web.main as main

    def boom():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(main, "dashboard_widgets", boom)
    response = web.get("/")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret internals" not in body and "Traceback" not in body
    assert "Something went wrong" in body


def test_logout_needs_post(app, web):
    assert web.get("/logout").status_code == 405
    assert web.post("/logout").status_code == 302
    assert web.get("/").status_code == 302


def test_admin_changes_project_settings_and_bad_values_change_nothing(app, project, web):
    from messaging.extensions import db
    from messaging.models import Project

    ok = web.post(
        "/settings/project",
        data={
            "name": "Alpha Clinic",
            "default_country": "ug",
            "timezone": "Africa/Kampala",
            "help_text": "Call 0800 123",
        },
    )
    assert ok.status_code == 302
    bad = web.post(
        "/settings/project",
        data={"name": "X", "default_country": "ZZ", "timezone": "Mars/Base", "help_text": "x"},
        follow_redirects=True,
    )
    assert "is not a country code" in bad.get_data(as_text=True)
    with app.app_context():
        p = db.session.get(Project, project.id)
        assert (p.name, p.default_country, p.timezone, p.help_text) == (
            "Alpha Clinic",
            "UG",
            "Africa/Kampala",
            "Call 0800 123",
        )
        db.session.remove()


def test_an_admin_created_on_a_special_use_domain_can_log_in(app):
    """``flask create-project`` and the login form share one rule: .local and .test addresses work."""
    from messaging.extensions import db
    from messaging.projects.setup import create_project

    with app.app_context():
        create_project("clinic", "Admin@Clinic.Local", "a long password 1", None, "KE", "UTC")
        db.session.commit()
        db.session.remove()
    web = login(app, "admin@clinic.local", "a long password 1")
    assert web.get("/").status_code == 200


def test_a_web_user_on_a_test_domain_can_be_added_and_log_in(app, project, web):
    response = web.post(
        "/settings/users",
        data={"email": "Nurse@ward.test", "name": "Nurse", "password": "another password", "role": "viewer"},
        follow_redirects=True,
    )
    assert "nurse@ward.test can now log in as viewer." in response.get_data(as_text=True)
    assert login(app, "nurse@ward.test", "another password").get("/").status_code == 200


def test_the_login_form_refuses_what_is_not_an_address(app):
    client = app.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "not an address", "password": "x", "csrf_token": token})
    assert response.status_code == 400
    assert client.get("/").status_code == 302
