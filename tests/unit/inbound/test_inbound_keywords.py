"""Inbound SMS classification (opt-out/in, help, keywords) and the confirmation replies."""

import pytest

from messaging.inbound.keywords import (
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    Classification,
    classify,
    confirmation_text,
)
from messaging.lib.participant_texts import Speaker
from messaging.lib.segments import GSM7, count_segments
from messaging.lib.text import clean_text


def test_word_lists():
    from messaging.inbound.command_words import WORDS

    english = WORDS["en"]
    assert set(english["opt_out"]) == {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    }
    assert set(english["opt_in"]) == {"START", "UNSTOP", "YES"}
    assert set(english["help"]) == {"HELP", "INFO"}
    # The shipped languages' words count too.
    assert {"STOP", "ARRET", "ACHA", "BAJA", "SAIR"} <= OPT_OUT_WORDS
    assert {"START", "DEMARRER", "ANZA", "ALTA", "ENTRAR"} <= OPT_IN_WORDS
    assert {"HELP", "AIDE", "MSAADA", "AYUDA", "AJUDA"} <= HELP_WORDS
    assert not (OPT_OUT_WORDS & OPT_IN_WORDS or OPT_OUT_WORDS & HELP_WORDS or OPT_IN_WORDS & HELP_WORDS)


@pytest.mark.parametrize(
    ("text", "kind", "language"),
    [
        ("ACHA", "opt_out", "sw"),
        ("acha.", "opt_out", "sw"),
        ("Arrêt", "opt_out", "fr"),
        ("ARRET!", "opt_out", "fr"),
        ("désabonner", "opt_out", "fr"),
        ("Baja", "opt_out", "es"),
        ("PARAR", "opt_out", "es"),
        ("sair", "opt_out", "pt"),
        ("Anza", "opt_in", "sw"),
        ("Démarrer", "opt_in", "fr"),
        ("ayuda", "help", "es"),
        ("STOP", "opt_out", "en"),
        ("yes", "opt_in", "en"),
    ],
)
def test_shipped_languages_words_are_commands_in_their_language(text, kind, language):
    got = classify(text)
    assert (got.kind, got.language, got.rest) == (kind, language, "")


def test_a_shipped_word_inside_a_sentence_is_a_keyword_message():
    got = classify("acha kunitumia")
    assert (got.kind, got.word, got.rest) == ("keyword", "ACHA", "kunitumia")


@pytest.mark.parametrize(
    ("words", "kind"), [(OPT_OUT_WORDS, "opt_out"), (OPT_IN_WORDS, "opt_in"), (HELP_WORDS, "help")]
)
@pytest.mark.parametrize(
    "spelling",
    [
        lambda w: w,
        str.lower,
        str.capitalize,
        lambda w: f"  {w}  ",
        lambda w: f"{w}.",
        lambda w: f"{w.capitalize()}!",
        lambda w: f"{w}?!",
        lambda w: f'"{w}"',
        lambda w: f"*{w}*",
        lambda w: f"\u00a0{w}\u00a0",  # NBSP
        lambda w: f"\u200b{w[:1]}\u200d{w[1:]}\ufeff",  # zero-width marks, even inside the word
        lambda w: f"\n{w}\r\n",
        lambda w: f"{w} \U0001f64f",  # an emoji after it
        lambda w: "".join(chr(ord(c) + 0xFEE0) for c in w),  # full-width letters
    ],
    ids=[
        "upper",
        "lower",
        "capital",
        "spaces",
        "dot",
        "bang",
        "punct",
        "quoted",
        "stars",
        "nbsp",
        "zero-width",
        "newlines",
        "emoji",
        "full-width",
    ],
)
def test_whole_message_commands(words, kind, spelling):
    for word in words:
        got = classify(spelling(word))
        assert (got.kind, got.word, got.rest) == (kind, word, "")


KEYWORD_CASES = [
    ("STOP please", "STOP", "please"),  # not the whole message: the caller decides
    ("stop sending me these", "STOP", "sending me these"),
    ("Yes I agree", "YES", "I agree"),
    ("help me", "HELP", "me"),
    ("STOP STOP", "STOP", "STOP"),
    ("opt out", "OPT", "out"),
    ("join", "JOIN", ""),
    ("Join, please", "JOIN", "please"),
    ("register  Amina   Otieno 1990", "REGISTER", "Amina Otieno 1990"),  # runs of spaces collapsed
    ("reg\tAmina", "REG", "Amina"),
    ("REPORT 12\nfever cough", "REPORT", "12\nfever cough"),
    ("\u00a0survey\u00a0now", "SURVEY", "now"),
    ("1", "1", ""),
    ("3 5", "3", "5"),
    ("?? what", "??", "what"),
    ("...", "...", ""),
    ("STOPP", "STOPP", ""),
    ("S T O P", "S", "T O P"),
    ("naïve café", "NAÏVE", "café"),
    ("\U0001f600", "\U0001f600", ""),
]


@pytest.mark.parametrize(("body", "word", "rest"), KEYWORD_CASES)
def test_keyword_messages(body, word, rest):
    assert classify(body) == Classification("keyword", word, rest)


@pytest.mark.parametrize("body", ["", "   ", "\n\t", "\u00a0", "\u200b\ufeff", None])
def test_empty(body):
    assert classify(body) == Classification("empty", "", "")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, ""),
        ("", ""),
        ("  a  ", "a"),
        ("a\u00a0\u202f b", "a b"),
        ("a\u200bb\u00ad", "ab"),
        ("line1\nline2", "line1\nline2"),
        ("\ufeffSTOP\u2060", "STOP"),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


# --- confirmations --------------------------------------------------------------


def test_confirmation_texts():
    assert confirmation_text("opt_out", "Clinic Reminders", "") == (
        "You have been unsubscribed from Clinic Reminders messages. Reply START to subscribe again."
    )
    assert confirmation_text("opt_in", "Clinic Reminders", "") == (
        "You are now subscribed to Clinic Reminders messages. Reply STOP to unsubscribe."
    )
    assert confirmation_text("help", "Clinic Reminders", "Call 0800 123 456 for help.") == (
        "Call 0800 123 456 for help. Reply STOP to unsubscribe."
    )


def test_help_without_text_describes_the_project():
    assert (
        confirmation_text("help", "Clinic", "  ")
        == "This is the Clinic SMS service. Reply STOP to unsubscribe."
    )
    assert (
        confirmation_text("help", "Clinic", None)
        == "This is the Clinic SMS service. Reply STOP to unsubscribe."
    )


def test_names_and_help_are_tidied():
    assert confirmation_text("opt_in", "  Clinic \n Reminders ", "").startswith(
        "You are now subscribed to Clinic Reminders messages."
    )
    assert confirmation_text("help", "X", "Call\n\nus  now") == "Call us now Reply STOP to unsubscribe."


NAMES = [
    "A",
    "x" * 40,
    "Kisumu County Maternal Health Programme!",
    "{[Project]} ~^|€ with extension chars ab",  # 40 characters, several costing 2 septets
    "€" * 40,
]
HELPS = ["", "Short help.", "word " * 100, "x" * 400, "{}" * 200, "Help: call 0800 123 456 " * 10]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("help_text", HELPS)
@pytest.mark.parametrize("kind", ["opt_out", "opt_in", "help"])
def test_confirmations_fit_one_sms(kind, name, help_text):
    assert len(name) <= 40
    text = confirmation_text(kind, name, help_text)
    info = count_segments(text)
    assert info.encoding == GSM7
    assert info.units <= 160
    assert info.segments == 1
    undo = {"opt_out": "Reply START to subscribe again.", "opt_in": "Reply STOP to unsubscribe."}
    assert text.endswith(undo.get(kind, "Reply STOP to unsubscribe."))


UNDO_SENTENCES = {
    "fr": {
        "opt_out": "Répondez DEMARRER pour les reprendre.",
        "opt_in": "Répondez ARRET pour ne plus les recevoir.",
    },
    "sw": {"opt_out": "Jibu ANZA ili kujiunga tena.", "opt_in": "Jibu ACHA ili kujiondoa."},
    "es": {
        "opt_out": "Responda ALTA para volver a suscribirse.",
        "opt_in": "Responda BAJA para darse de baja.",
    },
    "pt": {
        "opt_out": "Responda ENTRAR para voltar a receber.",
        "opt_in": "Responda SAIR para nao receber mais.",
    },
}
HELP_SUFFIXES = {
    "fr": "Répondez ARRET pour ne plus recevoir de messages.",
    "sw": "Jibu ACHA ili kujiondoa.",
    "es": "Responda BAJA para darse de baja.",
    "pt": "Responda SAIR para nao receber mais.",
}


@pytest.mark.parametrize("language", sorted(UNDO_SENTENCES))
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("help_text", ["", "word " * 100, "Help: call 0800 123 456 " * 10])
@pytest.mark.parametrize("kind", ["opt_out", "opt_in", "help"])
def test_each_shipped_language_confirms_in_one_sms_naming_its_own_undo_word(language, kind, name, help_text):
    text = confirmation_text(kind, name, help_text, language)
    info = count_segments(text)
    assert (info.encoding, info.segments) == (GSM7, 1) and info.units <= 160
    assert text.endswith(UNDO_SENTENCES[language].get(kind, HELP_SUFFIXES[language]))
    if kind != "help" or not help_text:
        assert " ".join(name.split()) in text


def test_an_unknown_language_confirms_in_english():
    assert confirmation_text("opt_out", "Clinic", "", "xx") == confirmation_text("opt_out", "Clinic", "")


def test_a_projects_wording_of_a_confirmation_names_the_words_of_the_language_it_is_written_in():
    own = {"confirm.opt_out": {"rw": "Ntuzongera kubona ubutumwa bwa {project}. Andika {opt_in} kugaruka."}}
    words = {"opt_out": {"HAGARIKA": "rw"}, "opt_in": {"TANGIRA": "rw"}}
    kinyarwanda = Speaker("rw", own)
    assert confirmation_text("opt_out", "Clinic", "", kinyarwanda, words) == (
        "Ntuzongera kubona ubutumwa bwa Clinic. Andika TANGIRA kugaruka."
    )
    # No rw wording of the opt-in confirmation: English's text, naming English's word.
    assert confirmation_text("opt_in", "Clinic", "", kinyarwanda, words) == (
        "You are now subscribed to Clinic messages. Reply STOP to unsubscribe."
    )
    # A French project: what has no rw wording is said in French, naming French words.
    assert confirmation_text("opt_in", "Clinic", "", Speaker("rw", own, "fr"), words).endswith(
        "Répondez ARRET pour ne plus les recevoir."
    )
    assert confirmation_text("help", "Clinic", "", Speaker("rw", own, "fr"), words) == (
        "Ceci est le service SMS de Clinic. Répondez ARRET pour ne plus recevoir de messages."
    )


def test_long_help_is_cut_at_a_word():
    text = confirmation_text("help", "X", "Call the clinic on 0800 123 456 any weekday. " * 6)
    body = text.removesuffix(" Reply STOP to unsubscribe.")
    assert body.endswith("...")
    assert body[:-3].split(" ")[-1] in "Call the clinic on 0800 123 456 any weekday".split()


def test_non_gsm_help_is_bounded_on_characters():
    text = confirmation_text("help", "X", "Piga simu 📞 " * 30)
    assert len(text) <= 160
    assert text.endswith("... Reply STOP to unsubscribe.")


def test_unknown_kind():
    with pytest.raises(ValueError, match="keyword"):
        confirmation_text("keyword", "X", "")
