"""Helpers for the inbound and survey tests: cases, surveys, incoming texts, replies."""

import uuid

from sqlalchemy import select

TO = "+15005550006"


def text_in(project, phone, body, sid=None):
    from messaging.inbound.receive import receive_inbound

    with project.scope():
        return receive_inbound(project.id, phone, TO, body, sid or "SM" + uuid.uuid4().hex)


def say(project, run_jobs, phone, body):
    """A participant texts ``body``; the jobs run; returns the replies sent since."""
    before = last_id(project)
    text_in(project, phone, body)
    run_jobs()
    return replies(project, phone, after=before)


def last_id(project):
    from sqlalchemy import func

    from messaging.extensions import db
    from messaging.models import Message

    with project.scope():
        return db.session.execute(select(func.max(Message.id))).scalar() or 0


def replies(project, phone, after=0):
    from messaging.extensions import db
    from messaging.models import Message

    with project.scope():
        return [
            m.body
            for m in db.session.execute(
                select(Message)
                .where(Message.phone == phone, Message.direction == "outbound", Message.id > after)
                .order_by(Message.id)
            ).scalars()
        ]


def inbound_rows(project):
    from messaging.extensions import db
    from messaging.models import InboundMessage

    with project.scope():
        return [
            {c.key: getattr(r, c.key) for c in r.__table__.columns}
            for r in db.session.execute(select(InboundMessage).order_by(InboundMessage.message_id)).scalars()
        ]


def sessions_of(project):
    from messaging.extensions import db
    from messaging.models import SurveySession

    with project.scope():
        return [
            {c.key: getattr(r, c.key) for c in r.__table__.columns}
            for r in db.session.execute(select(SurveySession).order_by(SurveySession.started_at)).scalars()
        ]


def case_props(project, case_pk):
    from messaging.extensions import db
    from messaging.models import Case

    with project.scope():
        return dict(db.session.get(Case, case_pk).properties)
