"""A broadcast's definition: the body the API and the web composer send, validated into its fields.

Rules:
- One body for preview, create and edit; a bad one is ``Invalid`` (an unknown
  id ``NotFound``) and names the field at fault.
- An edit (``current`` given) merges the body over the broadcast's definition:
  missing fields keep their current values; content given in the body replaces
  the current content; an edit that gives ``send_at`` or ``repeat`` replaces
  the other.
- **Recipients** are case groups, single cases, mobile workers and user groups
  (their members): at most ``MAX_IDS`` ids of each kind, at least one in all,
  and every id must exist in the project; and/or a ``filter``, ``{case_type,
  criteria}``: the open cases of that type meeting the alert rules' criteria
  (:mod:`messaging.cases.filters`), chosen again at each send. A property no
  case has is allowed (it matches nothing).
- **Content** is exactly one of: an SMS text with placeholders (``{case.name}``,
  ``{case.<property>}``, ``{user.username}``), at most ``MAX_TEXT`` characters;
  translations (language code to text) with a default language that has a
  text; or an SMS survey of the project.
- **When**: now; once at ``send_at``; or ``repeat`` (daily, weekly on chosen
  days, monthly) in local time, stable across DST (:mod:`messaging.lib.schedule`),
  with an end date. ``send_at`` may not be in the past (a minute of slack);
  a schedule's timezone defaults to the project's, its start date to today
  there, and it must have a firing left.
- **Quiet hours** (optional): ``{start, end}``, local times such as 08:00.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from messaging.broadcasts.serialize import definition_json
from messaging.cases import filters
from messaging.errors import Invalid, NotFound, field_error
from messaging.extensions import db
from messaging.lib import clock, schedule, templating
from messaging.lib.localtime import get_zone, utc_to_local
from messaging.lib.quiet_hours import QuietHours
from messaging.models import Broadcast, Case, CaseGroup, MobileWorker, Project, Survey, UserGroup

MAX_TEXT = 1600
MAX_NAME = 200
RECIPIENT_KINDS = ("case_groups", "cases", "users", "groups", "non_responders")
MAX_IDS = 1000
CONTENT_KEYS = ("text", "translations", "survey_id")
BAD_SEND_AT = "must be an ISO 8601 time such as 2026-12-24T07:00:00Z."


def parse_spec(project: Project, body: Mapping[str, Any], current: Broadcast | None = None) -> dict:
    """Validate an API/web body into the broadcast's fields; ``Invalid`` names the field.

    With ``current`` (an edit), missing fields keep their current values.
    """
    if not isinstance(body, Mapping):
        raise Invalid("invalid_json", "The request body must be a JSON object.")
    base = spec_of(current) if current is not None else {}
    merged = {**base, **{k: v for k, v in body.items()}}
    spec: dict[str, Any] = {}

    name = merged.get("name")
    if not isinstance(name, str) or not name.strip():
        raise field_error("name", "is required.")
    if len(name.strip()) > MAX_NAME:
        raise field_error("name", f"must be at most {MAX_NAME} characters.")
    spec["name"] = name.strip()
    spec["recipients"] = parse_recipients(merged.get("recipients"))
    spec.update(parse_content(merged, body if current is not None else None))
    spec.update(parse_timing(project, merged, body if current is not None else None))
    spec.update(parse_quiet_hours(merged.get("quiet_hours")))
    return spec


def spec_of(b: Broadcast) -> dict:
    """The body that would define ``b`` as it is (what an edit's body is merged over)."""
    return {
        **definition_json(b),
        "send_at": clock.isoformat(b.send_at) if b.send_at and not b.schedule else None,
    }


def apply_spec(b: Broadcast, spec: dict) -> None:
    """Set the parsed fields on ``b`` (and its ``updated_at``)."""
    for key, value in spec.items():
        setattr(b, key, value)
    b.updated_at = clock.now()


def parse_content(merged: Mapping, edit_body: Mapping | None) -> dict:
    """Exactly one of text, translations or survey_id (an edit's own content wins over the current)."""
    content = [k for k in CONTENT_KEYS if merged.get(k) not in (None, "", {})]
    if edit_body is not None and any(edit_body.get(k) not in (None, "", {}) for k in CONTENT_KEYS):
        content = [k for k in CONTENT_KEYS if edit_body.get(k) not in (None, "", {})]
    if len(content) != 1:
        raise field_error("text", "give exactly one of text, translations or survey_id.")
    spec: dict[str, Any] = {"text": None, "translations": {}, "default_language": None, "survey_id": None}
    if content == ["text"]:
        spec["text"] = parse_text("text", merged["text"])
    elif content == ["translations"]:
        spec["translations"], spec["default_language"] = parse_translations(
            merged["translations"], merged.get("default_language")
        )
    else:
        spec["survey_id"] = parse_survey_id(merged["survey_id"])
    return spec


def parse_text(field: str, text: Any) -> str:
    """A non-empty SMS text of at most ``MAX_TEXT`` characters whose placeholders are valid."""
    if not isinstance(text, str) or not text.strip():
        raise field_error(field, "must be a non-empty text.")
    if len(text) > MAX_TEXT:
        raise field_error(field, f"must be at most {MAX_TEXT} characters.")
    problems = templating.validate_template(text)
    if problems:
        raise Invalid(
            "invalid_template", f"{field}: {problems[0]}", details={"field": field, "problems": problems}
        )
    return text


def parse_translations(translations: Any, default: Any) -> tuple[dict[str, str], str]:
    """``(translations, default_language)``: the default is ``en`` if given, else the first language."""
    if not isinstance(translations, Mapping) or not translations:
        raise field_error("translations", "must be an object of language code to text.")
    clean = {}
    for lang, text in translations.items():
        if not isinstance(lang, str) or not lang.strip() or len(lang.strip()) > 16:
            raise field_error("translations", f"{lang!r} is not a language code such as en or sw.")
        clean[lang.strip()] = parse_text(f"translations.{lang.strip()}", text)
    default = default or ("en" if "en" in clean else next(iter(clean)))
    if not isinstance(default, str):
        raise field_error("default_language", "must be a language code.")
    try:
        templating.choose_text(clean, default, None)
    except ValueError:
        message = f"there is no text for the default language {default!r}."
        raise field_error("default_language", message) from None
    return clean, default


def parse_survey_id(survey_id: Any) -> str:
    """The id of a survey of the project."""
    if not isinstance(survey_id, str):
        raise field_error("survey_id", "must be a survey id.")
    if db.session.execute(select(Survey.id).where(Survey.id == survey_id)).first() is None:
        raise NotFound("not_found", f"There is no survey '{survey_id}' in this project.", field="survey_id")
    return survey_id


def parse_recipients(raw: Any) -> dict:
    """``{kind: [id, ...]}`` for every kind, ids stripped and deduplicated, each existing;
    and ``filter`` when given."""
    if not isinstance(raw, Mapping):
        raise field_error(
            "recipients", "must be an object with case_groups, cases, users, groups and/or non_responders."
        )
    unknown = [k for k in raw if k not in (*RECIPIENT_KINDS, "filter")]
    if unknown:
        kinds = ", ".join((*RECIPIENT_KINDS, "filter"))
        raise field_error("recipients", f"unknown key {unknown[0]!r}; use {kinds}.")
    case_filter = (
        filters.parse_filter(raw.get("filter"), "recipients.filter")
        if raw.get("filter") not in (None, {})
        else None
    )
    clean: dict = {}
    for kind in RECIPIENT_KINDS:
        ids = raw.get(kind) or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise field_error(f"recipients.{kind}", "must be a list of ids.")
        if len(ids) > MAX_IDS:
            raise field_error(f"recipients.{kind}", f"must list at most {MAX_IDS} ids.")
        clean[kind] = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    if not any(clean.values()) and case_filter is None:
        raise field_error(
            "recipients",
            "choose at least one case group, case, mobile worker, user group, "
            "an earlier broadcast's non-responders or a filter.",
        )
    _check_recipients_exist(clean)
    if not clean["non_responders"]:
        del clean["non_responders"]  # newer kinds are listed only when used: older bodies keep their shape
    if case_filter is not None:
        clean["filter"] = case_filter
    return clean


def _check_recipients_exist(clean: dict[str, list[str]]) -> None:
    lookups = {
        "case_groups": (CaseGroup.id, "case group"),
        "cases": (Case.case_id, "case"),
        "users": (MobileWorker.id, "mobile worker"),
        "groups": (UserGroup.id, "user group"),
        "non_responders": (Broadcast.id, "broadcast"),
    }
    for kind, (column, label) in lookups.items():
        if not clean.get(kind):
            continue
        found = set(db.session.execute(select(column).where(column.in_(clean[kind]))).scalars())
        missing = [i for i in clean[kind] if i not in found]
        if missing:
            raise NotFound(
                "not_found",
                f"There is no {label} '{missing[0]}' in this project.",
                details={"field": f"recipients.{kind}", "ids": missing[:20]},
            )


def parse_timing(project: Project, merged: Mapping, edit_body: Mapping | None) -> dict:
    """``schedule``, ``send_at`` and ``next_fire_at`` (None: send now) from ``send_at`` or ``repeat``."""
    now = clock.now()
    send_at_raw, repeat = merged.get("send_at"), merged.get("repeat")
    if edit_body is not None:  # an edit that gives one of them replaces the other
        if edit_body.get("send_at") not in (None, ""):
            repeat = None
        elif edit_body.get("repeat") not in (None, {}):
            send_at_raw = None
    if send_at_raw not in (None, "") and repeat not in (None, {}):
        raise field_error("send_at", "give send_at (once) or repeat (a schedule), not both.")
    if repeat not in (None, {}):
        return _parse_repeat(project, repeat, now)
    if send_at_raw not in (None, ""):
        return _parse_send_at(send_at_raw, now)
    return {"schedule": None, "send_at": None, "next_fire_at": None}


def _parse_repeat(project: Project, repeat: Any, now: datetime) -> dict:
    if not isinstance(repeat, Mapping):
        raise field_error("repeat", "must be a schedule object.")
    data = dict(repeat)
    data.setdefault("timezone", project.timezone or "UTC")
    if data.get("start_date") in (None, ""):
        zone = data["timezone"] if isinstance(data["timezone"], str) and _zone_ok(data["timezone"]) else "UTC"
        data["start_date"] = utc_to_local(now, get_zone(zone)).date().isoformat()
    try:
        rec = schedule.from_dict(data)
    except schedule.RecurrenceError as exc:
        field = f"repeat.{exc.field}" if exc.field else "repeat"
        raise field_error(field, str(exc).split(": ", 1)[-1]) from None
    first = schedule.next_firing(rec, now)
    if first is None:
        raise field_error("repeat", "this schedule has no firing left (its end date has passed).")
    return {"schedule": schedule.to_dict(rec), "send_at": None, "next_fire_at": first}


def _parse_send_at(send_at_raw: Any, now: datetime) -> dict:
    if not isinstance(send_at_raw, str):
        raise field_error("send_at", BAD_SEND_AT)
    try:
        send_at = clock.parse_iso(send_at_raw)
    except ValueError:
        raise field_error("send_at", BAD_SEND_AT) from None
    if send_at < now - timedelta(seconds=60):
        raise field_error("send_at", "is in the past; leave it out to send now.")
    return {"schedule": None, "send_at": send_at, "next_fire_at": max(send_at, now)}


def _zone_ok(name: str) -> bool:
    try:
        get_zone(name)
    except ValueError:
        return False
    return True


def parse_quiet_hours(raw: Any) -> dict:
    """``quiet_start`` and ``quiet_end`` as ``HH:MM`` (both None without quiet hours)."""
    if raw in (None, {}, ""):
        return {"quiet_start": None, "quiet_end": None}
    if not isinstance(raw, Mapping):
        raise field_error("quiet_hours", "must be an object {start, end} with local times such as 08:00.")
    parsed = {}
    for key in ("start", "end"):
        value = raw.get(key)
        try:
            hour, minute = (int(p) for p in str(value).strip().split(":"))
            parsed[key] = time(hour, minute)
        except (ValueError, TypeError):
            raise field_error(f"quiet_hours.{key}", "must be a local time such as 08:00.") from None
    try:
        QuietHours(parsed["start"], parsed["end"])
    except ValueError as exc:
        raise field_error("quiet_hours", str(exc)) from None
    return {"quiet_start": parsed["start"].strftime("%H:%M"), "quiet_end": parsed["end"].strftime("%H:%M")}


def quiet_window(b: Broadcast) -> QuietHours | None:
    """The broadcast's quiet hours as a window (None without them)."""
    if not b.quiet_start or not b.quiet_end:
        return None
    start, end = (time(*map(int, v.split(":"))) for v in (b.quiet_start, b.quiet_end))
    return QuietHours(start, end)
