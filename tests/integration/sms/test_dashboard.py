"""The programme manager's dashboard: 30 days of messages (past days kept once counted), the
queue now, why messages failed, open inbox items and what the next 7 days bring."""

from datetime import datetime, timedelta

from sqlalchemy import func, select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Message, MessageDayCount
from messaging.sms.daily_counts import daily_counts

NOW = datetime(2026, 3, 20, 12, 0)


def _message(project, days_ago, status, direction="outbound", **fields):
    with project.scope():
        at = NOW - timedelta(days=days_ago)
        m = Message(
            direction=direction,
            phone="+254712000901",
            body="x",
            status=status,
            segments=fields.pop("segments", 1),
            created_at=at,
            updated_at=at,
            **fields,
        )
        db.session.add(m)
        db.session.commit()
        return m.id


def _day(days, days_ago):
    return next(d for d in days if d["day"] == (NOW - timedelta(days=days_ago)).date().isoformat())


def test_thirty_days_of_results_with_past_days_kept_once_counted(project, other_project):
    clock.set_now(NOW)
    late = _message(project, 5, "sent")
    for _ in range(3):
        _message(project, 5, "delivered", segments=2)
    _message(project, 5, "undelivered")
    _message(project, 5, "received", direction="inbound")
    yesterday = _message(project, 1, "sent")
    _message(project, 0, "failed", skip_reason="opted_out")
    _message(project, 0, "queued")  # the queue, not a result
    _message(project, 40, "delivered")  # older than the chart
    _message(other_project, 5, "delivered")  # another project's
    with project.scope():
        days = daily_counts(project.id)
        db.session.commit()
        assert len(days) == 30 and days[-1]["day"] == "2026-03-20" and days[0]["day"] == "2026-02-19"
        assert _day(days, 5) == {
            "day": "2026-03-15",
            "delivered": 3,
            "sent": 1,
            "failed": 1,
            "received": 1,
            "segments": 9,
        }
        assert _day(days, 0)["failed"] == 1 and _day(days, 0)["sent"] == 0 and _day(days, 1)["sent"] == 1
        kept_rows = db.session.execute(select(func.count()).select_from(MessageDayCount)).scalar()
        # 28 kept days (all before yesterday): one marker each, the 15th its 4 statuses.
        assert kept_rows == 27 + 4

        # A delivery report days late moves nothing kept; yesterday's still moves.
        db.session.get(Message, late).status = "delivered"
        db.session.get(Message, yesterday).status = "delivered"
        db.session.commit()
        again = daily_counts(project.id)
        db.session.commit()
        assert _day(again, 5)["delivered"] == 3 and _day(again, 1)["delivered"] == 1
        assert db.session.execute(select(func.count()).select_from(MessageDayCount)).scalar() == kept_rows

    clock.set_now(NOW + timedelta(days=1))  # a new day: yesterday's is kept now, as it stood
    with project.scope():
        moved = daily_counts(project.id)
        db.session.commit()
        assert moved[-1]["day"] == "2026-03-21" and _day(moved, 1)["delivered"] == 1


def test_the_dashboard_shows_the_chart_the_queue_the_errors_and_what_is_coming(project, web, run_jobs):
    clock.set_now(NOW)
    _message(project, 2, "delivered")
    _message(project, 0, "queued")
    _message(project, 0, "queued", due_at=NOW + timedelta(hours=3))
    _message(project, 0, "sending")
    for _ in range(2):
        _message(
            project,
            1,
            "failed",
            error_code="21610",
            error_message="Attempt to send to unsubscribed recipient",
        )
    _message(project, 1, "failed", skip_reason="invalid_number")
    send_at = (NOW + timedelta(days=2)).isoformat() + "Z"
    from tests.factories import make_cases

    case = {"case_type": "mother", "phone_number": "+254712000902", "phone_raw": "+254712000902"}
    make_cases(project, [{**case, "properties": {"next_visit": "2026-03-24"}}])
    rule = {
        "name": "Visit",
        "case_type": "mother",
        "start": {"property": "next_visit", "offset_days": -2, "time": "09:00"},
        "text": "Visit soon",
    }
    assert project.api().post("/api/v1/alerts", json=rule).status_code == 201
    run_jobs()  # the rule's occurrence: due 2026-03-22 06:00 UTC
    r = project.api().post(
        "/api/v1/broadcasts",
        json={
            "name": "Clinic day",
            "recipients": {"filter": {"case_type": "mother"}},
            "text": "Hi",
            "send_at": send_at,
        },
    )
    assert r.status_code == 201, r.get_json()
    page = web.get("/").get_data(as_text=True)
    assert page.count('<g class="day"') == 30
    assert 'data-day="2026-03-18" data-delivered="1"' in page
    assert 'id="queue-due"><span class="num">1<' in page and 'id="queue-waiting"><span class="num">1<' in page
    assert 'id="queue-sending"><span class="num">1<' in page
    errors = page[page.index('id="top-errors"') :]
    assert errors.index('data-reason="21610"') < errors.index('data-reason="invalid_number"')
    coming = page[page.index('id="coming-up"') :]
    assert "Clinic day" in coming
    assert '<tr data-day="2026-03-22"><td>2026-03-22</td><td class="num">1</td></tr>' in coming
