"""Surveys that branch (show_if, end_if), answered by SMS through the real inbound pipeline."""

import pytest

from tests.factories import make_contact, make_keyword, make_survey
from tests.integration.inbound.inbound_helpers import case_props, say, sessions_of

PHONE = "+254712000777"
ANC = {
    "name": "ANC check",
    "questions": [
        {"id": "pregnant", "type": "select", "text": "Are you pregnant?", "choices": ["Yes", "No"]},
        {
            "id": "weeks",
            "type": "integer",
            "text": "How many weeks?",
            "min": 1,
            "max": 45,
            "case_property": "weeks",
            "show_if": [{"question": "pregnant", "op": "eq", "value": "yes"}],
        },
        {
            "id": "bleeding",
            "type": "select",
            "text": "Any bleeding?",
            "choices": ["Yes", "No"],
            "show_if": [{"question": "pregnant", "op": "eq", "value": "Yes"}],
            "end_if": [{"question": "bleeding", "op": "eq", "value": "Yes"}],
            "end_text": "Please go to the clinic today. A nurse will call you.",
        },
        {
            "id": "visits",
            "type": "integer",
            "text": "How many clinic visits so far?",
            "case_property": "visits",
        },
    ],
}


def _start(project, run_jobs):
    case_pk, _ = make_contact(project, PHONE, weeks="12")
    make_keyword(project, keyword="ANC", survey_id=make_survey(project, **ANC))
    assert say(project, run_jobs, PHONE, "anc") == ["Are you pregnant?\n1. Yes\n2. No"]
    return case_pk


def test_a_no_skips_the_pregnancy_questions_and_saves_them_as_skipped(project, run_jobs):
    case_pk = _start(project, run_jobs)
    assert say(project, run_jobs, PHONE, "2") == ["How many clinic visits so far?"]
    assert say(project, run_jobs, PHONE, "3") == ["Thank you, your answers have been received."]
    [session] = sessions_of(project)
    assert session["status"] == "completed"
    assert session["answers"] == {"pregnant": "No", "weeks": None, "bleeding": None, "visits": 3}
    assert case_props(project, case_pk) == {"weeks": "12", "visits": 3}  # a skipped answer changes nothing


def test_an_end_if_answer_ends_the_survey_with_its_own_text(project, run_jobs):
    case_pk = _start(project, run_jobs)
    assert say(project, run_jobs, PHONE, "yes") == ["How many weeks?"]
    assert say(project, run_jobs, PHONE, "30") == ["Any bleeding?\n1. Yes\n2. No"]
    assert say(project, run_jobs, PHONE, "1") == ["Please go to the clinic today. A nurse will call you."]
    [session] = sessions_of(project)
    assert session["status"] == "completed" and "visits" not in session["answers"]
    assert case_props(project, case_pk) == {"weeks": 30}


def test_the_whole_path_when_no_branch_cuts_it(project, run_jobs):
    _start(project, run_jobs)
    say(project, run_jobs, PHONE, "1")
    say(project, run_jobs, PHONE, "20")
    assert say(project, run_jobs, PHONE, "No") == ["How many clinic visits so far?"]
    say(project, run_jobs, PHONE, "2")
    [session] = sessions_of(project)
    assert session["answers"] == {"pregnant": "Yes", "weeks": 20, "bleeding": "No", "visits": 2}


def _with(question_index, **changes):
    questions = [dict(q) for q in ANC["questions"]]
    questions[question_index].update(changes)
    return {**ANC, "questions": questions}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            _with(1, show_if=[{"question": "visits", "op": "gt", "value": 1}]),
            "questions[1]",
            "only looks back",
        ),
        (
            _with(1, show_if=[{"question": "weeks", "op": "gt", "value": 1}]),
            "questions[1]",
            "only looks back",
        ),
        (
            _with(1, show_if=[{"question": "nope", "op": "eq", "value": "x"}]),
            "questions[1]",
            "no question 'nope'",
        ),
        (_with(0, show_if=[{"question": "pregnant", "op": "eq", "value": "Yes"}]), "questions[0]", "first"),
        (
            _with(1, show_if=[{"question": "pregnant", "op": "eq", "value": "Maybe"}]),
            "questions[1]",
            "choices",
        ),
        (_with(1, show_if=[{"question": "pregnant", "op": "gt", "value": 2}]), "questions[1]", "compares"),
        (_with(1, show_if=[]), "questions[1]", "1 to 10 conditions"),
        (_with(3, end_text="Bye"), "questions[3]", "only a question with end_if"),
        (
            _with(2, end_if=[{"question": "visits", "op": "eq", "value": 1}]),
            "questions[2]",
            "only looks back",
        ),
    ],
)
def test_a_condition_on_a_later_question_a_cycle_or_a_bad_value_is_refused(project, body, field, words):
    r = project.api().post("/api/v1/surveys", json=body)
    assert r.status_code == 400, r.get_json()
    error = r.get_json()["error"]
    assert error["details"]["field"] == field and words in error["message"], error
    assert project.api().get("/api/v1/surveys").get_json()["results"] == []


def test_conditions_are_saved_in_their_canonical_form(project):
    r = project.api().post("/api/v1/surveys", json=ANC)
    assert r.status_code == 201, r.get_json()
    weeks = r.get_json()["questions"][1]
    assert weeks["show_if"] == [{"question": "pregnant", "op": "eq", "value": "Yes"}]  # the choice's spelling
    assert "show_if" not in r.get_json()["questions"][0]


def test_the_web_editor_writes_reads_back_and_keeps_branching(project, web):
    form = {
        "name": "ANC check",
        "q-0-id": "pregnant",
        "q-0-type": "select",
        "q-0-text": "Are you pregnant?",
        "q-0-choices": "Yes\nNo",
        "q-0-required": "on",
        "q-1-id": "weeks",
        "q-1-type": "integer",
        "q-1-text": "How many weeks?",
        "q-1-required": "on",
        "q-1-show_if": "pregnant = yes",
        "q-1-end_if": "weeks > 40",
        "q-1-end_text": "Please come to the clinic today.",
    }
    r = web.post("/surveys/new", form)
    assert r.status_code == 302, r.get_data(as_text=True)[:1000]
    survey_id = r.headers["Location"].rstrip("/").split("/")[-1]
    weeks = project.api().get(f"/api/v1/surveys/{survey_id}").get_json()["questions"][1]
    assert weeks["show_if"] == [{"question": "pregnant", "op": "eq", "value": "Yes"}]
    assert weeks["end_if"] == [{"question": "weeks", "op": "gt", "value": 40}]
    assert weeks["end_text"] == "Please come to the clinic today."
    editor = web.get(f"/surveys/{survey_id}/edit").get_data(as_text=True)
    assert 'value="pregnant = Yes"' in editor and 'value="weeks &gt; 40"' in editor
    detail = web.get(f"/surveys/{survey_id}").get_data(as_text=True)
    assert "asked only if pregnant = Yes" in detail and "the survey ends if weeks &gt; 40" in detail
    bad = web.post(f"/surveys/{survey_id}/edit", {**form, "q-1-show_if": "pregnant is yes"})
    assert bad.status_code == 400 and "Ask only if" in bad.get_data(as_text=True)
    later = web.post(f"/surveys/{survey_id}/edit", {**form, "q-0-show_if": "weeks > 3"})
    assert later.status_code == 400
    assert project.api().get(f"/api/v1/surveys/{survey_id}").get_json()["questions"][1]["show_if"]


def test_the_web_editor_keeps_a_questions_flag(project, web):
    body = {**ANC, "questions": [dict(ANC["questions"][0], flag_if={"op": "eq", "value": "Yes"})]}
    survey_id = project.api().post("/api/v1/surveys", json=body).get_json()["id"]
    editor = web.get(f"/surveys/{survey_id}/edit").get_data(as_text=True)
    assert 'name="q-0-flag_if"' in editor
    form = {
        "name": "ANC check",
        "q-0-id": "pregnant",
        "q-0-type": "select",
        "q-0-text": "Are you pregnant?",
        "q-0-choices": "Yes\nNo",
        "q-0-required": "on",
        "q-0-flag_if": '{"op": "eq", "value": "Yes"}',
    }
    assert web.post(f"/surveys/{survey_id}/edit", form).status_code == 302
    saved = project.api().get(f"/api/v1/surveys/{survey_id}").get_json()["questions"][0]
    assert saved["flag_if"] == {"op": "eq", "value": "Yes"}
