"""A survey in two languages asked to cases of each: by keyword, by broadcast, and through the editor."""

from tests.factories import make_contact, make_group, make_keyword, make_survey, rows
from tests.integration.inbound.inbound_helpers import case_props, say, sessions_of

SURVEY = {
    "name": "Visit",
    "questions": [
        {
            "id": "came",
            "type": "select",
            "text": {"en": "Did you come to the clinic?", "sw": "Ulikuja kliniki?"},
            "choices": [{"en": "Yes", "sw": "Ndiyo"}, {"en": "No", "sw": "Hapana"}],
            "case_property": "came",
        },
        {
            "id": "next",
            "type": "date",
            "text": {"en": "Next visit?", "sw": "Ziara ijayo?"},
            "case_property": "next_visit",
        },
    ],
}


def _contact(project, phone, language):
    from messaging.extensions import db
    from messaging.models import Case

    pk, _ = make_contact(project, phone)
    with project.scope():
        db.session.get(Case, pk).language = language
        db.session.commit()
    return pk


def test_each_case_is_asked_in_its_language_and_answers_are_saved_the_same(project, run_jobs):
    swahili = _contact(project, "+254712000101", "sw")
    english = _contact(project, "+254712000102", "en")
    make_keyword(project, keyword="VISIT", survey_id=make_survey(project, **SURVEY))
    assert say(project, run_jobs, "+254712000101", "visit") == ["Ulikuja kliniki?\n1. Ndiyo\n2. Hapana"]
    # An answer in a script none of the survey's languages is written in: asked again, in Swahili.
    assert say(project, run_jobs, "+254712000101", "نعم") == [
        "Tafadhali jibu kwa namba kuanzia 1 hadi 2.\nUlikuja kliniki?\n1. Ndiyo\n2. Hapana"
    ]
    assert say(project, run_jobs, "+254712000101", "ndiyo") == ["Ziara ijayo? (siku/mwezi/mwaka)"]
    # The system's own texts too: a refused answer, then the thank-you, in Swahili.
    assert say(project, run_jobs, "+254712000101", "kesho") == [
        "Tafadhali jibu kwa tarehe kama 22/11/2026 (siku/mwezi/mwaka).\nZiara ijayo? (siku/mwezi/mwaka)"
    ]
    assert say(project, run_jobs, "+254712000101", "12 Desemba 2026") == ["Asante, majibu yako yamepokelewa."]
    assert say(project, run_jobs, "+254712000102", "visit") == ["Did you come to the clinic?\n1. Yes\n2. No"]
    # An invalid answer is asked again in the participant's language.
    again = say(project, run_jobs, "+254712000102", "maybe")
    assert again[0].endswith("Did you come to the clinic?\n1. Yes\n2. No")
    say(project, run_jobs, "+254712000102", "2")
    say(project, run_jobs, "+254712000102", "1 March 2027")
    assert case_props(project, swahili) == {"came": "Yes", "next_visit": "2026-12-12"}
    assert case_props(project, english) == {"came": "No", "next_visit": "2027-03-01"}
    assert {s["status"] for s in sessions_of(project)} == {"completed"}


def test_a_survey_broadcast_sends_each_recipient_the_first_question_in_their_language(project, run_jobs):
    for phone, language in [("+254712000201", "sw"), ("+254712000202", "en"), ("+254712000203", None)]:
        _contact(project, phone, language)
    from messaging.extensions import db
    from messaging.models import Case

    with project.scope():
        cases = [c.case_id for c in db.session.query(Case).order_by(Case.id)]
    group = make_group(project, "Mothers", cases)
    survey_id = make_survey(project, **SURVEY)
    r = project.api().post(
        "/api/v1/broadcasts",
        json={"name": "Visit", "recipients": {"case_groups": [group]}, "survey_id": survey_id},
    )
    assert r.status_code == 201, r.get_json()
    run_jobs()
    bodies = {m["phone"]: m["body"] for m in rows(project) if m["survey_session_id"]}
    assert bodies == {
        "+254712000201": "Ulikuja kliniki?\n1. Ndiyo\n2. Hapana",
        "+254712000202": "Did you come to the clinic?\n1. Yes\n2. No",
        "+254712000203": "Did you come to the clinic?\n1. Yes\n2. No",
    }

    # A Swahili project: the case without a language is asked in Swahili.
    project.api().put("/api/v1/texts", json={"default_language": "sw"})
    r = project.api().post(
        "/api/v1/broadcasts",
        json={"name": "Again", "recipients": {"case_groups": [group]}, "survey_id": survey_id},
    )
    run_jobs()
    again = {m["phone"]: m["body"] for m in rows(project, broadcast_id=r.get_json()["id"])}
    assert again["+254712000203"] == "Ulikuja kliniki?\n1. Ndiyo\n2. Hapana"
    assert again["+254712000202"] == "Did you come to the clinic?\n1. Yes\n2. No"


def test_the_editor_shows_other_languages_as_lines_and_saves_them_back(project, web):
    survey_id = make_survey(project, **SURVEY)
    editor = web.get(f"/surveys/{survey_id}/edit").get_data(as_text=True)
    assert "sw: Ulikuja kliniki? | Ndiyo | Hapana" in editor
    assert 'value="Did you come to the clinic?"' in editor
    form = {
        "name": "Visit",
        "text_language": "en",
        "q-0-id": "came",
        "q-0-type": "select",
        "q-0-text": "Did you come to the clinic?",
        "q-0-choices": "Yes\nNo",
        "q-0-required": "on",
        "q-0-case_property": "came",
        "q-0-translations": "sw: Ulikuja kliniki? | Ndiyo | Hapana\nfr: Êtes-vous venue ? | Oui | Non",
    }
    assert web.post(f"/surveys/{survey_id}/edit", form).status_code == 302
    [came] = project.api().get(f"/api/v1/surveys/{survey_id}").get_json()["questions"]
    assert came["text"] == {
        "en": "Did you come to the clinic?",
        "sw": "Ulikuja kliniki?",
        "fr": "Êtes-vous venue ?",
    }
    assert came["choices"][1] == {"en": "No", "sw": "Hapana", "fr": "Non"}
    bad = web.post(f"/surveys/{survey_id}/edit", {**form, "q-0-translations": "sw: Ulikuja? | Ndiyo"})
    assert bad.status_code == 400 and "gives 1 choices for the 2 above" in bad.get_data(as_text=True)


def test_a_reminder_comes_in_the_participants_language(app, project, run_jobs):
    from datetime import datetime

    from messaging.lib import clock
    from tests.integration.inbound.inbound_helpers import replies
    from workers.jobs.surveys import tick

    clock.set_now(datetime(2026, 3, 2, 9, 0))
    _contact(project, "+254712000401", "fr-CD")
    survey = {**SURVEY, "reminder_minutes": 30}
    survey["questions"] = [
        dict(SURVEY["questions"][0], text={"en": "Did you come?", "fr": "Êtes-vous venue ?"})
    ]
    make_keyword(project, keyword="VISIT", survey_id=make_survey(project, **survey))
    say(project, run_jobs, "+254712000401", "visit")
    clock.advance(minutes=31)
    with app.app_context():
        tick()
    run_jobs()
    assert replies(project, "+254712000401")[-1] == "Rappel : Êtes-vous venue ?\n1. Yes\n2. No"
