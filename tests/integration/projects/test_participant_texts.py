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


BILINGUAL = {
    "name": "Visit",
    "questions": [
        {
            "id": "came",
            "type": "select",
            "text": {"en": "Did you come?", "sw": "Ulikuja?"},
            "choices": [{"en": "Yes", "sw": "Ndiyo"}, {"en": "No", "sw": "Hapana"}],
        }
    ],
}


def test_a_case_without_a_language_is_asked_in_the_projects_default_language(project, run_jobs):
    api = project.api()
    make_contact(project, PHONE)  # no language
    make_keyword(project, keyword="VISIT", survey_id=make_survey(project, **BILINGUAL))
    assert say(project, run_jobs, PHONE, "visit") == ["Did you come?\n1. Yes\n2. No"]
    say(project, run_jobs, PHONE, "2")

    table = api.put("/api/v1/texts", json={"default_language": "sw"}).get_json()
    assert table["default_language"] == "sw"
    assert say(project, run_jobs, PHONE, "visit") == ["Ulikuja?\n1. Ndiyo\n2. Hapana"]
    assert say(project, run_jobs, PHONE, "labda") == [
        "Tafadhali jibu kwa namba kuanzia 1 hadi 2.\nUlikuja?\n1. Ndiyo\n2. Hapana"
    ]
    assert say(project, run_jobs, PHONE, "ndiyo") == ["Asante, majibu yako yamepokelewa."]


def test_a_bad_default_language_is_refused_naming_the_field(project, web):
    api = project.api()
    r = api.put("/api/v1/texts", json={"default_language": "Kiswahili please"})
    assert r.status_code == 400 and r.get_json()["error"]["details"]["field"] == "default_language"
    assert api.get("/api/v1/texts").get_json()["default_language"] == "en"
    assert web.post("/settings/texts/default-language", {"default_language": "rw"}).status_code == 302
    table = api.get("/api/v1/texts").get_json()
    assert table["default_language"] == "rw" and table["languages"][-1] == "rw"
    assert 'name="default_language" value="rw"' in web.get("/settings/texts").get_data(as_text=True)


def test_a_confirmation_is_said_in_the_projects_wording_of_the_words_language(project, run_jobs, web):
    api = project.api()
    web.post(
        "/settings/keywords/command-words", {"opt_out_words": "HAGARIKA rw", "opt_in_words": "TANGIRA rw"}
    )
    own = {
        "confirm.opt_out": "Ntuzongera kubona ubutumwa bwa {project}. Andika {opt_in} kugaruka.",
        "confirm.opt_in": "Murakaza neza! Andika {opt_out} guhagarika.",
    }
    assert api.put("/api/v1/texts", json={"language": "rw", "texts": own}).status_code == 200
    api.put("/api/v1/texts", json={"language": "fr", "texts": {"confirm.opt_out": "Au revoir de {project}."}})
    make_contact(project, PHONE)
    assert say(project, run_jobs, PHONE, "hagarika") == [
        "Ntuzongera kubona ubutumwa bwa Alpha. Andika TANGIRA kugaruka."
    ]
    assert say(project, run_jobs, PHONE, "TANGIRA") == ["Murakaza neza! Andika HAGARIKA guhagarika."]
    assert say(project, run_jobs, PHONE, "arrêt") == ["Au revoir de Alpha."]
    # Other languages keep the shipped confirmations.
    assert say(project, run_jobs, PHONE, "anza") == [
        "Umejiunga tena na ujumbe wa Alpha. Jibu ACHA ili kujiondoa."
    ]
    refused = api.put("/api/v1/texts", json={"language": "rw", "texts": {"confirm.opt_in": "{opt_inn}"}})
    assert refused.status_code == 400 and "{opt_inn}" in refused.get_json()["error"]["message"]


def test_the_default_reply_is_sent_in_the_cases_language_when_the_project_worded_it(project, run_jobs, web):
    from messaging.extensions import db
    from messaging.models import Case

    api = project.api()
    french, _ = make_contact(project, PHONE)
    other = "+254712000902"
    make_contact(project, other)
    with project.scope():
        db.session.get(Case, french).language = "fr-CD"
        db.session.commit()
    # Translations alone send nothing: the default reply is switched on by its main text.
    api.put(
        "/api/v1/texts", json={"language": "fr", "texts": {"reply.default": "Nous avons reçu votre message."}}
    )
    assert say(project, run_jobs, PHONE, "bonjour") == []
    web.post("/settings/keywords/default-reply", {"default_reply": "We got your message."})
    assert say(project, run_jobs, PHONE, "bonjour") == ["Nous avons reçu votre message."]
    assert say(project, run_jobs, other, "hello") == ["We got your message."]
    table = api.get("/api/v1/texts").get_json()
    assert _cell(table, "reply.default", "fr") == {
        "text": "Nous avons reçu votre message.",
        "source": "project",
    }
    assert _cell(table, "reply.default", "en") == {"text": "We got your message.", "source": "project"}
    assert _cell(table, "reply.default", "sw") == {"text": "We got your message.", "source": "missing"}
    page = web.get("/settings/texts?language=fr").get_data(as_text=True)
    assert 'name="text-reply.default" value="Nous avons reçu votre message."' in page
