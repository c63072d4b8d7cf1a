"""The consent ledger: one event for each way a number's consent changes, in the change's transaction."""

from datetime import datetime

import pytest
from sqlalchemy import select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import ConsentEvent, OptOut, WebUser
from messaging.sms import consent, optouts
from tests.factories import make_contact, rows, send
from tests.integration.inbound.inbound_helpers import text_in

PHONE = "+254712000701"


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(datetime(2026, 3, 2, 9, 0, 0))


def events_of(project, phone):
    with project.scope():
        return [consent.event_json(e) for e in consent.history(project.id, phone)]


def admin_id(project):
    with project.scope():
        return db.session.execute(select(WebUser.id).where(WebUser.email == project.admin_email)).scalar_one()


def opted_out(project, phone):
    with project.scope():
        return optouts.is_opted_out(project.id, phone)


def test_stop_by_sms_records_the_word_and_the_message_then_start_opts_back_in(project, run_jobs):
    make_contact(project, PHONE)
    stop_id, _ = text_in(project, PHONE, " Stop! ")
    run_jobs()
    [event] = events_of(project, PHONE)
    assert event["change"] == "opt_out" and event["method"] == "keyword"
    assert event["word"] == "STOP" and event["message_id"] == stop_id
    assert event["reason"] is None and event["language"] == "en" and event["web_user_id"] is None
    assert opted_out(project, PHONE)

    start_id, _ = text_in(project, PHONE, "start")
    run_jobs()
    events = events_of(project, PHONE)
    assert [(e["change"], e["word"], e["message_id"]) for e in events] == [
        ("opt_out", "STOP", stop_id),
        ("opt_in", "START", start_id),
    ]
    assert not opted_out(project, PHONE)


def test_a_repeated_stop_is_recorded_as_a_request_that_changed_nothing(project, run_jobs):
    first, _ = text_in(project, PHONE, "STOP")
    run_jobs()
    again, _ = text_in(project, PHONE, "QUIT")
    run_jobs()
    events = events_of(project, PHONE)
    assert [(e["change"], e["word"], e["message_id"], e["reason"]) for e in events] == [
        ("opt_out", "STOP", first, None),
        ("opt_out", "QUIT", again, optouts.REPEATED_OPT_OUT),
    ]
    # The opt-out is still the first STOP's: the repeat did not opt the number out.
    with project.scope():
        assert consent.opting_out_events(project.id, [PHONE])[PHONE].message_id == first
        assert (
            db.session.execute(select(OptOut.source).where(OptOut.phone == PHONE)).scalar_one() == "keyword"
        )


def test_start_from_a_number_that_never_opted_out_is_recorded_and_changes_nothing(project, run_jobs):
    start_id, _ = text_in(project, PHONE, "UNSTOP")
    run_jobs()
    [event] = events_of(project, PHONE)
    assert (event["change"], event["word"], event["message_id"]) == ("opt_in", "UNSTOP", start_id)
    assert event["reason"] == optouts.REPEATED_OPT_IN
    assert not opted_out(project, PHONE)


def test_21610_records_an_event_naming_the_refused_message(app, twilio_project, fake, run_jobs):
    fake.fail_numbers = {PHONE: 21610}
    refused = send(twilio_project, PHONE, "first")
    send(twilio_project, PHONE, "second, in the same chunk")
    run_jobs()
    [event] = events_of(twilio_project, PHONE)
    assert event["change"] == "opt_out" and event["method"] == "gateway_21610"
    assert event["message_id"] == refused and event["word"] is None
    assert {r["skip_reason"] for r in rows(twilio_project)} == {"opted_out"}
    assert opted_out(twilio_project, PHONE)


def test_staff_opt_out_through_the_api_records_the_reason_and_the_tokens_user(project, api):
    response = api.post("/api/v1/opt-outs", json={"phone": PHONE, "reason": "Asked at the clinic"})
    assert response.status_code == 201
    assert api.post("/api/v1/opt-outs", json={"phone": PHONE, "reason": "again"}).status_code == 200
    [event] = events_of(project, PHONE)  # the second request changed nothing: no event
    assert (event["change"], event["method"], event["reason"]) == ("opt_out", "api", "Asked at the clinic")
    assert event["web_user_id"] == admin_id(project) and event["message_id"] is None


def test_undo_through_the_api_records_the_reason(project, api):
    api.post("/api/v1/opt-outs", json={"phone": PHONE})
    response = api.delete(f"/api/v1/opt-outs/{PHONE}", json={"reason": "Sent STOP by mistake, called in"})
    assert response.status_code == 200 and response.get_json() == {"phone": PHONE, "opted_out": False}
    events = events_of(project, PHONE)
    assert [(e["change"], e["method"], e["reason"]) for e in events] == [
        ("opt_out", "api", None),
        ("opt_in", "api", "Sent STOP by mistake, called in"),
    ]
    assert events[1]["web_user_id"] == admin_id(project)
    assert not opted_out(project, PHONE)


def test_an_exception_is_recorded_with_who_confirmed_it_and_the_message(project):
    message_id = send(project, PHONE, "Your appointment is tomorrow", bypass_opt_out=True)
    user_id = admin_id(project)
    with project.scope():
        optouts.opt_out(project.id, PHONE, "staff", reason="asked", web_user_id=user_id)
        consent.record_exception(
            project.id, PHONE, web_user_id=user_id, message_id=message_id, reason="Appointment moved"
        )
        db.session.commit()
    events = events_of(project, PHONE)
    assert [(e["change"], e["method"]) for e in events] == [("opt_out", "staff"), ("exception", "staff")]
    assert events[1]["message_id"] == message_id and events[1]["reason"] == "Appointment moved"
    assert events[1]["web_user_id"] == user_id
    assert opted_out(project, PHONE)  # an exception lets one message through; the number stays opted out


def test_the_event_is_written_in_the_callers_transaction(project):
    with project.scope():
        assert optouts.opt_out(project.id, PHONE, "api", reason="rolled back") is True
        db.session.rollback()
        assert not optouts.is_opted_out(project.id, PHONE)
        assert db.session.execute(select(ConsentEvent)).first() is None


def test_callers_without_details_still_work_and_record_the_change(project):
    with project.scope():
        assert optouts.opt_out(project.id, PHONE, "keyword") is True
        assert optouts.opt_in(project.id, PHONE) is True
        assert optouts.opt_in(project.id, PHONE) is False  # not opted out: no change, no event (api)
        db.session.commit()
    assert [(e["change"], e["method"]) for e in events_of(project, PHONE)] == [
        ("opt_out", "keyword"),
        ("opt_in", "api"),
    ]


def test_the_ledger_and_the_opt_out_are_per_project(project, other_project):
    with other_project.scope():
        optouts.opt_out(other_project.id, PHONE, "api", reason="theirs")
        db.session.commit()
    assert events_of(project, PHONE) == []
    assert len(events_of(other_project, PHONE)) == 1
    with project.scope():
        # The ORM's tenancy filter and the explicit project filter agree.
        assert db.session.execute(select(ConsentEvent)).first() is None
        assert consent.opting_out_events(project.id, [PHONE]) == {}


def test_an_import_batch_skips_a_number_another_request_opted_out_meanwhile(project, monkeypatch):
    with project.scope():
        optouts.opt_out(project.id, PHONE, "api")
        db.session.commit()
        # The race: the batch read the opt-outs before the other request committed.
        monkeypatch.setattr(optouts, "opted_out_among", lambda project_id, phones: set())
        new = optouts.opt_out_many(project.id, [PHONE, "+254712000702", "+254712000702"], "import")
        db.session.commit()
    assert new == {"+254712000702"}
    assert [e["method"] for e in events_of(project, PHONE)] == ["api"]
    assert [e["method"] for e in events_of(project, "+254712000702")] == ["import"]


@pytest.mark.parametrize(
    ("word", "language", "undo"),
    [("ACHA", "sw", "Jibu ANZA"), ("Arrêt", "fr", "Répondez DEMARRER"), ("baja", "es", "Responda ALTA")],
)
def test_stop_in_a_shipped_language_opts_out_and_confirms_in_that_language(
    project, run_jobs, word, language, undo
):
    make_contact(project, PHONE)
    message_id, _ = text_in(project, PHONE, word)
    run_jobs()
    [event] = events_of(project, PHONE)
    assert (event["change"], event["method"], event["word"], event["language"]) == (
        "opt_out",
        "keyword",
        word.upper(),
        language,
    )
    assert event["message_id"] == message_id and opted_out(project, PHONE)
    [reply] = rows(project, direction="outbound")
    assert undo in reply["body"] and reply["bypass_opt_out"]

    again = {"sw": "anza", "fr": "DEMARRER", "es": "Alta"}[language]
    text_in(project, PHONE, again)
    run_jobs()
    assert not opted_out(project, PHONE)
    assert events_of(project, PHONE)[-1]["language"] == language


def test_a_project_keyword_that_is_another_languages_opt_in_word_stays_the_projects(project, run_jobs):
    from tests.factories import make_keyword

    make_keyword(project, keyword="ANZA", reply_text="Karibu! Survey starts tomorrow.")
    make_contact(project, PHONE)
    text_in(project, PHONE, "anza")
    run_jobs()
    assert events_of(project, PHONE) == []
    [reply] = rows(project, direction="outbound")
    assert reply["body"] == "Karibu! Survey starts tomorrow."


def test_a_shipped_opt_out_word_cannot_be_a_project_keyword(project):
    response = project.api().post("/api/v1/keywords", json={"keyword": "ACHA", "reply_text": "hi"})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["field"] == "keyword"


def _own_words(web, opt_out="", opt_in=""):
    return web.post("/settings/keywords/command-words", {"opt_out_words": opt_out, "opt_in_words": opt_in})


def test_a_projects_own_words_opt_out_and_in_and_the_ledger_records_them(project, web, run_jobs):
    assert _own_words(web, "Hagarika rw\nSTOPPA sv", "TANGIRA rw").status_code == 302
    page = web.get("/settings/keywords").get_data(as_text=True)
    assert "HAGARIKA rw" in page and "TANGIRA rw" in page
    make_contact(project, PHONE)
    text_in(project, PHONE, "hagarika!")
    run_jobs()
    assert opted_out(project, PHONE)
    [event] = events_of(project, PHONE)
    assert (event["change"], event["word"], event["language"]) == ("opt_out", "HAGARIKA", "rw")
    [reply] = rows(project, direction="outbound")
    assert reply["body"].startswith("You have been unsubscribed")  # no shipped Kinyarwanda: English
    text_in(project, PHONE, "Tangira")
    run_jobs()
    assert not opted_out(project, PHONE) and events_of(project, PHONE)[-1]["word"] == "TANGIRA"


@pytest.mark.parametrize(
    ("opt_out", "opt_in", "words"),
    [
        ("ACHA sw", "", "already a shipped opt-out word"),
        ("HAGARIKA", "", "word and its language code"),
        ("TWO WORDS rw", "", "word and its language code"),
        ("HAGARIKA rw", "hagarika rw", "cannot both stop and start"),
        ("HELLO rw", "", "a keyword of this project"),
    ],
)
def test_own_words_that_clash_are_refused_and_nothing_is_saved(project, web, opt_out, opt_in, words):
    from tests.factories import make_keyword

    make_keyword(project, keyword="HELLO", reply_text="hi")
    response = _own_words(web, opt_out, opt_in)
    assert response.status_code == 302
    page = web.get("/settings/keywords").get_data(as_text=True)
    assert words in page
    assert "HAGARIKA rw</textarea>" not in page


def test_a_keyword_cannot_take_a_projects_own_word(project, web):
    _own_words(web, "HAGARIKA rw")
    response = project.api().post("/api/v1/keywords", json={"keyword": "hagarika", "reply_text": "hi"})
    assert (
        response.status_code == 400 and "opt-out or opt-in words" in response.get_json()["error"]["message"]
    )
