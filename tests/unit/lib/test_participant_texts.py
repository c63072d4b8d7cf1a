"""The system's own survey texts in five languages (messaging.lib.participant_texts)."""

import string

import pytest

from messaging.lib import participant_texts
from messaging.lib.segments import count_segments


def _placeholders(text):
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(participant_texts.TEXTS))
def test_every_key_is_shipped_in_every_language_with_the_english_placeholders(key):
    texts = participant_texts.TEXTS[key]
    assert set(texts) == set(participant_texts.LANGUAGES) == {"en", "fr", "sw", "es", "pt"}
    for language, text in texts.items():
        assert text.strip(), (key, language)
        assert _placeholders(text) == _placeholders(texts["en"]), (key, language)
        assert count_segments(text.format(**dict.fromkeys(_placeholders(text), "12"))).encoding == "GSM-7", (
            key,
            language,
        )


@pytest.mark.parametrize(
    ("language", "expected"),
    [("sw", "sw"), ("fr-CD", "fr"), ("pt_BR", "pt"), ("de", "en"), (None, "en"), ("", "en")],
)
def test_a_language_falls_back_to_its_base_then_english(language, expected):
    assert participant_texts.language_of(language) == expected
    assert (
        participant_texts.say("survey.completed", language)
        == participant_texts.TEXTS["survey.completed"][expected]
    )


def test_a_participant_without_a_language_reads_the_projects_default_before_english():
    texts = participant_texts.TEXTS["survey.completed"]
    swahili_project = participant_texts.Speaker(None, {}, "sw")
    assert swahili_project == "sw"
    assert participant_texts.say("survey.completed", swahili_project) == texts["sw"]
    # A language with nothing shipped reads the default language, not straight English.
    assert participant_texts.say("survey.completed", participant_texts.Speaker("rw", {}, "fr")) == texts["fr"]
    assert participant_texts.resolve("survey.completed", participant_texts.Speaker("de-AT", {}, "pt-BR")) == (
        "pt",
        texts["pt"],
    )


def test_the_projects_own_wordings_come_first_at_each_step_of_the_fallback():
    own = {"survey.completed": {"fr": "Merci beaucoup !", "en": "Thanks a lot!"}}
    assert participant_texts.say("survey.completed", participant_texts.Speaker("rw", own, "fr")) == (
        "Merci beaucoup !"
    )
    # The participant's own language (shipped) still beats the default language's wording.
    assert (
        participant_texts.say("survey.completed", participant_texts.Speaker("sw", own, "fr"))
        == participant_texts.TEXTS["survey.completed"]["sw"]
    )
    # Nothing in rw nor in the default de: the project's English wording.
    assert participant_texts.resolve("survey.completed", participant_texts.Speaker("rw", own, "de")) == (
        "en",
        "Thanks a lot!",
    )
