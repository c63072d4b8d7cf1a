"""A case's conversation as a chat, its section on the case page, and the canned replies page.

- The page shows the thread's latest page (``?before=<message id>`` for older
  ones), a reply box for managers with a live segment and encoding counter, a
  canned-reply picker, and a warning with a confirm box when the number opted
  out. ``pages/conversation.js`` polls ``/cases/<case_id>/conversation/messages``
  (login session, not a token) for what is newer than the last message shown
  and for the messages whose status may still change (``watch``), and puts the
  server-rendered rows in place: one template draws a message, on the page and
  live.
- A refused reply (empty, too long, an opted-out number not confirmed) shows
  the page again with the text kept and the reason flashed, with the refusal's
  status (400, 422); a reply sent goes back to the page (post, redirect, get).
"""

import logging

from flask import abort, flash, get_template_attribute, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup

from messaging.conversations import canned, replies, thread
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.errors import status_of
from messaging.http.lookup import get_or_404, parse_id
from messaging.http.web import REFUSED, bp, commit_or_flash, flash_refusal, require_role
from messaging.http.web.cases import CASE_PAGE_SECTIONS
from messaging.lib import segments
from messaging.lib.segments import count_segments
from messaging.models import CannedReply, Case
from messaging.models.sms import FINAL_STATUSES, MessageStatus
from messaging.sms.serialize import message_json

log = logging.getLogger(__name__)

# Messages on the case page's section; the conversation page shows thread.PAGE_SIZE.
SECTION_SIZE = 20
# The most messages one live update sends, and the most ids it re-reads for their status.
LIVE_BATCH = 100
MAX_WATCHED = 50
# The page's counter counts with segments.py's own alphabet and limits (pages/conversation.js).
SEGMENT_RULES = {
    "gsm7_basic": "".join(sorted(segments.GSM7_BASIC)),
    "gsm7_extension": "".join(sorted(segments.GSM7_EXTENSION)),
    "single": segments.SINGLE_LIMIT,
    "multi": segments.MULTI_LIMIT,
}


def _thread_context(case: Case, page: thread.ThreadPage) -> dict:
    return {
        "case": case,
        "messages": page.messages,
        "older_than": page.older_than,
        "details": thread.thread_details(page.messages),
        "others": thread.cases_sharing_phone(case),
        "last_id": page.messages[-1].id if page.messages else 0,
        # Statuses that no longer change: the live view stops re-reading those messages.
        "settled_statuses": (*FINAL_STATUSES, MessageStatus.RECEIVED.value),
    }


def _page(case: Case, draft: str = "", status: int = 200):
    before = request.args.get("before")
    before_id = parse_id(before) if before else None
    if before and before_id is None:
        abort(400)
    context = _thread_context(case, thread.latest_page(case, before_id))
    context.update(
        live=before_id is None,
        opted_out=replies.opt_out_of(case.phone_number),
        describe_opt_out=replies.describe_opt_out,
        canned_replies=canned.list_canned_replies(),
        draft=draft,
        draft_info=count_segments(draft),
        segment_rules=SEGMENT_RULES,
        max_chars=replies.MAX_REPLY_CHARS,
    )
    return render_template("inbound/conversation.html", **context), status


@bp.route("/cases/<case_id>/conversation")
@login_required
def case_conversation(case_id):
    return _page(get_or_404(Case, case_id, column=Case.case_id))


@bp.route("/cases/<case_id>/conversation/reply", methods=["POST"])
@require_role("manager")
def case_reply(case_id):
    case = get_or_404(Case, case_id, column=Case.case_id)
    if case.deleted:
        abort(404)
    text = request.form.get("text", "")
    try:
        replies.send_reply(
            current_user.project_id,
            case,
            text,
            author_id=current_user.id,
            confirm_opted_out=request.form.get("confirm_opted_out") == "on",
        )
        db.session.commit()
    except DomainError as refusal:
        flash_refusal(refusal)
        return _page(case, draft=replies.normalize_reply_text(text), status=status_of(refusal))
    return redirect(url_for("web.case_conversation", case_id=case.case_id) + "#reply")


def _watched_ids() -> list[int]:
    """The ids in ``?watch=1,2,3`` (at most ``MAX_WATCHED``; anything else is ignored)."""
    ids = (parse_id(raw) for raw in request.args.get("watch", "").split(",")[:MAX_WATCHED])
    return [i for i in ids if i is not None]


@bp.route("/cases/<case_id>/conversation/messages")
@login_required
def case_conversation_messages(case_id):
    """The page's live update: the thread's messages newer than ``after`` (oldest first), and
    the ``watch``ed ones again (their status moves on); each with its row as drawn on the page."""
    case = get_or_404(Case, case_id, column=Case.case_id)
    after = parse_id(request.args.get("after", "0"))
    if after is None:
        abort(400)
    newer = thread.messages_after(case, after, LIVE_BATCH)
    watched = [m for m in thread.messages_among(case, _watched_ids()) if m.id <= after]
    messages = watched + newer
    details = thread.thread_details(messages)
    row = get_template_attribute("inbound/_message.html", "message_row")
    return jsonify(
        {
            "rows": [{"message": message_json(m), "html": str(row(m, details))} for m in messages],
            "last_id": newer[-1].id if newer else after,
        }
    )


def _conversation_section(case: Case):
    page = thread.latest_page(case, size=SECTION_SIZE)
    html = render_template("inbound/_conversation.html", **_thread_context(case, page), compact=True)
    return "Conversation", Markup(html)


CASE_PAGE_SECTIONS.append(_conversation_section)


# --- canned replies ------------------------------------------------------------------


@bp.route("/settings/canned-replies")
@login_required
def canned_replies():
    return render_template("inbound/canned_replies.html", replies=canned.list_canned_replies())


@bp.route("/settings/canned-replies", methods=["POST"])
@require_role("manager")
def canned_reply_add():
    reply = commit_or_flash(
        lambda: canned.create_canned_reply(request.form.get("title"), request.form.get("body"))
    )
    if reply is not REFUSED:
        flash(f"Canned reply '{reply.title}' saved.", "success")
    return redirect(url_for("web.canned_replies"))


@bp.route("/settings/canned-replies/<canned_reply_id>/delete", methods=["POST"])
@require_role("manager")
def canned_reply_delete(canned_reply_id):
    reply = get_or_404(CannedReply, canned_reply_id)
    canned.delete_canned_reply(reply)
    db.session.commit()
    flash(f"Canned reply '{reply.title}' deleted.", "success")
    return redirect(url_for("web.canned_replies"))
