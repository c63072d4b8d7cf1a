"""Wrong passwords are limited per account and per address, in Redis, across web processes."""

import logging

from messaging.lib import clock
from tests.integration.accounts.helpers import Browser, is_logged_in, log_in, web_processes

ACCOUNT_LIMITED = "Too many wrong passwords for this account; try again in 15 minutes."


def test_the_eleventh_wrong_password_is_limited_across_two_web_processes(
    app, project, other_project, tmp_path
):
    clock.set_now(None)  # the web processes run on the real clock
    with web_processes(2, tmp_path) as urls:
        browsers = [Browser(url) for url in urls]
        for attempt in range(10):
            answer = browsers[attempt % 2].log_in(project.admin_email, f"wrong password {attempt}")
            assert answer.status_code == 401, (attempt, answer.text[:300])

        for browser in browsers:
            refused = browser.log_in(project.admin_email, project.password)
            assert refused.status_code == 429
            assert ACCOUNT_LIMITED in refused.text
            assert 800 <= int(refused.headers["Retry-After"]) <= 900
            assert browser.http.get(browser.url + "/", allow_redirects=False).status_code == 302
            # The e-mail's case and spaces do not make another account.
            assert browser.log_in(f"  {project.admin_email.upper()} ", project.password).status_code == 429

        # Another account from the same address still logs in: the limit is the account's.
        assert browsers[1].log_in(other_project.admin_email, other_project.password).status_code == 302


def test_an_unknown_email_is_limited_like_a_known_one(app, project):
    client = app.test_client()
    for _ in range(10):
        assert log_in(client, "nobody@alpha.example.org", "guess").status_code == 401
    answer = log_in(client, "nobody@alpha.example.org", "guess")
    assert answer.status_code == 429
    assert ACCOUNT_LIMITED in answer.get_data(as_text=True)


def test_wrong_passwords_from_one_address_are_limited_whatever_the_account(app, project, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ADDRESS", "5 per 15 minutes")
    attacker = "203.0.113.7"
    client = app.test_client()
    for n in range(5):
        assert log_in(client, f"guess{n}@alpha.example.org", "guess", address=attacker).status_code == 401

    refused = log_in(client, project.admin_email, project.password, address=attacker)
    assert refused.status_code == 429
    assert "Too many wrong passwords from your address; try again in 15 minutes." in refused.get_data(
        as_text=True
    )
    assert not is_logged_in(client)

    elsewhere = app.test_client()
    assert log_in(elsewhere, project.admin_email, project.password, address="198.51.100.9").status_code == 302
    assert is_logged_in(elsewhere)


def test_a_successful_login_forgets_the_accounts_wrong_passwords(app, project):
    client = app.test_client()
    for _ in range(9):
        assert log_in(client, project.admin_email, "wrong").status_code == 401
    assert log_in(client, project.admin_email, project.password).status_code == 302
    other = app.test_client()
    for _ in range(10):
        assert log_in(other, project.admin_email, "wrong").status_code == 401
    assert log_in(other, project.admin_email, project.password).status_code == 429


def test_failed_logins_log_the_user_id_never_the_typed_email(app, project, caplog):
    from messaging.extensions import db
    from messaging.models import WebUser

    with project.scope():
        admin_id = db.session.query(WebUser.id).filter_by(email=project.admin_email).scalar()
    caplog.set_level(logging.INFO)
    client = app.test_client()
    assert log_in(client, project.admin_email, "Tr0ub4dor&3").status_code == 401
    assert log_in(client, "Stranger@Elsewhere.example.org", "a guess").status_code == 401
    for _ in range(9):
        log_in(client, "stranger@elsewhere.example.org", "a guess")
    assert log_in(client, "stranger@elsewhere.example.org", "a guess").status_code == 429

    lines = [record.getMessage() for record in caplog.records]
    assert any(f"user_id={admin_id}" in line and "refused" in line for line in lines)
    assert any("no web user has the typed e-mail" in line for line in lines)
    assert any("login limited" in line for line in lines)
    for line in lines:
        lowered = line.lower()
        assert project.admin_email not in lowered
        assert "stranger@elsewhere.example.org" not in lowered
        assert "tr0ub4dor&3" not in lowered and "a guess" not in lowered


def test_an_unknown_email_still_checks_a_password_hash_made_the_same_way(app, project, monkeypatch):
    """The work done for an unknown e-mail matches a known one's, so timing does not tell them apart."""
    from messaging.accounts import logins
    from messaging.extensions import db
    from messaging.models import WebUser

    checked = []
    real_check = logins.password_matches

    def recording_check(pwhash, password):
        checked.append(pwhash)
        return real_check(pwhash, password)

    monkeypatch.setattr(logins, "password_matches", recording_check)
    with app.app_context():
        assert logins.authenticate("nobody@nowhere.example.org", "guess") is None
        real_hash = db.session.query(WebUser.password_hash).filter_by(email=project.admin_email).scalar()
        db.session.remove()
    [dummy] = checked
    method = real_hash.split("$", 1)[0]
    assert dummy.split("$", 1)[0] == method


def test_logins_are_refused_clearly_while_the_limits_store_is_down(app, project, monkeypatch, caplog):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from messaging.accounts import login_limits

    def store_down(*args, **kwargs):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(login_limits, "check", store_down)
    client = app.test_client()
    answer = log_in(client, project.admin_email, project.password)
    assert answer.status_code == 503
    assert "Logging in is not possible right now" in answer.get_data(as_text=True)
    assert not is_logged_in(client)
    assert any("not answering" in r.getMessage() for r in caplog.records)


def test_a_wrong_password_is_refused_clearly_when_the_limits_store_drops_before_it_is_counted(
    app, project, monkeypatch
):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from messaging.accounts import login_limits

    def store_down(*args, **kwargs):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(login_limits, "record_failure", store_down)
    client = app.test_client()
    answer = log_in(client, project.admin_email, "wrong password")
    assert answer.status_code == 503
    assert "Logging in is not possible right now" in answer.get_data(as_text=True)
