"""Conditional alert pages: the rules, the rule form with its live preview, a rule's page
(progress, counts, history), pause, resume, delete, the dry run, and the case page's
"Upcoming messages" section.

The form is turned into the same body the API takes, so every rule (and every error
message) comes from :mod:`messaging.alerts`.
"""

import logging

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from messaging.alerts import dry_run, manage, preview, reading, serialize
from messaging.alerts.schedules import project_zone
from messaging.alerts.spec import RECIPIENTS, definition_of
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.errors import status_of
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, flash_refusal, require_role
from messaging.http.web.cases import CASE_PAGE_SECTIONS
from messaging.http.web.criteria import CRITERIA_ROWS, OP_LABELS, criteria_from_form, op_choices
from messaging.models import AlertOccurrence, AlertRule, Case, Survey

log = logging.getLogger(__name__)

HISTORY_ROWS = 100
RECIPIENT_LABELS = {
    "case": "The case (its phone number)",
    "owner": "The case's owner (the mobile worker, or every member of the owning group)",
    "case_and_owner": "Both the case and its owner",
}
REASON_LABELS = {
    "past_due": "Already past when scheduled",
    "no_date": "The case has no date",
    "bad_date": "The case's date is not a date",
    "no_recipient": "Nobody to text",
    "stopped_matching": "The case stopped matching",
    "case_closed": "The case was closed",
    "rule_paused": "The rule was paused",
    "rule_changed": "The rule was changed",
    "rule_deleted": "The rule was deleted",
}


def _rule(alert_id: str) -> AlertRule:
    rule = get_or_404(AlertRule, alert_id)
    if rule.deleted_at is not None:
        abort(404)
    return rule


def body_from_form(form) -> dict:
    """The API body the rule form describes."""
    criteria = criteria_from_form(form)
    body = {
        "name": form.get("name", ""),
        "case_type": form.get("case_type", ""),
        "criteria": criteria,
        "recipient": form.get("recipient", "case"),
        "active": form.get("active") == "on",
        "start": None,
        "repeat": None,
        "quiet_hours": None,
    }
    if form.get("when") == "date":
        body["start"] = {
            "property": form.get("start_property", ""),
            "offset_days": _int_or_text(form.get("offset_days", "0")),
            "time": form.get("start_time") or None,
        }
    if (form.get("repeat_times") or "").strip():
        body["repeat"] = {
            "every_days": _int_or_text(form.get("repeat_every_days", "")),
            "times": _int_or_text(form.get("repeat_times", "")),
        }
        if form.get("repeat_until_completed") == "on":
            body["repeat"]["until_completed"] = True
    if form.get("content") == "survey":
        body.update(text=None, translations={}, survey_id=form.get("survey_id") or "")
    else:
        body.update(text=form.get("text", ""), translations={}, survey_id=None)
    if (form.get("quiet_start") or "").strip() or (form.get("quiet_end") or "").strip():
        body["quiet_hours"] = {"start": form.get("quiet_start", ""), "end": form.get("quiet_end", "")}
    return body


def _int_or_text(raw: str):
    text = (raw or "").strip()
    try:
        return int(text)
    except ValueError:
        return text  # the rule's checks name the field


def _form_values(rule: AlertRule | None) -> dict:
    if rule is None:
        return {"active": True, "recipient": "case", "when": "matching", "content": "text", "criteria": []}
    body = definition_of(rule)
    return {
        **body,
        "when": "date" if rule.start else "matching",
        "content": "survey" if rule.survey_id else "text",
    }


def _values_from_body(body: dict) -> dict:
    return {
        **body,
        "when": "date" if body.get("start") else "matching",
        "content": "survey" if body.get("survey_id") else "text",
    }


def _render_form(rule: AlertRule | None, values: dict, status: int = 200):
    surveys = db.session.execute(select(Survey.id, Survey.name).order_by(Survey.name)).all()
    return (
        render_template(
            "alerts/form.html",
            rule=rule,
            v=values,
            ops=op_choices(),
            recipients=[(r, RECIPIENT_LABELS[r]) for r in RECIPIENTS],
            surveys=surveys,
            criteria_rows=CRITERIA_ROWS,
        ),
        status,
    )


@bp.route("/alerts", endpoint="alerts")
@login_required
def alerts_list():
    found = db.session.execute(
        select(AlertRule).where(AlertRule.deleted_at.is_(None)).order_by(AlertRule.created_at.desc())
    ).scalars()
    return render_template("alerts/index.html", rules=[serialize.rule_json(r) for r in found])


@bp.route("/alerts/new", methods=["GET", "POST"])
@require_role("manager")
def alert_new():
    if request.method == "GET":
        return _render_form(None, _form_values(None))
    body = body_from_form(request.form)
    rule = commit_or_flash(lambda: manage.create_rule(current_user.project_id, body, user_id=current_user.id))
    if rule is REFUSED:
        return _render_form(None, _values_from_body(body), 400)
    flash(f"Rule '{rule.name}' saved; it is being applied to the existing cases.", "success")
    return redirect(url_for("web.alert_detail", alert_id=rule.id))


@bp.route("/alerts/preview", methods=["POST"])
@login_required
def alert_preview():
    """The live preview of the rule form (JSON): what the rule would do now; nothing is saved."""
    try:
        return jsonify(preview.preview_rule(current_user.project_id, body_from_form(request.form)))
    except DomainError as refusal:
        db.session.rollback()
        return jsonify({"error": refusal.message, "field": refusal.details.get("field")}), status_of(refusal)


@bp.route("/alerts/<alert_id>")
@login_required
def alert_detail(alert_id):
    rule = _rule(alert_id)
    # The counts first, then the rows: the rule's job commits occurrences and its progress
    # together, so rows written by the time the counts are read are in the list read after
    # (each SQLite read sees the latest commit).
    body = serialize.rule_json(rule)
    history = db.session.execute(
        select(AlertOccurrence, Case.case_id, Case.name)
        .join(Case, Case.id == AlertOccurrence.case_pk)
        .where(AlertOccurrence.rule_id == rule.id)
        .order_by(AlertOccurrence.updated_at.desc(), AlertOccurrence.id.desc())
        .limit(HISTORY_ROWS)
    ).all()
    return render_template(
        "alerts/show.html",
        rule=rule,
        body=body,
        history=history,
        zone=project_zone(current_user.project_id),
        reasons=REASON_LABELS,
        op_labels=OP_LABELS,
        recipient_labels=RECIPIENT_LABELS,
    )


@bp.route("/alerts/<alert_id>/edit", methods=["GET", "POST"])
@require_role("manager")
def alert_edit(alert_id):
    rule = _rule(alert_id)
    if request.method == "GET":
        return _render_form(rule, _form_values(rule))
    body = body_from_form(request.form)
    if commit_or_flash(lambda: manage.update_rule(rule, body)) is REFUSED:
        return _render_form(rule, _values_from_body(body), 400)
    flash(f"Rule '{rule.name}' saved; the cases' schedules are being brought up to date.", "success")
    return redirect(url_for("web.alert_detail", alert_id=rule.id))


@bp.route("/alerts/<alert_id>/active", methods=["POST"])
@require_role("manager")
def alert_set_active(alert_id):
    rule = _rule(alert_id)
    active = request.form.get("active") == "1"
    if commit_or_flash(lambda: manage.update_rule(rule, {"active": active})) is not REFUSED:
        flash(f"Rule '{rule.name}' {'resumed' if active else 'paused'}.", "success")
    return redirect(url_for("web.alert_detail", alert_id=rule.id))


@bp.route("/alerts/<alert_id>/delete", methods=["POST"])
@require_role("manager")
def alert_delete(alert_id):
    rule = _rule(alert_id)
    name = rule.name
    if commit_or_flash(lambda: manage.delete_rule(rule)) is not REFUSED:
        flash(f"Rule '{name}' deleted; its pending messages are cancelled.", "success")
    return redirect(url_for("web.alerts"))


@bp.route("/alerts/dry-run")
@login_required
def alerts_dry_run():
    try:
        days, _ = dry_run.parse_days({"days": _int_or_text(request.args.get("days", "30"))})
    except DomainError as refusal:
        flash_refusal(refusal)
        days = 30
    plan = dry_run.dry_run(current_user.project_id, days)
    return render_template("alerts/dry_run.html", plan=plan, days=days)


def _upcoming_section(case: Case):
    items = reading.upcoming(case, limit=20)
    html = render_template(
        "alerts/_upcoming.html", items=items, zone=project_zone(current_user.project_id), case=case
    )
    return "Upcoming messages", Markup(html)


CASE_PAGE_SECTIONS.append(_upcoming_section)
