"""The dashboard and the search box.

The dashboard shows whether sending keeps up (:mod:`messaging.queue_health`): workers
alive and the scheduler across the app, the messages due now of the user's project.
"""

from flask import render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from messaging import queue_health
from messaging.extensions import db
from messaging.http.web import bp
from messaging.models import Case, Form, MobileWorker, UserGroup


@bp.route("/")
@login_required
def dashboard():
    def count(stmt):
        return db.session.execute(stmt).scalar_one()

    stats = {
        "open_cases": count(select(func.count()).select_from(Case).where(Case.closed.is_(False))),
        "forms": count(select(func.count()).select_from(Form)),
        "mobile_workers": count(select(func.count()).select_from(MobileWorker)),
        "groups": count(select(func.count()).select_from(UserGroup)),
    }
    return render_template(
        "dashboard.html",
        stats=stats,
        widgets=dashboard_widgets(),
        queue=queue_health.check(current_user.project_id),
    )


# Areas add (title, callable returning a value) pairs here for the dashboard.
DASHBOARD_WIDGETS: list = []


def dashboard_widgets() -> list[tuple[str, object]]:
    return [(title, fn()) for title, fn in DASHBOARD_WIDGETS]
