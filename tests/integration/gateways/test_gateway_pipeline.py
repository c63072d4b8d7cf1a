"""Several gateways per project: settings, prefix routing, per-gateway webhooks, test sends, journal."""

import time
from urllib.parse import urlsplit

import pytest

from tests.factories import rows, send
from tests.fakes.africastalking_server import DEFAULT_API_KEY as AT_KEY
from tests.fakes.africastalking_server import DEFAULT_USERNAME as AT_USER
from tests.fakes.africastalking_server import FakeAfricasTalking, delivery_report_payload
from tests.fakes.africastalking_server import inbound_payload as at_inbound
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.fakes.vonage_server import DEFAULT_API_KEY as VONAGE_KEY
from tests.fakes.vonage_server import DEFAULT_API_SECRET as VONAGE_SECRET
from tests.fakes.vonage_server import FakeVonage, inbound_params, sign_params

SIGNATURE_SECRET = "vonage-signature-secret"


def _serving(app, fake_class, base_url_setting: str, seed: int):
    """A provider's fake, with the app's client for that provider pointed at it."""
    server = fake_class.start(seed=seed)
    saved = app.config.get(base_url_setting)
    app.config[base_url_setting] = server.url
    yield server
    app.config[base_url_setting] = saved
    server.stop()


@pytest.fixture
def africastalking(app):
    yield from _serving(app, FakeAfricasTalking, "AFRICASTALKING_API_BASE_URL", 3)


@pytest.fixture
def vonage(app):
    yield from _serving(app, FakeVonage, "VONAGE_API_BASE_URL", 4)


@pytest.fixture
def public_url(app):
    saved = app.config.get("PUBLIC_BASE_URL")
    app.config["PUBLIC_BASE_URL"] = "http://localhost"
    yield "http://localhost"
    app.config["PUBLIC_BASE_URL"] = saved


@pytest.fixture
def three_gateways(project, fake, africastalking, vonage, public_url):
    """Twilio as the default, Africa's Talking for +254 and +2547 1, Vonage for +255."""
    api = project.api()
    twilio = api.put(
        "/api/v1/gateway",
        json={
            "kind": "twilio",
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN,
            "from_numbers": ["+15005550006"],
            "mps": 100,
        },
    )
    assert twilio.status_code == 200, twilio.get_json()
    at = api.post(
        "/api/v1/gateways",
        json={
            "kind": "africastalking",
            "name": "Kenya",
            "prefixes": ["+254"],
            "username": AT_USER,
            "api_key": AT_KEY,
            "sender_id": "CLINIC",
            "mps": 100,
        },
    )
    assert at.status_code == 201, at.get_json()
    vg = api.post(
        "/api/v1/gateways",
        json={
            "kind": "vonage",
            "name": "Tanzania",
            "prefixes": ["+255"],
            "api_key": VONAGE_KEY,
            "api_secret": VONAGE_SECRET,
            "signature_secret": SIGNATURE_SECRET,
            "from_numbers": ["+447700900001"],
            "mps": 100,
        },
    )
    assert vg.status_code == 201, vg.get_json()
    return {"twilio": twilio.get_json(), "africastalking": at.get_json(), "vonage": vg.get_json()}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_each_message_takes_the_gateway_of_its_longest_prefix(
    project, three_gateways, fake, africastalking, vonage, run_jobs
):
    # A fourth gateway for one Safaricom range: longer than +254, so it wins there.
    narrow = project.api().post(
        "/api/v1/gateways",
        json={"kind": "console", "name": "Safaricom test range", "prefixes": ["+25471"]},
    )
    assert narrow.status_code == 201
    ids = {
        "ke": send(project, "+254722000001", "to Kenya"),
        "ke_narrow": send(project, "+254712000001", "to the narrow range"),
        "tz": send(project, "+255712000001", "to Tanzania"),
        "us": send(project, "+14155550100", "to the default"),
    }
    run_jobs()
    by_id = {r["id"]: r for r in rows(project)}
    assert all(by_id[i]["status"] == "sent" for i in ids.values()), [
        r["error_message"] for r in by_id.values()
    ]
    assert [m["to"] for m in africastalking.messages] == ["+254722000001"]
    assert africastalking.messages[0]["from"] == "CLINIC"
    assert [m["to"] for m in vonage.messages] == ["255712000001"]
    assert [m["to"] for m in fake.messages] == ["+14155550100"]
    assert by_id[ids["ke"]]["gateway"] == "africastalking"
    assert by_id[ids["ke"]]["gateway_id"] == three_gateways["africastalking"]["id"]
    assert by_id[ids["ke_narrow"]]["gateway"] == "console"
    assert by_id[ids["tz"]]["gateway_id"] == three_gateways["vonage"]["id"]
    assert by_id[ids["us"]]["gateway_id"] == three_gateways["twilio"]["id"]
    # The providers' reported prices are kept (Africa's Talking's cost, Vonage's message-price).
    assert by_id[ids["ke"]]["price_micros"] and by_id[ids["ke"]]["price_unit"] == "KES"
    assert by_id[ids["tz"]]["price_micros"] and by_id[ids["tz"]]["price_unit"] == "EUR"


def test_one_broadcast_is_split_across_two_gateways(project, three_gateways, fake, africastalking, run_jobs):
    from tests.factories import make_case

    kenyan = [f"+2547220000{i:02d}" for i in range(6)]
    american = [f"+1415555{i:04d}" for i in range(4)]
    case_ids = [make_case(project, phone=phone) for phone in kenyan + american]
    response = project.api().post(
        "/api/v1/broadcasts",
        json={"name": "Clinic day", "text": "Clinic day is Monday", "recipients": {"cases": case_ids}},
    )
    assert response.status_code in (201, 202), response.get_json()
    run_jobs(rounds=20)
    sent = rows(project, status="sent")
    assert len(sent) == 10
    assert sorted(m["to"] for m in africastalking.messages) == sorted(kenyan)
    assert sorted(m["to"] for m in fake.messages) == sorted(american)
    assert {r["gateway"] for r in sent if r["phone"].startswith("+254")} == {"africastalking"}


def test_the_preview_names_the_gateway_each_message_takes(project, three_gateways):
    from tests.factories import make_case

    case_ids = [
        make_case(project, phone=phone) for phone in ("+254722000101", "+254722000102", "+14155550199")
    ]
    preview = project.api().post(
        "/api/v1/broadcasts/preview", json={"text": "Hello", "recipients": {"cases": case_ids}}
    )
    assert preview.status_code == 200, preview.get_json()
    by_name = {g["name"]: g["recipients"] for g in preview.get_json()["gateways"]}
    assert by_name == {"Kenya": 2, "Twilio": 1}


def test_gateway_settings_are_checked_and_secrets_never_shown(project, other_project, three_gateways):
    api = project.api()
    listing = api.get("/api/v1/gateways").get_json()
    assert [g["name"] for g in listing["results"]] == ["Twilio", "Kenya", "Tanzania"]
    assert listing["results"][0]["is_default"] is True
    text = str(listing)
    assert AT_KEY not in text and VONAGE_SECRET not in text and DEFAULT_AUTH_TOKEN not in text
    assert listing["results"][1]["secrets_set"] == ["api_key"]
    assert {k["kind"] for k in listing["kinds"]} >= {
        "africastalking",
        "vonage",
        "infobip",
        "telerivet",
        "http",
    }
    # A prefix another gateway takes, a malformed prefix, a setting of another kind, a missing one.
    taken = api.post("/api/v1/gateways", json={"kind": "console", "prefixes": ["+254"]})
    assert taken.status_code == 400 and "Kenya" in taken.get_json()["error"]["message"]
    bad = api.post("/api/v1/gateways", json={"kind": "console", "prefixes": ["254abc"]})
    assert bad.status_code == 400 and bad.get_json()["error"]["details"]["field"] == "prefixes"
    other_kind = api.post("/api/v1/gateways", json={"kind": "vonage", "api_key": "k", "username": "u"})
    assert other_kind.status_code == 400
    missing = api.post("/api/v1/gateways", json={"kind": "africastalking", "username": "u"})
    assert missing.status_code == 400 and "api_key" in missing.get_json()["error"]["message"]
    assert len(api.get("/api/v1/gateways").get_json()["results"]) == 3  # nothing was added
    # Saving again without the secret keeps it.
    at_id = three_gateways["africastalking"]["id"]
    kept = api.put(
        f"/api/v1/gateways/{at_id}",
        json={"kind": "africastalking", "username": AT_USER, "sender_id": "HEALTH", "prefixes": ["+254"]},
    )
    assert kept.status_code == 200 and kept.get_json()["secrets_set"] == ["api_key"]
    assert kept.get_json()["settings"]["sender_id"] == "HEALTH"
    # Another project sees none of them; the default cannot go while others remain.
    assert other_project.api().get(f"/api/v1/gateways/{at_id}").status_code == 404
    assert other_project.api().delete(f"/api/v1/gateways/{at_id}").status_code == 404
    default_id = three_gateways["twilio"]["id"]
    assert api.delete(f"/api/v1/gateways/{default_id}").status_code == 400
    assert api.delete(f"/api/v1/gateways/{at_id}").status_code == 204
    assert [g["name"] for g in api.get("/api/v1/gateways").get_json()["results"]] == ["Twilio", "Tanzania"]


def test_making_another_gateway_the_default(project, three_gateways):
    api = project.api()
    vonage_id = three_gateways["vonage"]["id"]
    body = {"kind": "vonage", "api_key": VONAGE_KEY, "is_default": True, "from_numbers": ["+447700900001"]}
    assert api.put(f"/api/v1/gateways/{vonage_id}", json=body).status_code == 200
    items = api.get("/api/v1/gateways").get_json()["results"]
    assert [(g["name"], g["is_default"]) for g in items][0] == ("Tanzania", True)
    assert sum(g["is_default"] for g in items) == 1
    assert api.get("/api/v1/gateway").get_json()["id"] == vonage_id


def test_inbound_and_delivery_reports_per_gateway(app, project, three_gateways, africastalking, run_jobs):
    client = app.test_client()
    at = three_gateways["africastalking"]
    inbound_url, status_url = _path(at["inbound_url"]), _path(at["status_url"])
    assert f"/gateways/africastalking/{at['id']}/inbound?secret=" in inbound_url
    form = at_inbound("+254722000777", "22384", "STOP", message_id="ATXid_in_1")
    assert client.post(inbound_url, data=form).status_code == 200
    assert client.post(inbound_url, data=form).status_code == 200  # the provider's retry
    inbound = rows(project, direction="inbound")
    assert [(r["gateway_sid"], r["gateway"], r["gateway_id"]) for r in inbound] == [
        ("ATXid_in_1", "africastalking", at["id"])
    ]
    # A delivery report moves the message forward; one for an unknown id is taken and ignored.
    message_id = send(project, "+254722000001", "Your appointment is on Monday")
    run_jobs()
    [row] = rows(project, id=message_id)
    report = delivery_report_payload(row["gateway_sid"], "Success", phone_number="+254722000001")
    assert client.post(status_url, data=report).status_code == 200
    assert rows(project, id=message_id)[0]["status"] == "delivered"
    unknown = delivery_report_payload("ATXid_never_sent", "Success", phone_number="+254722000009")
    assert client.post(status_url, data=unknown).status_code == 200
    # A blacklisted recipient's report records the opt-out.
    second = send(project, "+254722000002", "Reminder")
    run_jobs()
    sid = rows(project, id=second)[0]["gateway_sid"]
    failed = delivery_report_payload(
        sid, "Failed", phone_number="+254722000002", failure_reason="UserInBlacklist"
    )
    assert client.post(status_url, data=failed).status_code == 200
    assert project.api().get("/api/v1/opt-outs?phone=%2B254722000002").get_json()["results"]


def test_unauthenticated_webhooks_are_refused_and_change_nothing(app, project, other_project, three_gateways):
    client = app.test_client()
    at = three_gateways["africastalking"]
    form = at_inbound("+254722000778", "22384", "hello", message_id="ATXid_in_2")
    base = f"/gateways/africastalking/{at['id']}"
    assert client.post(f"{base}/inbound", data=form).status_code == 403  # no secret
    assert client.post(f"{base}/inbound?secret=wrong", data=form).status_code == 403
    assert client.post(f"{base}/status?secret=wrong", data=form).status_code == 403
    # The right secret on another kind's path, or another gateway's id, is refused too.
    secret = urlsplit(at["inbound_url"]).query
    assert client.post(f"/gateways/vonage/{at['id']}/inbound?{secret}", data=form).status_code == 403
    assert client.post(f"/gateways/africastalking/999999/inbound?{secret}", data=form).status_code == 403
    assert rows(project, direction="inbound") == []
    assert rows(other_project) == []


def test_vonage_inbound_is_taken_by_its_signature(app, project, three_gateways):
    client = app.test_client()
    vg = three_gateways["vonage"]
    path = f"/gateways/vonage/{vg['id']}/inbound"
    [params] = inbound_params("255712000555", "447700900001", "Habari", message_id="0A000000123ABCD1")
    signed = sign_params(params, SIGNATURE_SECRET, "md5hash")
    assert client.post(path, data=signed).status_code == 200
    forged = sign_params(params, "not-the-secret", "md5hash")
    forged["messageId"] = "0A000000123ABCD2"
    assert client.post(path, data=forged).status_code == 403
    [row] = rows(project, direction="inbound")
    assert row["phone"] == "+255712000555" and row["body"] == "Habari" and row["gateway"] == "vonage"


def test_allowed_ips_limit_who_may_call(app, project, three_gateways):
    api = project.api()
    at = three_gateways["africastalking"]
    body = {
        "kind": "africastalking",
        "username": AT_USER,
        "prefixes": ["+254"],
        "allowed_ips": ["196.201.214.0/24"],
    }
    assert api.put(f"/api/v1/gateways/{at['id']}", json=body).status_code == 200
    form = at_inbound("+254722000779", "22384", "hi", message_id="ATXid_in_3")
    client = app.test_client()
    url = _path(at["inbound_url"])
    assert client.post(url, data=form).status_code == 403  # the test client calls from 127.0.0.1
    assert client.post(url, data=form, environ_base={"REMOTE_ADDR": "196.201.214.9"}).status_code == 200
    assert (
        api.put(f"/api/v1/gateways/{at['id']}", json={**body, "allowed_ips": ["not an ip"]}).status_code
        == 400
    )


def test_a_test_send_goes_through_the_chosen_gateway_and_explains_a_failure(
    project, three_gateways, africastalking, vonage, run_jobs
):
    api = project.api()
    vg = three_gateways["vonage"]
    # A Kenyan number would take Africa's Talking; the test send is pinned to Vonage.
    queued = api.post(f"/api/v1/gateways/{vg['id']}/test", json={"phone": "+254722000123"})
    assert queued.status_code == 202, queued.get_json()
    run_jobs()
    message = api.get(f"/api/v1/messages/{queued.get_json()['id']}").get_json()
    assert message["status"] == "sent"
    assert [m["to"] for m in vonage.messages] == ["254722000123"] and africastalking.messages == []
    # Wrong credentials: the test fails, the page explains it, and the error is listed.
    at = three_gateways["africastalking"]
    body = {"kind": "africastalking", "username": AT_USER, "api_key": "wrong-key", "prefixes": ["+254"]}
    assert api.put(f"/api/v1/gateways/{at['id']}", json=body).status_code == 200
    failed = api.post(f"/api/v1/gateways/{at['id']}/test", json={"phone": "+254722000124"}).get_json()
    run_jobs()
    assert api.get(f"/api/v1/messages/{failed['id']}").get_json()["status"] == "failed"
    errors = api.get(f"/api/v1/gateways/{at['id']}/errors").get_json()["results"]
    assert errors[0]["code"] == "bad_credentials" and errors[0]["message_id"] == failed["id"]
    assert "+254722000124" not in str(errors)
    refused = api.post(f"/api/v1/gateways/{at['id']}/test", json={"phone": "0722 000"})
    assert refused.status_code == 400 and refused.get_json()["error"]["details"]["field"] == "phone"


def test_the_gateway_page_shows_each_gateway_and_a_failed_test_in_plain_words(
    app, web, project, three_gateways, run_jobs
):
    at = three_gateways["africastalking"]
    body = {"kind": "africastalking", "username": AT_USER, "api_key": "wrong-key", "prefixes": ["+254"]}
    assert project.api().put(f"/api/v1/gateways/{at['id']}", json=body).status_code == 200
    response = web.post(f"/settings/gateways/{at['id']}/test", {"phone": "+254722000125"})
    assert response.status_code == 302 and "test=" in response.headers["Location"]
    run_jobs()
    page = web.get(
        urlsplit(response.headers["Location"]).path + "?" + urlsplit(response.headers["Location"]).query
    )
    html = page.get_data(as_text=True)
    assert "Kenya" in html and "Tanzania" in html and "+254" in html
    assert "The gateway refused the credentials" in html
    assert "wrong-key" not in html and AT_KEY not in html
    status = web.get(f"/settings/gateways/tests/{rows(project)[-1]['id']}.json").get_json()
    assert status["final"] is True and "credentials" in status["explanation"]


def test_africastalking_timeouts_fail_without_a_second_send(
    app, project, three_gateways, africastalking, run_jobs
):
    app.config["SMS_HTTP_TIMEOUT"] = 0.5
    africastalking.configure(hang_rate=1.0, hang_seconds=1.5)
    message_id = send(project, "+254722000200", "Once only")
    run_jobs(scheduled=True)
    [row] = rows(project, id=message_id)
    assert row["status"] == "failed" and row["error_code"] == "unknown_outcome"
    assert "not sent again" in row["error_message"]
    deadline = time.monotonic() + 5
    while not africastalking.messages and time.monotonic() < deadline:
        time.sleep(0.05)  # the fake answers the hung request late, then records it
    assert len(africastalking.messages) == 1  # the hung request arrived once, and nothing more


def test_the_sweep_settles_a_killed_workers_messages_from_the_journal(app, project, three_gateways, run_jobs):
    from datetime import timedelta

    from sqlalchemy import update

    from messaging.extensions import db
    from messaging.gateways.base import SendResult
    from messaging.gateways.journal import Journal
    from messaging.lib import clock
    from messaging.models import Message
    from messaging.sms.sweep import resolve_uncertain

    answered = send(project, "+254722000301", "sent before the worker died")
    in_flight = send(project, "+254722000302", "leaving when it died")
    never_left = send(project, "+254722000303", "not reached")
    with project.scope():
        stale = clock.now() - timedelta(minutes=10)
        ids = [answered, in_flight, never_left]
        db.session.execute(
            update(Message).where(Message.id.in_(ids)).values(status="sending", claimed_at=stale, attempts=1)
        )
        db.session.commit()
        notes = Journal(project.id)
        notes.before(answered, 1)
        notes.answered(answered, 1, SendResult(sid="ATXid_journal_1", status="Success", from_number="CLINIC"))
        notes.before(in_flight, 1)  # also writes the answer above, in the same round trip
        resolve_uncertain(project.id, ids)
    by_id = {r["id"]: r for r in rows(project)}
    assert by_id[answered]["status"] == "sent" and by_id[answered]["gateway_sid"] == "ATXid_journal_1"
    assert by_id[answered]["gateway"] == "africastalking"
    assert by_id[in_flight]["status"] == "failed" and by_id[in_flight]["error_code"] == "unknown_outcome"
    assert by_id[never_left]["status"] == "queued"


def test_a_send_job_notes_each_attempt_on_a_gateway_that_cannot_be_asked(
    project, three_gateways, africastalking, run_jobs
):
    from messaging.gateways import journal

    africastalking.fail_numbers = {"+254722000311": 403}  # InvalidPhoneNumber: it never counts as sent
    sent = send(project, "+254722000310", "noted")
    refused = send(project, "+254722000311", "refused")
    run_jobs()
    with project.scope():
        noted = journal.recall(project.id, sent, 1)
        assert noted["sid"] == rows(project, id=sent)[0]["gateway_sid"]
        # A refusal was not sent: nothing is noted, so sending it again could not duplicate it.
        assert journal.recall(project.id, refused, 1) is None
        assert rows(project, id=refused)[0]["status"] == "failed"


def test_the_prices_job_asks_each_twilio_gateway_for_its_own_messages(
    app, project, three_gateways, fake, africastalking, run_jobs
):
    from datetime import datetime

    from messaging.extensions import db
    from messaging.lib import clock
    from workers.jobs.sms import prices

    # Africa's Talking is made the default; Twilio takes +1 only.
    api = project.api()
    at = three_gateways["africastalking"]
    body = {"kind": "africastalking", "username": AT_USER, "is_default": True, "prefixes": ["+254"]}
    assert api.put(f"/api/v1/gateways/{at['id']}", json=body).status_code == 200
    twilio = three_gateways["twilio"]
    body = {
        "kind": "twilio",
        "account_sid": DEFAULT_ACCOUNT_SID,
        "prefixes": ["+1"],
        "from_numbers": ["+15005550006"],
    }
    assert api.put(f"/api/v1/gateways/{twilio['id']}", json=body).status_code == 200
    clock.set_now(datetime(2026, 3, 2, 9, 0))
    send(project, "+14155550123", "priced by Twilio later")
    send(project, "+254722000444", "priced in Africa's Talking's answer")
    run_jobs()
    clock.set_now(datetime(2026, 3, 2, 9, 5))
    with app.app_context():
        try:
            # Only the Twilio gateway's message is asked about (Twilio prices it once delivered).
            assert prices() == {"asked": 1, "priced": 0, "errors": 0}
        finally:
            db.session.remove()
    report = api.get("/api/v1/usage?from=2026-03-02&to=2026-03-02").get_json()
    by_name = {r["gateway_name"]: r for r in report["rows"] if r["direction"] == "outbound"}
    assert by_name["Twilio"]["gateway"] == "twilio" and by_name["Twilio"]["messages"] == 1
    assert by_name["Kenya"]["gateway"] == "africastalking" and by_name["Kenya"]["reported_currency"] == "KES"


def test_telerivet_infobip_and_twilio_webhooks_through_their_gateway_urls(app, project, fake, public_url):
    from tests.fakes.infobip_server import DEFAULT_API_KEY as INFOBIP_KEY
    from tests.fakes.telerivet_server import DEFAULT_API_KEY as TELERIVET_KEY
    from tests.fakes.telerivet_server import DEFAULT_PROJECT_ID, DEFAULT_WEBHOOK_SECRET
    from tests.fakes.telerivet_server import inbound_payload as telerivet_inbound
    from tests.fakes.twilio_server import signed_inbound_request

    api = project.api()
    telerivet = api.post(
        "/api/v1/gateways",
        json={
            "kind": "telerivet",
            "prefixes": ["+256"],
            "api_key": TELERIVET_KEY,
            "project_id": DEFAULT_PROJECT_ID,
            "webhook_secret": DEFAULT_WEBHOOK_SECRET,
        },
    ).get_json()
    infobip = api.post(
        "/api/v1/gateways",
        json={
            "kind": "infobip",
            "prefixes": ["+234"],
            "base_url": fake.url,
            "api_key": INFOBIP_KEY,
            "sender": "CLINIC",
        },
    ).get_json()
    twilio = api.post(
        "/api/v1/gateways",
        json={
            "kind": "twilio",
            "prefixes": ["+1"],
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN,
            "from_numbers": ["+15005550006"],
        },
    ).get_json()
    client = app.test_client()
    # Telerivet: its posted secret is its proof (no secret in the URL needed); a wrong one is refused.
    path = f"/gateways/telerivet/{telerivet['id']}/inbound"
    form = telerivet_inbound("+256772000001", "+256700000000", "Hello from Kampala")
    assert client.post(path, data=form).status_code == 200
    assert client.post(path, data={**form, "secret": "guess", "id": "SMother"}).status_code == 403
    # Infobip: unsigned JSON, so only with the URL's secret.
    infobip_path = _path(infobip["inbound_url"])
    mo = {
        "results": [
            {
                "messageId": "ib-in-1",
                "from": "2348031234567",
                "to": "CLINIC",
                "text": "Bawo",
                "receivedAt": "",
            }
        ],
        "messageCount": 1,
        "pendingMessageCount": 0,
    }
    assert client.post(infobip_path, json=mo).status_code == 200
    assert client.post(infobip_path.split("?")[0], json=mo).status_code == 403
    # Twilio through its own gateway URL: signed with the public URL.
    twilio_path = f"/gateways/twilio/{twilio['id']}/inbound"
    params, headers = signed_inbound_request(
        DEFAULT_AUTH_TOKEN,
        "http://localhost" + twilio_path,
        {"From": "+14155550100", "To": "+15005550006", "Body": "Hi", "AccountSid": DEFAULT_ACCOUNT_SID},
    )
    assert client.post(twilio_path, data=params, headers=headers).status_code == 200
    assert client.post(twilio_path, data=params, headers={"X-Twilio-Signature": "forged"}).status_code == 403
    stored = {r["gateway"]: r for r in rows(project, direction="inbound")}
    assert sorted(stored) == ["infobip", "telerivet", "twilio"]
    assert stored["infobip"]["phone"] == "+2348031234567" and stored["infobip"]["body"] == "Bawo"
    assert stored["telerivet"]["body"] == "Hello from Kampala"


def test_adding_a_default_gateway_keeps_the_others(project, three_gateways):
    api = project.api()
    added = api.post("/api/v1/gateways", json={"kind": "console", "name": "New default", "is_default": True})
    assert added.status_code == 201 and added.get_json()["is_default"] is True
    items = api.get("/api/v1/gateways").get_json()["results"]
    assert [g["name"] for g in items] == ["New default", "Twilio", "Kenya", "Tanzania"]
    assert [g["is_default"] for g in items] == [True, False, False, False]


def test_only_admins_see_the_webhook_urls_with_their_secret(app, project, three_gateways):
    from messaging.extensions import db
    from messaging.models import WebUser
    from tests.conftest import login

    admin_view = project.api().get("/api/v1/gateways").get_json()["results"]
    assert all(g["inbound_url"] and "secret=" in g["inbound_url"] for g in admin_view[1:])
    with project.scope():
        user = WebUser(email="viewer@alpha.example.org", role="viewer")
        user.set_password("long enough pw")
        db.session.add(user)
        db.session.commit()
    viewer = login(app, "viewer@alpha.example.org", "long enough pw")
    page = viewer.get("/settings/gateway").get_data(as_text=True)
    assert "Kenya" in page and "secret=" not in page


def test_a_report_applies_only_to_a_message_of_the_gateway_it_came_through(
    app, project, three_gateways, vonage, run_jobs
):
    # A Tanzanian message goes through Vonage; a forged report for its id on Africa's Talking's
    # URL (whose secret its sender knows) changes nothing.
    message_id = send(project, "+255712000900", "Habari")
    run_jobs()
    sid = rows(project, id=message_id)[0]["gateway_sid"]
    at_status = _path(three_gateways["africastalking"]["status_url"])
    report = delivery_report_payload(
        sid, "Failed", phone_number="+255712000900", failure_reason="UserInBlacklist"
    )
    assert app.test_client().post(at_status, data=report).status_code == 200
    [row] = rows(project, id=message_id)
    assert row["status"] == "sent"
    assert project.api().get("/api/v1/opt-outs?phone=%2B255712000900").get_json()["results"] == []


def test_a_long_provider_error_code_is_cut_to_fit(app, project, public_url, run_jobs):
    from tests.fakes.http_receiver import Receiver

    with Receiver.start() as rx:
        rx.answer_body = '{"id": "LONG-1"}'
        body = {
            "kind": "http",
            "method": "POST",
            "url_template": rx.url + "/send?to={to}",
            "id_path": "id",
            "failed_values": "EC_BLACKLISTED_DESTINATIONADDRESS_AND_MORE",
        }
        saved = project.api().put("/api/v1/gateway", json=body).get_json()
        message_id = send(project, "+254712000901", "x")
        run_jobs()
        status_url = _path(saved["status_url"])
        report = {"id": "LONG-1", "status": "EC_BLACKLISTED_DESTINATIONADDRESS_AND_MORE"}
        assert app.test_client().post(status_url, data=report).status_code == 200
    [row] = rows(project, id=message_id)
    assert row["status"] == "failed" and row["error_code"] == "ec_blacklisted_destinationaddress"[:32]


def test_adding_a_gateway_beside_the_unsaved_console_keeps_the_console_the_default(project, run_jobs):
    api = project.api()
    body = {"kind": "console", "name": "Tanzania test range", "prefixes": ["+255"]}
    assert api.post("/api/v1/gateways", json=body).status_code == 201
    items = api.get("/api/v1/gateways").get_json()["results"]
    assert [(g["name"], g["is_default"], g["prefixes"]) for g in items] == [
        ("Console", True, []),
        ("Tanzania test range", False, ["+255"]),
    ]
    kenyan = send(project, "+254712000950", "to the default")
    run_jobs()
    assert rows(project, id=kenyan)[0]["gateway_id"] == items[0]["id"]


def test_a_generic_gateway_whose_host_does_not_resolve_now_is_retried(app, project, public_url, run_jobs):
    from messaging.extensions import db
    from messaging.models import GatewayConfig

    with project.scope():
        db.session.add(
            GatewayConfig(
                project_id=project.id,
                kind="http",
                name="Aggregator",
                is_default=True,
                prefixes=[],
                settings={
                    "method": "POST",
                    "url_template": "http://no-such-host.invalid/send",
                    "id_path": "id",
                },
                allowed_ips=[],
                from_numbers=[],
                mps=10,
                webhook_secret="s",
            )
        )
        db.session.commit()
    message_id = send(project, "+254712000951", "x")
    run_jobs()
    [row] = rows(project, id=message_id)
    assert row["status"] == "queued" and row["error_code"] == "host_not_found" and row["next_attempt_at"]


def test_the_sweep_fails_a_message_whose_noted_id_another_message_has(app, project, three_gateways, run_jobs):
    from datetime import timedelta

    from sqlalchemy import update

    from messaging.extensions import db
    from messaging.gateways.base import SendResult
    from messaging.gateways.journal import Journal
    from messaging.lib import clock
    from messaging.models import Message
    from messaging.sms.sweep import resolve_uncertain

    first = send(project, "+254722000320", "sent")
    run_jobs()
    taken = rows(project, id=first)[0]["gateway_sid"]
    stuck = send(project, "+254722000321", "stuck")
    with project.scope():
        stale = clock.now() - timedelta(minutes=10)
        db.session.execute(
            update(Message).where(Message.id == stuck).values(status="sending", claimed_at=stale, attempts=1)
        )
        db.session.commit()
        notes = Journal(project.id)
        notes.answered(stuck, 1, SendResult(sid=taken, status="Success"))
        notes.flush()
        resolve_uncertain(project.id, [stuck])
    [row] = rows(project, id=stuck)
    assert (
        row["status"] == "failed"
        and row["error_code"] == "unexpected_answer"
        and taken in row["error_message"]
    )
    assert rows(project, id=first)[0]["status"] == "sent"
