"""Keywords settings page, the inbox, a case's conversation and the phone simulator.

The simulator posts through ``messaging.inbound.receive.receive_inbound`` (what
``/twilio/inbound`` calls after the signature check), so a simulated text is
stored, enqueued and handled by a worker exactly like a real one. It only runs
with the console gateway: replies are then recorded, never sent as real SMS.
Its ``MessageSid`` is ``SIM`` + a random hex id.
"""

import logging
import uuid

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import func, select

from messaging.extensions import db
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, require_role
from messaging.http.web.cases import CASE_PAGE_SECTIONS
from messaging.inbound.conversation import conversation
from messaging.inbound.receive import normalize_sender, receive_inbound
from messaging.inbound.serialize import conversation_message_json
from messaging.lib.redact import mask_phone
from messaging.models import Case, InboundMessage, Keyword, Message, Survey
from messaging.sms import e164, gateway_settings
from messaging.surveys.project_keywords import create_keyword
from messaging.surveys.settings import inbound_settings, set_default_reply

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
    return render_template("inbound/keywords.html", keywords=rows, surveys=surveys, settings=settings)


@bp.route("/settings/keywords", methods=["POST"])
@require_role("manager")
def keyword_add():
    body = {
        "keyword": request.form.get("keyword", ""),
        "reply_text": request.form.get("reply_text") or None,
        "survey_id": request.form.get("survey_id") or None,
        "yields_to_session": request.form.get("yields_to_session") == "on",
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


@bp.route("/inbox")
@login_required
def inbox():
    stmt = (
        select(InboundMessage, Message)
        .join(Message, Message.id == InboundMessage.message_id)
        .where(InboundMessage.outcome.in_(("unhandled", "unknown_number")))
    )
    before = request.args.get("before", type=int)
    if before:
        stmt = stmt.where(InboundMessage.message_id < before)
    rows = db.session.execute(stmt.order_by(InboundMessage.message_id.desc()).limit(INBOX_PAGE + 1)).all()
    older = rows[INBOX_PAGE - 1][0].message_id if len(rows) > INBOX_PAGE else None
    waiting = (
        select(InboundMessage.message_id).where(InboundMessage.handled_at.is_(None)).limit(PENDING_COUNTED)
    )
    pending = db.session.execute(select(func.count()).select_from(waiting.subquery())).scalar_one()
    return render_template("inbound/inbox.html", rows=rows[:INBOX_PAGE], older=older, pending=pending)


def _conversation_data(case: Case):
    messages = (
        conversation(phone=case.phone_number, case_pk=case.id)
        if case.phone_number
        else (conversation(case_pk=case.id))
    )
    notes = {}
    ids = [m.id for m in messages if m.direction == "inbound"]
    if ids:
        for row in db.session.execute(
            select(InboundMessage).where(InboundMessage.message_id.in_(ids))
        ).scalars():
            notes[row.message_id] = row
    others = []
    if case.phone_number:
        others = (
            db.session.execute(
                select(Case).where(
                    Case.phone_number == case.phone_number, Case.deleted.is_(False), Case.id != case.id
                )
            )
            .scalars()
            .all()
        )
    return messages, notes, others


@bp.route("/cases/<case_id>/conversation")
@login_required
def case_conversation(case_id):
    case = get_or_404(Case, case_id, column=Case.case_id)
    messages, notes, others = _conversation_data(case)
    return render_template(
        "inbound/conversation.html", case=case, messages=messages, notes=notes, others=others
    )


def _conversation_section(case: Case):
    messages, notes, others = _conversation_data(case)
    html = render_template(
        "inbound/_conversation.html",
        case=case,
        messages=messages[-20:],
        notes=notes,
        others=others,
        compact=True,
    )
    return "Conversation", Markup(html)


CASE_PAGE_SECTIONS.append(_conversation_section)


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
