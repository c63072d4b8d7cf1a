"""Broadcasts on the clock: once at send_at, repeating across DST, missed firings, quiet hours, edits.

The clock is driven with ``messaging.lib.clock.set_now``; the tick is the periodic job's body.
"""

from collections import Counter
from datetime import datetime, timedelta

import pytest

from messaging.lib import clock
from messaging.lib.localtime import get_zone, utc_to_local
from tests.factories import T0, make_case, make_group, rows
from tests.integration.broadcasts.broadcast_helpers import by_phone, create, error_of, firings, show, tick

ONE_SECOND = timedelta(seconds=1)


def _two_cases(project, prefix="+2547120020"):
    return [make_case(project, name=f"P{i}", phone=f"{prefix}{i:02d}") for i in range(2)]


def _iso(value: datetime) -> str:
    return clock.isoformat(value)


# --- 3. once, at send_at ------------------------------------------------------------------


def test_a_scheduled_broadcast_fires_exactly_once_at_its_time(app, twilio_project, fake, run_jobs):
    p = twilio_project
    clock.set_now(T0)
    at = T0 + timedelta(hours=1)
    group = make_group(p, "G", _two_cases(p))
    created = create(p, recipients={"case_groups": [group]}, text="Hi {case.name}", send_at=_iso(at))
    assert created["status"] == "scheduled"
    assert created["send_at"] == created["next_fire_at"] == "2026-03-02T10:00:00Z"
    assert created["firings"] == [] and created["percent"] == 0
    run_jobs()
    assert fake.messages == [] and firings(p) == []

    clock.set_now(at - ONE_SECOND)
    assert tick(app) == {}
    run_jobs()
    assert fake.messages == [] and firings(p) == []
    assert show(p, created["id"])["status"] == "scheduled"

    clock.set_now(at)
    assert tick(app) == {"fired": 1}
    assert show(p, created["id"])["status"] == "sending"
    run_jobs()
    assert sorted(m["body"] for m in fake.messages) == ["Hi P0", "Hi P1"]
    [firing] = firings(p, created["id"])
    assert firing["fire_at"] == at and firing["status"] == "done" and firing["messages"] == 2
    shown = show(p, created["id"])
    assert shown["status"] == "sent" and shown["next_fire_at"] is None

    for later in (timedelta(seconds=10), timedelta(hours=1), timedelta(days=3)):
        clock.set_now(at + later)
        assert tick(app) == {}
        run_jobs()
    assert len(fake.messages) == 2 and len(firings(p)) == 1


def test_the_periodic_tick_job_fires_a_due_broadcast_through_rq(app, twilio_project, fake, run_jobs):
    from messaging.jobs import queue

    p = twilio_project
    clock.set_now(T0)
    created = create(
        p, recipients={"cases": _two_cases(p)}, text="Hi", send_at=_iso(T0 + timedelta(minutes=5))
    )
    with app.app_context():
        queue("high").enqueue("workers.jobs.broadcasts.tick")
    run_jobs()
    assert fake.messages == []
    clock.advance(minutes=5)
    with app.app_context():
        queue("high").enqueue("workers.jobs.broadcasts.tick")
        queue("high").enqueue("workers.jobs.broadcasts.tick")  # two ticks (two schedulers)
    run_jobs()
    assert len(fake.messages) == 2 and len(by_phone(fake.messages)) == 2
    assert len(firings(p, created["id"])) == 1
    assert show(p, created["id"])["status"] == "sent"


def test_ticks_in_a_project_scope_and_as_the_job_start_one_firing(app, twilio_project, fake, run_jobs):
    """The tick inside a project scope (as a test or CLI could call it) and the job: one firing."""
    from messaging.broadcasts.firing import tick as service_tick

    p = twilio_project
    clock.set_now(T0)
    created = create(
        p, recipients={"cases": _two_cases(p)}, text="Hi", send_at=_iso(T0 + timedelta(minutes=1))
    )
    clock.advance(minutes=1)
    with p.scope():
        assert service_tick() == {"fired": 1}
        assert service_tick() == {}
    assert tick(app) == {}
    run_jobs()
    assert len(firings(p, created["id"])) == 1 and len(fake.messages) == 2


# --- 4. repeating, across DST --------------------------------------------------------------

DST_CASES = [
    # Spring forward on Sunday 8 March 2026: 09:00 EST is 14:00Z, 09:00 EDT is 13:00Z.
    (
        "America/New_York",
        "2026-03-06",
        ["2026-03-06T14:00", "2026-03-07T14:00", "2026-03-08T13:00", "2026-03-09T13:00"],
    ),
    # Fall back on Sunday 25 October 2026: 09:00 BST is 08:00Z, 09:00 GMT is 09:00Z.
    (
        "Europe/London",
        "2026-10-23",
        ["2026-10-23T08:00", "2026-10-24T08:00", "2026-10-25T09:00", "2026-10-26T09:00"],
    ),
]


@pytest.mark.parametrize(("zone", "start", "expected"), DST_CASES)
def test_daily_at_nine_local_across_a_dst_change_each_firing_its_own_send(
    app, twilio_project, fake, run_jobs, zone, start, expected
):
    p = twilio_project
    instants = [datetime.fromisoformat(e) for e in expected]
    clock.set_now(instants[0] - timedelta(hours=3))
    cases = _two_cases(p)
    end = instants[-1].date().isoformat()
    repeat = {"kind": "daily", "time": "09:00", "start_date": start, "end_date": end, "timezone": zone}
    created = create(p, recipients={"case_groups": [make_group(p, "G", cases)]}, text="Daily", repeat=repeat)
    assert created["status"] == "scheduled" and created["send_at"] is None
    assert created["repeat"]["timezone"] == zone and created["repeat"]["end_date"] == end
    assert created["next_fire_at"] == _iso(instants[0])

    for i, at in enumerate(instants):
        clock.set_now(at - ONE_SECOND)
        assert tick(app) == {}, at
        clock.set_now(at)
        assert tick(app) == {"fired": 1}, at
        run_jobs()
        assert len(fake.messages) == 2 * (i + 1)
        shown = show(p, created["id"])
        following = _iso(instants[i + 1]) if i + 1 < len(instants) else None
        assert shown["next_fire_at"] == following
        assert shown["status"] == ("scheduled" if following else "sent")
        # The detail's counts are the latest firing's own.
        assert shown["counts"] == {"statuses": {"sent": 2}, "skipped": {}}

    # The end date is respected: nothing the day after, or later.
    for later in (timedelta(days=1), timedelta(days=7)):
        clock.set_now(instants[-1] + later)
        assert tick(app) == {}
    run_jobs()
    assert len(fake.messages) == 8

    fired = firings(p, created["id"])
    assert [f["fire_at"] for f in fired] == instants
    assert [utc_to_local(f["fire_at"], get_zone(zone)).hour for f in fired] == [9, 9, 9, 9]
    assert len({f["fire_at"].hour for f in fired}) == 2  # the UTC hour shifts with the change
    assert all(f["status"] == "done" and f["total"] == 2 and f["messages"] == 2 for f in fired)
    per_firing = Counter(r["firing_id"] for r in rows(p, broadcast_id=created["id"]))
    assert per_firing == {f["id"]: 2 for f in fired}
    assert Counter(m["to"] for m in fake.messages) == {"+254712002000": 4, "+254712002001": 4}
    detail = show(p, created["id"])["firings"]
    assert [f["fire_at"] for f in detail] == [_iso(i) for i in reversed(instants)]  # newest first
    assert all(f["statuses"] == {"sent": 2} and f["percent"] == 100 for f in detail)


def test_a_scheduler_that_was_down_fires_once_for_the_latest_missed_instant(
    app, twilio_project, fake, run_jobs
):
    p = twilio_project
    clock.set_now(datetime(2026, 3, 2, 5, 0))  # 08:00 in Nairobi, the project's zone
    repeat = {"kind": "daily", "time": "09:00"}  # timezone and start_date default to the project's today
    created = create(p, recipients={"cases": _two_cases(p)}, text="Daily", repeat=repeat)
    assert (
        created["repeat"]["timezone"] == "Africa/Nairobi" and created["repeat"]["start_date"] == "2026-03-02"
    )
    assert created["next_fire_at"] == "2026-03-02T06:00:00Z"
    clock.set_now(datetime(2026, 3, 5, 7, 30))  # down for three days: 2, 3, 4 and 5 March were due
    assert tick(app) == {"fired": 1}
    assert tick(app) == {}
    run_jobs()
    [firing] = firings(p, created["id"])
    assert firing["fire_at"] == datetime(2026, 3, 5, 6, 0)
    assert len(fake.messages) == 2
    assert show(p, created["id"])["next_fire_at"] == "2026-03-06T06:00:00Z"


def test_weekly_on_chosen_days(app, twilio_project, fake, run_jobs):
    p = twilio_project
    clock.set_now(datetime(2026, 3, 2, 0, 0))  # Monday
    repeat = {"kind": "weekly", "time": "07:30", "days_of_week": [2, 4], "end_date": "2026-03-13"}
    created = create(p, recipients={"cases": _two_cases(p)[:1]}, text="Weekly", repeat=repeat)
    expected = [datetime(2026, 3, 4, 4, 30), datetime(2026, 3, 6, 4, 30), datetime(2026, 3, 11, 4, 30)]
    expected.append(datetime(2026, 3, 13, 4, 30))
    assert created["next_fire_at"] == _iso(expected[0])
    for day in range(2, 16):  # every day at 07:30 local: only Wednesdays and Fridays fire
        clock.set_now(datetime(2026, 3, day, 4, 30))
        tick(app)
    run_jobs()
    assert [f["fire_at"] for f in firings(p, created["id"])] == expected
    assert len(fake.messages) == 4
    assert show(p, created["id"])["status"] == "sent"


def test_cancelling_a_repeating_broadcast_stops_its_firings(app, twilio_project, fake, run_jobs):
    p = twilio_project
    clock.set_now(datetime(2026, 3, 2, 5, 0))
    created = create(
        p, recipients={"cases": _two_cases(p)}, text="Daily", repeat={"kind": "daily", "time": "09:00"}
    )
    clock.set_now(datetime(2026, 3, 2, 6, 0))
    assert tick(app) == {"fired": 1}
    run_jobs()
    response = p.api().post(f"/api/v1/broadcasts/{created['id']}/cancel")
    assert response.status_code == 200 and response.get_json()["next_fire_at"] is None
    for day in range(1, 4):
        clock.set_now(datetime(2026, 3, 2 + day, 6, 0))
        assert tick(app) == {}
    run_jobs()
    assert len(fake.messages) == 2 and len(firings(p, created["id"])) == 1
    shown = show(p, created["id"])
    # The first firing's messages went out before the cancel, and stay sent.
    assert shown["status"] == "cancelled" and shown["counts"]["statuses"] == {"sent": 2}


# --- 7. quiet hours ----------------------------------------------------------------------


def test_quiet_hours_defer_to_the_next_opening_in_each_recipients_zone(app, twilio_project, fake, run_jobs):
    from messaging.sms import sweep

    p = twilio_project
    start = datetime(2026, 3, 2, 2, 0)  # 05:00 in Nairobi, 21:00 (1 March) in New York, 11:00 in Tokyo
    clock.set_now(start)
    kenya = make_case(p, name="Kenya", phone="+254712002101")
    new_york = make_case(p, name="NewYork", phone="+12125550123")
    tokyo = make_case(p, name="Tokyo", phone="+819012345678")
    created = create(
        p,
        recipients={"cases": [kenya, new_york, tokyo]},
        text="Hi {case.name}",
        quiet_hours={"start": "08:00", "end": "20:00"},
    )
    run_jobs()
    due = {r["phone"]: r["due_at"] for r in rows(p, broadcast_id=created["id"])}
    assert due == {
        "+254712002101": datetime(2026, 3, 2, 5, 0),  # 08:00 EAT
        "+12125550123": datetime(2026, 3, 2, 13, 0),  # 08:00 EST
        "+819012345678": None,  # inside the window: now
    }
    assert by_phone(fake.messages) == {"+819012345678": ["Hi Tokyo"]}
    assert show(p, created["id"])["status"] == "sending"  # messages still waiting for their window

    def sweep_and_run():
        with app.app_context():
            requeued = sweep.sweep().requeued
        run_jobs(scheduled=True)
        return requeued

    clock.set_now(datetime(2026, 3, 2, 4, 59, 59))
    assert sweep_and_run() == 0
    assert len(fake.messages) == 1
    clock.set_now(datetime(2026, 3, 2, 5, 0, 31))  # the opening (plus the sweep's grace)
    assert sweep_and_run() == 1
    assert sorted(by_phone(fake.messages)) == ["+254712002101", "+819012345678"]
    assert show(p, created["id"])["status"] == "sending"
    clock.set_now(datetime(2026, 3, 2, 12, 59))
    assert sweep_and_run() == 0
    clock.set_now(datetime(2026, 3, 2, 13, 0, 31))
    assert sweep_and_run() == 1
    assert by_phone(fake.messages) == {
        "+254712002101": ["Hi Kenya"],
        "+12125550123": ["Hi NewYork"],
        "+819012345678": ["Hi Tokyo"],
    }
    sent = {r["phone"]: r["sent_at"] for r in rows(p, broadcast_id=created["id"])}
    assert sent["+254712002101"] >= datetime(2026, 3, 2, 5, 0)
    assert sent["+12125550123"] >= datetime(2026, 3, 2, 13, 0)
    assert show(p, created["id"])["status"] == "sent"


def test_quiet_hours_window_across_midnight_and_cancel_of_deferred_messages(
    app, twilio_project, fake, run_jobs
):
    from messaging.sms import sweep

    p = twilio_project
    clock.set_now(datetime(2026, 3, 2, 9, 0))  # 12:00 in Nairobi: outside 20:00-06:00
    case = make_case(p, name="Night", phone="+254712002201")
    created = create(
        p, recipients={"cases": [case]}, text="Hi", quiet_hours={"start": "20:00", "end": "06:00"}
    )
    run_jobs()
    [row] = rows(p, broadcast_id=created["id"])
    assert row["due_at"] == datetime(2026, 3, 2, 17, 0) and row["status"] == "queued"
    assert p.api().post(f"/api/v1/broadcasts/{created['id']}/cancel").status_code == 200
    clock.set_now(datetime(2026, 3, 2, 17, 1))
    with app.app_context():
        assert sweep.sweep().requeued == 0
    run_jobs(scheduled=True)
    assert fake.messages == []
    [row] = rows(p, broadcast_id=created["id"])
    assert row["status"] == "failed" and row["skip_reason"] == "cancelled"


# --- editing a scheduled broadcast ---------------------------------------------------------


def test_edit_a_scheduled_broadcast_changes_what_and_when_it_sends(app, twilio_project, fake, run_jobs):
    p = twilio_project
    api = p.api()
    clock.set_now(T0)
    amina = make_case(p, name="Amina", phone="+254712002301")
    baraka = make_case(p, name="Baraka", phone="+254712002302")
    created = create(p, recipients={"cases": [amina]}, text="Old", send_at=_iso(T0 + timedelta(hours=2)))
    url = f"/api/v1/broadcasts/{created['id']}"

    # A bad edit changes nothing.
    error = error_of(api.patch(url, json={"text": "Hi {name}"}), 400)
    assert error["code"] == "invalid_template"
    error = error_of(api.patch(url, json={"send_at": "2020-01-01T00:00:00Z"}), 400)
    assert error["details"]["field"] == "send_at"
    error = error_of(api.patch(url, json={"send_at": None}), 400)  # an edit keeps it scheduled
    assert error["details"]["field"] == "send_at"
    assert show(p, created["id"])["text"] == "Old"

    # Missing fields are kept.
    renamed = api.patch(url, json={"name": "Renamed"})
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["text"] == "Old" and renamed.get_json()["send_at"] == "2026-03-02T11:00:00Z"

    later = _iso(T0 + timedelta(hours=3))
    edited = api.patch(
        url,
        json={"text": "New {case.name}", "send_at": later, "recipients": {"cases": [amina, baraka]}},
    )
    assert edited.status_code == 200, edited.get_json()
    body = edited.get_json()
    assert body["status"] == "scheduled" and body["name"] == "Renamed"
    assert body["send_at"] == body["next_fire_at"] == later

    clock.set_now(T0 + timedelta(hours=2))
    assert tick(app) == {}  # the old time passes
    clock.set_now(T0 + timedelta(hours=3))
    assert tick(app) == {"fired": 1}
    run_jobs()
    assert by_phone(fake.messages) == {"+254712002301": ["New Amina"], "+254712002302": ["New Baraka"]}
    assert error_of(api.patch(url, json={"name": "Again"}), 409)["code"] == "not_editable"
    assert error_of(api.delete(url), 409)["code"] == "already_fired"


def test_edit_switches_between_once_and_repeat_and_content_kinds(app, twilio_project, fake, run_jobs):
    p = twilio_project
    api = p.api()
    clock.set_now(datetime(2026, 3, 2, 5, 0))  # 08:00 in Nairobi
    case = make_case(p, name="Amina", phone="+254712002401", language="sw")
    created = create(p, recipients={"cases": [case]}, text="Once", send_at="2026-03-02T08:00:00Z")
    url = f"/api/v1/broadcasts/{created['id']}"

    to_repeat = api.patch(url, json={"repeat": {"kind": "daily", "time": "10:00", "end_date": "2026-03-03"}})
    assert to_repeat.status_code == 200, to_repeat.get_json()
    body = to_repeat.get_json()
    assert body["send_at"] is None and body["repeat"]["kind"] == "daily"
    assert body["next_fire_at"] == "2026-03-02T07:00:00Z"

    to_translations = api.patch(url, json={"translations": {"en": "Hello", "sw": "Habari"}})
    assert to_translations.status_code == 200, to_translations.get_json()
    body = to_translations.get_json()
    assert body["text"] is None and body["translations"] == {"en": "Hello", "sw": "Habari"}
    assert body["repeat"]["kind"] == "daily"  # kept

    clock.set_now(datetime(2026, 3, 2, 7, 0))
    assert tick(app) == {"fired": 1}
    run_jobs()
    assert by_phone(fake.messages) == {"+254712002401": ["Habari"]}
    # Fired once but repeating: still scheduled, so it can be edited (not deleted).
    assert show(p, created["id"])["status"] == "scheduled"
    assert error_of(api.delete(url), 409)["code"] == "already_fired"
    edited = api.patch(url, json={"text": "Tomorrow"})
    assert edited.status_code == 200, edited.get_json()
    assert edited.get_json()["translations"] is None

    back_to_once = api.patch(url, json={"send_at": "2026-03-02T09:00:00Z"})
    assert back_to_once.status_code == 200, back_to_once.get_json()
    assert back_to_once.get_json()["repeat"] is None
    assert back_to_once.get_json()["next_fire_at"] == "2026-03-02T09:00:00Z"
    clock.set_now(datetime(2026, 3, 2, 8, 59, 59))
    assert tick(app) == {}
    clock.set_now(datetime(2026, 3, 2, 9, 0))
    assert tick(app) == {"fired": 1}
    run_jobs()
    assert by_phone(fake.messages) == {"+254712002401": ["Habari", "Tomorrow"]}
    clock.set_now(datetime(2026, 3, 3, 7, 0))  # the old daily time: nothing
    assert tick(app) == {}
    assert [f["fire_at"] for f in firings(p, created["id"])] == [
        datetime(2026, 3, 2, 7, 0),
        datetime(2026, 3, 2, 9, 0),
    ]


def test_a_survey_deferred_by_quiet_hours_starts_its_reminders_and_expiry_at_the_opening(
    app, twilio_project, fake, run_jobs
):
    from messaging.sms import sweep
    from messaging.surveys import timers
    from tests.factories import make_survey
    from tests.integration.inbound.inbound_helpers import say, sessions_of

    p = twilio_project
    clock.set_now(datetime(2026, 3, 2, 2, 0))  # 05:00 in Nairobi; the window opens at 08:00 (05:00Z)
    survey_id = make_survey(p)  # reminder after 30 minutes, expires after 120
    case = make_case(p, name="Asha", phone="+254712002501")
    created = create(
        p, recipients={"cases": [case]}, survey_id=survey_id, quiet_hours={"start": "08:00", "end": "20:00"}
    )
    run_jobs()
    [message] = rows(p, broadcast_id=created["id"])
    assert message["due_at"] == datetime(2026, 3, 2, 5, 0) and fake.messages == []
    # The night goes by: no reminder of a question not yet sent, and the session does not expire.
    for moment in (datetime(2026, 3, 2, 2, 31), datetime(2026, 3, 2, 4, 1), datetime(2026, 3, 2, 4, 59)):
        clock.set_now(moment)
        with app.app_context():
            assert timers.tick() == {}, moment
        run_jobs()
    assert fake.messages == []
    [session] = sessions_of(p)
    assert session["status"] == "open"
    assert session["expires_at"] == datetime(2026, 3, 2, 7, 0)
    assert session["reminder_due_at"] == datetime(2026, 3, 2, 5, 30)
    clock.set_now(datetime(2026, 3, 2, 5, 0, 31))
    with app.app_context():
        assert sweep.sweep().requeued == 1
    run_jobs()
    assert by_phone(fake.messages) == {"+254712002501": ["How old are you?"]}
    assert say(p, run_jobs, "+254712002501", "34") == ["Any fever?\n1. Yes\n2. No"]
