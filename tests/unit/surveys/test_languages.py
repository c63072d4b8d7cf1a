"""Questions in several languages: asked in the participant's, answered in any, saved in the first."""

import pytest

from messaging.surveys.answers import Question, parse_answer, question_prompt

PREGNANT = Question.from_dict(
    {
        "id": "pregnant",
        "type": "select",
        "text": {"en": "Are you pregnant?", "sw": "Una mimba?", "fr": "Êtes-vous enceinte ?"},
        "choices": [{"en": "Yes", "sw": "Ndiyo", "fr": "Oui"}, {"en": "No", "sw": "Hapana", "fr": "Non"}],
    }
)


@pytest.mark.parametrize(
    ("language", "prompt"),
    [
        ("sw", "Una mimba?\n1. Ndiyo\n2. Hapana"),
        ("fr", "Êtes-vous enceinte ?\n1. Oui\n2. Non"),
        ("fr-CD", "Êtes-vous enceinte ?\n1. Oui\n2. Non"),  # the base language
        ("pt", "Are you pregnant?\n1. Yes\n2. No"),  # none: the first language, en
        (None, "Are you pregnant?\n1. Yes\n2. No"),
    ],
)
def test_a_question_is_asked_in_the_participants_language(language, prompt):
    assert question_prompt(PREGNANT, language) == prompt


@pytest.mark.parametrize("reply", ["1", "Yes", "ndiyo", "OUI", "oui."])
def test_a_choice_is_accepted_in_any_language_and_saved_in_the_first(reply):
    assert parse_answer(PREGNANT, reply).value == "Yes"


def test_a_multiselect_reads_choices_in_several_languages_at_once():
    symptoms = Question.from_dict(
        {
            "id": "s",
            "type": "multiselect",
            "text": {"en": "Symptoms?", "sw": "Dalili?"},
            "choices": [{"en": "cough", "sw": "kikohozi"}, {"en": "fever", "sw": "homa"}, "rash"],
        }
    )
    assert parse_answer(symptoms, "homa, cough").value == ["cough", "fever"]
    assert question_prompt(symptoms, "sw").splitlines()[1:4] == ["1. kikohozi", "2. homa", "3. rash"]


def test_the_definition_reads_back_as_written():
    assert Question.from_dict(PREGNANT.to_dict()) == PREGNANT
    assert PREGNANT.to_dict()["text"]["sw"] == "Una mimba?"
    assert PREGNANT.choices == ["Yes", "No"]


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        ({"text": {}}, "at least one language"),
        ({"text": {"en": "  "}}, "en text is empty"),
        ({"text": {"": "x"}}, "not a language code"),
        ({"choices": [{"sw": "Ndiyo"}, "No"]}, "has no en text"),
        ({"choices": [{"en": "Yes", "sw": "No"}, "No"]}, "also another choice"),
    ],
)
def test_bad_translations_are_refused_naming_the_field(definition, words):
    body = {**PREGNANT.to_dict(), **definition}
    with pytest.raises(ValueError, match=words):
        Question.from_dict(body)
