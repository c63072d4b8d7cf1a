"""Broadcast pages: the list (upcoming, sending, sent), the composer with its preview,
the live progress page, edit, cancel and delete.

The form is turned into the same body the API takes, so every rule (and every
error message) comes from :mod:`messaging.broadcasts`.
"""

import logging
from datetime import date, datetime, time

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from messaging.broadcasts import manage, reading, serialize
from messaging.broadcasts.preview import preview_broadcast
from messaging.case_groups import groups, resolve
from messaging.cases import filters
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.errors import ApiError
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, flash_refusal, require_role
from messaging.http.web.criteria import CRITERIA_ROWS, criteria_from_form, op_choices
from messaging.http.web.main import DASHBOARD_WIDGETS
from messaging.lib import clock
from messaging.lib.localtime import get_zone, local_to_utc, utc_to_local
from messaging.models import Broadcast, Case, CaseGroup, MobileWorker, Project, Survey, UserGroup

log = logging.getLogger(__name__)

TABS = [
    ("upcoming", _l("Upcoming"), "scheduled"),
    ("sending", _l("Sending"), "sending"),
    ("sent", _l("Sent"), "sent"),
]
TRANSLATION_ROWS = 4
WEEKDAYS = [_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun")]
SKIP_LABELS = {
    "no_phone": _l("No phone number"),
    "invalid_number": _l("Invalid number"),
    "opted_out": _l("Opted out"),
    "closed_case": _l("Closed case"),
    "duplicate_phone": _l("Duplicate phone in this send"),
    "cancelled": _l("Cancelled"),
}


@bp.app_template_filter("localtime")
def localtime_filter(value: datetime | None, zone) -> str:
    """A naive UTC time as the project's wall clock, e.g. ``2026-12-24 07:00 EAT``."""
    if value is None:
        return ""
    return utc_to_local(value, zone).strftime("%Y-%m-%d %H:%M %Z")


def _project() -> Project:
    return db.session.get(Project, current_user.project_id)


def _sends_today_widget() -> str:
    today = reading.sends_today(_project())
    return f"{today['messages']}"


DASHBOARD_WIDGETS.append(("messages sent today", _sends_today_widget))


@bp.route("/broadcasts", endpoint="broadcasts")
@login_required
def broadcasts_list():
    return _list_page(request.args.get("tab") or "upcoming")


WEB_PAGE_SIZE = 50


def _list_page(tab: str):
    wanted = dict((key, status) for key, _, status in TABS) | {"cancelled": "cancelled"}
    status = wanted.get(tab, "scheduled")
    shown, next_key = reading.page_broadcasts(status, _older_key(request.args.get("older")), WEB_PAGE_SIZE)
    if status == "scheduled":
        shown.sort(key=lambda pair: pair[0].next_fire_at or datetime.max)
    by_status = reading.status_counts()
    counts = {key: by_status[status_] for key, status_ in wanted.items()}
    return render_template(
        "broadcasts/index.html",
        items=shown,
        tab=tab if tab in wanted else "upcoming",
        tabs=TABS,
        counts=counts,
        older=f"{next_key[0].isoformat()}|{next_key[1]}" if next_key else None,
        zone=_zone(),
        today=reading.sends_today(_project()),
    )


def _older_key(raw: str | None) -> tuple | None:
    """``?older=<created_at ISO>|<id>``: the last broadcast of the page before (bad values: page 1)."""
    when, _, broadcast_id = (raw or "").partition("|")
    try:
        return (datetime.fromisoformat(when), broadcast_id) if when and broadcast_id else None
    except ValueError:
        return None


# --- the composer -------------------------------------------------------------------


def _zone():
    project = _project()
    return get_zone(project.timezone or "UTC")


def _lines(name: str) -> list[str]:
    raw = request.form.get(name) or ""
    return [part.strip() for part in raw.replace(",", "\n").splitlines() if part.strip()]


def _case_ids_from_identifiers(identifiers: list[str]) -> list[str]:
    """Case IDs for phone numbers, external IDs or case IDs typed in the form."""
    if not identifiers:
        return []
    resolved = resolve.resolve_identifiers(_project(), identifiers)
    case_ids, problems = [], []
    for identifier in identifiers:
        found = resolved[identifier]
        if found.result == "match" and found.case is not None:
            case_ids.append(found.case.case_id)
        elif found.result == "ambiguous":
            problems.append(f"'{identifier}' matches {found.candidate_count} cases")
        else:
            problems.append(f"'{identifier}' is not a case")
    if problems:
        raise ApiError(
            400,
            "validation_error",
            "Single cases: " + "; ".join(problems[:5]) + ". Use a case ID, external ID or phone number.",
        )
    return list(dict.fromkeys(case_ids))


def _local_datetime(day_raw: str, time_raw: str, field: str) -> str:
    try:
        day = date.fromisoformat(day_raw)
        wall = time.fromisoformat(time_raw)
    except ValueError:
        raise ApiError(400, "validation_error", f"{field}: give a date and a time.") from None
    return clock.isoformat(local_to_utc(day, wall, _zone()))


def body_from_form() -> dict:
    """The API body for the composer's fields."""
    form = request.form
    body: dict = {
        "name": form.get("name", ""),
        "recipients": {
            "case_groups": form.getlist("case_groups"),
            "cases": _case_ids_from_identifiers(_lines("cases")),
            "users": form.getlist("users"),
            "groups": form.getlist("groups"),
            "non_responders": form.getlist("non_responders"),
        },
    }
    case_filter = filter_from_form(form)
    if case_filter is not None:
        body["recipients"]["filter"] = case_filter
    content = form.get("content") or "text"
    if content == "survey":
        body["survey_id"] = form.get("survey_id") or None
    elif content == "translations":
        translations = {}
        for i in range(TRANSLATION_ROWS):
            lang = (form.get(f"lang-{i}") or "").strip()
            text = form.get(f"lang-{i}-text") or ""
            if lang or text.strip():
                translations[lang] = text
        body["translations"] = translations
        body["default_language"] = (form.get("default_language") or "").strip() or None
    else:
        body["text"] = form.get("text", "")
    when = form.get("when") or "now"
    if when == "once":
        body["send_at"] = _local_datetime(form.get("send_date", ""), form.get("send_time", ""), "send at")
    elif when == "repeat":
        kind = form.get("repeat_kind") or "daily"
        repeat = {
            "kind": kind,
            "time": form.get("repeat_time") or "",
            "start_date": form.get("start_date") or None,
            "end_date": form.get("end_date") or None,
            "timezone": _project().timezone or "UTC",
        }
        if kind == "weekly":
            repeat["days_of_week"] = [int(d) for d in form.getlist("days_of_week") if _small_number(d)]
        if kind == "monthly":
            raw = (form.get("day_of_month") or "").strip()
            repeat["day_of_month"] = int(raw) if _small_number(raw) else None
        body["repeat"] = repeat
    if form.get("quiet") == "on":
        body["quiet_hours"] = {"start": form.get("quiet_start", ""), "end": form.get("quiet_end", "")}
    return body


def filter_from_form(form) -> dict | None:
    """The recipients' ``filter`` the composer's filter fields describe (None when unused)."""
    case_type = (form.get("filter_case_type") or "").strip()
    criteria = criteria_from_form(form, "filter-criteria")
    if not case_type and not criteria:
        return None
    return {"case_type": case_type, "criteria": criteria}


def _form_values(b: Broadcast | None) -> dict:
    """What the composer shows: the submitted form, or the broadcast being edited."""
    if request.method == "POST":
        values = request.form.to_dict()
        for many in ("case_groups", "users", "groups", "non_responders", "days_of_week"):
            values[many] = request.form.getlist(many)
        values["filter_criteria"] = criteria_from_form(request.form, "filter-criteria")
        return values
    if b is None:
        return {"when": "now", "content": "text", "quiet_start": "08:00", "quiet_end": "20:00"}
    zone = _zone()
    values = {
        "name": b.name,
        "case_groups": b.recipients.get("case_groups") or [],
        "users": b.recipients.get("users") or [],
        "groups": b.recipients.get("groups") or [],
        "non_responders": b.recipients.get("non_responders") or [],
        "cases": "\n".join(b.recipients.get("cases") or []),
        "filter_case_type": (b.recipients.get("filter") or {}).get("case_type") or "",
        "filter_criteria": (b.recipients.get("filter") or {}).get("criteria") or [],
        "content": "survey" if b.survey_id else ("translations" if b.translations else "text"),
        "text": b.text or "",
        "survey_id": b.survey_id or "",
        "default_language": b.default_language or "",
        "quiet": "on" if b.quiet_start else "",
        "quiet_start": b.quiet_start or "08:00",
        "quiet_end": b.quiet_end or "20:00",
    }
    for i, (lang, text) in enumerate((b.translations or {}).items()):
        values[f"lang-{i}"], values[f"lang-{i}-text"] = lang, text
    if b.schedule:
        s = b.schedule
        values.update(
            when="repeat",
            repeat_kind=s.get("kind"),
            repeat_time=s.get("time"),
            start_date=s.get("start_date"),
            end_date=s.get("end_date") or "",
            days_of_week=[str(d) for d in s.get("days_of_week") or []],
            day_of_month=s.get("day_of_month") or "",
        )
    elif b.send_at:
        local = utc_to_local(b.send_at, zone)
        values.update(when="once", send_date=local.date().isoformat(), send_time=local.strftime("%H:%M"))
    else:
        values["when"] = "now"
    return values


def _composer(b: Broadcast | None, preview: dict | None = None, status: int = 200):
    values = _form_values(b)
    options = {
        "case_groups": [(g.id, f"{g.name} ({n})") for g, n in groups.list_groups()],
        "users": [
            (w.id, f"{w.username} ({w.phone_number or 'no phone'})")
            for w in db.session.execute(select(MobileWorker).order_by(MobileWorker.username)).scalars()
        ],
        "groups": [
            (g.id, g.name) for g in db.session.execute(select(UserGroup).order_by(UserGroup.name)).scalars()
        ],
        "surveys": [
            (s.id, s.name) for s in db.session.execute(select(Survey).order_by(Survey.name)).scalars()
        ],
        # Earlier survey broadcasts, newest first: re-ask those who did not finish.
        "non_responders": [
            (sent.id, sent.name)
            for sent in db.session.execute(
                select(Broadcast)
                .where(Broadcast.survey_id.is_not(None), Broadcast.id != (b.id if b else ""))
                .order_by(Broadcast.created_at.desc())
                .limit(50)
            ).scalars()
        ],
    }
    local_now = utc_to_local(clock.now(), _zone())
    return render_template(
        "broadcasts/form.html",
        broadcast=b,
        values=values,
        options=options,
        preview=preview,
        skip_labels=SKIP_LABELS,
        weekdays=WEEKDAYS,
        translation_rows=TRANSLATION_ROWS,
        ops=op_choices(),
        criteria_rows=CRITERIA_ROWS,
        timezone=_project().timezone or "UTC",
        today=local_now.date().isoformat(),
    ), status


@bp.route("/broadcasts/filter-count", methods=["POST"])
@login_required
def broadcast_filter_count():
    """The composer's live count of the cases its filter chooses now: ``{count, text}``, or
    ``{error, field}`` for a filter the broadcast would refuse."""
    case_filter = filter_from_form(request.form)
    if case_filter is None:
        return jsonify({"count": None, "text": ""})
    try:
        clean = filters.parse_filter(case_filter, "recipients.filter")
    except DomainError as refusal:
        return jsonify({"error": refusal.message, "field": refusal.field})
    n = filters.count(clean["case_type"], clean["criteria"])
    text = ngettext("%(num)s open case matches now.", "%(num)s open cases match now.", n)
    return jsonify({"count": n, "text": text})


def _submit(b: Broadcast | None):
    """Preview, or save (create / edit) the broadcast, from the composer's POST."""
    action = request.form.get("action") or "save"
    try:
        body = body_from_form()
        if action == "preview":
            result = preview_broadcast(_project(), body)
            db.session.rollback()
            return _composer(b, preview=result)
        if b is None:
            b = manage.create_broadcast(_project(), body, user_id=current_user.id)
            done = (
                _l("Broadcast '%(name)s' is sending.")
                if b.next_fire_at is None
                else _l("Broadcast '%(name)s' is scheduled.")
            )
        else:
            manage.update_broadcast(_project(), b, body)
            done = _l("Broadcast '%(name)s' was saved.")
        db.session.commit()
    except DomainError as refusal:
        flash_refusal(refusal)
        return _composer(b, status=400)
    flash(str(done) % {"name": b.name}, "success")
    return redirect(url_for("web.broadcast_detail", broadcast_id=b.id))


@bp.route("/broadcasts/new", methods=["GET", "POST"])
@require_role("manager")
def broadcast_new():
    if request.method == "GET":
        return _composer(None)
    return _submit(None)


@bp.route("/broadcasts/<broadcast_id>/edit", methods=["GET", "POST"])
@require_role("manager")
def broadcast_edit(broadcast_id):
    b = get_or_404(Broadcast, broadcast_id)
    if reading.broadcast_status(b) != "scheduled":
        flash("Only a scheduled broadcast can be edited; this one has already started or ended.", "error")
        return redirect(url_for("web.broadcast_detail", broadcast_id=b.id))
    if request.method == "GET":
        return _composer(b)
    return _submit(b)


# --- progress and control -----------------------------------------------------------


def _recipient_names(b: Broadcast) -> dict[str, list[str]]:
    r = b.recipients or {}
    lookups = {
        "case_groups": (CaseGroup.id, CaseGroup.name),
        "cases": (Case.case_id, Case.name),
        "users": (MobileWorker.id, MobileWorker.username),
        "groups": (UserGroup.id, UserGroup.name),
        "non_responders": (Broadcast.id, Broadcast.name),
    }
    names = {}
    if r.get("filter"):
        names["filter"] = [filters.describe(r["filter"]["case_type"], r["filter"].get("criteria") or [])]
    for kind, (key, label) in lookups.items():
        ids = r.get(kind) or []
        if ids:
            found = dict(db.session.execute(select(key, label).where(key.in_(ids))).all())
            names[kind] = [found.get(i) or f"{i} (deleted)" for i in ids]
    return names


@bp.route("/broadcasts/<broadcast_id>")
@login_required
def broadcast_detail(broadcast_id):
    b = get_or_404(Broadcast, broadcast_id)
    data = serialize.broadcast_json(b)
    survey = db.session.get(Survey, b.survey_id) if b.survey_id else None
    return render_template(
        "broadcasts/show.html",
        b=b,
        data=data,
        survey=survey,
        names=_recipient_names(b),
        skip_labels=SKIP_LABELS,
        zone=_zone(),
        weekdays=WEEKDAYS,
    )


@bp.route("/broadcasts/<broadcast_id>/status.json")
@login_required
def broadcast_status_json(broadcast_id):
    return jsonify(serialize.broadcast_json(get_or_404(Broadcast, broadcast_id)))


@bp.route("/broadcasts/<broadcast_id>/cancel", methods=["POST"])
@require_role("manager")
def broadcast_cancel(broadcast_id):
    b = get_or_404(Broadcast, broadcast_id)
    result = manage.cancel_broadcast(b)
    db.session.commit()
    stopped = result.get("messages", 0) if isinstance(result, dict) else 0
    flash(
        gettext(
            "Broadcast '%(name)s' cancelled; %(count)s unsent message(s) will not go out.",
            name=b.name,
            count=stopped,
        ),
        "success",
    )
    return redirect(url_for("web.broadcast_detail", broadcast_id=b.id))


@bp.route("/broadcasts/<broadcast_id>/delete", methods=["POST"])
@require_role("manager")
def broadcast_delete(broadcast_id):
    b = get_or_404(Broadcast, broadcast_id)
    name = b.name
    if commit_or_flash(lambda: manage.delete_broadcast(b)) is REFUSED:
        return redirect(url_for("web.broadcast_detail", broadcast_id=b.id))
    flash(gettext("Broadcast '%(name)s' deleted.", name=name), "success")
    return redirect(url_for("web.broadcasts"))


def _small_number(raw: str) -> bool:
    """ASCII digits, few enough for ``int()`` (``"³".isdigit()`` is true too; the domain checks the range)."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 9
