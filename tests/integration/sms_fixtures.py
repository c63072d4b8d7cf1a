"""Shared fixtures for the SMS tests: the fake Twilio server wired to a project's gateway."""

from datetime import datetime

import pytest
from sqlalchemy import select

from tests.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

POOL = ["+15005550006", "+15005550007", "+15005550008"]
T0 = datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture
def fake(app):
    """A fake Twilio server, with the app's twilio client pointed at it."""
    server = FakeTwilio.start(seed=7)
    saved = {k: app.config.get(k) for k in ("TWILIO_API_BASE_URL", "SMS_HTTP_TIMEOUT", "PUBLIC_BASE_URL")}
    app.config["TWILIO_API_BASE_URL"] = server.url
    app.config["SMS_HTTP_TIMEOUT"] = 5.0
    yield server
    app.config.update(saved)
    server.stop()


@pytest.fixture
def twilio_project(project, fake):
    """The project's gateway set to Twilio (the fake) with a pool of three numbers at 100/s."""
    response = project.api().put(
        "/api/v1/gateway",
        json={
            "kind": "twilio",
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN,
            "from_numbers": POOL,
            "mps": 100,
        },
    )
    assert response.status_code == 200, response.get_json()
    return project


def rows(project, **filters):
    """All message rows of the project (fresh from the database), oldest first."""
    from messaging.extensions import db
    from messaging.models import Message

    with project.scope():
        stmt = select(Message).order_by(Message.id)
        for name, value in filters.items():
            stmt = stmt.where(getattr(Message, name) == value)
        found = list(db.session.execute(stmt).scalars())
        return [_plain(m) for m in found]


def _plain(message) -> dict:
    return {c.key: getattr(message, c.key) for c in message.__table__.columns}


def send(project, phone="+254712000001", body="Hello", **kw) -> int:
    from messaging.extensions import db
    from messaging.sms.outbox import send_sms

    with project.scope():
        message_id = send_sms(project.id, phone, body, **kw)
        db.session.commit()
        return message_id
