"""Keywords settings page, the inbox and the phone simulator (a case's conversation is ``conversations``).

The simulator posts through ``messaging.inbound.receive.receive_inbound`` (what
``/twilio/inbound`` calls after the signature check), so a simulated text is
stored, enqueued and handled by a worker exactly like a real one. It only runs
with the console gateway: replies are then recorded, never sent as real SMS.
Its ``MessageSid`` is ``SIM`` + a random hex id.
"""

import logging
import uuid

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import func, select

from messaging.conversations import inbox as triage
from messaging.errors import Invalid, NotFound
from messaging.extensions import db
from messaging.gateways import settings as gateway_settings
from messaging.http.lookup import get_or_404, parse_id
from messaging.http.web import REFUSED, bp, commit_or_flash, require_role
from messaging.inbound.conversation import conversation
from messaging.inbound.receive import normalize_sender, receive_inbound
from messaging.inbound.serialize import conversation_message_json
from messaging.lib.redact import mask_phone
from messaging.models import InboundMessage, Keyword, Message, Survey, WebUser
from messaging.sms import e164
from messaging.surveys.project_keywords import create_keyword
from messaging.surveys.settings import inbound_settings, set_command_words, set_default_reply

log = logging.getLogger(__name__)

INBOX_PAGE = 100
PENDING_COUNTED = 1000  # the inbox counts waiting messages up to this many
SIMULATOR_SID_PREFIX = "SIM"


@bp.route("/settings/keywords")
@login_required
def keywords():
    rows = db.session.execute(select(Keyword).order_by(Keyword.keyword)).scalars().all()
    surveys = db.session.execute(select(Survey).order_by(Survey.name)).scalars().all()
    settings = inbound_settings(current_user.project_id)
    own = (settings.command_words if settings is not None else None) or {}
    words = {
        kind: "\n".join(f"{w} {lang}" for w, lang in (own.get(kind) or {}).items())
        for kind in ("opt_out", "opt_in")
    }
    return render_template(
        "inbound/keywords.html", keywords=rows, surveys=surveys, settings=settings, command_words=words
    )


@bp.route("/settings/keywords", methods=["POST"])
@require_role("manager")
def keyword_add():
    body = {
        "keyword": request.form.get("keyword", ""),
        "reply_text": request.form.get("reply_text") or None,
        "survey_id": request.form.get("survey_id") or None,
        "yields_to_session": request.form.get("yields_to_session") == "on",
        "notify_owner": request.form.get("notify_owner") == "on",
    }
    keyword = commit_or_flash(lambda: create_keyword(body))
    if keyword is not REFUSED:
        flash(f"Keyword {keyword.keyword} added.", "success")
    return redirect(url_for("web.keywords"))


@bp.route("/settings/keywords/<keyword_id>/delete", methods=["POST"])
@require_role("manager")
def keyword_delete(keyword_id):
    keyword = get_or_404(Keyword, keyword_id)
    db.session.delete(keyword)
    db.session.commit()
    flash(f"Keyword {keyword.keyword} deleted.", "success")
    return redirect(url_for("web.keywords"))


@bp.route("/settings/keywords/default-reply", methods=["POST"])
@require_role("manager")
def default_reply():
    saved = commit_or_flash(
        lambda: set_default_reply(current_user.project_id, request.form.get("default_reply"))
    )
    if saved is not REFUSED:
        flash("Default reply saved.", "success")
    return redirect(url_for("web.keywords"))


@bp.route("/settings/keywords/command-words", methods=["POST"])
@require_role("manager")
def command_words():
    saved = commit_or_flash(
        lambda: set_command_words(
            current_user.project_id, request.form.get("opt_out_words"), request.form.get("opt_in_words")
        )
    )
    if saved is not REFUSED:
        flash("Opt-out and opt-in words saved.", "success")
    return redirect(url_for("web.keywords"))


@bp.route("/inbox")
@login_required
def inbox():
    """The inbox: one state's items (open by default), newest first, optionally one assignee's."""
    state = request.args.get("state")
    state = state if state in triage.STATES else triage.OPEN
    assignee_arg = (request.args.get("assignee") or "").strip()
    try:
        assignee = triage.read_assignee_filter(assignee_arg, current_user.id)
    except Invalid as refusal:
        flash(refusal.message, "error")
        assignee, assignee_arg = triage.AssigneeFilter(), ""
    stmt = triage.items_query(state=state, assignee=assignee)
    before = parse_id(request.args.get("before", ""))
    if before:
        stmt = stmt.where(Message.id < before)
    messages = db.session.execute(stmt.order_by(Message.id.desc()).limit(INBOX_PAGE + 1)).scalars().all()
    older = messages[INBOX_PAGE - 1].id if len(messages) > INBOX_PAGE else None
    messages = messages[:INBOX_PAGE]
    details = triage.details_of(m.id for m in messages)
    users = (
        db.session.execute(
            select(WebUser).where(WebUser.is_active_user.is_(True)).order_by(WebUser.name, WebUser.email)
        )
        .scalars()
        .all()
    )
    waiting = (
        select(InboundMessage.message_id).where(InboundMessage.handled_at.is_(None)).limit(PENDING_COUNTED)
    )
    pending = db.session.execute(select(func.count()).select_from(waiting.subquery())).scalar_one()
    return render_template(
        "inbound/inbox.html",
        rows=[(m, details[m.id]) for m in messages],
        older=older,
        pending=pending,
        state=state,
        states=triage.STATES,
        state_labels=_STATE_LABELS,
        assignee=assignee_arg,
        users=users,
        actions=_INBOX_ACTIONS[state],
    )


@bp.route("/inbox/<message_id>", methods=["POST"])
@require_role("manager")
def inbox_change(message_id):
    """One item's action from the inbox page: ``state`` (handled, archived, open) or ``assignee``
    (a user id, ``me``, or blank to unassign); then back to the tab and filter it came from."""
    item_id = parse_id(message_id)
    if item_id is None:
        abort(404)
    try:
        triage.get_item(item_id)
    except NotFound:
        abort(404)
    state = request.form.get("state") or None
    assignee_id = _assignee_from_form(request.form.get("assignee"))
    changed = commit_or_flash(
        lambda: triage.change_item(item_id, state=state, assignee_id=assignee_id, by_user_id=current_user.id)
    )
    if changed is not REFUSED:
        flash(str(_INBOX_DONE.get(state, _l("Assignee saved."))), "success")
    tab = request.form.get("tab")
    return redirect(
        url_for(
            "web.inbox",
            state=tab if tab in triage.STATES else None,
            assignee=(request.form.get("filter") or "").strip() or None,
        )
    )


# The buttons each tab's rows get: the state they move the item to, and their label.
_INBOX_ACTIONS = {
    triage.OPEN: [(triage.HANDLED, _l("Mark handled")), (triage.ARCHIVED, _l("Archive"))],
    triage.HANDLED: [(triage.OPEN, _l("Reopen")), (triage.ARCHIVED, _l("Archive"))],
    triage.ARCHIVED: [(triage.OPEN, _l("Reopen"))],
}
_INBOX_DONE = {
    triage.OPEN: _l("Reopened."),
    triage.HANDLED: _l("Marked handled."),
    triage.ARCHIVED: _l("Archived."),
}
# The inbox tabs, by state.
_STATE_LABELS = {triage.OPEN: _l("Open"), triage.HANDLED: _l("Handled"), triage.ARCHIVED: _l("Archived")}


def _assignee_from_form(raw: str | None):
    """The form's ``assignee``: absent keeps it, blank unassigns, ``me`` is the user, digits an id;
    anything else is passed on for the domain to refuse."""
    if raw is None:
        return triage.UNCHANGED
    raw = raw.strip()
    if not raw:
        return None
    if raw == "me":
        return current_user.id
    user_id = parse_id(raw)
    return user_id if user_id is not None else raw


# --- the phone simulator ---------------------------------------------------------------


def _simulator_number(project_id: int) -> str:
    cfg = gateway_settings.gateway_config(project_id)
    return (cfg.from_numbers or ["+10000000000"])[0]


@bp.route("/simulator")
@login_required
def simulator():
    cfg = gateway_settings.gateway_config(current_user.project_id)
    return render_template(
        "inbound/simulator.html", console=cfg.kind == "console", phone=request.args.get("phone", "")
    )


@bp.route("/simulator/send", methods=["POST"])
@require_role("manager")
def simulator_send():
    data = request.get_json(silent=True) or request.form
    project_id = current_user.project_id
    if gateway_settings.gateway_config(project_id).kind != "console":
        return jsonify({"error": "The simulator works with the console gateway only."}), 409
    phone = normalize_sender(project_id, str(data.get("phone") or ""))
    body = str(data.get("body") or "")
    if not e164.E164.match(phone):
        return jsonify({"error": "Enter a phone number like +254712345678."}), 400
    max_chars = current_app.config["INBOUND_MAX_CHARS"]
    if not body.strip() or len(body) > max_chars:
        return jsonify({"error": f"Type a message (at most {max_chars} characters)."}), 400
    sid = SIMULATOR_SID_PREFIX + uuid.uuid4().hex
    message_id, _ = receive_inbound(project_id, phone, _simulator_number(project_id), body, sid)
    log.info(
        "simulator message project_id=%s message_id=%s phone=%s", project_id, message_id, mask_phone(phone)
    )
    return jsonify({"message_id": message_id, "phone": phone})


@bp.route("/simulator/messages")
@login_required
def simulator_messages():
    phone = normalize_sender(current_user.project_id, request.args.get("phone", ""))
    after = request.args.get("after", 0, type=int)
    messages = conversation(phone=phone, after_id=after) if e164.E164.match(phone) else []
    return jsonify(
        {
            "phone": phone,
            "messages": [conversation_message_json(m) for m in messages],
        }
    )
