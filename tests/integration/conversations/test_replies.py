"""A case manager's reply (issue 21 "Reply from the web"): through the send pipeline to the fake
Twilio, in the message log with its author; opt-outs refuse it unless a confirmed exception is
recorded in the consent ledger; bad input is 400, another project's case 404; quiet hours never
hold it. Also the case's thread read on from a message id (``GET .../messages?after=``)."""

from datetime import datetime

from sqlalchemy import select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import ConsentEvent, WebUser
from tests.conftest import ApiClient
from tests.factories import make_case, make_contact, rows, send
from tests.integration.inbound.inbound_helpers import text_in

PHONE = "+254712000301"


def admin_id(project) -> int:
    with project.scope():
        return db.session.execute(select(WebUser.id).where(WebUser.email == project.admin_email)).scalar_one()


def opt_out_number(project, phone):
    from messaging.sms.optouts import opt_out

    with project.scope():
        opt_out(project.id, phone, "keyword")
        db.session.commit()


def reply(api, case_id, **body):
    return api.post(f"/api/v1/cases/{case_id}/messages", json=body)


def test_a_reply_goes_through_the_send_pipeline_into_the_message_log(app, twilio_project, fake, run_jobs):
    case_pk, case_id = make_contact(twilio_project, PHONE, name="Amina")
    api = twilio_project.api()
    response = reply(api, case_id, text="  We moved your visit to Tuesday.\r\nReply OK.  ")
    assert response.status_code == 201, response.get_json()
    message = response.get_json()
    assert message["direction"] == "outbound" and message["case_id"] == case_id and message["phone"] == PHONE
    assert message["body"] == "We moved your visit to Tuesday.\nReply OK."  # trimmed, "\n" line breaks
    assert message["status"] == "queued" and message["due_at"] is None
    [row] = rows(twilio_project)
    assert row["author_id"] == admin_id(twilio_project) and row["case_id"] == case_pk
    assert row["auto_reply"] is False and row["bypass_opt_out"] is False
    assert run_jobs() == 1
    [sent] = fake.messages
    assert sent["to"] == PHONE and sent["body"] == "We moved your visit to Tuesday.\nReply OK."
    log = api.get(f"/api/v1/messages?case_id={case_id}").get_json()["results"]
    assert [(m["id"], m["status"]) for m in log] == [(message["id"], "sent")]


def test_quiet_hours_hold_a_broadcast_but_never_a_reply(app, twilio_project, fake, run_jobs):
    clock.set_now(datetime(2026, 3, 2, 0, 30))  # 03:30 in Nairobi: outside 08:00-20:00
    case_id = make_case(twilio_project, name="Night", phone=PHONE)
    api = twilio_project.api()
    broadcast = api.post(
        "/api/v1/broadcasts",
        json={
            "name": "Reminder",
            "recipients": {"cases": [case_id]},
            "text": "Clinic tomorrow",
            "quiet_hours": {"start": "08:00", "end": "20:00"},
        },
    )
    assert broadcast.status_code == 201, broadcast.get_json()
    assert reply(api, case_id, text="Yes, come at 9").status_code == 201
    run_jobs()
    by_body = {r["body"]: r for r in rows(twilio_project)}
    assert by_body["Clinic tomorrow"]["status"] == "queued"
    assert by_body["Clinic tomorrow"]["due_at"] == datetime(2026, 3, 2, 5, 0)  # 08:00 in Nairobi
    assert by_body["Yes, come at 9"]["status"] == "sent" and by_body["Yes, come at 9"]["due_at"] is None
    assert [m["body"] for m in fake.messages] == ["Yes, come at 9"]


def test_a_reply_to_an_opted_out_number_needs_a_confirmed_exception(app, twilio_project, fake, run_jobs):
    from messaging.sms.optouts import is_opted_out

    _, case_id = make_contact(twilio_project, PHONE)
    opt_out_number(twilio_project, PHONE)
    api = twilio_project.api()
    for body in ({"text": "Are you well?"}, {"text": "Are you well?", "confirm_opted_out": False}):
        refused = reply(api, case_id, **body)
        assert refused.status_code == 422
        error = refused.get_json()["error"]
        assert error["code"] == "opted_out" and error["details"]["field"] == "confirm_opted_out"
        assert error["details"]["source"] == "keyword" and "opted out on" in error["message"]
    assert rows(twilio_project) == []  # nothing written, nothing sent

    confirmed = reply(api, case_id, text="Are you well?", confirm_opted_out=True)
    assert confirmed.status_code == 201, confirmed.get_json()
    message_id = confirmed.get_json()["id"]
    run_jobs()
    assert [(m["to"], m["body"]) for m in fake.messages] == [(PHONE, "Are you well?")]
    [row] = rows(twilio_project)
    assert row["bypass_opt_out"] is True and row["status"] == "sent"
    with twilio_project.scope():
        assert is_opted_out(twilio_project.id, PHONE)  # a one-off: the opt-out stays
        exceptions = db.session.execute(
            select(ConsentEvent).where(ConsentEvent.change == "exception")
        ).scalars()
        assert [(e.phone, e.method, e.message_id, e.web_user_id) for e in exceptions] == [
            (PHONE, "staff", message_id, admin_id(twilio_project))
        ]
    # The next reply is refused again.
    assert reply(api, case_id, text="And now?").status_code == 422


def test_empty_oversize_or_malformed_text_is_400_and_writes_nothing(app, project, api):
    _, case_id = make_contact(project, PHONE)
    for body, field in [
        ({"text": ""}, "text"),
        ({"text": " \r\n\t "}, "text"),
        ({}, "text"),
        ({"text": "x" * 1601}, "text"),
        ({"text": "😀" * 1601}, "text"),
        ({"text": 42}, "text"),
        ({"text": "hi", "confirm_opted_out": "yes"}, "confirm_opted_out"),
    ]:
        response = reply(api, case_id, **body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["details"]["field"] == field, body
    assert rows(project) == []
    assert reply(api, case_id, text="x" * 1600).status_code == 201  # the limit itself is allowed
    assert reply(api, case_id, text=" " + "😀" * 1600 + "\n").status_code == 201


def test_another_projects_unknown_or_deleted_case_is_404_and_no_phone_is_422(
    app, project, other_project, api
):
    _, theirs = make_contact(other_project, PHONE)
    deleted = make_case(project, name="Gone", phone="+254712000302", deleted=True)
    for case_id in (theirs, "no-such-case", deleted):
        response = reply(api, case_id, text="Hello")
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
        assert api.get(f"/api/v1/cases/{case_id}/messages").status_code == 404
    no_phone = make_case(project, name="No phone")
    response = reply(api, no_phone, text="Hello")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "no_phone_number"
    assert rows(project) == [] and rows(other_project) == []


def test_a_viewer_token_cannot_reply(app, project):
    from messaging.accounts.api_tokens import issue

    _, case_id = make_contact(project, PHONE)
    with project.scope():
        viewer = WebUser(project_id=project.id, email="viewer@alpha.example.org", role="viewer")
        viewer.set_password("viewer password")
        db.session.add(viewer)
        db.session.flush()
        _, key = issue(viewer, "viewer")
        db.session.commit()
    client = ApiClient(app.test_client(), key)
    assert reply(client, case_id, text="Hello").status_code == 403
    assert client.get(f"/api/v1/cases/{case_id}/messages").status_code == 200  # reading is allowed
    assert rows(project) == []


def test_the_thread_reads_on_after_a_message_id_oldest_first_both_directions(app, project, api):
    case_pk, case_id = make_contact(project, PHONE)
    first = send(project, PHONE, "Reminder: visit on Monday", case_id=case_pk)
    inbound_id, _ = text_in(project, PHONE, "I can't come Monday")
    send(project, "+254712000399", "someone else's message")
    written = reply(api, case_id, text="Tuesday then?").get_json()["id"]
    uncased = send(project, PHONE, "sent to the number without a case")  # the phone's messages are in it

    everything = api.get(f"/api/v1/cases/{case_id}/messages").get_json()
    assert [(m["id"], m["direction"]) for m in everything["results"]] == [
        (first, "outbound"),
        (inbound_id, "inbound"),
        (written, "outbound"),
        (uncased, "outbound"),
    ]
    assert everything["next"] is None
    assert {m["status"] for m in everything["results"]} == {"queued", "received"}

    newer = api.get(f"/api/v1/cases/{case_id}/messages?after={inbound_id}").get_json()
    assert [m["id"] for m in newer["results"]] == [written, uncased]
    assert api.get(f"/api/v1/cases/{case_id}/messages?after={uncased}").get_json()["results"] == []

    page = api.get(f"/api/v1/cases/{case_id}/messages?limit=3").get_json()
    assert [m["id"] for m in page["results"]] == [first, inbound_id, written]
    rest = api.get(page["next"]).get_json()
    assert [m["id"] for m in rest["results"]] == [uncased] and rest["next"] is None

    for bad in ("-1", "x", "\u0663", "9" * 30):
        response = api.get(f"/api/v1/cases/{case_id}/messages", query_string={"after": bad})
        assert response.status_code == 400 and response.get_json()["error"]["details"]["field"] == "after"
