"""Security headers on every kind of response (issue 18, "Headers").

- Pages (logged in or not), JSON API answers, API and web error pages (401, 403,
  404, 405, 500), static files and the Twilio webhooks' XML all carry the CSP
  (no framing, scripts and styles from this site only, no 'unsafe-inline'),
  X-Frame-Options DENY, nosniff and a Referrer-Policy.
- HSTS only when the HSTS setting is on, and only over HTTPS.
- Talisman neither redirects to HTTPS nor overrides the session cookie's settings.
"""

import pytest

from tests.conftest import app_test_config, csrf_token_from
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, signed_inbound_request
from tests.integration.inbound.inbound_helpers import TO
from tests.unit.test_templates_csp import inline_code_in

EXPECTED_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def csp_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.status_code} {response.mimetype}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_secured(response) -> None:
    """The headers every response must carry (HSTS aside)."""
    csp = csp_of(response)
    assert csp == EXPECTED_CSP
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") == "strict-origin-when-cross-origin"


def make_app(**overrides):
    from messaging import create_app

    return create_app({**app_test_config(), **overrides})


@pytest.fixture(scope="module")
def broken_app(app):
    """An app with routes that fail, for the 500 pages (routes are added before its first request)."""
    application = make_app()

    def boom():
        raise RuntimeError("a bug")

    application.add_url_rule("/test-boom", "test_boom", boom)
    application.add_url_rule("/api/v1/test-boom", "test_api_boom", boom)
    return application


def test_a_logged_in_page_cannot_be_framed(web):
    response = web.get("/settings")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert_secured(response)
    assert "Strict-Transport-Security" not in response.headers  # HSTS is off outside production


def test_the_login_page(app):
    response = app.test_client().get("/login")
    assert response.status_code == 200
    assert_secured(response)


@pytest.mark.parametrize("path", ["/", "/settings", "/broadcasts/new", "/simulator", "/people/applications"])
def test_rendered_pages_hold_no_inline_code(web, path):
    response = web.get(path)
    assert response.status_code == 200
    assert_secured(response)
    assert inline_code_in(response.get_data(as_text=True)) == []


def test_json_api_answers(api):
    for path in ("/api/v1/openapi.json", "/api/v1/messages"):
        response = api.get(path)
        assert response.status_code == 200 and response.mimetype == "application/json", path
        assert_secured(response)


def test_api_errors(app, api):
    unauthorized = app.test_client().get("/api/v1/messages")
    assert unauthorized.status_code == 401 and unauthorized.mimetype == "application/json"
    assert_secured(unauthorized)
    missing = api.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.mimetype == "application/json"
    assert_secured(missing)


def test_web_error_pages(app, web):
    missing = web.get("/no-such-page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert_secured(missing)
    wrong_method = app.test_client().get("/logout")
    assert wrong_method.status_code == 405
    assert_secured(wrong_method)


def test_server_error_pages(broken_app):
    client = broken_app.test_client()
    page = client.get("/test-boom")
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert_secured(page)
    answer = client.get("/api/v1/test-boom")
    assert answer.status_code == 500 and answer.mimetype == "application/json"
    assert_secured(answer)


def test_static_files(app):
    for path in ("/static/app.js", "/static/app.css", "/static/pages/simulator.js"):
        with app.test_client().get(path) as response:
            assert response.status_code == 200, path
            assert_secured(response)


def test_twilio_webhook_answers(app, twilio_project):
    client = app.test_client()
    refused = client.post("/twilio/inbound", data={"AccountSid": DEFAULT_ACCOUNT_SID, "To": TO})
    assert refused.status_code == 403
    assert_secured(refused)
    # Signed, without a MessageSid: an empty TwiML answer and nothing stored.
    params, headers = signed_inbound_request(
        DEFAULT_AUTH_TOKEN,
        "http://localhost/twilio/inbound",
        {"AccountSid": DEFAULT_ACCOUNT_SID, "To": TO},
        fill_defaults=False,
    )
    answer = client.post("/twilio/inbound", data=params, headers=headers)
    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    assert_secured(answer)


def test_hsts_only_when_the_setting_is_on_and_over_https(app):
    production = make_app(HSTS=True)
    over_https = production.test_client().get("/login", base_url="https://localhost")
    assert_secured(over_https)
    hsts = over_https.headers.get("Strict-Transport-Security", "")
    assert hsts.startswith("max-age=") and int(hsts.split(";")[0].split("=")[1]) >= 180 * 24 * 3600
    # Over plain HTTP browsers ignore it; the app does not send it.
    assert "Strict-Transport-Security" not in production.test_client().get("/login").headers
    # The setting off (development, tests): never, even over HTTPS.
    off = app.test_client().get("/login", base_url="https://localhost")
    assert "Strict-Transport-Security" not in off.headers


def test_plain_http_is_served_not_redirected(app):
    production = make_app(HSTS=True, SESSION_COOKIE_SECURE=True)
    response = production.test_client().get("/login")
    assert response.status_code == 200  # TLS ends at the proxy: no redirect to https here


def login_cookie(application, project, base_url: str = "http://localhost") -> str:
    """The Set-Cookie header of a successful login on ``application``."""
    client = application.test_client()
    token = csrf_token_from(client.get("/login", base_url=base_url).get_data(as_text=True))
    response = client.post(
        "/login",
        data={"email": project.admin_email, "password": project.password, "csrf_token": token},
        base_url=base_url,
        headers={"Referer": f"{base_url}/login"},  # Flask-WTF checks it over HTTPS
    )
    assert response.status_code == 302
    return next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("session="))


def test_the_session_cookie_follows_the_configuration_not_talisman(app, project):
    # Tests (like development) run over http: the cookie must not be Secure, or no login would stick.
    cookie = login_cookie(app, project)
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["SESSION_COOKIE_SECURE"] is False
    strict = make_app(SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_SECURE=True)
    cookie = login_cookie(strict, project, base_url="https://localhost")
    assert "SameSite=Strict" in cookie and "Secure" in cookie
