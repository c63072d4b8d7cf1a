"""Helpers for the broadcast tests: groups, broadcasts through the API, the tick, firings, cases."""

from sqlalchemy import select

from messaging.extensions import db
from messaging.models import BroadcastFiring, BroadcastRecipient, Case


def create(project, **body):
    """POST /api/v1/broadcasts (201 expected); returns the JSON."""
    body.setdefault("name", "Clinic day")
    response = project.api().post("/api/v1/broadcasts", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def show(project, broadcast_id):
    response = project.api().get(f"/api/v1/broadcasts/{broadcast_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def error_of(response, status):
    """The ``error`` object of an error response, after checking its status."""
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()["error"]


def tick(app):
    """The broadcast tick as the periodic job runs it (no project scope)."""
    from workers.jobs.broadcasts import tick as job

    with app.app_context():
        try:
            return job()
        finally:
            db.session.remove()


def firings(project, broadcast_id=None):
    """The firings of the project (or of one broadcast), oldest instant first, as dicts."""
    with project.scope():
        stmt = select(BroadcastFiring).order_by(BroadcastFiring.fire_at)
        if broadcast_id is not None:
            stmt = stmt.where(BroadcastFiring.broadcast_id == broadcast_id)
        return [
            {c.key: getattr(f, c.key) for c in f.__table__.columns}
            for f in db.session.execute(stmt).scalars()
        ]


def snapshot(project, firing_id):
    """The recipient snapshot of one firing, by seq."""
    with project.scope():
        return [
            {c.key: getattr(r, c.key) for c in r.__table__.columns}
            for r in db.session.execute(
                select(BroadcastRecipient)
                .where(BroadcastRecipient.firing_id == firing_id)
                .order_by(BroadcastRecipient.seq)
            ).scalars()
        ]


def case_pk(project, case_id):
    """The internal primary key (``messages.case_id``) of a case given its public case_id."""
    with project.scope():
        return db.session.execute(select(Case.id).where(Case.case_id == case_id)).scalar_one()


def run_firing(project, firing_id, **kw):
    """The fan-out service called directly (as the job does), in the project's scope."""
    from messaging.broadcasts.firing import run_firing as run

    with project.scope():
        return run(project.id, firing_id, **kw)


def by_phone(messages):
    """Fake Twilio's messages grouped by recipient: {to: [body, ...]}."""
    out = {}
    for m in messages:
        out.setdefault(m["to"], []).append(m["body"])
    return out
