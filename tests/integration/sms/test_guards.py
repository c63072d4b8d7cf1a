"""The guards on automated messages: the daily limit over midnight, sending windows on broadcasts,
survey reminders and keyword replies, what is never held, the counter under concurrency, and the
settings API that sets them. The clock is driven; sends go through real RQ workers to fake Twilio."""

import threading
from collections import Counter
from datetime import date, datetime

from messaging.extensions import db
from messaging.lib import clock
from tests.conftest import login
from tests.factories import make_case, make_contact, make_keyword, make_survey, rows
from tests.integration.broadcasts.broadcast_helpers import create, error_of, show
from tests.integration.inbound.inbound_helpers import replies, say

WEEKDAYS_8_TO_18 = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}]


def _settings(project, status=200, **body):
    response = project.api().patch("/api/v1/project", json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _sweep_and_run(app, run_jobs):
    from messaging.sms import sweep

    with app.app_context():
        requeued = sweep.sweep().requeued
        db.session.remove()
    run_jobs(scheduled=True)
    return requeued


def _statuses(project, **filters):
    return Counter((r["status"], r["held_reason"]) for r in rows(project, **filters))


def test_the_daily_limit_holds_the_rest_until_the_projects_midnight(app, twilio_project, fake, run_jobs):
    p = twilio_project
    clock.set_now(datetime(2026, 3, 2, 18, 0))  # 21:00 in Nairobi, the project's zone
    assert _settings(p, daily_sms_limit=3)["daily_sms_limit"] == 3
    cases = [make_case(p, name=f"P{i}", phone=f"+2547120030{i:02d}") for i in range(5)]
    first = create(p, recipients={"cases": cases}, text="Clinic tomorrow")
    run_jobs()
    assert len(fake.messages) == 3
    assert _statuses(p, broadcast_id=first["id"]) == {("sent", None): 3, ("queued", "daily_limit"): 2}
    held = [r for r in rows(p, broadcast_id=first["id"]) if r["status"] == "queued"]
    assert {r["due_at"] for r in held} == {datetime(2026, 3, 2, 21, 0)}  # midnight EAT
    assert {r["attempts"] for r in held} == {0}  # a held claim is not an attempt
    shown = p.api().get("/api/v1/messages?status=queued").get_json()["results"]
    assert {(m["held_reason"], m["due_at"]) for m in shown} == {("daily_limit", "2026-03-02T21:00:00Z")}
    assert show(p, first["id"])["status"] == "sending"

    # The day's allowance is used up: a later broadcast waits whole; a person's reply does not.
    second = create(p, recipients={"cases": cases[:1]}, text="One more")
    reply = p.api().post(f"/api/v1/cases/{cases[0]}/messages", json={"text": "See you at 9"})
    assert reply.status_code == 201, reply.get_json()
    run_jobs()
    assert [m["body"] for m in fake.messages[3:]] == ["See you at 9"]
    assert _statuses(p, broadcast_id=second["id"]) == {("queued", "daily_limit"): 1}
    page = login(app, p.admin_email, p.password).get("/")
    assert 'id="queue-daily-limit"' in page.text and "3 / 3" in page.text

    clock.set_now(datetime(2026, 3, 2, 20, 59, 59))
    assert _sweep_and_run(app, run_jobs) == 0
    assert len(fake.messages) == 4
    clock.set_now(datetime(2026, 3, 2, 21, 0, 31))  # past midnight in Nairobi (plus the sweep's grace)
    assert _sweep_and_run(app, run_jobs) == 3
    assert sorted(m["body"] for m in fake.messages[4:]) == ["Clinic tomorrow", "Clinic tomorrow", "One more"]
    assert show(p, first["id"])["status"] == "sent" and show(p, second["id"])["status"] == "sent"
    with p.scope():
        from messaging.sms.guards import sent_today

        assert sent_today(p.id, clock.now()) == 3


def test_a_sending_window_holds_a_survey_reminder_until_it_opens(app, project, run_jobs):
    from workers.jobs.surveys import tick

    phone = "+254712003101"
    make_contact(project, phone)
    survey_id = make_survey(project, reminder_minutes=30, expire_after_minutes=7 * 24 * 60)
    make_keyword(project, keyword="HEALTH", survey_id=survey_id)
    _settings(project, sending_windows=WEEKDAYS_8_TO_18)
    clock.set_now(datetime(2026, 3, 6, 14, 40))  # Friday 17:40 in Nairobi: open
    assert say(project, run_jobs, phone, "health") == ["How old are you?"]
    assert _statuses(project, direction="outbound") == {("sent", None): 1}

    clock.set_now(datetime(2026, 3, 6, 15, 11))  # 18:11: the reminder is due, the window closed
    with app.app_context():
        assert tick() == {"reminded": 1}
        db.session.remove()
    run_jobs()
    [reminder] = [r for r in rows(project) if r["body"].startswith("Reminder")]
    assert (reminder["status"], reminder["held_reason"]) == ("queued", "sending_window")
    assert reminder["due_at"] == datetime(2026, 3, 9, 5, 0)  # Monday 08:00 in Nairobi

    clock.set_now(datetime(2026, 3, 9, 4, 59, 59))
    assert _sweep_and_run(app, run_jobs) == 0
    clock.set_now(datetime(2026, 3, 9, 5, 0, 31))
    assert _sweep_and_run(app, run_jobs) == 1
    assert [r["status"] for r in rows(project) if r["id"] == reminder["id"]] == ["sent"]


def test_keyword_replies_wait_for_the_window_but_stop_confirmations_do_not(app, project, run_jobs):
    phone = "+254712003201"
    make_contact(project, phone)
    make_keyword(project, keyword="CLINIC", reply_text="The clinic opens at 8.")
    _settings(project, sending_windows=WEEKDAYS_8_TO_18)
    clock.set_now(datetime(2026, 3, 3, 0, 30))  # Tuesday 03:30 in Nairobi
    say(project, run_jobs, phone, "clinic")
    say(project, run_jobs, phone, "STOP")
    by_body = {
        r["body"]: (r["status"], r["held_reason"], r["due_at"]) for r in rows(project, direction="outbound")
    }
    assert by_body["The clinic opens at 8."] == ("queued", "sending_window", datetime(2026, 3, 3, 5, 0))
    [confirmation] = [body for body in replies(project, phone) if body != "The clinic opens at 8."]
    assert by_body[confirmation][:2] == ("sent", None)


def test_a_window_and_a_limit_together_hold_for_the_window_first(app, twilio_project, fake, run_jobs):
    p = twilio_project
    _settings(p, daily_sms_limit=1, sending_windows=WEEKDAYS_8_TO_18)
    clock.set_now(datetime(2026, 3, 7, 9, 0))  # Saturday: no window
    cases = [make_case(p, name=f"Q{i}", phone=f"+2547120033{i:02d}") for i in range(2)]
    created = create(p, recipients={"cases": cases}, text="Hello")
    run_jobs()
    assert fake.messages == []
    assert _statuses(p, broadcast_id=created["id"]) == {("queued", "sending_window"): 2}
    clock.set_now(datetime(2026, 3, 9, 5, 0, 31))  # Monday 08:00: one goes, the other waits a day
    assert _sweep_and_run(app, run_jobs) == 2
    assert len(fake.messages) == 1
    held = [r for r in rows(p, broadcast_id=created["id"]) if r["status"] == "queued"]
    assert [(r["held_reason"], r["due_at"]) for r in held] == [("daily_limit", datetime(2026, 3, 10, 5, 0))]


def test_concurrent_claims_never_take_more_than_the_daily_limit(app, project):
    from messaging.sms.guards import take_allowance

    day, granted, errors = date(2026, 3, 2), [], []

    def worker():
        try:
            with app.app_context():
                for _ in range(15):
                    granted.append(take_allowance(project.id, day, 7, 100))
                    db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(granted) == 100  # 4 x 15 x 7 = 420 asked for
    with project.scope():
        from messaging.models import DailySendCount

        [count] = db.session.query(DailySendCount).all()
        assert (count.day, count.sent) == (day, 100)


def test_project_settings_are_read_and_changed_and_bad_values_change_nothing(project):
    api = project.api()
    shown = api.get("/api/v1/project").get_json()
    assert shown["slug"] == project.slug and shown["timezone"] == "Africa/Nairobi"
    assert shown["daily_sms_limit"] is None and shown["sending_windows"] is None
    assert "sw" in shown["languages"]

    changed = _settings(
        project,
        daily_sms_limit=500,
        sending_windows=[{"days": ["Mon", "tue"], "start": "8:00", "end": "17:30"}],
        default_reply="Thanks, we will call you.",
        name="Clinic SMS",
    )
    assert changed["sending_windows"] == [{"days": ["mon", "tue"], "start": "08:00", "end": "17:30"}]
    assert (changed["daily_sms_limit"], changed["default_reply"], changed["name"]) == (
        500,
        "Thanks, we will call you.",
        "Clinic SMS",
    )
    for body, field in [
        ({"daily_sms_limit": -1, "name": "Changed"}, "daily_sms_limit"),
        ({"daily_sms_limit": "lots"}, "daily_sms_limit"),
        ({"daily_sms_limit": True}, "daily_sms_limit"),
        (
            {"sending_windows": [{"start": "08:00", "end": "25:00"}], "name": "Changed"},
            "sending_windows[0].end",
        ),
        ({"timezone": "Mars/Olympus", "daily_sms_limit": 1}, "timezone"),
        ({"slug": "other"}, "slug"),
        ({"budget": 3}, "budget"),
    ]:
        error = error_of(api.patch("/api/v1/project", json=body), 400)
        assert error["details"]["field"] == field, error
    assert api.get("/api/v1/project").get_json() == changed
    assert _settings(project, daily_sms_limit=None, sending_windows=None)["daily_sms_limit"] is None


def test_only_an_admin_changes_the_settings(app, project):
    from messaging.models import ApiToken, WebUser

    with project.scope():
        manager = WebUser(project_id=project.id, email="m@x.example.org", role="manager", name="M")
        manager.set_password("correct horse battery")
        db.session.add(manager)
        db.session.flush()
        _token, key = ApiToken.issue(manager, "test")
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Token {key}"}
    assert client.get("/api/v1/project", headers=headers).status_code == 200
    response = client.patch("/api/v1/project", json={"daily_sms_limit": 5}, headers=headers)
    assert response.status_code == 403
    assert project.api().get("/api/v1/project").get_json()["daily_sms_limit"] is None


def test_the_settings_page_sets_the_limit_and_windows_and_a_bad_line_changes_nothing(app, project, web):
    response = web.post(
        "/settings/guards",
        data={"daily_sms_limit": "250", "sending_windows": "Mon-Fri 08:00-18:00\nsat 9:00-12:00"},
    )
    assert response.status_code == 302
    shown = project.api().get("/api/v1/project").get_json()
    assert shown["daily_sms_limit"] == 250
    assert shown["sending_windows"] == [
        WEEKDAYS_8_TO_18[0],
        {"days": ["sat"], "start": "09:00", "end": "12:00"},
    ]
    page = web.get("/settings").get_data(as_text=True)
    assert "mon-fri 08:00-18:00\nsat 09:00-12:00" in page and 'value="250"' in page

    web.post("/settings/guards", data={"daily_sms_limit": "", "sending_windows": "weekdays 8-6"})
    page = web.get("/settings").get_data(as_text=True)
    assert "line 1" in page and "is not a window" in page
    assert project.api().get("/api/v1/project").get_json()["daily_sms_limit"] == 250
    web.post("/settings/guards", data={"daily_sms_limit": "-5", "sending_windows": ""})
    assert "daily_sms_limit" in web.get("/settings").get_data(as_text=True)
    assert project.api().get("/api/v1/project").get_json()["sending_windows"] is not None
