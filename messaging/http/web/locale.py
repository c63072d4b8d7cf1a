"""The language of the web pages: which one a person reads.

Rules:
- The pages are written in English and shipped in French, Swahili, Spanish and
  Portuguese too (``UI_LANGUAGES``, catalogues in ``messaging/translations``,
  compiled by ``make``): the pages case managers use most (the navigation, log in,
  case groups, broadcasts, the inbox) are translated; a text not translated yet
  reads in English, never blank.
- A logged-in person reads the language they picked (``web_users.language``,
  set from the language menu of every page); otherwise, and before logging in,
  the browser's best match among ``UI_LANGUAGES`` (``Accept-Language``); else
  English.
- What a participant reads by SMS is another matter: the participant texts
  (``messaging.projects.texts``) follow the case's language, not the user's.
"""

from flask import has_request_context, request
from flask_login import current_user

ENGLISH = "en"
# code -> the language's own name (how a reader finds theirs in the menu)
UI_LANGUAGES = {
    "en": "English",
    "fr": "Français",
    "sw": "Kiswahili",
    "es": "Español",
    "pt": "Português",
}


def select_locale() -> str:
    """The language of this request's pages (Flask-Babel's locale selector)."""
    if not has_request_context():  # a page drawn by a job (an e-mail) reads English
        return ENGLISH
    picked = getattr(current_user, "language", None)
    if picked in UI_LANGUAGES:
        return picked
    return request.accept_languages.best_match(list(UI_LANGUAGES), default=ENGLISH)
