"""The "Data forwarding" pages (linked from Settings): locations, records and attempts, failures first."""

import logging

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import case, select

from messaging.extensions import db
from messaging.forwarding.locations import (
    create_location,
    delete_location,
    masked_headers,
    status_counts,
    update_location,
)
from messaging.forwarding.resend import cancel_record, resend_failed, resend_record
from messaging.http.errors import ApiError
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, require_role
from messaging.models import ForwardAttempt, ForwardLocation, ForwardRecord, OutboundEmail
from messaging.models.forwarding import EVENT_NAMES

log = logging.getLogger(__name__)

RECORDS_SHOWN = 100
ATTEMPTS_SHOWN = 100


def _failures_first(attempts):
    return sorted(attempts, key=lambda a: (a.succeeded, -a.id))


def _parse_headers(text: str) -> dict:
    headers = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ApiError(
                400, "validation_error", f"headers: line {number} must look like 'Name: value'.", {}
            )
        headers[name.strip()] = value.strip()
    return headers


@bp.route("/settings/forwarding", endpoint="forwarding")
@login_required
def forwarding_index():
    locations = (
        db.session.execute(select(ForwardLocation).order_by(ForwardLocation.created_at, ForwardLocation.id))
        .scalars()
        .all()
    )
    counts = status_counts([loc.id for loc in locations])
    attempts = (
        db.session.execute(select(ForwardAttempt).order_by(ForwardAttempt.id.desc()).limit(ATTEMPTS_SHOWN))
        .scalars()
        .all()
    )
    return render_template(
        "forwarding/index.html",
        locations=locations,
        counts=counts,
        attempts=_failures_first(attempts),
        urls={loc.id: loc.url for loc in locations},
        masked=masked_headers,
        event_names=EVENT_NAMES,
    )


@bp.route("/settings/forwarding", methods=["POST"])
@require_role("manager")
def forwarding_create():
    form = request.form
    location = commit_or_flash(
        lambda: create_location(
            form.get("url", ""),
            form.get("kind", ""),
            headers=_parse_headers(form.get("headers", "")),
            notify_emails=form.get("notify_emails", ""),
            name=form.get("name", ""),
            events=form.getlist("events") if form.get("kind") == "events" else None,
        )
    )
    if location is REFUSED:
        return redirect(url_for("web.forwarding"))
    flash(f"Forwarding {location.kind} to {location.url}.", "success")
    return redirect(url_for("web.forwarding_location", forwarding_id=location.id))


@bp.route("/settings/forwarding/<forwarding_id>")
@login_required
def forwarding_location(forwarding_id):
    location = get_or_404(ForwardLocation, forwarding_id)
    # Failures first: records that gave up, then those waiting for a retry, then the rest, newest first.
    rank = case(
        (ForwardRecord.status == "failed", 0),
        ((ForwardRecord.status == "pending") & ForwardRecord.last_error.is_not(None), 1),
        (ForwardRecord.status.in_(("pending", "sending")), 2),
        else_=3,
    )
    records = (
        db.session.execute(
            select(ForwardRecord)
            .where(ForwardRecord.location_id == location.id)
            .order_by(rank, ForwardRecord.id.desc())
            .limit(RECORDS_SHOWN)
        )
        .scalars()
        .all()
    )
    attempts = (
        db.session.execute(
            select(ForwardAttempt)
            .where(ForwardAttempt.location_id == location.id)
            .order_by(ForwardAttempt.id.desc())
            .limit(ATTEMPTS_SHOWN)
        )
        .scalars()
        .all()
    )
    emails = (
        db.session.execute(
            select(OutboundEmail)
            .where(OutboundEmail.topic == f"forward_location:{location.id}")
            .where(OutboundEmail.project_id == location.project_id)
            .order_by(OutboundEmail.id.desc())
            .limit(10)
        )
        .scalars()
        .all()
    )
    return render_template(
        "forwarding/location.html",
        location=location,
        counts=status_counts([location.id])[location.id],
        records=records,
        attempts=_failures_first(attempts),
        emails=emails,
        headers=masked_headers(location.headers),
    )


def _back(location_id: str):
    return redirect(url_for("web.forwarding_location", forwarding_id=location_id))


@bp.route("/settings/forwarding/<forwarding_id>/pause", methods=["POST"])
@require_role("manager")
def forwarding_pause(forwarding_id):
    return _set_paused(forwarding_id, True, "Paused: new records are kept and sent when you resume.")


@bp.route("/settings/forwarding/<forwarding_id>/resume", methods=["POST"])
@require_role("manager")
def forwarding_resume(forwarding_id):
    return _set_paused(forwarding_id, False, "Resumed: waiting records are being sent, oldest first.")


def _set_paused(forwarding_id: str, paused: bool, done: str):
    location = get_or_404(ForwardLocation, forwarding_id)
    update_location(location, {"paused": paused})
    db.session.commit()
    flash(done, "success")
    return _back(location.id)


@bp.route("/settings/forwarding/<forwarding_id>/resend-failed", methods=["POST"])
@require_role("manager")
def forwarding_resend_failed(forwarding_id):
    location = get_or_404(ForwardLocation, forwarding_id)
    count = resend_failed(location)
    db.session.commit()
    flash(f"{count} failed record(s) queued again.", "success" if count else "info")
    return _back(location.id)


@bp.route("/settings/forwarding/<forwarding_id>/delete", methods=["POST"])
@require_role("manager")
def forwarding_delete(forwarding_id):
    location = get_or_404(ForwardLocation, forwarding_id)
    url = location.url
    delete_location(location)
    db.session.commit()
    flash(f"Forwarding to {url} deleted.", "success")
    return redirect(url_for("web.forwarding"))


@bp.route("/settings/forwarding/records/<int:forward_record_id>/resend", methods=["POST"])
@require_role("manager")
def forwarding_record_resend(forward_record_id):
    return _act_on_record(forward_record_id, resend_record, "queued again")


@bp.route("/settings/forwarding/records/<int:forward_record_id>/cancel", methods=["POST"])
@require_role("manager")
def forwarding_record_cancel(forward_record_id):
    return _act_on_record(forward_record_id, cancel_record, "cancelled")


def _act_on_record(forward_record_id: int, action, done: str):
    """Resend or cancel one record; a refusal is flashed, not raised."""
    record = get_or_404(ForwardRecord, forward_record_id)
    if commit_or_flash(lambda: action(record)) is not REFUSED:
        flash(f"Record {record.id} {done}.", "success")
    return _back(record.location_id)
