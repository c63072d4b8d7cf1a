"""A project's settings as one object: what ``GET /api/v1/project`` shows and ``PATCH`` changes.

Rules:
- The object: ``{slug, name, timezone, default_country, languages, default_language,
  daily_sms_limit, sending_windows, default_reply, help_text}`` (:func:`settings_json`).
  ``slug`` and ``languages`` are read-only (the languages follow the texts).
- A PATCH names only what it changes. Every field is checked before anything is
  set, so a refused change changes nothing: the name is 1-200 characters, the
  country and time zone as on the Settings page (``messaging.projects.setup``), the
  default language a language code, ``daily_sms_limit`` a whole number 0 or more
  (0 holds every automated message) or null for none, ``sending_windows`` a list of
  windows (:mod:`messaging.lib.sending_windows`) or null for any time, and the
  default reply as on the keywords page. An unknown or read-only field is 400.
- The guards (limit and windows) act on messages when a send job claims them
  (``messaging.sms.guards``): a change applies to every message not yet sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from messaging.errors import Invalid, field_error
from messaging.lib.sending_windows import (
    WindowError,
    parse_window_lines,
    parse_windows,
    window_lines,
    windows_json,
)
from messaging.models import Project
from messaging.projects import texts
from messaging.projects.setup import change_settings

WRITABLE = (
    "name",
    "timezone",
    "default_country",
    "default_language",
    "daily_sms_limit",
    "sending_windows",
    "default_reply",
    "help_text",
)
READ_ONLY = ("slug", "languages")
MAX_DAILY_LIMIT = 10_000_000


def settings_json(project: Project) -> dict:
    """The project's settings as the API shows them."""
    return {
        "slug": project.slug,
        "name": project.name,
        "timezone": project.timezone,
        "default_country": project.default_country,
        "languages": texts.languages(project.id),
        "default_language": project.default_language,
        "daily_sms_limit": project.daily_sms_limit,
        "sending_windows": windows_json(parse_windows(project.sending_windows)),
        "default_reply": texts.default_reply(project.id, None),
        "help_text": project.help_text,
    }


def clean_daily_limit(raw) -> int | None:
    """A daily limit from input: a whole number from 0, or None (blank) for no limit."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = int(raw.strip()) if isinstance(raw, str) else raw
    except ValueError:
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > MAX_DAILY_LIMIT:
        raise field_error(
            "daily_sms_limit",
            f"must be a whole number from 0 to {MAX_DAILY_LIMIT:,} (or empty for no limit).",
        )
    return value


def clean_windows(raw) -> list[dict] | None:
    """Sending windows from their JSON form, as stored (None: at any time)."""
    try:
        return windows_json(parse_windows(raw))
    except WindowError as exc:
        raise field_error(exc.field, str(exc)) from None


def set_guards(project: Project, daily_sms_limit, sending_windows) -> None:
    """Set both guards from input (checked first); the caller commits."""
    limit, windows = clean_daily_limit(daily_sms_limit), clean_windows(sending_windows)
    project.daily_sms_limit, project.sending_windows = limit, windows


def set_guards_from_page(project: Project, daily_sms_limit: str | None, window_text: str | None) -> None:
    """Set both guards from the Settings page: the limit as typed, the windows one per line
    (``mon-fri 08:00-18:00``). The caller commits."""
    try:
        windows = windows_json(parse_window_lines(window_text or ""))
    except WindowError as exc:
        raise field_error(exc.field, str(exc)) from None
    set_guards(project, daily_sms_limit, windows)


def guards_page_text(project: Project) -> str:
    """The project's windows as the Settings page shows them, one per line."""
    return window_lines(parse_windows(project.sending_windows))


def patch_settings(project: Project, body) -> None:
    """Change the settings ``body`` names; checks everything first. The caller commits."""
    from messaging.surveys.settings import set_default_reply

    if not isinstance(body, Mapping):
        raise Invalid("invalid_json", "The request body must be a JSON object.")
    for key in body:
        if key in READ_ONLY:
            raise field_error(key, "cannot be changed here.")
        if key not in WRITABLE:
            raise field_error(key, f"is not a setting; use one of {', '.join(WRITABLE)}.")
    for key in ("name", "timezone", "default_country", "help_text"):
        if key in body and (not isinstance(body[key], str) or not body[key].strip()):
            raise field_error(key, "must be a non-empty text.")
    if body.get("default_reply") is not None and not isinstance(body["default_reply"], str):
        raise field_error("default_reply", "must be a text or null.")
    if len(body.get("name") or "") > 200:
        raise field_error("name", "at most 200 characters.")
    limit = (
        clean_daily_limit(body["daily_sms_limit"]) if "daily_sms_limit" in body else project.daily_sms_limit
    )
    windows = clean_windows(body["sending_windows"]) if "sending_windows" in body else project.sending_windows
    language = (
        texts.clean_language(body["default_language"], "default_language")
        if "default_language" in body
        else None
    )
    change_settings(
        project,
        name=body.get("name", project.name),
        default_country=body.get("default_country", project.default_country),
        timezone=body.get("timezone", project.timezone),
        help_text=body.get("help_text", project.help_text),
    )
    project.daily_sms_limit, project.sending_windows = limit, windows
    if language is not None:
        texts.set_default_language(project.id, language)
    if "default_reply" in body:
        set_default_reply(project.id, body["default_reply"])
