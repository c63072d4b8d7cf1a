"""Sessions end on the server: logout, a password change and deactivation refuse cookies saved before."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from messaging.lib import clock
from tests.conftest import WebClient, login
from tests.integration.accounts.helpers import (
    REMEMBER_COOKIE,
    SESSION_COOKIE,
    client_with,
    cookie,
    is_logged_in,
    log_in,
)

T0 = datetime(2026, 5, 4, 8, 0, 0)


def _session_rows(app):
    from messaging.extensions import db
    from messaging.models import WebSession

    with app.app_context():
        rows = db.session.execute(select(WebSession).order_by(WebSession.id)).scalars().all()
        db.session.expunge_all()
        db.session.remove()
    return rows


def test_a_session_cookie_saved_before_logout_is_refused_after_it(app, project):
    web = login(app, project.admin_email, project.password)
    saved = cookie(web.client, SESSION_COOKIE)
    assert is_logged_in(client_with(app, session=saved))

    assert web.post("/logout").status_code == 302
    assert not is_logged_in(web.client)
    assert not is_logged_in(client_with(app, session=saved))


def test_the_cookies_carry_a_session_token_and_the_database_only_its_hash(app, project):
    from messaging.accounts import web_sessions

    client = app.test_client()
    assert log_in(client, project.admin_email, project.password, remember=True).status_code == 302
    session_data = app.session_interface.get_signing_serializer(app).loads(cookie(client, SESSION_COOKIE))
    token = session_data["_user_id"]
    [row] = _session_rows(app)
    assert len(token) >= 40 and token != str(row.user_id)
    assert row.token_hash == web_sessions.token_digest(token) and token not in row.token_hash
    assert row.remember and row.revoked_at is None
    assert token in cookie(client, REMEMBER_COOKIE)


def test_the_remember_me_cookie_is_refused_after_logout(app, project):
    client = app.test_client()
    response = log_in(client, project.admin_email, project.password, remember=True)
    assert response.status_code == 302
    [set_remember] = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(REMEMBER_COOKIE + "=")
    ]
    assert "HttpOnly" in set_remember and "SameSite=Lax" in set_remember
    remember = cookie(client, REMEMBER_COOKIE)
    assert is_logged_in(client_with(app, remember_token=remember))

    assert WebClient(client).post("/logout").status_code == 302
    assert not is_logged_in(client_with(app, remember_token=remember))
    assert all(row.revoked_at is not None for row in _session_rows(app))


def test_the_remember_me_cookie_lasts_remember_cookie_days_and_is_secure_when_configured(
    app, project, monkeypatch
):
    monkeypatch.setitem(app.config, "REMEMBER_COOKIE_SECURE", True)
    client = app.test_client()
    response = log_in(client, project.admin_email, project.password, remember=True)
    [set_remember] = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(REMEMBER_COOKIE + "=")
    ]
    assert "Secure" in set_remember
    expires = client.get_cookie(REMEMBER_COOKIE).expires
    days = (expires.replace(tzinfo=None) - datetime.now(UTC).replace(tzinfo=None)).total_seconds() / 86400
    assert 29.9 < days <= 30
    [row] = _session_rows(app)
    assert (row.expires_at - row.created_at).days == app.config["REMEMBER_COOKIE_DAYS"] == 30


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, project):
    elsewhere = app.test_client()
    assert log_in(elsewhere, project.admin_email, project.password, remember=True).status_code == 302
    saved_remember = cookie(elsewhere, REMEMBER_COOKIE)
    saved_session = cookie(elsewhere, SESSION_COOKIE)
    here = login(app, project.admin_email, project.password)

    response = here.post(
        "/settings/password",
        data={
            "current_password": project.password,
            "new_password": "a brand new password",
            "confirm_password": "a brand new password",
        },
        follow_redirects=True,
    )
    assert "Your password is changed" in response.get_data(as_text=True)
    assert is_logged_in(here.client)
    assert not is_logged_in(elsewhere)
    assert not is_logged_in(client_with(app, remember_token=saved_remember))
    assert not is_logged_in(client_with(app, session=saved_session))

    assert log_in(app.test_client(), project.admin_email, project.password).status_code == 401
    assert log_in(app.test_client(), project.admin_email, "a brand new password").status_code == 302


def test_a_password_change_needs_the_current_password_and_a_long_enough_new_one_typed_twice(app, project):
    web = login(app, project.admin_email, project.password)
    attempts = [
        (
            {
                "current_password": "not it",
                "new_password": "long enough 1",
                "confirm_password": "long enough 1",
            },
            "Your current password is not right.",
        ),
        (
            {"current_password": project.password, "new_password": "short", "confirm_password": "short"},
            "at least 8 characters",
        ),
        (
            {
                "current_password": project.password,
                "new_password": "long enough 1",
                "confirm_password": "long enough 2",
            },
            "The two new passwords differ.",
        ),
    ]
    for data, message in attempts:
        response = web.post("/settings/password", data=data)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert log_in(app.test_client(), project.admin_email, project.password).status_code == 302
    assert is_logged_in(web.client)


def test_an_idle_session_expires_and_a_remembered_one_lasts_its_days(app, project):
    clock.set_now(T0)
    idle = login(app, project.admin_email, project.password)
    remembered = app.test_client()
    assert log_in(remembered, project.admin_email, project.password, remember=True).status_code == 302

    clock.advance(hours=11)
    assert is_logged_in(idle.client)  # a request moves the idle expiry on
    clock.advance(hours=11)
    assert is_logged_in(idle.client)
    clock.advance(hours=13)
    assert not is_logged_in(idle.client)

    assert is_logged_in(remembered)
    clock.set_now(T0 + timedelta(days=29))
    assert is_logged_in(remembered)
    clock.advance(days=2)
    assert not is_logged_in(remembered)


def test_last_seen_is_written_at_most_once_a_minute(app, project):
    clock.set_now(T0)
    web = login(app, project.admin_email, project.password)
    clock.advance(seconds=30)
    web.get("/")
    [row] = _session_rows(app)
    assert row.last_seen_at == T0
    clock.advance(seconds=45)
    web.get("/")
    [row] = _session_rows(app)
    assert row.last_seen_at == clock.now() == T0 + timedelta(seconds=75)


def test_a_cookie_from_before_sessions_naming_a_user_id_is_refused(app, project):
    """Cookies made before the upgrade carried the user's id: they log nobody in."""
    from messaging.extensions import db
    from messaging.models import WebUser

    with project.scope():
        admin_id = db.session.execute(select(WebUser.id)).scalar_one()
    forged = app.session_interface.get_signing_serializer(app).dumps(
        {"_user_id": str(admin_id), "_fresh": True}
    )
    assert not is_logged_in(client_with(app, session=forged))
