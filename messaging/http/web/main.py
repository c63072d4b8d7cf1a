"""The dashboard and the search box.

The dashboard shows whether sending keeps up (:mod:`messaging.queue_health`): workers
alive and the scheduler across the app, the messages due now of the user's project; the
last 30 days as a chart (:mod:`messaging.sms.daily_counts`), the queue now, the top error
reasons, open inbox items and what is coming in the next 7 days (:mod:`messaging.sms.oversight`).
"""

from flask import render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from messaging import queue_health
from messaging.alerts.schedules import project_zone
from messaging.extensions import db
from messaging.http.web import bp
from messaging.models import Case, Form, MobileWorker, UserGroup
from messaging.sms import oversight
from messaging.sms.daily_counts import daily_counts


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
    days = daily_counts(current_user.project_id)
    db.session.commit()  # the past days just counted are kept (message_day_counts)
    return render_template(
        "dashboard.html",
        stats=stats,
        widgets=dashboard_widgets(),
        queue=queue_health.check(current_user.project_id),
        days=days,
        queue_now=oversight.queue_now(current_user.project_id),
        top_errors=oversight.top_errors(),
        coming_up=oversight.coming_up(),
        zone=project_zone(current_user.project_id),
    )


# Areas add (title, callable returning a value) pairs here for the dashboard.
DASHBOARD_WIDGETS: list = []


def dashboard_widgets() -> list[tuple[str, object]]:
    return [(title, fn()) for title, fn in DASHBOARD_WIDGETS]
