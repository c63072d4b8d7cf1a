"""Failure e-mails: telling a location's addresses about records that gave up.

Rules:
- When records give up, the location's ``notify_emails`` get ONE e-mail listing them
  (the first 20, then "... and N more"), and then at most one per
  ``FORWARDING_NOTIFY_INTERVAL`` (1 h) per location; records that give up in between
  are reported by the next e-mail (the sweep sends it once the interval has passed),
  so a dead endpoint does not send one e-mail per record and no failure goes
  unreported.
- The interval is claimed with one conditional update of the location, so two
  senders never both e-mail.
- A location without addresses records its give-ups as reported (``notified_at``)
  and logs them; nobody is e-mailed.
- The e-mail links to the location's data forwarding page under ``PUBLIC_BASE_URL``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, or_, select, update

from messaging.extensions import db
from messaging.forwarding.dispatch import retry_delays
from messaging.forwarding.locations import location_in_any_project
from messaging.lib import clock
from messaging.models import ForwardLocation, ForwardRecord
from messaging.notifications.mail import send_mail

log = logging.getLogger(__name__)

LISTED = 20


def page_url(location_id: str) -> str:
    """The location's data forwarding page, for an e-mail."""
    base = current_app.config.get("PUBLIC_BASE_URL") or ""
    return f"{base}/settings/forwarding/{location_id}"


def gave_up_unreported() -> tuple:
    """The conditions of records that gave up and were not reported yet."""
    return ForwardRecord.status == "failed", ForwardRecord.notified_at.is_(None)


def _unreported(location_id: str):
    return (
        select(ForwardRecord)
        .where(ForwardRecord.location_id == location_id)
        .where(*gave_up_unreported())
        .execution_options(all_projects=True)
    )


def _claim_interval(location_id: str, now) -> bool:
    """Note an e-mail going out now, unless one went out less than the interval ago."""
    interval = timedelta(seconds=int(current_app.config.get("FORWARDING_NOTIFY_INTERVAL", 3600)))
    claimed = db.session.execute(
        update(ForwardLocation)
        .where(ForwardLocation.id == location_id)
        .where(
            or_(
                ForwardLocation.last_notified_at.is_(None),
                ForwardLocation.last_notified_at <= now - interval,
            )
        )
        .values(last_notified_at=now)
        .execution_options(synchronize_session=False, all_projects=True)
    )
    return claimed.rowcount == 1


def notify_failures(location_id: str) -> bool:
    """E-mail the location's addresses about records that gave up and were not reported
    yet, unless an e-mail went out less than FORWARDING_NOTIFY_INTERVAL ago.
    Returns True when an e-mail was sent."""
    location = location_in_any_project(location_id)
    if location is None:
        return False
    unreported = _unreported(location_id)
    failed = db.session.execute(unreported.order_by(ForwardRecord.id).limit(LISTED)).scalars().all()
    if not failed:
        return False
    now = clock.now()
    if location.notify_emails and not _claim_interval(location_id, now):
        db.session.rollback()
        return False  # e-mailed recently; the sweep reports these after the interval
    total = db.session.execute(select(func.count()).select_from(unreported.subquery())).scalar_one()
    db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.location_id == location_id)
        .where(*gave_up_unreported())
        .values(notified_at=now)
        .execution_options(synchronize_session=False, all_projects=True)
    )
    db.session.commit()
    if not location.notify_emails:
        log.info("forwarding gave up location_id=%s records=%d (no address to notify)", location_id, total)
        return False
    send_mail(
        location.notify_emails,
        f"Data forwarding failed: {total} record(s) to {location.url}",
        _body(location, failed, total),
        project_id=location.project_id,
        topic=f"forward_location:{location_id}",
    )
    log.info("forwarding failure e-mail location_id=%s records=%d", location_id, total)
    return True


def _body(location: ForwardLocation, failed: list, total: int) -> str:
    lines = [
        f"Data forwarding to {location.url} ({location.kind}) gave up on {total} record(s) after "
        f"{len(retry_delays()) + 1} attempts each.",
        "",
    ]
    for record in failed:
        reason = record.last_error or (f"HTTP {record.last_status_code}" if record.last_status_code else "")
        lines.append(f"- {record.kind[:-1]} {record.object_id} (record {record.id}): {reason}")
    if total > len(failed):
        lines.append(f"- ... and {total - len(failed)} more")
    lines += ["", f"Resend or cancel them on the data forwarding page: {page_url(location.id)}"]
    return "\n".join(lines)
