"""Message event webhooks: locations of kind ``events`` get message.inbound, message.status and
survey.completed through the forwarding outbox, ordered per number, retried like any record."""

import pytest

from messaging.lib import clock
from tests.factories import make_contact, make_keyword, make_survey, send
from tests.fakes.http_receiver import Receiver
from tests.integration.inbound.inbound_helpers import say, text_in

PHONE = "+254712000031"


@pytest.fixture
def rx():
    with Receiver.start() as receiver:
        yield receiver


def add_webhook(project, url, events, **body):
    response = project.api().post("/api/v1/webhooks", json={"url": url, "events": events, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def received(rx, event=None):
    return [r["json"] for r in rx.requests if event is None or r["json"]["event"] == event]


def test_a_webhook_names_known_events_and_only_webhooks_take_events(project, rx):
    api = project.api()
    hook = add_webhook(project, rx.url + "/hook", ["message.inbound", "message.inbound", "survey.completed"])
    assert hook["kind"] == "events" and hook["events"] == ["message.inbound", "survey.completed"]
    for events in ([], None, ["message.sent"], "message.inbound"):
        answer = api.post("/api/v1/webhooks", json={"url": rx.url, "events": events})
        assert answer.status_code == 400 and answer.get_json()["error"]["details"]["field"] == "events"
    answer = api.post(
        "/api/v1/forwarding", json={"url": rx.url, "kind": "forms", "events": ["message.status"]}
    )
    assert answer.status_code == 400 and answer.get_json()["error"]["details"]["field"] == "events"
    listed = api.get("/api/v1/webhooks").get_json()["results"]
    assert [h["id"] for h in listed] == [hook["id"]]
    changed = api.patch(f"/api/v1/forwarding/{hook['id']}", json={"events": ["message.status"]})
    assert changed.status_code == 200 and changed.get_json()["events"] == ["message.status"]


def test_inbound_messages_are_posted_in_order_with_an_event_id_and_their_data(project, rx, run_jobs):
    add_webhook(project, rx.url + "/hook", ["message.inbound"])
    first, _ = text_in(project, PHONE, "hello")
    second, _ = text_in(project, PHONE, "are you there?")
    text_in(project, PHONE, "hello", sid="SM-same")
    text_in(project, PHONE, "hello", sid="SM-same")  # a gateway retry: stored once, one event
    run_jobs()
    events = received(rx, "message.inbound")
    assert [e["data"]["body"] for e in events] == ["hello", "are you there?", "hello"]
    assert [e["data"]["message_id"] for e in events[:2]] == [first, second]
    assert {e["data"]["phone"] for e in events} == {PHONE}
    assert len({e["id"] for e in events}) == 3 and all(e["occurred_at"].endswith("Z") for e in events)


def test_status_changes_are_posted_sent_then_delivered(app, twilio_project, fake, rx, run_jobs):
    from messaging.extensions import db
    from messaging.gateways.base import StatusReport
    from messaging.sms.status import handle_status_callback

    add_webhook(twilio_project, rx.url + "/hook", ["message.status"])
    fake.fail_numbers = {"+254712000033": 21211}
    ok = send(twilio_project, PHONE, "reminder")
    bad = send(twilio_project, "+254712000033", "reminder")
    run_jobs()
    statuses = {e["data"]["message_id"]: e["data"] for e in received(rx, "message.status")}
    assert statuses[ok]["status"] == "sent" and statuses[ok]["gateway_sid"].startswith("SM")
    assert statuses[bad]["status"] == "failed" and statuses[bad]["error_code"] == "21211"

    with twilio_project.scope():
        assert (
            handle_status_callback(twilio_project.id, StatusReport(statuses[ok]["gateway_sid"], "delivered"))
            == "applied"
        )
        db.session.commit()
        # A late "sent" moves nothing back: no event.
        assert (
            handle_status_callback(twilio_project.id, StatusReport(statuses[ok]["gateway_sid"], "sent"))
            == "unchanged"
        )
        db.session.commit()
    run_jobs()
    mine = [e["data"]["status"] for e in received(rx, "message.status") if e["data"]["message_id"] == ok]
    assert mine == ["sent", "delivered"]


def test_a_completed_survey_is_posted_with_its_answers_and_case(project, rx, run_jobs):
    add_webhook(project, rx.url + "/hook", ["survey.completed"])
    _pk, case_id = make_contact(project, PHONE)
    make_keyword(project, keyword="HEALTH", survey_id=make_survey(project))
    for answer in ("health", "34", "1", "1 2", "skip", "1/3/2026"):
        say(project, run_jobs, PHONE, answer)
    assert received(rx, "survey.completed") == []  # not finished yet
    say(project, run_jobs, PHONE, "No, thanks")
    [event] = received(rx, "survey.completed")
    data = event["data"]
    assert data["status"] == "completed" and data["case_id"] == case_id and data["phone"] == PHONE
    assert data["answers"]["age"] == 34 and data["form_id"]


def test_a_webhook_gets_only_its_events_and_only_its_projects(project, other_project, rx, run_jobs):
    add_webhook(project, rx.url + "/mine", ["survey.completed"])
    add_webhook(other_project, rx.url + "/theirs", ["message.inbound"])
    text_in(project, PHONE, "hello")
    text_in(other_project, PHONE, "jambo")
    run_jobs()
    assert [(r["path"], r["json"]["data"]["body"]) for r in rx.requests] == [("/theirs", "jambo")]


def test_a_failing_receiver_gets_the_event_again_later(project, rx, run_jobs):
    from messaging.forwarding.sweep import sweep

    rx.script = [500]
    add_webhook(project, rx.url + "/hook", ["message.inbound"])
    text_in(project, PHONE, "hello")
    run_jobs()
    clock.advance(seconds=61)
    with project.scope():
        sweep()
    run_jobs()
    first, again = received(rx)
    assert first["id"] == again["id"] and again["data"]["body"] == "hello"


def test_a_webhook_is_added_from_the_forwarding_page_with_its_events(project, web):
    page = web.get("/settings/forwarding").get_data(as_text=True)
    assert 'value="events"' in page and 'value="message.status"' in page
    answer = web.post(
        "/settings/forwarding",
        {
            "url": "https://hooks.example.org/sms",
            "kind": "events",
            "events": ["message.status", "opt_out.changed"],
        },
        follow_redirects=True,
    )
    assert answer.status_code == 200
    [hook] = project.api().get("/api/v1/webhooks").get_json()["results"]
    assert hook["url"] == "https://hooks.example.org/sms"
    assert hook["events"] == ["message.status", "opt_out.changed"]
    refused = web.post(
        "/settings/forwarding",
        {"url": "https://hooks.example.org/x", "kind": "events"},
        follow_redirects=True,
    )
    assert "events" in refused.get_data(as_text=True)
    assert len(project.api().get("/api/v1/webhooks").get_json()["results"]) == 1


def test_opt_out_changes_are_posted_but_repeats_are_not(project, rx, run_jobs):
    add_webhook(project, rx.url + "/hook", ["opt_out.changed"])
    say(project, run_jobs, PHONE, "STOP")
    say(project, run_jobs, PHONE, "STOP")  # a repeat: in the ledger, not a change
    assert project.api().delete(f"/api/v1/opt-outs/{PHONE}", json={"reason": "called in"}).status_code in (
        200,
        204,
    )
    run_jobs()
    events = [e["data"] for e in received(rx, "opt_out.changed")]
    assert [(e["change"], e["method"]) for e in events] == [("opt_out", "keyword"), ("opt_in", "api")]
    assert events[0]["word"] == "STOP" and events[0]["message_id"] and events[1]["reason"] == "called in"
