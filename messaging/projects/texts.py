"""A project's own wordings of what the system says to participants, by language.

Rules:
- The texts are those of :mod:`messaging.lib.participant_texts` (the STOP/START/HELP
  confirmations, and what a survey session says that its author did not write), shipped
  in en, fr, sw, es and pt. A project may word any of them its own way in any language,
  including languages nothing is shipped in (``rw``, ``lg``, ...): those are the
  project's languages, beside the shipped ones.
- A wording keeps to the English text's placeholders: one naming a placeholder the
  English text does not have is refused with the placeholder named (``{` and ``}``
  must otherwise be balanced placeholders). At most ``MAX_CHARS`` characters; blank
  removes the project's wording (the shipped one, or the fallback, applies again).
- Looking up: the project's wording in the participant's language or its base, else
  the shipped one, else the project's English wording, else the shipped English, so
  no participant ever gets an empty SMS (``participant_texts.say``).
- The page and the API show, for every text and language, the wording that applies and
  where it comes from: ``project``, ``shipped``, or ``missing`` (the fallback's).
- The project's default language (``projects.default_language``) is what a participant
  with no language of their own reads, and the step before English in every fallback.
- The default reply (``reply.default``) is a text only the project writes: Settings ->
  Keywords sets it in the default language (blank: no default reply at all), and a
  wording per language here says it to participants of that language (their language,
  its base, else the default language's). It is sent as written: no placeholders.
- Services flush, never commit.
"""

from __future__ import annotations

import re
import string

from sqlalchemy import delete, select

from messaging.db.after_commit import transaction_cache
from messaging.errors import Invalid, NotFound
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.participant_texts import ENGLISH, LANGUAGES, TEXTS, Speaker, language_candidates, say
from messaging.models import Project, ProjectText

MAX_CHARS = 480
DEFAULT_REPLY = "reply.default"
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


def own_wordings(project_id: int) -> dict[str, dict[str, str]]:
    """``{key: {language: text}}`` of the project, read once per transaction."""
    cache = transaction_cache("project_texts")
    if project_id not in cache:
        found: dict[str, dict[str, str]] = {}
        for key, language, text in db.session.execute(
            select(ProjectText.key, ProjectText.language, ProjectText.text)
        ).all():
            found.setdefault(key, {})[language] = text
        cache[project_id] = found
    return cache[project_id]


def default_language(project_id: int) -> str:
    """The project's default language, read once per transaction."""
    cache = transaction_cache("project_default_language")
    if project_id not in cache:
        cache[project_id] = (
            db.session.execute(select(Project.default_language).where(Project.id == project_id)).scalar()
            or ENGLISH
        )
    return cache[project_id]


def speaker(project_id: int, language: str | None) -> Speaker:
    """``language`` (blank: the project's default) carrying the project's own wordings and its
    default language (what the survey and inbound code pass around)."""
    return Speaker(language, own_wordings(project_id), default_language(project_id))


def languages(project_id: int) -> list[str]:
    """The shipped languages, then the project's others (its default, its wordings' languages)."""
    worded = {lang for texts in own_wordings(project_id).values() for lang in texts}
    extra = sorted((worded | {default_language(project_id)}) - set(LANGUAGES))
    return [*LANGUAGES, *extra]


def set_default_language(project_id: int, raw) -> str:
    """Set the project's default language (a code such as ``sw`` or ``rw``)."""
    language = clean_language(raw, "default_language")
    db.session.get(Project, project_id).default_language = language
    db.session.flush()
    transaction_cache("project_default_language").pop(project_id, None)
    return language


def default_reply(project_id: int, language: str | None) -> str | None:
    """The default reply for a participant reading ``language`` (blank: the default language's),
    or None when the project sends none."""
    return _reply_in(_main_reply(project_id), own_wordings(project_id).get(DEFAULT_REPLY) or {}, language)


def _main_reply(project_id: int) -> str | None:
    """The default reply as Settings -> Keywords sets it (in the default language)."""
    from messaging.surveys.settings import inbound_settings

    settings = inbound_settings(project_id)
    return settings.default_reply if settings is not None else None


def _reply_in(main: str | None, own: dict, language: str | None) -> str | None:
    if not main:
        return None
    return next((own[code] for code in language_candidates(language) if own.get(code)), main)


def _placeholders(text: str, field: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        raise Invalid(
            "validation_error", f"{field}: a '{{' or '}}' that is not a placeholder.", field=field
        ) from None


def clean_language(raw, field: str = "language") -> str:
    language = (raw or "").strip().lower().replace("_", "-") if isinstance(raw, str) else ""
    if not _LANGUAGE.match(language):
        raise Invalid("validation_error", f"{field}: a code such as rw or pt-br.", field=field)
    return language


def set_wordings(project_id: int, language: str, values) -> int:
    """Set (or, blank, remove) the project's wordings of ``values`` (``{key: text}``) in
    ``language``; returns how many were written. Nothing is written when one is refused."""
    language = clean_language(language)
    if not isinstance(values, dict):
        raise Invalid("invalid_json", "Send an object of text keys to wordings.")
    checked = {}
    for key, text in values.items():
        if key not in TEXTS and key != DEFAULT_REPLY:
            raise NotFound("not_found", f"There is no participant text '{key}'.", field=key)
        if text is not None and not isinstance(text, str):
            raise Invalid("validation_error", f"{key}: must be a text or null.", field=key)
        text = (text or "").strip()
        if len(text) > MAX_CHARS:
            raise Invalid("validation_error", f"{key}: at most {MAX_CHARS} characters.", field=key)
        if key == DEFAULT_REPLY:  # sent as written
            checked[key] = text
            continue
        allowed = _placeholders(TEXTS[key]["en"], key)
        unknown = sorted(_placeholders(text, key) - allowed)
        if unknown:
            has = ", ".join("{" + p + "}" for p in sorted(allowed)) or "none"
            raise Invalid(
                "unknown_placeholder",
                f"{key}: {{{unknown[0]}}} is not a placeholder of this text (it has {has}).",
                field=key,
            )
        checked[key] = text
    now = clock.now()
    for key, text in checked.items():
        db.session.execute(
            delete(ProjectText).where(ProjectText.key == key, ProjectText.language == language)
        )
        if text:
            db.session.add(
                ProjectText(project_id=project_id, key=key, language=language, text=text, updated_at=now)
            )
    db.session.flush()
    transaction_cache("project_texts").pop(project_id, None)
    return len(checked)


def table(project_id: int) -> dict:
    """Every text in every language of the project: the wording that applies and its source."""
    own = own_wordings(project_id)
    langs = languages(project_id)
    rows = []
    for key, shipped in TEXTS.items():
        cells = {}
        for lang in langs:
            if (own.get(key) or {}).get(lang):
                source = "project"
            elif lang in shipped:
                source = "shipped"
            else:
                source = "missing"
            example = {name: "{" + name + "}" for name in _placeholders(shipped["en"], key)}
            cells[lang] = {"text": say(key, speaker(project_id, lang), **example), "source": source}
        rows.append({"key": key, "english": shipped["en"], "languages": cells})
    rows.append(_default_reply_row(project_id, langs))
    return {"languages": langs, "default_language": default_language(project_id), "texts": rows}


def _default_reply_row(project_id: int, langs: list[str]) -> dict:
    main = _main_reply(project_id) or ""
    own = own_wordings(project_id).get(DEFAULT_REPLY) or {}
    default = default_language(project_id)
    cells = {}
    for lang in langs:
        source = "project" if own.get(lang) or (lang == default and main) else "missing"
        cells[lang] = {"text": _reply_in(main, own, lang) or "", "source": source}
    return {"key": DEFAULT_REPLY, "english": main, "languages": cells}
