"""Family phones: a survey started on a number several open cases share asks which case it is about,
and the answer is the session's case (its form goes to that case)."""

from tests.factories import make_contact, make_keyword, make_survey
from tests.integration.inbound.inbound_helpers import case_props, say, sessions_of

PHONE = "+254712000051"
SURVEY = {
    "name": "Age",
    "questions": [{"id": "age", "type": "integer", "text": "How old?", "case_property": "age"}],
    "max_invalid_attempts": 1,
}


def test_the_survey_asks_which_case_and_the_answer_gets_the_form(project, run_jobs):
    amina, _ = make_contact(project, PHONE, name="Amina")
    juma, _ = make_contact(project, PHONE, name="Juma")
    make_keyword(project, keyword="AGE", survey_id=make_survey(project, **SURVEY))
    assert say(project, run_jobs, PHONE, "age") == ["Is this about 1. Amina 2. Juma? Reply with the number."]
    [session] = sessions_of(project)
    assert session["case_pk"] is None and session["candidate_case_ids"] == [amina, juma]
    assert say(project, run_jobs, PHONE, "3") == [
        "Please reply with the number of the person this is about.\n"
        "Is this about 1. Amina 2. Juma? Reply with the number."
    ]
    assert say(project, run_jobs, PHONE, "juma") == ["How old?"]
    say(project, run_jobs, PHONE, "7")
    [session] = sessions_of(project)
    assert session["status"] == "completed" and session["case_pk"] == juma
    assert case_props(project, juma)["age"] == 7 and "age" not in case_props(project, amina)


def test_one_open_case_or_a_closed_sibling_asks_nothing(project, run_jobs):
    from tests.factories import make_case

    make_contact(project, PHONE, name="Amina")
    make_case(project, name="Old", phone=PHONE, closed=True)
    make_keyword(project, keyword="AGE", survey_id=make_survey(project, **SURVEY))
    assert say(project, run_jobs, PHONE, "age") == ["How old?"]


def test_the_reminder_asks_the_choice_again(project, run_jobs):
    from datetime import datetime

    from messaging.lib import clock
    from workers.jobs.surveys import tick

    clock.set_now(datetime(2026, 3, 2, 9, 0, 0))
    make_contact(project, PHONE, name="Amina")
    make_contact(project, PHONE, name="")
    make_keyword(project, keyword="AGE", survey_id=make_survey(project, **SURVEY, reminder_minutes=30))
    say(project, run_jobs, PHONE, "age")
    clock.advance(minutes=31)
    with project.scope():
        tick()
    run_jobs()
    from tests.integration.inbound.inbound_helpers import replies

    assert replies(project, PHONE)[-1] == "Reminder: Is this about 1. Amina 2. case 2? Reply with the number."


def test_the_question_is_asked_in_the_language_the_cases_share_else_the_projects_default(project, run_jobs):
    from messaging.extensions import db
    from messaging.models import Case

    amina, _ = make_contact(project, PHONE, name="Amina")
    juma, _ = make_contact(project, PHONE, name="Juma")
    with project.scope():
        for pk in (amina, juma):
            db.session.get(Case, pk).language = "fr"
        db.session.commit()
    make_keyword(project, keyword="AGE", survey_id=make_survey(project, **SURVEY))
    assert say(project, run_jobs, PHONE, "age") == ["S'agit-il de 1. Amina 2. Juma ? Répondez par le numéro."]
    assert say(project, run_jobs, PHONE, "Paul") == [
        "Veuillez répondre par le numéro de la personne concernée.\n"
        "S'agit-il de 1. Amina 2. Juma ? Répondez par le numéro."
    ]
    say(project, run_jobs, PHONE, "1")
    say(project, run_jobs, PHONE, "30")

    with project.scope():
        db.session.get(Case, juma).language = "sw"  # no longer one language: the project's default
        db.session.commit()
    project.api().put("/api/v1/texts", json={"default_language": "pt"})
    assert say(project, run_jobs, PHONE, "age") == ["É sobre 1. Amina 2. Juma? Responda com o numero."]
