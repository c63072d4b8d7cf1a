"""Outgoing e-mail.

``send_mail`` records every e-mail in the ``outbound_emails`` table (so the UI,
tests and other processes can see what was sent) and then:

- with ``SMTP_HOST`` set: sends it with smtplib (``SMTP_PORT``, ``SMTP_USER`` /
  ``SMTP_PASSWORD`` if given, ``SMTP_STARTTLS``, from ``MAIL_FROM``); status
  ``sent``, or ``failed`` with the error (a failure never raises);
- without ``SMTP_HOST`` (development, tests): logs and prints it; status ``printed``.

It commits the session (the row is written before the outside call, then its
outcome), so call it after your own changes are committed.
"""

import logging
import smtplib
import sys
from email.message import EmailMessage

from flask import current_app

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import OutboundEmail

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 20


def send_mail(
    to: list[str], subject: str, body: str, *, project_id: int | None = None, topic: str = ""
) -> OutboundEmail:
    """Record and send (or print) one e-mail to ``to``; returns the recorded row."""
    email = OutboundEmail(
        project_id=project_id,
        to_addresses=list(to),
        subject=subject[:300],
        body=body,
        topic=topic[:100],
        status="pending",
    )
    db.session.add(email)
    db.session.commit()
    config = current_app.config
    host = config.get("SMTP_HOST") or ""
    if not host:
        log.info("e-mail (no SMTP_HOST, printed) email_id=%s to=%s subject=%s", email.id, to, subject)
        print(f"--- e-mail {email.id} to {', '.join(to)}\nSubject: {subject}\n\n{body}\n---", file=sys.stderr)
        email.status = "printed"
        email.sent_at = clock.now()
        db.session.commit()
        return email
    message = EmailMessage()
    message["From"] = config.get("MAIL_FROM") or "messaging@localhost"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(host, int(config.get("SMTP_PORT") or 25), timeout=SMTP_TIMEOUT) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USER"):
                smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("e-mail failed email_id=%s to=%s: %s", email.id, to, exc)
        email.status = "failed"
        email.error = str(exc)[:1000]
    else:
        log.info("e-mail sent email_id=%s to=%s subject=%s", email.id, to, subject)
        email.status = "sent"
        email.sent_at = clock.now()
    db.session.commit()
    return email
