"""Inbound SMS handling: opt-out/in/help, keywords, inbox, contact lookup, ordering."""

from datetime import datetime

import pytest

from messaging.lib import clock
from tests.factories import make_contact, make_keyword, make_survey
from tests.integration.inbound.inbound_helpers import inbound_rows, say, sessions_of, text_in

PHONE = "+254712000001"


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(datetime(2026, 3, 2, 9, 0, 0))


@pytest.mark.parametrize("word", ["STOP", "stopall", " Unsubscribe ", "CANCEL", "end", "Quit", "STOP!"])
def test_opt_out_words_opt_out_and_confirm(project, run_jobs, word):
    from messaging.sms import optouts

    make_contact(project, PHONE)
    sent = say(project, run_jobs, PHONE, word)
    assert sent == ["You have been unsubscribed from Alpha messages. Reply START to subscribe again."]
    with project.scope():
        assert optouts.is_opted_out(project.id, PHONE)
    assert inbound_rows(project)[-1]["outcome"] == "opt_out"


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_opt_in_words_opt_back_in_and_confirm(project, run_jobs, word):
    from messaging.models import Message
    from messaging.sms import optouts

    make_contact(project, PHONE)
    say(project, run_jobs, PHONE, "STOP")
    sent = say(project, run_jobs, PHONE, word)
    assert sent == ["You are now subscribed to Alpha messages. Reply STOP to unsubscribe."]
    with project.scope():
        assert not optouts.is_opted_out(project.id, PHONE)
        from messaging.extensions import db

        statuses = [m.status for m in db.session.query(Message).filter_by(direction="outbound")]
    assert statuses == ["sent", "sent"]  # the opt-out confirmation went out to an opted-out number


@pytest.mark.parametrize("word", ["HELP", "info"])
def test_help_words_reply_with_the_help_text_even_when_opted_out(project, run_jobs, word):
    from messaging.extensions import db
    from messaging.models import Message, Project

    with project.scope():
        db.session.get(Project, project.id).help_text = "Call 0800 123 456 for help."
        db.session.commit()
    say(project, run_jobs, PHONE, "STOP")
    sent = say(project, run_jobs, PHONE, word)
    assert sent == ["Call 0800 123 456 for help. Reply STOP to unsubscribe."]
    with project.scope():
        last = db.session.query(Message).order_by(Message.id.desc()).first()
        assert last.status == "sent" and last.bypass_opt_out


def test_keyword_reply_is_case_insensitive_first_word(project, run_jobs):
    make_contact(project, PHONE)
    keyword_id = make_keyword(project, keyword="clinic", reply_text="The clinic opens at 8.")
    assert say(project, run_jobs, PHONE, "Clinic hours please") == ["The clinic opens at 8."]
    row = inbound_rows(project)[-1]
    assert row["outcome"] == "keyword" and row["keyword_id"] == keyword_id


def test_unhandled_goes_to_the_inbox_with_optional_default_reply(project, run_jobs, web):
    make_contact(project, PHONE, name="Inbox Person")
    assert say(project, run_jobs, PHONE, "hello there") == []
    assert inbound_rows(project)[-1]["outcome"] == "unhandled"
    response = web.post("/settings/keywords/default-reply", {"default_reply": "We got your message."})
    assert response.status_code == 302
    assert say(project, run_jobs, PHONE, "anyone?") == ["We got your message."]
    page = web.get("/inbox").get_data(as_text=True)
    assert "hello there" in page and "anyone?" in page and "Inbox Person" in page


def test_unknown_number_is_logged_as_such(project, run_jobs, web):
    assert say(project, run_jobs, "+254799999999", "who is this") == []
    row = inbound_rows(project)[-1]
    assert row["outcome"] == "unknown_number" and row["case_count"] == 0
    assert "Unknown number" in row["routing"]
    assert "Unknown number" in web.get("/inbox").get_data(as_text=True)


def test_unknown_number_keyword_survey_runs_without_a_case(project, run_jobs):
    survey_id = make_survey(project, questions=[{"id": "q", "type": "text", "text": "Name?"}])
    make_keyword(project, keyword="JOIN", survey_id=survey_id)
    assert say(project, run_jobs, "+254799999998", "join") == ["Name?"]
    assert say(project, run_jobs, "+254799999998", "Baraka") == [
        "Thank you, your answers have been received."
    ]
    [session] = sessions_of(project)
    assert session["status"] == "completed" and session["answers"] == {"q": "Baraka"}
    assert session["case_pk"] is None and session["form_id"] is None


def test_shared_family_phone_routes_to_open_session_then_most_recent(project, run_jobs, web):
    older_pk, older_id = make_contact(project, PHONE, name="Mother")
    clock.advance(seconds=60)
    newer_pk, newer_id = make_contact(project, PHONE, name="Child")
    say(project, run_jobs, PHONE, "hi")
    row = inbound_rows(project)[-1]
    assert row["case_count"] == 2
    assert (
        "belongs to 2 cases" in row["routing"]
        and "Child" in row["routing"]
        and "most recently active" in row["routing"]
    )

    # A survey started for the mother's case: her case takes the replies while it is open.
    survey_id = make_survey(
        project, questions=[{"id": "q", "type": "text", "text": "How are you?", "case_property": "mood"}]
    )
    from messaging.extensions import db
    from messaging.surveys import starting

    with project.scope():
        starting.start_session(project.id, survey_id, PHONE, case_pk=older_pk, source="api")
        db.session.commit()
    run_jobs()
    say(project, run_jobs, PHONE, "fine")
    row = inbound_rows(project)[-1]
    assert "Mother" in row["routing"] and "open survey session" in row["routing"]
    from tests.integration.inbound.inbound_helpers import case_props

    assert case_props(project, older_pk) == {"mood": "fine"}
    assert case_props(project, newer_pk) == {}
    page = web.get(f"/cases/{older_id}/conversation").get_data(as_text=True)
    assert "belongs to 2 cases" in page and "How are you?" in page and "fine" in page


def test_keyword_that_does_not_yield_beats_an_open_session(project, run_jobs):
    make_contact(project, PHONE)
    long_survey = make_survey(project)
    short = make_survey(project, name="Short", questions=[{"id": "q", "type": "text", "text": "Short one?"}])
    make_keyword(project, keyword="SURVEY", survey_id=long_survey)
    make_keyword(project, keyword="URGENT", survey_id=short, yields_to_session=False)
    make_keyword(project, keyword="INFOLINE", reply_text="Line info")
    assert say(project, run_jobs, PHONE, "survey") == ["How old are you?"]
    # A yielding keyword is an answer to the open question (here: invalid).
    assert say(project, run_jobs, PHONE, "infoline")[0].startswith("Please reply with a whole number")
    assert say(project, run_jobs, PHONE, "URGENT now") == ["Short one?"]
    statuses = [s["status"] for s in sessions_of(project)]
    assert statuses == ["cancelled", "open"]


def test_stop_during_a_survey_wins_and_closes_the_session(project, run_jobs):
    make_contact(project, PHONE)
    make_keyword(project, keyword="SURVEY", survey_id=make_survey(project))
    say(project, run_jobs, PHONE, "survey")
    assert say(project, run_jobs, PHONE, "stop") == [
        "You have been unsubscribed from Alpha messages. Reply START to subscribe again."
    ]
    [session] = sessions_of(project)
    assert session["status"] == "cancelled" and session["end_reason"] == "opted_out"
    # Later texts are not survey answers, and nothing but confirmations reaches the number.
    assert say(project, run_jobs, PHONE, "33") == []


def test_yes_answers_an_open_yes_no_question_but_opts_in_otherwise(project, run_jobs):
    make_contact(project, PHONE)
    survey_id = make_survey(
        project,
        questions=[
            {"id": "ok", "type": "select", "text": "Feeling well?", "choices": ["Yes", "No"]},
            {"id": "n", "type": "integer", "text": "How many days?"},
        ],
    )
    make_keyword(project, keyword="CHECK", survey_id=survey_id)
    say(project, run_jobs, PHONE, "check")
    assert say(project, run_jobs, PHONE, "YES") == ["How many days?"]
    # "yes" is not an integer: here YES is the opt-in word.
    assert say(project, run_jobs, PHONE, "yes") == [
        "You are now subscribed to Alpha messages. Reply STOP to unsubscribe."
    ]
    assert sessions_of(project)[0]["answers"] == {"ok": "Yes"}


def test_two_replies_from_one_number_are_handled_in_order_by_two_worker_processes(app, project):
    """Two real ``flask worker`` processes race on 30 messages of one number: handled in order, once each."""
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT, worker_env

    clock.set_now(None)  # the workers run on the real clock
    make_contact(project, PHONE)
    questions = [{"id": f"q{i}", "type": "integer", "text": f"Q{i}?"} for i in range(30)]
    survey_id = make_survey(project, questions=questions)
    from messaging.extensions import db
    from messaging.surveys import starting

    with project.scope():
        starting.start_session(project.id, survey_id, PHONE, source="api")
        db.session.commit()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "worker"],
            cwd=ROOT,
            env=worker_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        for i in range(30):
            text_in(project, PHONE, str(i))
        deadline = time.time() + 60
        while time.time() < deadline:
            if all(r["handled_at"] for r in inbound_rows(project)):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    [session] = sessions_of(project)
    assert session["answers"] == {f"q{i}": i for i in range(30)}
    assert session["status"] == "completed"
    rows = inbound_rows(project)
    assert len(rows) == 30 and all(r["outcome"] == "survey_answer" for r in rows)
    handled = [r["handled_at"] for r in rows]
    assert handled == sorted(handled)
