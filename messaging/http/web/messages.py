"""The messages page (filters, export to .xlsx) and sending one message from it."""

import io
import logging

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from messaging.extensions import db
from messaging.http.web import bp, require_role
from messaging.lib import clock
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import Message
from messaging.models.sms import DIRECTIONS, STATUSES
from messaging.sms.e164 import E164
from messaging.sms.outbox import send_sms
from messaging.sms.queries import message_filters
from messaging.sms.serialize import message_json

log = logging.getLogger(__name__)

PAGE_SIZE = 100
EXPORT_MAX_ROWS = 50_000
EXPORT_COLUMNS = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("direction", "direction"),
    ("case_id", "case_id"),
    ("phone", "phone"),
    ("from", "from"),
    ("body", "body"),
    ("segments", "segments"),
    ("encoding", "encoding"),
    ("status", "status"),
    ("error_code", "error_code"),
    ("error_message", "error_message"),
    ("skip_reason", "skip_reason"),
    ("broadcast_id", "broadcast_id"),
    ("gateway_sid", "gateway_sid"),
    ("attempts", "attempts"),
    ("sent_at", "sent_at"),
    ("delivered_at", "delivered_at"),
    ("failed_at", "failed_at"),
]


def _filters() -> dict:
    status = request.args.get("status") or None
    direction = request.args.get("direction") or None
    return {
        "status": status if status in STATUSES else None,
        "direction": direction if direction in DIRECTIONS else None,
        "case_id": (request.args.get("case_id") or "").strip() or None,
        "broadcast": (request.args.get("broadcast") or "").strip() or None,
    }


@bp.route("/messages")
@login_required
def messages():
    filters = _filters()
    stmt = message_filters(select(Message), **filters)
    before = request.args.get("before", type=int)
    if before:
        stmt = stmt.where(Message.id < before)
    rows = db.session.execute(stmt.order_by(Message.id.desc()).limit(PAGE_SIZE + 1)).scalars().all()
    older = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    return render_template(
        "messages/index.html",
        messages=rows[:PAGE_SIZE],
        filters=filters,
        statuses=STATUSES,
        directions=DIRECTIONS,
        older=older,
        query={k: v for k, v in filters.items() if v},
    )


@bp.route("/messages/export.xlsx")
@login_required
def export_messages():
    """The filtered log as .xlsx (newest first, up to 50,000 rows); text cells are forced to strings."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    filters = _filters()
    stmt = message_filters(select(Message), **filters).order_by(Message.id.desc()).limit(EXPORT_MAX_ROWS)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("messages")
    ws.append([title for title, _ in EXPORT_COLUMNS])
    for message in db.session.execute(stmt).scalars():
        data = message_json(message)
        row = []
        for _, key in EXPORT_COLUMNS:
            value = data.get(key)
            cell = WriteOnlyCell(ws, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # "=..." from a participant stays text, never a formula
            row.append(cell)
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    buffer.seek(0)
    log.info("messages exported user_id=%s filters=%s", current_user.id, filters)
    return send_file(
        buffer,
        mimetype=XLSX_MIMETYPE,
        as_attachment=True,
        download_name=f"messages-{clock.now():%Y%m%d-%H%M}.xlsx",
    )


@bp.route("/messages/send", methods=["POST"])
@require_role("manager")
def send_test_message():
    """Send one SMS from the messages page (e.g. to check the gateway)."""
    phone = (request.form.get("phone") or "").replace(" ", "")
    text = (request.form.get("text") or "").strip()
    if not E164.match(phone):
        flash("Give the number in international format, like +254712345678.", "error")
    elif not text:
        flash("Write the message text.", "error")
    elif len(text) > 1600:
        flash("The text is longer than 1,600 characters.", "error")
    else:
        message_id = send_sms(current_user.project_id, phone, text)
        db.session.commit()
        flash(f"Message {message_id} queued.", "success")
    return redirect(url_for("web.messages"))
