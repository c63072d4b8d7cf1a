"""Conditional alerts end to end: rules through the API, cases changed by forms and uploads,
schedules recomputed in the same transaction, the tick sending through the outbox."""

import io
import uuid
from datetime import datetime, timedelta

import openpyxl
import pytest

from messaging.alerts import sending
from messaging.lib import clock
from tests.factories import make_survey, rows

NOW = datetime(2026, 3, 2, 9, 0)  # 12:00 in Nairobi, the project's zone
VISIT_RULE = {
    "name": "ANC visit reminder",
    "case_type": "mother",
    "criteria": [{"property": "risk", "op": "eq", "value": "high"}],
    "start": {"property": "next_visit", "offset_days": -2, "time": "09:00"},
    "recipient": "case",
    "text": "Hello {case.name}, your visit is on {case.next_visit}.",
}


class Field:
    """An application, a mobile worker with a phone and a case-sharing group, made through the API."""

    def __init__(self, project):
        self.project = project
        api = self.api = project.api()
        self.app_id = api.post("/api/v1/applications", json={"name": "ANC"}).get_json()["id"]
        self.worker = self.user("nurse", "+254711000001")
        self.partner = self.user("midwife", "+254711000002")
        r = api.post(
            "/api/v1/groups",
            json={"name": "Clinic", "case_sharing": True, "members": [self.worker, self.partner]},
        )
        self.group = r.get_json()["id"]

    def user(self, name, phone):
        r = self.api.post("/api/v1/users", json={"username": name, "phone_number": phone})
        assert r.status_code == 201, r.get_json()
        return r.get_json()["id"]

    def form(self, case_id, create=False, close=False, **update):
        block = {"case_id": case_id}
        if create:
            block["create"] = {
                "case_type": "mother",
                "case_name": update.pop("name", "Amina"),
                "owner_id": create,
            }
        if update:
            block["update"] = update
        if close:
            block["close"] = True
        r = self.api.post(
            "/api/v1/forms", json={"app_id": self.app_id, "user_id": self.worker, "cases": [block]}
        )
        assert r.status_code == 201, r.get_json()
        return case_id

    def mother(self, owner=None, **update):
        return self.form(uuid.uuid4().hex, create=owner or self.worker, **update)

    def rule(self, **overrides):
        r = self.api.post("/api/v1/alerts", json={**VISIT_RULE, **overrides})
        assert r.status_code == 201, r.get_json()
        return r.get_json()["id"]

    def upcoming(self, case_id):
        r = self.api.get(f"/api/v1/cases/{case_id}/upcoming")
        assert r.status_code == 200, r.get_json()
        return r.get_json()["results"]

    def history(self, rule_id, **args):
        r = self.api.get(f"/api/v1/alerts/{rule_id}/history", query_string=args)
        assert r.status_code == 200, r.get_json()
        return r.get_json()["results"]


@pytest.fixture
def field(project):
    clock.set_now(NOW)
    return Field(project)


def tick(app):
    with app.app_context():
        return sending.tick()


def test_a_reminder_follows_its_date_and_stops_when_the_case_stops_matching(field):
    rule = field.rule()
    case = field.mother(phone_number="+254712000001", risk="high", next_visit="2026-03-12")
    [item] = field.upcoming(case)
    assert item["due_at"] == "2026-03-10T06:00:00Z"  # 09:00 in Nairobi, two days before
    assert item["to"] == "+254712000001" and item["alert_id"] == rule
    assert item["text"] == "Hello Amina, your visit is on 2026-03-12."
    assert item["why"] == "next_visit is 2026-03-12: 2 days before, at 09:00"
    first = item["occurrence_id"]

    field.form(case, next_visit="2026-03-20")  # the date moves: the reminder moves with it
    [moved] = field.upcoming(case)
    assert (moved["occurrence_id"], moved["due_at"]) == (first, "2026-03-18T06:00:00Z")

    field.form(case, risk="low")  # no longer matches
    assert field.upcoming(case) == []
    [cancelled] = field.history(rule)
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "stopped_matching")

    field.form(case, risk="high")  # matches again: the reminder, still ahead, comes back
    assert [u["occurrence_id"] for u in field.upcoming(case)] == [first]

    field.form(case, close=True)
    assert field.upcoming(case) == []
    assert [(h["status"], h["reason"]) for h in field.history(rule)] == [("cancelled", "case_closed")]


def test_a_new_date_after_the_old_reminder_went_gets_a_reminder_of_its_own(app, field):
    clock.set_now(datetime(2026, 3, 1, 9, 0))
    rule = field.rule()
    case = field.mother(phone_number="+254712000001", risk="high", next_visit="2026-03-04")
    clock.set_now(datetime(2026, 3, 2, 6, 0, 30))
    assert tick(app)["sent"] == 1
    field.form(case, next_visit="2026-04-01")
    [item] = field.upcoming(case)
    assert item["due_at"] == "2026-03-30T06:00:00Z"
    assert sorted((h["status"], h["date"]) for h in field.history(rule)) == [
        ("pending", "2026-04-01"),
        ("sent", "2026-03-04"),
    ]


def test_a_new_rule_is_applied_to_the_existing_cases_by_a_job_with_progress(field, run_jobs):
    cases = [field.mother(risk="high", next_visit=f"2026-03-{10 + n}") for n in range(3)]
    low = field.mother(risk="low", next_visit="2026-03-10")
    rule = field.rule()
    assert all(field.upcoming(c) == [] for c in cases)  # not yet: the job does it
    assert field.api.get(f"/api/v1/alerts/{rule}").get_json()["applying"] == {
        "status": "applying",
        "done": 0,
        "total": 4,
    }
    assert run_jobs() >= 1
    assert [field.upcoming(c)[0]["due_at"] for c in cases] == [
        "2026-03-08T06:00:00Z",
        "2026-03-09T06:00:00Z",
        "2026-03-10T06:00:00Z",
    ]
    assert field.upcoming(low) == []
    body = field.api.get(f"/api/v1/alerts/{rule}").get_json()
    assert body["applying"] == {"status": "done", "done": 4, "total": 4}
    assert body["counts"] == {"pending": 3}
    assert run_jobs() == 0 or body == field.api.get(f"/api/v1/alerts/{rule}").get_json()


def test_a_rule_without_a_start_fires_once_each_time_a_case_starts_matching(app, field):
    rule = field.rule(start=None, text="{case.name} is high risk", recipient="owner")
    case = field.mother(risk="high", name="Zawadi")
    field.form(case, risk="high", note="saved again")  # still matching: nothing new
    assert len(field.history(rule)) == 1
    assert tick(app) == {"claimed": 1, "sent": 1, "messages": 1}
    field.form(case, note="and again")
    assert tick(app) == {}
    field.form(case, risk="low")
    field.form(case, risk="high")  # entering again sends again
    assert tick(app)["messages"] == 1
    sent = rows(field.project, alert_id=rule)
    assert [(m["phone"], m["body"], m["case_id"]) for m in sent] == [
        ("+254711000001", "Zawadi is high risk", None)
    ] * 2


def test_past_and_missing_and_unreadable_dates_are_skipped_with_their_reason(field):
    rule = field.rule()
    past = field.mother(risk="high", next_visit="2026-03-01")
    missing = field.mother(risk="high")
    bad = field.mother(risk="high", next_visit="next Tuesday")
    good = field.mother(risk="high", next_visit="2026-03-09")
    by_case = {h["case_id"]: (h["status"], h["reason"]) for h in field.history(rule)}
    assert by_case == {
        past: ("skipped", "past_due"),
        missing: ("skipped", "no_date"),
        bad: ("skipped", "bad_date"),
        good: ("pending", None),
    }
    field.form(missing, risk="high", note="saved again")
    assert len(field.history(rule)) == 4  # a skipped reason is recorded once


def test_repeats_each_get_an_occurrence(field):
    field.rule(repeat={"every_days": 7, "times": 2})
    case = field.mother(risk="high", next_visit="2026-03-12")
    assert [u["due_at"] for u in field.upcoming(case)] == [
        "2026-03-10T06:00:00Z",
        "2026-03-17T06:00:00Z",
        "2026-03-24T06:00:00Z",
    ]
    assert field.upcoming(case)[1]["why"].endswith("(repeat 1 of 2, every 7 days)")


def test_owner_recipients_are_the_worker_or_every_member_of_the_owning_group(app, field):
    rule = field.rule(start=None, text="Check on {case.name}", recipient="case_and_owner")
    by_worker = field.mother(phone_number="+254712000001", risk="high", name="A")
    by_group = field.mother(owner=field.group, phone_number="+254712000002", risk="high", name="B")
    assert sorted(u["to"] for u in field.upcoming(by_group)) == [
        "+254711000001",
        "+254711000002",
        "+254712000002",
    ]
    assert tick(app)["messages"] == 5
    sent = rows(field.project, alert_id=rule)
    with_case = {(m["phone"], m["body"], m["case_id"] is not None) for m in sent}
    assert with_case == {
        ("+254712000001", "Check on A", True),
        ("+254711000001", "Check on A", False),
        ("+254712000002", "Check on B", True),
        ("+254711000001", "Check on B", False),
        ("+254711000002", "Check on B", False),
    }
    assert by_worker


def test_pausing_resuming_and_deleting(field, run_jobs):
    rule = field.rule()
    case = field.mother(risk="high", next_visit="2026-03-12")
    first = field.upcoming(case)[0]["occurrence_id"]
    r = field.api.patch(f"/api/v1/alerts/{rule}", json={"active": False})
    assert r.status_code == 200 and r.get_json()["active"] is False
    assert field.upcoming(case) == []
    assert field.history(rule)[0]["reason"] == "rule_paused"
    field.api.patch(f"/api/v1/alerts/{rule}", json={"active": True})
    run_jobs()
    assert [u["occurrence_id"] for u in field.upcoming(case)] == [first]
    field.api.patch(
        f"/api/v1/alerts/{rule}",
        json={"start": {"property": "next_visit", "offset_days": -1, "time": "08:00"}},
    )
    run_jobs()
    assert field.upcoming(case)[0]["due_at"] == "2026-03-11T05:00:00Z"
    assert field.api.delete(f"/api/v1/alerts/{rule}").status_code == 204
    assert field.upcoming(case) == []
    assert field.api.get(f"/api/v1/alerts/{rule}").status_code == 404
    assert field.api.get("/api/v1/alerts").get_json()["results"] == []


def test_a_bulk_upload_recomputes_the_schedules_of_the_cases_it_changes(field, run_jobs):
    rule = field.rule()
    book = openpyxl.Workbook()
    book.active.append(["case_id", "case_type", "name", "owner_id", "risk", "next_visit"])
    book.active.append(["", "mother", "Upload", field.worker, "high", "2026-03-12"])
    data = io.BytesIO()
    book.save(data)
    r = field.api.post(
        "/api/v1/cases/imports",
        data={"file": (io.BytesIO(data.getvalue()), "cases.xlsx")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 202, r.get_json()
    run_jobs()
    [occurrence] = field.history(rule)
    assert (occurrence["status"], occurrence["due_at"]) == ("pending", "2026-03-10T06:00:00Z")


def test_a_due_reminder_is_sent_once_even_when_the_tick_crashes_midway(
    app, twilio_project, fake, run_jobs, monkeypatch
):
    clock.set_now(datetime(2026, 3, 1, 9, 0))
    field = Field(twilio_project)
    rule = field.rule()
    case = field.mother(phone_number="+254712000001", risk="high", next_visit="2026-03-04", name="Neema")
    clock.set_now(datetime(2026, 3, 2, 6, 0))

    from messaging.sms import outbox

    real_insert = outbox.insert_messages

    def crash(*args, **kwargs):
        raise RuntimeError("the worker died while writing the messages")

    monkeypatch.setattr(outbox, "insert_messages", crash)
    crashed = tick(app)
    assert crashed["errors"] == 1 and "sent" not in crashed
    assert field.history(rule)[0]["status"] == "pending"  # the claim rolled back with the crash
    monkeypatch.setattr(outbox, "insert_messages", real_insert)
    assert tick(app)["sent"] == 1
    assert "claimed" not in tick(app)  # nothing left to send, however often it runs
    run_jobs()
    assert [(m["to"], m["body"]) for m in fake.messages] == [
        ("+254712000001", "Hello Neema, your visit is on 2026-03-04.")
    ]
    [sent] = field.history(rule)
    assert (sent["status"], sent["messages"]) == ("sent", 1)
    assert [m["status"] for m in rows(twilio_project, alert_id=rule)] == ["sent"]
    assert field.upcoming(case) == []


def test_late_occurrences_are_skipped_not_sent_hours_late(app, field):
    rule = field.rule()
    field.mother(risk="high", phone_number="+254712000001", next_visit="2026-03-05")
    clock.set_now(datetime(2026, 3, 3, 13, 0))  # seven hours after 09:00 local (06:00Z)
    late = tick(app)
    assert (late["claimed"], late["past_due"], late.get("sent")) == (1, 1, None)
    assert field.history(rule)[0]["reason"] == "past_due"


def test_quiet_hours_move_a_message_to_the_next_opening(app, field):
    rule = field.rule(start=None, quiet_hours={"start": "14:00", "end": "18:00"}, text="hi")
    field.mother(risk="high", phone_number="+254712000001")
    tick(app)
    [message] = rows(field.project, alert_id=rule)
    assert message["due_at"] == datetime(2026, 3, 2, 11, 0)  # 14:00 in Nairobi


def test_a_survey_rule_opens_a_session_for_the_case(app, field):
    survey = make_survey(field.project)
    rule = field.rule(start=None, text=None, survey_id=survey)
    field.mother(risk="high", phone_number="+254712000001")
    assert tick(app)["surveys"] == 1
    [message] = rows(field.project, alert_id=rule)
    assert message["body"] == "How old are you?" and message["survey_session_id"]


def test_a_repeating_survey_rule_until_completed_re_asks_only_the_cases_that_did_not_finish(
    app, field, run_jobs
):
    from tests.integration.inbound.inbound_helpers import say

    short = {
        "name": "Check",
        "questions": [{"id": "ok", "type": "select", "text": "OK?", "choices": ["Yes", "No"]}],
    }
    survey = make_survey(field.project, **short)
    repeat = {"every_days": 1, "times": 2, "until_completed": True}
    rule = field.rule(start=None, text=None, survey_id=survey, repeat=repeat)
    assert field.api.get(f"/api/v1/alerts/{rule}").get_json()["repeat"] == repeat
    field.mother(risk="high", phone_number="+254712000001", name="Amina")
    field.mother(risk="high", phone_number="+254712000002", name="Juma")
    assert tick(app)["surveys"] == 2
    run_jobs()
    assert say(field.project, run_jobs, "+254712000001", "1") == [
        "Thank you, your answers have been received."
    ]

    clock.set_now(NOW + timedelta(days=1))
    again = tick(app)
    assert (again["surveys"], again["completed"]) == (1, 1)
    asked = [m["phone"] for m in rows(field.project, alert_id=rule)]
    assert sorted(asked) == ["+254712000001", "+254712000002", "+254712000002"]
    assert [h["reason"] for h in field.history(rule) if h["status"] == "skipped"] == ["completed"]

    clock.set_now(NOW + timedelta(days=2))  # Juma still has not answered: asked a third time
    last = tick(app)
    assert (last["surveys"], last["completed"]) == (1, 1)
    assert [m["phone"] for m in rows(field.project, alert_id=rule)].count("+254712000002") == 3


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"criteria": [{"property": "risk", "op": "like", "value": "h"}]}, "criteria.0.op"),
        ({"criteria": [{"property": "risk", "op": "in", "value": "high"}]}, "criteria.0.value"),
        ({"start": {"property": "next_visit", "offset_days": 0, "time": "25:00"}}, "start.time"),
        ({"start": {"property": "next_visit", "offset_days": 400, "time": "09:00"}}, "start.offset_days"),
        ({"repeat": {"every_days": 0, "times": 2}}, "repeat.every_days"),
        ({"repeat": {"every_days": 1, "times": 2, "until_completed": True}}, "repeat.until_completed"),
        ({"repeat": {"every_days": 1, "times": 2, "until_completed": "yes"}}, "repeat.until_completed"),
        ({"recipient": "everyone"}, "recipient"),
        ({"case_type": ""}, "case_type"),
        ({"text": "Hi {case.name"}, "text"),
        ({"text": None, "survey_id": "nope"}, "survey_id"),
    ],
)
def test_bad_rules_are_refused_naming_the_field_and_nothing_is_saved(field, change, field_name):
    r = field.api.post("/api/v1/alerts", json={**VISIT_RULE, **change})
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["error"]["details"]["field"] == field_name
    assert field.api.get("/api/v1/alerts").get_json()["results"] == []


def test_another_projects_survey_rule_and_case_are_not_found(field, other_project):
    other_survey = make_survey(other_project)
    r = field.api.post("/api/v1/alerts", json={**VISIT_RULE, "text": None, "survey_id": other_survey})
    assert r.status_code == 400 and r.get_json()["error"]["details"]["field"] == "survey_id"
    rule = field.rule()
    case = field.mother(risk="high", next_visit="2026-03-12")
    other = other_project.api()
    assert other.get(f"/api/v1/alerts/{rule}").status_code == 404
    assert other.patch(f"/api/v1/alerts/{rule}", json={"active": False}).status_code == 404
    assert other.delete(f"/api/v1/alerts/{rule}").status_code == 404
    assert other.get(f"/api/v1/alerts/{rule}/history").status_code == 404
    assert other.get(f"/api/v1/cases/{case}/upcoming").status_code == 404
    assert len(field.upcoming(case)) == 1


def test_a_rule_does_not_touch_cases_of_another_type(field):
    field.rule()
    app_id = field.app_id
    r = field.api.post(
        "/api/v1/forms",
        json={
            "app_id": app_id,
            "user_id": field.worker,
            "cases": [
                {
                    "case_id": "child-1",
                    "create": {"case_type": "child", "case_name": "C", "owner_id": field.worker},
                    "update": {"risk": "high", "next_visit": "2026-03-12"},
                }
            ],
        },
    )
    assert r.status_code == 201
    assert field.upcoming("child-1") == []


def test_the_tick_is_quiet_when_nothing_is_due(app, field):
    field.rule()
    field.mother(risk="high", next_visit="2026-03-12")
    assert tick(app) == {}
    clock.set_now(NOW + timedelta(days=30))
    late = tick(app)
    assert (late["claimed"], late["past_due"], late.get("sent")) == (1, 1, None)


def test_the_preview_counts_every_matching_case_and_says_what_its_skips_are_of(field, monkeypatch):
    from messaging.alerts import preview

    monkeypatch.setattr(preview, "MAX_CASES", 2)  # read at most 2 of the matching cases
    for n in range(4):
        field.mother(risk="high", name=f"M{n}")
    field.mother(risk="low", name="Low")
    body = field.api.post("/api/v1/alerts/preview", json=VISIT_RULE).get_json()
    assert (body["open_cases"], body["matching"], body["skipped_of_first"]) == (5, 4, 2)
    assert body["skipped"] == {"no_date": 2}


def test_the_preview_counts_matching_cases_and_shows_their_next_messages_without_saving(field):
    field.mother(risk="high", next_visit="2026-03-20", name="Later")
    field.mother(risk="high", next_visit="2026-03-10", name="Sooner")
    field.mother(risk="high", name="Undated")
    field.mother(risk="high", next_visit="2026-02-01", name="Past")
    field.mother(risk="low", next_visit="2026-03-10", name="Low")
    r = field.api.post("/api/v1/alerts/preview", json=VISIT_RULE)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["open_cases"], body["matching"]) == (5, 4)
    assert body["skipped"] == {"no_date": 1, "past_due": 1}
    assert [(n["name"], n["due_at"]) for n in body["next"]] == [
        ("Sooner", "2026-03-08T06:00:00Z"),
        ("Later", "2026-03-18T06:00:00Z"),
    ]
    assert body["next"][0]["text"] == "Hello Sooner, your visit is on 2026-03-10."
    assert field.api.get("/api/v1/alerts").get_json()["results"] == []
    bad = field.api.post(
        "/api/v1/alerts/preview", json={**VISIT_RULE, "start": {"property": "x", "time": "7pm"}}
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["details"]["field"] == "start.time"


def test_the_dry_run_matches_what_the_clock_then_sends(app, field):
    field.rule(repeat={"every_days": 2, "times": 3}, quiet_hours={"start": "10:00", "end": "18:00"})
    field.rule(
        name="Owner follow-up",
        start={"property": "next_visit", "offset_days": 1, "time": "14:00"},
        recipient="owner",
        text="Did {case.name} come?",
    )
    for n in range(4):
        field.mother(
            phone_number=f"+25471200010{n}", risk="high", next_visit=f"2026-03-0{4 + n}", name=f"M{n}"
        )
    r = field.api.post("/api/v1/alerts/dry-run", json={"days": 10})
    assert r.status_code == 200, r.get_json()
    plan = r.get_json()
    predicted = {d["date"]: d["messages"] for d in plan["days"]}
    # M0's first reminder (09:00 today) was already past when scheduled: 3 + 3 * 4 reminders, 4 follow-ups
    assert plan["total_messages"] == 3 + 3 * 4 + 4 == sum(predicted.values())
    assert all(d["held_by_quiet_hours"] == (d["messages"] - predicted_owner(d["date"])) for d in plan["days"])
    assert plan["samples"][0]["due_at"] == "2026-03-03T07:00:00Z"  # M1's 09:00 held to 10:00 local

    sent_per_day = {}
    start = datetime(2026, 3, 2, 21, 0)  # midnight in Nairobi
    for day in range(11):
        for hour in range(0, 24):
            clock.set_now(start + timedelta(days=day, hours=hour))
            tick(app)
        local_day = (start + timedelta(days=day, hours=3)).date().isoformat()
        count = len([m for m in rows(field.project) if m["alert_id"]])
        sent_per_day[local_day] = count - sum(sent_per_day.values())
    assert {d: n for d, n in sent_per_day.items() if n} == predicted


def predicted_owner(local_day: str) -> int:
    """Owner follow-ups (no quiet hours) fall on the day after each visit: 5 to 8 March."""
    return 1 if local_day in ("2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08") else 0


def test_the_dry_run_refuses_a_bad_number_of_days(field):
    for days in (0, 91, "7", True):
        r = field.api.post("/api/v1/alerts/dry-run", json={"days": days})
        assert r.status_code == 400 and r.get_json()["error"]["details"]["field"] == "days"


def test_translations_follow_the_cases_language_and_opted_out_numbers_get_a_failed_message(app, field):
    rule = field.rule(
        start=None,
        text=None,
        translations={"en": "Hello {case.name}", "sw": "Habari {case.name}"},
        default_language="en",
    )
    field.mother(risk="high", phone_number="+254712000001", name="Amina", language="sw")
    field.mother(risk="high", phone_number="+254712000002", name="Beth", language="fr")
    field.mother(risk="high", phone_number="+254712000003", name="Cleo")
    r = field.api.post("/api/v1/opt-outs", json={"phone": "+254712000003", "reason": "asked by phone"})
    assert r.status_code in (200, 201), r.get_json()
    assert tick(app)["messages"] == 3
    sent = {
        m["phone"]: (m["body"], m["status"], m["skip_reason"]) for m in rows(field.project, alert_id=rule)
    }
    assert sent == {
        "+254712000001": ("Habari Amina", "queued", None),
        "+254712000002": ("Hello Beth", "queued", None),
        "+254712000003": ("Hello Cleo", "failed", "opted_out"),
    }
    assert {h["status"] for h in field.history(rule)} == {"sent"}
