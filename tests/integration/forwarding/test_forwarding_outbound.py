"""Forwarding never reaches internal addresses (issue 18): locations pointing at one are refused,
the sender checks again before it sends and connects to the checked address, redirects are not
followed, 5xx answers are not kept, and stored secrets do not follow a URL to another host."""

from datetime import datetime

import pytest
from sqlalchemy import func, select

from messaging.extensions import db
from messaging.lib import clock, outbound
from messaging.lib.outbound import HostNotFound
from messaging.models import ForwardAttempt, ForwardLocation
from tests.fakes.http_receiver import Receiver
from tests.integration.forwarding.test_forwarding import add_location, records, submit_form

T0 = datetime(2026, 3, 2, 9, 0, 0)
SECRET = "Bearer abcdefghijklmnop-1234"


@pytest.fixture(autouse=True)
def frozen_clock():
    clock.set_now(T0)
    yield
    clock.set_now(None)


@pytest.fixture
def rx():
    with Receiver.start() as receiver:
        yield receiver


@pytest.fixture
def allow(app):
    """Set ``OUTBOUND_ALLOW_HOSTS`` for one test."""
    saved = app.config["OUTBOUND_ALLOW_HOSTS"]

    def _set(*entries):
        app.config["OUTBOUND_ALLOW_HOSTS"] = list(entries)

    yield _set
    app.config["OUTBOUND_ALLOW_HOSTS"] = saved


@pytest.fixture
def dns(monkeypatch):
    """Made-up names resolve where a test says (``dns["receiver.test"] = ["127.0.0.1"]``), through
    the guard's resolver only: the system resolver knows none of them."""
    table: dict[str, list[str]] = {}

    def fake_resolve(host, port):
        if host not in table:
            raise HostNotFound(f"the host {host} was not found.")
        return table[host]

    monkeypatch.setattr(outbound, "resolve", fake_resolve)
    return table


def location_count(project) -> int:
    with project.scope():
        return db.session.execute(select(func.count()).select_from(ForwardLocation)).scalar_one()


def stored(project, location_id) -> ForwardLocation:
    with project.scope():
        location = db.session.get(ForwardLocation, location_id)
        db.session.expunge(location)
        return location


def attempts(project) -> list[ForwardAttempt]:
    with project.scope():
        rows = db.session.execute(select(ForwardAttempt).order_by(ForwardAttempt.id)).scalars().all()
        db.session.expunge_all()
        return rows


# --- refused when a location is created or its URL changes ----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:8080/in",
        "http://2130706434/",
        "http://0x7f.2/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://172.16.0.1/",
        "https://192.168.1.1/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://0.0.0.0:9/",
        "http://224.0.0.1/",
        "http://intranet.test/hook",  # a name that resolves to a private address
    ],
)
def test_an_internal_address_is_refused_with_400_and_nothing_is_created(project, api, dns, url):
    dns["intranet.test"] = ["10.1.2.3"]
    response = api.post("/api/v1/forwarding", json={"url": url, "kind": "forms"})
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "address_not_allowed" and error["details"]["field"] == "url"
    assert error["message"].startswith("url: ") and "address (" in error["message"]
    assert location_count(project) == 0


def test_localhost_is_refused_by_the_system_resolver(project, api, allow):
    allow()  # the tests allow 127.0.0.1, which localhost resolves to
    response = api.post("/api/v1/forwarding", json={"url": "http://localhost:9/in", "kind": "forms"})
    assert response.status_code == 400
    assert "localhost resolves to a loopback address" in response.get_json()["error"]["message"]
    assert location_count(project) == 0


def test_changing_the_url_to_an_internal_address_is_refused_and_changes_nothing(project, api, dns):
    dns["hooks.example.test"] = ["93.184.216.34"]
    dns["intranet.test"] = ["192.168.0.20"]
    location = api.post(
        "/api/v1/forwarding",
        json={"url": "https://hooks.example.test/in", "kind": "forms", "headers": {"Authorization": SECRET}},
    ).get_json()
    for url in ("http://127.0.0.3:1/", "http://intranet.test/", "http://[::1]:8080/"):
        response = api.patch(
            f"/api/v1/forwarding/{location['id']}", json={"url": url, "name": "moved", "paused": True}
        )
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "address_not_allowed"
    kept = stored(project, location["id"])
    assert (kept.url, kept.name, kept.paused) == ("https://hooks.example.test/in", "", False)
    assert kept.headers == {"Authorization": SECRET}


def test_the_web_form_shows_the_refusal(project, web):
    response = web.post(
        "/settings/forwarding", {"url": "http://169.254.169.254/", "kind": "forms"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "points at a link-local address (169.254.169.254)" in page
    assert location_count(project) == 0


def test_the_allow_list_permits_an_address_a_range_or_a_name(project, api, dns, allow):
    dns["openfn.lan"] = ["10.9.8.7"]
    allow("10.0.0.5", "172.16.0.0/12", "openfn.lan")
    for url in ("http://10.0.0.5/in", "http://172.20.1.2/in", "http://openfn.lan:4000/inbound"):
        response = api.post("/api/v1/forwarding", json={"url": url, "kind": "forms"})
        assert response.status_code == 201, response.get_json()
    refused = api.post("/api/v1/forwarding", json={"url": "http://10.0.0.6/in", "kind": "forms"})
    assert refused.get_json()["error"]["code"] == "address_not_allowed"


def test_a_name_that_does_not_resolve_yet_is_accepted(project, api, dns):
    response = api.post("/api/v1/forwarding", json={"url": "https://not-yet.test/in", "kind": "forms"})
    assert response.status_code == 201


# --- checked again when sending, and sent to the checked address -----------------------------------


def test_the_post_goes_to_the_checked_address_with_the_typed_host(project, rx, dns, run_jobs):
    dns["receiver.test"] = ["127.0.0.1"]  # allowed by the tests' OUTBOUND_ALLOW_HOSTS
    add_location(project, f"http://receiver.test:{rx.port}/inbox", "forms")
    form_id = submit_form(project)
    run_jobs()
    (request,) = rx.requests
    assert request["path"] == "/inbox" and request["json"]["form_id"] == form_id
    assert request["headers"]["host"] == f"receiver.test:{rx.port}"
    assert records(project)[0].status == "succeeded"


def test_the_sender_refuses_an_address_the_allow_list_no_longer_allows(project, rx, run_jobs, allow):
    add_location(project, rx.url + "/inbox", "forms")
    submit_form(project)
    allow()  # the operator removed 127.0.0.1 after the location was made
    run_jobs()
    assert rx.count == 0
    (record,) = records(project)
    assert record.status == "pending" and record.attempts == 1 and record.last_status_code is None
    assert record.last_error.startswith("not sent: points at a loopback address (127.0.0.1)")
    (attempt,) = attempts(project)
    assert not attempt.succeeded and attempt.status_code is None and attempt.response_excerpt == ""
    # Nothing is lost: allowed again, the retry sends it.
    allow("127.0.0.1")
    clock.advance(minutes=1)
    run_jobs(scheduled=True)
    assert rx.count == 1 and records(project)[0].status == "succeeded"


def test_the_sender_refuses_a_name_that_now_resolves_to_an_internal_address(project, rx, dns, run_jobs):
    dns["receiver.test"] = ["93.184.216.34"]  # public when the location is made
    add_location(project, f"http://receiver.test:{rx.port}/inbox", "forms")
    submit_form(project)
    dns["receiver.test"] = ["10.0.0.7"]  # then the name points inside
    run_jobs()
    assert rx.count == 0
    (record,) = records(project)
    assert record.status == "pending"
    assert "receiver.test resolves to a private address (10.0.0.7)" in record.last_error


def test_redirects_are_not_followed_and_only_2xx_to_4xx_answers_are_kept(project, rx, run_jobs, config):
    config(FORWARDING_RETRY_DELAYS=[60, 60, 60])
    rx.script = [302, 404, 503, 200]
    rx.redirect_to = rx.url + "/elsewhere"
    add_location(project, rx.url + "/inbox", "forms")
    submit_form(project)
    run_jobs()
    for _ in range(3):
        clock.advance(minutes=1)
        run_jobs(scheduled=True)
    assert [r["path"] for r in rx.requests] == ["/inbox"] * 4
    kept = [(a.status_code, bool(a.response_excerpt)) for a in attempts(project)]
    assert kept == [(302, True), (404, True), (503, False), (200, True)]


# --- secrets stay with their destination -----------------------------------------------------------


def _location_with_secret(api, url):
    response = api.post(
        "/api/v1/forwarding",
        json={
            "url": url,
            "kind": "forms",
            "headers": {"Authorization": SECRET, "X-Api-Key": "short-key", "X-Source": "sms"},
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(
    "new_url",
    ["https://other.example.test/in", "http://hooks.example.test/in", "https://hooks.example.test:8443/in"],
)
def test_a_new_host_scheme_or_port_clears_the_stored_secrets(project, api, dns, new_url):
    dns.update({"hooks.example.test": ["93.184.216.34"], "other.example.test": ["93.184.216.35"]})
    location = _location_with_secret(api, "https://hooks.example.test/in")
    # The headers as GET shows them (masked) are sent back with the new URL.
    changed = api.patch(
        f"/api/v1/forwarding/{location['id']}", json={"url": new_url, "headers": location["headers"]}
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["headers"] == {"X-Source": "sms"}
    assert stored(project, location["id"]).headers == {"X-Source": "sms"}


def test_a_new_host_without_headers_in_the_change_clears_the_secrets_too(project, api, dns):
    dns.update({"hooks.example.test": ["93.184.216.34"], "other.example.test": ["93.184.216.35"]})
    location = _location_with_secret(api, "https://hooks.example.test/in")
    changed = api.patch(f"/api/v1/forwarding/{location['id']}", json={"url": "https://other.example.test/"})
    assert changed.get_json()["headers"] == {"X-Source": "sms"}
    assert stored(project, location["id"]).headers == {"X-Source": "sms"}


def test_secrets_entered_again_with_the_new_host_are_kept(project, api, dns):
    dns.update({"hooks.example.test": ["93.184.216.34"], "other.example.test": ["93.184.216.35"]})
    location = _location_with_secret(api, "https://hooks.example.test/in")
    changed = api.patch(
        f"/api/v1/forwarding/{location['id']}",
        json={
            "url": "https://other.example.test/in",
            "headers": {
                "Authorization": "Bearer a-new-token-for-other",
                "X-Api-Key": "****",
                "X-Source": "sms",
            },
        },
    )
    assert changed.get_json()["headers"] == {"Authorization": "****ther", "X-Source": "sms"}
    assert stored(project, location["id"]).headers == {
        "Authorization": "Bearer a-new-token-for-other",
        "X-Source": "sms",
    }


def test_a_path_only_change_keeps_the_secrets(project, api, dns):
    dns["hooks.example.test"] = ["93.184.216.34"]
    location = _location_with_secret(api, "https://hooks.example.test/in")
    for body in (
        {"url": "https://HOOKS.example.test./other?x=1", "headers": location["headers"]},
        {"url": "https://hooks.example.test:443/third"},
    ):
        changed = api.patch(f"/api/v1/forwarding/{location['id']}", json=body)
        assert changed.status_code == 200
        assert stored(project, location["id"]).headers == {
            "Authorization": SECRET,
            "X-Api-Key": "short-key",
            "X-Source": "sms",
        }


def test_the_cleared_secret_is_not_sent_to_the_new_host(project, api, rx, dns, run_jobs):
    dns["old.test"] = ["93.184.216.34"]
    location = _location_with_secret(api, "https://old.test/in")
    moved = api.patch(
        f"/api/v1/forwarding/{location['id']}", json={"url": rx.url + "/new", "headers": location["headers"]}
    )
    assert moved.status_code == 200
    submit_form(project)
    run_jobs()
    (request,) = rx.requests
    assert "authorization" not in request["headers"] and "x-api-key" not in request["headers"]
    assert request["headers"]["x-source"] == "sms"
