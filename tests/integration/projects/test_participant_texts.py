"""A project's own wordings of the system's participant texts, by language (API, page, and in a survey)."""

from tests.factories import make_contact, make_keyword, make_survey
from tests.integration.inbound.inbound_helpers import say

QUESTION = {
    "name": "Q",
    "questions": [{"id": "ok", "type": "select", "text": "Byagenze neza?", "choices": ["Yego", "Oya"]}],
}
PHONE = "+254712000901"


def _case_in(project, language):
    from messaging.extensions import db
    from messaging.models import Case

    pk, _ = make_contact(project, PHONE)
    with project.scope():
        db.session.get(Case, pk).language = language
        db.session.commit()


def _cell(table, key, language):
    return next(row for row in table["texts"] if row["key"] == key)["languages"][language]


def test_a_projects_own_language_is_used_in_a_survey_with_fallbacks(project, run_jobs):
    api = project.api()
    wording = "Subiza ukoresheje umubare kuva kuri 1 kugeza kuri {count}."
    r = api.put("/api/v1/texts", json={"language": "rw", "texts": {"survey.error.choice": wording}})
    assert r.status_code == 200, r.get_json()
    table = r.get_json()
    assert table["languages"] == ["en", "fr", "sw", "es", "pt", "rw"]
    assert _cell(table, "survey.error.choice", "rw") == {
        "text": "Subiza ukoresheje umubare kuva kuri 1 kugeza kuri {count}.",
        "source": "project",
    }
    assert _cell(table, "survey.completed", "rw") == {
        "text": "Thank you, your answers have been received.",
        "source": "missing",
    }
    assert _cell(table, "survey.completed", "fr")["source"] == "shipped"

    _case_in(project, "rw-RW")  # the base language's wording applies
    make_keyword(project, keyword="Q", survey_id=make_survey(project, **QUESTION))
    say(project, run_jobs, PHONE, "q")
    assert say(project, run_jobs, PHONE, "wapi") == [
        "Subiza ukoresheje umubare kuva kuri 1 kugeza kuri 2.\nByagenze neza?\n1. Yego\n2. Oya"
    ]
    # Nothing in rw for the thank-you: the project's English wording, else the shipped English.
    api.put("/api/v1/texts", json={"language": "en", "texts": {"survey.completed": "Murakoze! Thank you."}})
    assert say(project, run_jobs, PHONE, "1") == ["Murakoze! Thank you."]


def test_a_wording_with_a_placeholder_the_english_text_lacks_is_refused_and_nothing_is_saved(project):
    api = project.api()
    both = {"survey.hint.skip": "Andika SKIP", "survey.error.choice": "Kuva 1 kugeza {number}"}
    r = api.put("/api/v1/texts", json={"language": "rw", "texts": both})
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert (
        error["code"] == "unknown_placeholder"
        and "{number}" in error["message"]
        and "{count}" in error["message"]
    )
    assert "rw" not in api.get("/api/v1/texts").get_json()["languages"]
    assert api.put("/api/v1/texts", json={"language": "rw", "texts": {"survey.nope": "x"}}).status_code == 404
    assert (
        api.put(
            "/api/v1/texts", json={"language": "not a language", "texts": {"survey.completed": "x"}}
        ).status_code
        == 400
    )
    assert (
        api.put(
            "/api/v1/texts", json={"language": "rw", "texts": {"survey.completed": "Merci {"}}
        ).status_code
        == 400
    )


def test_blank_removes_a_wording_and_another_project_never_sees_it(project, other_project):
    api = project.api()
    api.put("/api/v1/texts", json={"language": "sw", "texts": {"survey.completed": "Asante sana!"}})
    assert (
        _cell(other_project.api().get("/api/v1/texts").get_json(), "survey.completed", "sw")["source"]
        == "shipped"
    )
    table = api.put("/api/v1/texts", json={"language": "sw", "texts": {"survey.completed": ""}}).get_json()
    assert _cell(table, "survey.completed", "sw") == {
        "text": "Asante, majibu yako yamepokelewa.",
        "source": "shipped",
    }


def test_the_page_shows_every_text_and_saves_one_language(project, web):
    page = web.get("/settings/texts?language=rw").get_data(as_text=True)
    assert 'id="participant-texts"' in page and "Texts in rw" in page
    response = web.post("/settings/texts", {"language": "rw", "text-survey.completed": "Murakoze!"})
    assert response.status_code == 302
    page = web.get("/settings/texts").get_data(as_text=True)
    assert 'data-language="rw" data-source="project">Murakoze!' in page
    refused = web.post("/settings/texts", {"language": "rw", "text-survey.error.choice": "{x}"})
    assert refused.status_code == 302
    assert "is not a placeholder of this text" in web.get("/settings/texts").get_data(as_text=True)
