"""The web pages' translations: every text marked in the pages and views is translated in
every shipped language, with the same placeholders (messaging/translations)."""

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from messaging.http.web.locale import UI_LANGUAGES

ROOT = Path(__file__).resolve().parents[3]
TRANSLATIONS = ROOT / "messaging" / "translations"
METHODS = [("messaging/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _marked() -> set:
    return {
        message
        for _, _, message, _, _ in extract_from_dir(str(ROOT), METHODS, keywords=KEYWORDS)
        if message and not str(message).startswith("/")
    }


MARKED = _marked()


def _catalog(language):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=language)


def test_the_pages_mark_their_texts():
    # The navigation, the log-in page, case groups, broadcasts and the inbox.
    for text in ("Case groups", "Log in", "Create group", "New broadcast", "Mark handled", "Inbox"):
        assert text in MARKED, text


@pytest.mark.parametrize("language", sorted(set(UI_LANGUAGES) - {"en"}))
def test_every_marked_text_is_translated_with_its_placeholders(language):
    catalog = _catalog(language)
    assert not catalog.fuzzy
    untranslated, wrong = [], []
    for text in sorted(MARKED, key=str):
        message = catalog.get(text)
        strings = message.string if message else None
        translations = strings if isinstance(strings, tuple) else (strings,)
        if message is None or message.fuzzy or not all(translations):
            untranslated.append(text)
            continue
        sources = text if isinstance(text, tuple) else (text,)
        wanted = set(PLACEHOLDER.findall(" ".join(sources)))
        if any(set(PLACEHOLDER.findall(t)) != wanted for t in translations):
            wrong.append(text)
    assert untranslated == [], f"{language}: run `make translations-update` and translate these"
    assert wrong == [], f"{language}: placeholders differ from the English text"
