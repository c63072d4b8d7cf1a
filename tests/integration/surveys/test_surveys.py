"""SMS surveys end to end: answers, invalid answers, reminders and expiry on the clock, the form."""

from datetime import datetime

import pytest

from messaging.lib import clock
from tests.factories import make_contact, make_keyword, make_survey
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, signed_inbound_request
from tests.integration.inbound.inbound_helpers import TO, case_props, inbound_rows, replies, say, sessions_of

PHONE = "+254712000002"


_APP = []


@pytest.fixture(autouse=True)
def _frozen(app):
    _APP[:] = [app]
    clock.set_now(datetime(2026, 3, 2, 9, 0, 0))


def tick(run_jobs):
    from flask import current_app  # noqa: F401

    from tests.conftest import ROOT  # noqa: F401
    from workers.jobs.surveys import tick as job

    with _APP[0].app_context():
        stats = job()
    run_jobs()
    return stats


def test_full_survey_with_invalid_answers_reminders_and_form(app, project, run_jobs, web):
    case_pk, case_id = make_contact(project, PHONE, age="old value")
    survey_id = make_survey(project)
    make_keyword(project, keyword="HEALTH", survey_id=survey_id)
    assert say(project, run_jobs, PHONE, "health") == ["How old are you?"]
    assert say(project, run_jobs, PHONE, "two hundred") == [
        "Please reply with a whole number between 0 and 120.\nHow old are you?"
    ]
    # A reminder 30 minutes after the last activity resends the current question.
    clock.advance(minutes=29)
    assert tick(run_jobs) == {}
    clock.advance(minutes=2)
    assert tick(run_jobs) == {"reminded": 1}
    assert replies(project, PHONE)[-1] == "Reminder: How old are you?"
    assert say(project, run_jobs, PHONE, "34") == ["Any fever?\n1. Yes\n2. No"]
    assert say(project, run_jobs, PHONE, "2") == [
        "Symptoms?\n1. cough\n2. rash\n3. pain\nSend all that apply, e.g. 1 3"
    ]
    assert say(project, run_jobs, PHONE, "1 3") == ["Temperature?\nReply SKIP to skip"]
    assert say(project, run_jobs, PHONE, "skip") == ["Date seen? (DD/MM/YYYY)"]
    assert say(project, run_jobs, PHONE, "1/3/2026") == ["Anything else?"]
    assert say(project, run_jobs, PHONE, "No, thanks") == ["Thank you, your answers have been received."]
    [session] = sessions_of(project)
    assert session["status"] == "completed" and session["reminders_sent"] == 1
    assert session["answers"] == {
        "age": 34,
        "fever": "No",
        "symptoms": ["cough", "pain"],
        "temp": None,
        "seen": "2026-03-01",
        "note": "No, thanks",
    }
    # The form went through apply_form: case properties updated under the usual rules.
    props = case_props(project, case_pk)
    assert props == {
        "age": "34" if isinstance(props["age"], str) else 34,
        "fever": "No",
        "symptoms": "cough pain",
        "seen_on": "2026-03-01",
    }
    from messaging.extensions import db
    from messaging.models import Form

    with project.scope():
        form = db.session.get(Form, 1) or db.session.query(Form).one()
        assert (
            form.form_id == session["form_id"] and form.source == "sms_survey" and form.case_ids == [case_id]
        )
        # CommCare's identity of the form: one xmlns per survey, named as the survey.
        assert (form.xmlns, form.name) == (f"urn:messaging:survey:{survey_id}", "Health check")
    # The results page and the export show the response.
    page = web.get(f"/surveys/{survey_id}").get_data(as_text=True)
    assert "cough pain" in page and "completed" in page
    export = web.get(f"/surveys/{survey_id}/export.xlsx")
    assert export.status_code == 200
    import io

    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(export.data)).active
    rows = list(sheet.values)
    assert rows[0][:5] == ("session_id", "phone", "case_id", "case_name", "status")
    assert rows[1][1] == PHONE and str(rows[1][8]) == "34"
    # The API lists it too.
    body = project.api().get(f"/api/v1/surveys/{survey_id}/responses").get_json()
    assert body["results"][0]["answers"]["fever"] == "No" and body["results"][0]["case_id"] == case_id


def test_too_many_invalid_answers_end_the_session(project, run_jobs):
    make_contact(project, PHONE)
    make_keyword(project, keyword="HEALTH", survey_id=make_survey(project))  # 2 invalid answers allowed
    say(project, run_jobs, PHONE, "health")
    say(project, run_jobs, PHONE, "x")
    say(project, run_jobs, PHONE, "y")
    assert say(project, run_jobs, PHONE, "z") == [
        "Sorry, that was not a valid answer too many times. The survey has ended."
    ]
    assert sessions_of(project)[0]["status"] == "failed"
    assert say(project, run_jobs, PHONE, "34") == []  # no session any more: the inbox


@pytest.mark.parametrize("save_partial", [False, True])
def test_expiry_driven_by_the_clock_optionally_saves_partial_answers(project, run_jobs, save_partial):
    case_pk, _ = make_contact(project, PHONE)
    survey_id = make_survey(project, save_partial_on_expiry=save_partial, reminder_minutes=None)
    make_keyword(project, keyword="HEALTH", survey_id=survey_id)
    say(project, run_jobs, PHONE, "health")
    say(project, run_jobs, PHONE, "40")
    clock.advance(minutes=119)
    assert tick(run_jobs) == {}
    clock.advance(minutes=2)
    assert tick(run_jobs) == {"expired": 1}
    [session] = sessions_of(project)
    assert session["status"] == "expired" and session["answers"] == {"age": 40}
    assert case_props(project, case_pk) == ({"age": 40} if save_partial else {})
    assert (session["form_id"] is not None) == save_partial
    # A late reply is not an answer.
    assert say(project, run_jobs, PHONE, "Yes") == [
        "You are now subscribed to Alpha messages. Reply STOP to unsubscribe."
    ]


def test_a_new_session_closes_the_old_one(project, run_jobs):
    from messaging.extensions import db
    from messaging.surveys import starting

    case_pk, _ = make_contact(project, PHONE)
    first = make_survey(project)
    second = make_survey(project, name="Second", questions=[{"id": "q", "type": "text", "text": "Second?"}])
    with project.scope():
        starting.start_session(project.id, first, PHONE, case_pk, source="api")
        db.session.commit()
        starting.start_session(project.id, second, PHONE, case_pk, source="api")
        db.session.commit()
    run_jobs()
    statuses = [(s["survey_id"], s["status"], s["end_reason"]) for s in sessions_of(project)]
    assert statuses == [(first, "cancelled", "replaced"), (second, "open", None)]
    assert replies(project, PHONE) == ["How old are you?", "Second?"]


def test_start_survey_for_recipients_in_bulk(project, run_jobs):
    from messaging.extensions import db
    from messaging.sms import optouts
    from messaging.surveys import starting

    pks = [make_contact(project, f"+2547120001{i:02d}")[0] for i in range(5)]
    survey_id = make_survey(project)
    with project.scope():
        starting.start_session(project.id, survey_id, "+254712000100", pks[0], source="api")
        optouts.opt_out(project.id, "+254712000104", "api")
        db.session.commit()
        recipients = [{"case_pk": pk, "phone": f"+2547120001{i:02d}"} for i, pk in enumerate(pks)]
        recipients += [{"case_pk": pks[1], "phone": "+254712000101"}, {"case_pk": None, "phone": "12"}]
        counts = starting.start_survey_for_recipients(project.id, survey_id, recipients, broadcast_id="b1")
    assert counts["started"] == 4 and counts["replaced"] == 1
    assert counts["skipped"] == {"duplicate_phone": 1, "invalid_number": 1, "opted_out": 1}
    assert len(counts["message_ids"]) == 4
    run_jobs()
    opened = [s for s in sessions_of(project) if s["status"] == "open"]
    assert len(opened) == 4 and all(s["broadcast_id"] == "b1" and s["source"] == "broadcast" for s in opened)
    assert replies(project, "+254712000103") == ["How old are you?"]
    # The replies then go to these sessions.
    assert say(project, run_jobs, "+254712000103", "50") == ["Any fever?\n1. Yes\n2. No"]


def test_webhook_signed_stored_once_per_sid_and_answers_empty_twiml(app, twilio_project, fake, run_jobs):
    url = "http://localhost/twilio/inbound"
    make_contact(twilio_project, PHONE)
    params = {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "From": PHONE,
        "To": TO,
        "Body": "hello",
        "MessageSid": "SM" + "a" * 32,
    }
    signed, headers = signed_inbound_request(DEFAULT_AUTH_TOKEN, url, params)
    client = app.test_client()
    for _ in range(3):  # Twilio retries
        response = client.post("/twilio/inbound", data=signed, headers=headers)
        assert response.status_code == 200
        assert response.mimetype == "text/xml" and b"<Response/>" in response.data
    assert len(inbound_rows(twilio_project)) == 1
    from messaging.jobs import queue

    with app.app_context():
        assert queue("high").count == 1  # enqueued once
    run_jobs()
    assert inbound_rows(twilio_project)[0]["outcome"] == "unhandled"
    # A bad or missing signature: 403 and nothing stored.
    forged, bad_headers = signed_inbound_request(
        "wrong-token", url, {**params, "MessageSid": "SM" + "b" * 32}
    )
    assert client.post("/twilio/inbound", data=forged, headers=bad_headers).status_code == 403
    assert client.post("/twilio/inbound", data={**params, "MessageSid": "SM" + "c" * 32}).status_code == 403
    # Signed, but for a number no project owns.
    other, other_headers = signed_inbound_request(
        DEFAULT_AUTH_TOKEN, url, {**params, "To": "+15550001111", "MessageSid": "SM" + "d" * 32}
    )
    assert client.post("/twilio/inbound", data=other, headers=other_headers).status_code == 403
    assert len(inbound_rows(twilio_project)) == 1


def test_duplicate_sid_racing_in_threads_is_stored_once(app, project):
    import threading

    from messaging.inbound.receive import receive_inbound

    results = []

    def post():
        with project.scope():
            results.append(receive_inbound(project.id, PHONE, TO, "race", "SMrace"))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r[0] for r in results}) == 1 and sum(r[1] for r in results) == 1
    assert len(inbound_rows(project)) == 1


def test_survey_and_keyword_api_validation(project):
    api = project.api()
    bad = api.post(
        "/api/v1/surveys",
        json={"name": "X", "questions": [{"id": "a", "type": "select", "text": "Q", "choices": ["one"]}]},
    )
    assert bad.status_code == 400 and "questions[0]" in bad.get_json()["error"]["message"]
    assert api.post("/api/v1/surveys", json={"name": "X", "questions": []}).status_code == 400
    assert (
        api.post(
            "/api/v1/surveys",
            json={
                "name": "X",
                "questions": [{"id": "a", "type": "text", "text": "Q"}],
                "expire_after_minutes": 0,
            },
        ).status_code
        == 400
    )
    survey_id = make_survey(project)
    assert api.get(f"/api/v1/surveys/{survey_id}").get_json()["max_invalid_attempts"] == 2
    assert len(api.get("/api/v1/surveys").get_json()["results"]) == 1
    assert api.post("/api/v1/keywords", json={"keyword": "STOP", "reply_text": "x"}).status_code == 400
    assert api.post("/api/v1/keywords", json={"keyword": "two words", "reply_text": "x"}).status_code == 400
    assert api.post("/api/v1/keywords", json={"keyword": "JOIN"}).status_code == 400
    assert api.post("/api/v1/keywords", json={"keyword": "JOIN", "survey_id": "nope"}).status_code == 400
    keyword_id = make_keyword(project, keyword="join", survey_id=survey_id)
    assert api.post("/api/v1/keywords", json={"keyword": "Join", "reply_text": "x"}).status_code == 409
    assert api.get(f"/api/v1/keywords/{keyword_id}").get_json()["keyword"] == "JOIN"
    assert api.delete(f"/api/v1/keywords/{keyword_id}").status_code == 204
    assert api.get("/api/v1/keywords").get_json()["results"] == []


def test_survey_editor_creates_and_edits_with_questions(project, web):
    response = web.post(
        "/surveys/new",
        {
            "name": "Web survey",
            "expire_after_hours": "2",
            "reminder_minutes": "15",
            "max_invalid_attempts": "1",
            "q-0-id": "color",
            "q-0-type": "select",
            "q-0-text": "Favourite colour?",
            "q-0-choices": "Red\nBlue",
            "q-0-required": "on",
            "q-0-case_property": "colour",
            "q-1-id": "",
            "q-1-type": "integer",
            "q-1-text": "Count?",
            "q-1-min": "1",
            "q-1-max": "9",
            "q-2-type": "text",
            "q-2-text": "",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    survey_id = response.headers["Location"].rstrip("/").split("/")[-1]
    survey = project.api().get(f"/api/v1/surveys/{survey_id}").get_json()
    assert survey["expire_after_minutes"] == 120 and survey["reminder_minutes"] == 15
    assert [q["id"] for q in survey["questions"]] == ["color", "q2"]
    assert survey["questions"][1]["required"] is False and survey["questions"][1]["max"] == 9
    bad = web.post(
        f"/surveys/{survey_id}/edit",
        {
            "name": "Web survey",
            "q-0-id": "c",
            "q-0-type": "select",
            "q-0-text": "Only one?",
            "q-0-choices": "Red",
        },
    )
    assert bad.status_code == 400 and "at least 2 choices" in bad.get_data(as_text=True)
    assert project.api().get(f"/api/v1/surveys/{survey_id}").get_json()["questions"][0]["id"] == "color"
    assert "Web survey" in web.get("/surveys").get_data(as_text=True)
