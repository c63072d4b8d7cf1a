"""Status callbacks at /twilio/status: signed by the fake Twilio over real HTTP, forward only."""

from tests.factories import rows, send
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, signed_inbound_request


def _sent_message(app, project, fake, run_jobs, live_server, phone="+254712000101"):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    send(project, phone, "status please")
    run_jobs()
    [row] = rows(project, phone=phone)
    assert row["status"] == "sent"
    msg = fake.message(row["gateway_sid"])
    assert msg["status_callback"] == f"{live_server.url}/twilio/status"
    return row


def test_callbacks_move_forward_only(app, twilio_project, fake, run_jobs, live_server):
    row = _sent_message(app, twilio_project, fake, run_jobs, live_server)
    sid = row["gateway_sid"]
    assert fake.send_status_callback(sid, "sent") == 204
    assert rows(twilio_project)[0]["status"] == "sent"
    assert fake.send_status_callback(sid, "delivered") == 204
    after = rows(twilio_project)[0]
    assert after["status"] == "delivered" and after["delivered_at"] is not None
    # A late "sent" (callbacks arrive out of order) never overwrites "delivered".
    assert fake.send_status_callback(sid, "sent") == 204
    assert fake.send_status_callback(sid, "queued") == 204
    assert rows(twilio_project)[0]["status"] == "delivered"


def test_out_of_order_undelivered_keeps_the_error_code(app, twilio_project, fake, run_jobs, live_server):
    row = _sent_message(app, twilio_project, fake, run_jobs, live_server)
    assert fake.send_status_callback(row["gateway_sid"], "undelivered", 30003) == 204
    assert fake.send_status_callback(row["gateway_sid"], "sent") == 204
    after = rows(twilio_project)[0]
    assert after["status"] == "undelivered" and after["error_code"] == "30003"


def test_failed_21610_callback_records_an_opt_out(app, twilio_project, fake, run_jobs, live_server):
    from messaging.sms.optouts import is_opted_out

    row = _sent_message(app, twilio_project, fake, run_jobs, live_server)
    assert fake.send_status_callback(row["gateway_sid"], "failed", 21610) == 204
    with twilio_project.scope():
        assert is_opted_out(twilio_project.id, row["phone"])


def test_automatic_callbacks_settle_every_message(app, twilio_project, fake, run_jobs, live_server):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    fake.configure(auto_callbacks=True, undeliverable_numbers={"+254712000199": 30005})
    for i in range(20):
        send(twilio_project, f"+2547120001{i + 80:02d}", f"auto {i}")
    run_jobs()
    assert fake.wait_for_callbacks(20)
    statuses = {r["phone"]: r["status"] for r in rows(twilio_project)}
    assert statuses.pop("+254712000199") == "undelivered"
    assert set(statuses.values()) == {"delivered"}


def test_forged_or_missing_signature_is_403_and_changes_nothing(
    app, twilio_project, fake, run_jobs, live_server
):
    row = _sent_message(app, twilio_project, fake, run_jobs, live_server)
    url = f"{live_server.url}/twilio/status"
    params = {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "MessageSid": row["gateway_sid"],
        "MessageStatus": "delivered",
    }
    client = app.test_client()
    forged, headers = signed_inbound_request("not-the-token", url, params, fill_defaults=False)
    assert client.post("/twilio/status", data=forged, headers=headers).status_code == 403
    assert client.post("/twilio/status", data=params).status_code == 403
    # A valid signature over other parameters than the ones sent.
    good, headers = signed_inbound_request(DEFAULT_AUTH_TOKEN, url, params, fill_defaults=False)
    tampered = dict(good, MessageStatus="failed")
    assert client.post("/twilio/status", data=tampered, headers=headers).status_code == 403
    unknown_account = dict(params, AccountSid="AC" + "9" * 32)
    signed, headers = signed_inbound_request(DEFAULT_AUTH_TOKEN, url, unknown_account, fill_defaults=False)
    assert client.post("/twilio/status", data=signed, headers=headers).status_code == 403
    assert rows(twilio_project)[0]["status"] == "sent"
    # And the genuine one passes (PUBLIC_BASE_URL is the signed URL, not the test client's).
    response = client.post("/twilio/status", data=good, headers=headers_for(url, good))
    assert response.status_code == 204
    assert rows(twilio_project)[0]["status"] == "delivered"


def headers_for(url, params):
    return signed_inbound_request(DEFAULT_AUTH_TOKEN, url, params, fill_defaults=False)[1]


def test_unknown_sid_is_ignored_and_applied_if_its_message_turns_up(
    app, twilio_project, fake, run_jobs, live_server
):
    from messaging.extensions import db
    from messaging.lib import clock
    from messaging.sms.claims import claim
    from messaging.sms.outcomes import record_outcomes
    from messaging.sms.send_job import BatchStats

    app.config["PUBLIC_BASE_URL"] = live_server.url
    url = f"{live_server.url}/twilio/status"
    params = {"AccountSid": DEFAULT_ACCOUNT_SID, "MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered"}
    response = app.test_client().post("/twilio/status", data=params, headers=headers_for(url, params))
    assert response.status_code == 204
    assert rows(twilio_project) == []
    # The callback beat the worker's commit of that sid: applied when the sid is recorded.
    message_id = send(twilio_project, "+254712000102", "race")
    gateway_id = twilio_project.api().get("/api/v1/gateway").get_json()["id"]
    with twilio_project.scope():
        claimed = claim(twilio_project.id, [message_id], clock.now())
        from messaging.gateways.base import SendResult

        record_outcomes(
            twilio_project.id,
            [
                (
                    "sent",
                    claimed[0],
                    SendResult("SM" + "a" * 32, "queued", "+15005550006", gateway_id=gateway_id),
                    None,
                )
            ],
            BatchStats(),
        )
        db.session.commit()
    assert rows(twilio_project)[0]["status"] == "delivered"


def test_public_base_url_is_what_gets_validated(app, twilio_project, fake, run_jobs, live_server):
    row = _sent_message(app, twilio_project, fake, run_jobs, live_server)
    app.config["PUBLIC_BASE_URL"] = "https://sms.example.org"
    params = {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "MessageSid": row["gateway_sid"],
        "MessageStatus": "delivered",
    }
    client = app.test_client()
    wrong = headers_for("http://localhost/twilio/status", params)
    assert client.post("/twilio/status", data=params, headers=wrong).status_code == 403
    right = headers_for("https://sms.example.org/twilio/status", params)
    assert client.post("/twilio/status", data=params, headers=right).status_code == 204
    assert rows(twilio_project)[0]["status"] == "delivered"
