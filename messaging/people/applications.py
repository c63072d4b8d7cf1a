"""Applications: what a form is submitted with; each has its own case-sharing switch.

- A name is required.
- With case sharing on, a new case a user creates is owned by the user's one
  case-sharing group (``messaging.cases.ownership``); off, by the user.
- Switching case sharing changes no existing owner: only new cases follow the switch.
"""

from messaging.errors import Invalid
from messaging.extensions import db
from messaging.models import Application


def create_application(name: str, case_sharing: bool = False) -> Application:
    name = name.strip()
    if not name:
        raise Invalid("validation_error", "name: is required.", field="name")
    app = Application(name=name, case_sharing=case_sharing)
    db.session.add(app)
    db.session.flush()
    return app


def update_application(app: Application, name: str | None = None, case_sharing: bool | None = None) -> None:
    """Rename (an empty name changes nothing) and/or switch case sharing. The caller commits."""
    if name:
        app.name = name
    if case_sharing is not None:
        # Existing cases keep their owners: only new cases follow the switch.
        app.case_sharing = case_sharing
