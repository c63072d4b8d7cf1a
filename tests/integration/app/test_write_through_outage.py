"""``write_through_outage``: a write that only this process can make is tried again while the
database is away, and only then."""

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from messaging.db.outage import is_connection_lost, write_through_outage
from messaging.extensions import db
from messaging.models import Project


def connection_refused() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection to server failed: Connection refused"))


def test_a_write_is_tried_again_until_the_database_answers_and_the_wait_is_logged_once(app, project, caplog):
    tries = []

    def write():
        tries.append(1)
        if len(tries) < 4:
            raise connection_refused()
        with project.scope():
            found = db.session.execute(select(Project.id).where(Project.id == project.id)).scalar()
        db.session.commit()
        return found

    caplog.set_level(logging.WARNING, logger="messaging.db.outage")
    with app.app_context():
        result = write_through_outage(write, what="test write", give_up_after=10, first_wait=0.01)
    assert result == project.id and len(tries) == 4
    lines = [r.getMessage() for r in caplog.records if r.name == "messaging.db.outage"]
    assert len(lines) == 2
    assert "the database is away" in lines[0] and "answers again" in lines[1]


def test_it_gives_up_after_its_limit_with_the_last_error(app):
    tries = []

    def write():
        tries.append(1)
        raise connection_refused()

    with app.app_context(), pytest.raises(OperationalError):
        write_through_outage(write, what="test write", give_up_after=0.2, first_wait=0.05)
    assert 2 <= len(tries) <= 5


def test_an_error_that_is_not_a_lost_connection_raises_at_once(app):
    tries = []

    def write():
        tries.append(1)
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with app.app_context(), pytest.raises(IntegrityError):
        write_through_outage(write, what="test write", give_up_after=10, first_wait=0.01)
    assert len(tries) == 1
    assert not is_connection_lost(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert is_connection_lost(connection_refused())
