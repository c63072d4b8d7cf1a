"""The system actor that submits SMS survey forms: application "SMS surveys", worker ``sms-surveys``.

Rules:

- Each project has one, created on first use and remembered on the project's
  inbound settings (``sms_app_id``, ``sms_user_id``).
- The mobile worker ``sms-surveys`` has no password and cannot log in; an
  existing worker of that name is reused.
- Two first uses at once end with one actor: the one whose settings update wins
  keeps its application, the other deletes its own.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from messaging.extensions import db
from messaging.models import Application, MobileWorker
from messaging.surveys.settings import inbound_settings

log = logging.getLogger(__name__)

SYSTEM_APP_NAME = "SMS surveys"
SYSTEM_USERNAME = "sms-surveys"


def ensure_system_actor(project_id: int) -> tuple[str, str]:
    """The (app_id, user_id) that submit SMS survey forms for this project; created once."""
    settings = inbound_settings(project_id, create=True)
    if settings.sms_app_id and settings.sms_user_id:
        return settings.sms_app_id, settings.sms_user_id
    user = db.session.execute(
        select(MobileWorker).where(MobileWorker.username == SYSTEM_USERNAME)
    ).scalar_one_or_none()
    if user is None:
        try:
            with db.session.begin_nested():
                user = MobileWorker(project_id=project_id, username=SYSTEM_USERNAME, password_hash=None)
                db.session.add(user)
        except IntegrityError:
            user = db.session.execute(
                select(MobileWorker).where(MobileWorker.username == SYSTEM_USERNAME)
            ).scalar_one()
    app = Application(project_id=project_id, name=SYSTEM_APP_NAME, case_sharing=False)
    db.session.add(app)
    db.session.flush()
    won = db.session.execute(
        update(type(settings))
        .where(type(settings).id == settings.id, type(settings).sms_app_id.is_(None))
        .values(sms_app_id=app.id, sms_user_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(settings)
    if not won:
        db.session.delete(app)
        db.session.flush()
    log.info("sms survey actor project_id=%s app_id=%s user_id=%s", project_id, settings.sms_app_id, user.id)
    return settings.sms_app_id, settings.sms_user_id
