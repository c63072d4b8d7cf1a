"""Mobile workers: the people who submit forms from the phone.

- A username is required and unique in the project, whatever its letter case
  (409 ``duplicate_username``).
- The phone number is stored in E.164 when it parses (the project's country for
  national spellings), else as the raw text (at most 20 characters).
- The password is optional; it is stored hashed.
"""

from sqlalchemy import func, or_, select

from messaging.db.tenancy import current_project_id
from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.lib.phones import normalize_phone
from messaging.models import MobileWorker, Project


def create_mobile_worker(
    username: str, password: str | None = None, language: str | None = None, phone_number: str | None = None
) -> MobileWorker:
    username = username.strip()
    if not username:
        raise Invalid("validation_error", "username: is required.", field="username")
    exists = db.session.execute(
        # The exact name too: SQLite's lower() folds ASCII letters only ("Émile").
        select(MobileWorker.id).where(
            or_(func.lower(MobileWorker.username) == username.lower(), MobileWorker.username == username)
        )
    ).first()
    if exists:
        raise Conflict("duplicate_username", f"A mobile worker named '{username}' already exists.")
    worker = MobileWorker(
        username=username, language=language or None, phone_number=_worker_phone(phone_number)
    )
    if password:
        worker.set_password(password)
    db.session.add(worker)
    db.session.flush()
    return worker


def _worker_phone(raw: str | None) -> str | None:
    """E.164 when the number parses (project's country for national spellings), else the raw text."""
    raw = (raw or "").strip()
    if not raw:
        return None
    project = db.session.get(Project, current_project_id()) if current_project_id() else None
    return normalize_phone(raw, project.default_country if project else None) or raw[:20]
