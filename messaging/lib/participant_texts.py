"""What the system itself says to participants, in their language.

Rules:
- Every text the system sends that a project's author did not write (the STOP, START
  and HELP confirmations; in a survey the hints under a question, the reason an answer
  was refused, the reminder prefix, the end after too many invalid answers, the
  default thank-you, which of a family phone's cases it is about) has a key here,
  shipped in English, French, Swahili, Spanish and Portuguese.
- A text is looked up in the participant's language, then its base language
  (``fr-CD`` reads ``fr``), then the project's default language (and its base), then
  English: a language without a translation never gets an empty SMS. A project's own
  wordings (:class:`Speaker`) come first at each step.
- The STOP/START/HELP confirmations are texts here too (``confirm.*``); the words they
  name (``{opt_in}``, ``{opt_out}``) are filled in the language the text resolved to.
- The shipped texts keep to the GSM-7 alphabet (one SMS holds 160 characters):
  no accents outside it (Spanish and Portuguese are written without them where
  GSM-7 has none; French keeps é, è, à, ù).
- ``{name}`` placeholders are filled by the caller; every translation of a key
  has the English text's placeholders (a test checks it).
- Pure: no Flask, no database.
"""

from __future__ import annotations

ENGLISH = "en"

TEXTS: dict[str, dict[str, str]] = {
    "confirm.opt_out": {
        "en": "You have been unsubscribed from {project} messages. Reply {opt_in} to subscribe again.",
        "fr": "Vous ne recevrez plus les SMS de {project}. Répondez {opt_in} pour les reprendre.",
        "sw": "Umejiondoa kwenye ujumbe wa {project}. Jibu {opt_in} ili kujiunga tena.",
        "es": "Se ha dado de baja de los mensajes de {project}. Responda {opt_in} para volver a suscribirse.",
        "pt": "Voce nao recebera mais mensagens de {project}. Responda {opt_in} para voltar a receber.",
    },
    "confirm.opt_in": {
        "en": "You are now subscribed to {project} messages. Reply {opt_out} to unsubscribe.",
        "fr": "Vous recevrez de nouveau les SMS de {project}. Répondez {opt_out} pour ne plus les recevoir.",
        "sw": "Umejiunga tena na ujumbe wa {project}. Jibu {opt_out} ili kujiondoa.",
        "es": "Se ha suscrito de nuevo a los mensajes de {project}. Responda {opt_out} para darse de baja.",
        "pt": "Voce voltara a receber mensagens de {project}. Responda {opt_out} para nao receber mais.",
    },
    "confirm.help_suffix": {
        "en": " Reply {opt_out} to unsubscribe.",
        "fr": " Répondez {opt_out} pour ne plus recevoir de messages.",
        "sw": " Jibu {opt_out} ili kujiondoa.",
        "es": " Responda {opt_out} para darse de baja.",
        "pt": " Responda {opt_out} para nao receber mais.",
    },
    "confirm.help_default": {
        "en": "This is the {project} SMS service.",
        "fr": "Ceci est le service SMS de {project}.",
        "sw": "Hii ni huduma ya SMS ya {project}.",
        "es": "Este es el servicio SMS de {project}.",
        "pt": "Este e o servico de SMS de {project}.",
    },
    "survey.which_case": {
        "en": "Is this about {cases}? Reply with the number.",
        "fr": "S'agit-il de {cases} ? Répondez par le numéro.",
        "sw": "Je, hii ni kuhusu {cases}? Jibu kwa namba.",
        "es": "¿Es sobre {cases}? Responda con el numero.",
        "pt": "É sobre {cases}? Responda com o numero.",
    },
    "survey.which_case.invalid": {
        "en": "Please reply with the number of the person this is about.",
        "fr": "Veuillez répondre par le numéro de la personne concernée.",
        "sw": "Tafadhali jibu kwa namba ya mtu anayehusika.",
        "es": "Por favor responda con el numero de la persona de la que se trata.",
        "pt": "Por favor responda com o numero da pessoa em questao.",
    },
    "survey.completed": {
        "en": "Thank you, your answers have been received.",
        "fr": "Merci, vos réponses sont bien arrivées.",
        "sw": "Asante, majibu yako yamepokelewa.",
        "es": "Gracias, hemos recibido sus respuestas.",
        "pt": "Obrigado, recebemos as suas respostas.",
    },
    "survey.too_many_invalid": {
        "en": "Sorry, that was not a valid answer too many times. The survey has ended.",
        "fr": "Désolé, trop de réponses non valides. Le questionnaire est terminé.",
        "sw": "Samahani, majibu yasiyo sahihi mara nyingi mno. Utafiti umekwisha.",
        "es": "Lo sentimos, demasiadas respuestas no validas. La encuesta ha terminado.",
        "pt": "Desculpe, respostas invalidas demais. O questionario terminou.",
    },
    "survey.reminder": {
        "en": "Reminder: {question}",
        "fr": "Rappel : {question}",
        "sw": "Kumbusho: {question}",
        "es": "Recordatorio: {question}",
        "pt": "Lembrete: {question}",
    },
    "survey.hint.date": {
        "en": "(DD/MM/YYYY)",
        "fr": "(JJ/MM/AAAA)",
        "sw": "(siku/mwezi/mwaka)",
        "es": "(DD/MM/AAAA)",
        "pt": "(DD/MM/AAAA)",
    },
    "survey.hint.multiselect": {
        "en": "Send all that apply, e.g. 1 3",
        "fr": "Envoyez toutes celles qui conviennent, ex. 1 3",
        "sw": "Tuma yote yanayohusika, mf. 1 3",
        "es": "Envie todas las que apliquen, ej. 1 3",
        "pt": "Envie todas as que se aplicam, ex. 1 3",
    },
    "survey.hint.skip": {
        "en": "Reply {skip} to skip",
        "fr": "Répondez {skip} pour passer",
        "sw": "Jibu {skip} kuruka",
        "es": "Responda {skip} para omitir",
        "pt": "Responda {skip} para pular",
    },
    "survey.what.whole": {
        "en": "a whole number",
        "fr": "un nombre entier",
        "sw": "namba kamili",
        "es": "un numero entero",
        "pt": "um numero inteiro",
    },
    "survey.what.number": {
        "en": "a number",
        "fr": "un nombre",
        "sw": "namba",
        "es": "un numero",
        "pt": "um numero",
    },
    "survey.error.between": {
        "en": "Please reply with {what} between {low} and {high}.",
        "fr": "Veuillez répondre par {what} entre {low} et {high}.",
        "sw": "Tafadhali jibu kwa {what} kati ya {low} na {high}.",
        "es": "Por favor responda con {what} entre {low} y {high}.",
        "pt": "Por favor responda com {what} entre {low} e {high}.",
    },
    "survey.error.min": {
        "en": "Please reply with {what} of {low} or more.",
        "fr": "Veuillez répondre par {what} d'au moins {low}.",
        "sw": "Tafadhali jibu kwa {what} ya {low} au zaidi.",
        "es": "Por favor responda con {what} de {low} o mas.",
        "pt": "Por favor responda com {what} de {low} ou mais.",
    },
    "survey.error.max": {
        "en": "Please reply with {what} of {high} or less.",
        "fr": "Veuillez répondre par {what} d'au plus {high}.",
        "sw": "Tafadhali jibu kwa {what} ya {high} au chini.",
        "es": "Por favor responda con {what} de {high} o menos.",
        "pt": "Por favor responda com {what} de {high} ou menos.",
    },
    "survey.error.number": {
        "en": "Please reply with {what}.",
        "fr": "Veuillez répondre par {what}.",
        "sw": "Tafadhali jibu kwa {what}.",
        "es": "Por favor responda con {what}.",
        "pt": "Por favor responda com {what}.",
    },
    "survey.error.choice": {
        "en": "Please reply with a number from 1 to {count}.",
        "fr": "Veuillez répondre par un nombre de 1 à {count}.",
        "sw": "Tafadhali jibu kwa namba kuanzia 1 hadi {count}.",
        "es": "Por favor responda con un numero del 1 al {count}.",
        "pt": "Por favor responda com um numero de 1 a {count}.",
    },
    "survey.error.choices": {
        "en": "Please reply with numbers from 1 to {count}, separated by spaces.",
        "fr": "Veuillez répondre par des nombres de 1 à {count}, séparés par des espaces.",
        "sw": "Tafadhali jibu kwa namba kuanzia 1 hadi {count}, zikitenganishwa kwa nafasi.",
        "es": "Por favor responda con numeros del 1 al {count}, separados por espacios.",
        "pt": "Por favor responda com numeros de 1 a {count}, separados por espacos.",
    },
    "survey.error.date": {
        "en": "Please reply with a date like 22/11/2026 (day/month/year).",
        "fr": "Veuillez répondre par une date comme 22/11/2026 (jour/mois/année).",
        "sw": "Tafadhali jibu kwa tarehe kama 22/11/2026 (siku/mwezi/mwaka).",
        "es": "Por favor responda con una fecha como 22/11/2026 (dia/mes/año).",
        "pt": "Por favor responda com uma data como 22/11/2026 (dia/mes/ano).",
    },
    "survey.error.text": {
        "en": "Please reply with an answer.",
        "fr": "Veuillez envoyer une réponse.",
        "sw": "Tafadhali toa jibu.",
        "es": "Por favor envie una respuesta.",
        "pt": "Por favor envie uma resposta.",
    },
    "survey.error.or_skip": {
        "en": " Or reply {skip}.",
        "fr": " Ou répondez {skip}.",
        "sw": " Au jibu {skip}.",
        "es": " O responda {skip}.",
        "pt": " Ou responda {skip}.",
    },
}

LANGUAGES = tuple(TEXTS["survey.completed"])


def language_of(language: str | None) -> str:
    """The shipped language a participant's language reads (exact, then base, then English)."""
    return next((code for code in language_candidates(language) if code in LANGUAGES), ENGLISH)


class Speaker(str):
    """A participant's language code that also carries their project's own wordings
    (``{key: {language: text}}``, ``messaging.projects.texts``) and the project's default
    language: code that only needs the language reads it as the string it is."""

    overrides: dict
    default: str | None

    def __new__(cls, language: str | None, overrides: dict | None = None, default: str | None = None):
        speaker = super().__new__(cls, language or default or "")
        speaker.overrides = overrides or {}
        speaker.default = default
        return speaker


def language_candidates(language: str | None) -> list[str]:
    """A language code as it is looked up: itself, then its base (``fr-CD``: fr-cd, fr)."""
    if not language:
        return []
    code = language.strip().replace("_", "-").lower()
    return list(dict.fromkeys([code, code.split("-", 1)[0]]))


def resolve(key: str, language: str | None = None) -> tuple[str, str]:
    """``(language, template)`` of the text ``key`` for ``language``: the project's own
    wording in that language or its base, else the shipped one (exact, base); then the same
    for the project's default language; then the project's English, else the shipped English."""
    own = (getattr(language, "overrides", None) or {}).get(key) or {}
    shipped = TEXTS[key]
    for wanted in (language, getattr(language, "default", None), ENGLISH):
        codes = language_candidates(wanted)
        for code in codes:
            if own.get(code):
                return code, own[code]
        for code in codes:
            if shipped.get(code):
                return code, shipped[code]
    return ENGLISH, shipped[ENGLISH]


def say(key: str, language: str | None = None, **values) -> str:
    """The text ``key`` for ``language`` (see :func:`resolve`), its placeholders filled."""
    return resolve(key, language)[1].format(**values)
