"""The words that stop, start and ask for help, in each shipped language, and the replies
and the words their confirmations name.

Rules:
- English is always on: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT
  stop; START, UNSTOP, YES start; HELP, INFO ask for help (as at Twilio).
- French, Swahili, Spanish and Portuguese words are shipped beside them, so a participant
  who texts ACHA or ARRET is opted out like one who texts STOP. No word belongs to two
  languages (so the language of the reply is the language of the word).
- A word matches whatever its case and accents: ARRÊT, Arret and arrêt are ARRET.
- A confirmation is written in the language of the word used (its texts are participant
  texts, ``confirm.*`` in ``messaging.lib.participant_texts``, which a project may word
  its own way) and names that language's words to undo it. Every confirmation is GSM-7
  (one SMS for a project name of up to 40 characters): the accents GSM-7 lacks are left
  out, as SMS in these languages usually do.
- A project may add opt-out and opt-in words of its own, each with its language (a
  language with no shipped confirmation confirms in English); they are matched like the
  shipped ones and no project keyword may be one (``messaging.surveys.settings``).
- A project keyword that is also a shipped opt-in or help word of another language than
  English keeps working as the project's keyword (``handle_inbound`` checks); an opt-out
  word always opts out, and no project keyword may be one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

ENGLISH = "en"

# kind -> words, per language; the first opt-in and opt-out words are the ones replies name.
WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "opt_out": ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
        "opt_in": ("START", "UNSTOP", "YES"),
        "help": ("HELP", "INFO"),
    },
    "fr": {
        "opt_out": ("ARRET", "DESABONNER", "DESINSCRIRE"),
        "opt_in": ("DEMARRER", "ABONNER"),
        "help": ("AIDE",),
    },
    "sw": {
        "opt_out": ("ACHA", "SITISHA", "SIMAMISHA"),
        "opt_in": ("ANZA", "JIUNGE"),
        "help": ("MSAADA", "USAIDIZI"),
    },
    "es": {
        "opt_out": ("BAJA", "ALTO", "PARAR", "DETENER"),
        "opt_in": ("ALTA", "INICIAR"),
        "help": ("AYUDA",),
    },
    "pt": {
        "opt_out": ("SAIR", "PARE", "CANCELAR", "DESCADASTRAR"),
        "opt_in": ("ENTRAR", "VOLTAR"),
        "help": ("AJUDA",),
    },
}


@dataclass(frozen=True)
class Command:
    kind: str  # opt_out, opt_in or help
    language: str


def fold(word: str) -> str:
    """``word`` in upper case without its accents (the form words are matched in)."""
    decomposed = unicodedata.normalize("NFKD", word.upper())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _index() -> dict[str, Command]:
    index: dict[str, Command] = {}
    for language, kinds in WORDS.items():
        for kind, words in kinds.items():
            for word in words:
                if word in index:
                    raise ValueError(f"{word} is a command word of two languages")
                index[word] = Command(kind, language)
    return index


COMMANDS_BY_WORD = _index()


def command_for(whole_message: str, project_words: dict | None = None) -> Command | None:
    """The command a whole message (already trimmed) is, or None. ``project_words`` are the
    project's own (``{"opt_out": {WORD: language}, "opt_in": {...}}``, words folded)."""
    word = fold(whole_message)
    found = COMMANDS_BY_WORD.get(word)
    if found is None and project_words:
        for kind in ("opt_out", "opt_in"):
            language = (project_words.get(kind) or {}).get(word)
            if language:
                return Command(kind, language)
    return found


def yields_to_project_keyword(kind: str, language: str) -> bool:
    """Whether a project keyword spelled like this command word takes the message instead:
    another language's opt-in and help words may be project keywords; opt-out words and the
    English words may not (see ``RESERVED_FOR_COMMANDS``)."""
    return kind != "opt_out" and language != ENGLISH


def words_of(kind: str) -> frozenset[str]:
    """Every shipped word of ``kind`` (opt_out, opt_in, help), in every language."""
    return frozenset(word for kinds in WORDS.values() for word in kinds[kind])


# The words no project keyword may be.
RESERVED_FOR_COMMANDS = frozenset(
    word
    for word, command in COMMANDS_BY_WORD.items()
    if not yields_to_project_keyword(command.kind, command.language)
)


def named_words(language: str, project_words: dict | None = None) -> dict[str, str]:
    """The opt-in and opt-out words a confirmation in ``language`` names: the language's
    first shipped words, else the project's first words in that language, else English's."""
    named = {}
    for kind in ("opt_in", "opt_out"):
        if language in WORDS:
            named[kind] = WORDS[language][kind][0]
            continue
        own = [word for word, lang in ((project_words or {}).get(kind) or {}).items() if lang == language]
        named[kind] = own[0] if own else WORDS[ENGLISH][kind][0]
    return named
