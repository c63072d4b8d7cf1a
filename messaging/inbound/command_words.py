"""The words that stop, start and ask for help, in each shipped language, and the replies
that confirm them in the same language.

Rules:
- English is always on: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT
  stop; START, UNSTOP, YES start; HELP, INFO ask for help (as at Twilio).
- French, Swahili, Spanish and Portuguese words are shipped beside them, so a participant
  who texts ACHA or ARRET is opted out like one who texts STOP. No word belongs to two
  languages (so the language of the reply is the language of the word).
- A word matches whatever its case and accents: ARRÊT, Arret and arrêt are ARRET.
- A confirmation is written in the language of the word used and names that language's
  words to undo it. Every confirmation is GSM-7 (one SMS for a project name of up to 40
  characters): the accents GSM-7 lacks are left out, as SMS in these languages usually do.
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

# {project} is the project's name; {opt_in} and {opt_out} the language's first words.
CONFIRMATIONS: dict[str, dict[str, str]] = {
    "en": {
        "opt_out": "You have been unsubscribed from {project} messages. Reply {opt_in} to subscribe again.",
        "opt_in": "You are now subscribed to {project} messages. Reply {opt_out} to unsubscribe.",
        "help_suffix": " Reply {opt_out} to unsubscribe.",
        "help_default": "This is the {project} SMS service.",
    },
    "fr": {
        "opt_out": "Vous ne recevrez plus les SMS de {project}. Répondez {opt_in} pour les reprendre.",
        "opt_in": "Vous recevrez de nouveau les SMS de {project}. "
        "Répondez {opt_out} pour ne plus les recevoir.",
        "help_suffix": " Répondez {opt_out} pour ne plus recevoir de messages.",
        "help_default": "Ceci est le service SMS de {project}.",
    },
    "sw": {
        "opt_out": "Umejiondoa kwenye ujumbe wa {project}. Jibu {opt_in} ili kujiunga tena.",
        "opt_in": "Umejiunga tena na ujumbe wa {project}. Jibu {opt_out} ili kujiondoa.",
        "help_suffix": " Jibu {opt_out} ili kujiondoa.",
        "help_default": "Hii ni huduma ya SMS ya {project}.",
    },
    "es": {
        "opt_out": "Se ha dado de baja de los mensajes de {project}. "
        "Responda {opt_in} para volver a suscribirse.",
        "opt_in": "Se ha suscrito de nuevo a los mensajes de {project}. "
        "Responda {opt_out} para darse de baja.",
        "help_suffix": " Responda {opt_out} para darse de baja.",
        "help_default": "Este es el servicio SMS de {project}.",
    },
    "pt": {
        "opt_out": "Voce nao recebera mais mensagens de {project}. Responda {opt_in} para voltar a receber.",
        "opt_in": "Voce voltara a receber mensagens de {project}. Responda {opt_out} para nao receber mais.",
        "help_suffix": " Responda {opt_out} para nao receber mais.",
        "help_default": "Este e o servico de SMS de {project}.",
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


def phrase(language: str, name: str, project: str) -> str:
    """The confirmation text ``name`` of ``language`` (English when it has none) for ``project``."""
    language = language if language in CONFIRMATIONS else ENGLISH
    words = WORDS[language]
    return CONFIRMATIONS[language][name].format(
        project=project, opt_in=words["opt_in"][0], opt_out=words["opt_out"][0]
    )
