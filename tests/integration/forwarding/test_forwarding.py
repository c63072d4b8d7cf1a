"""Data forwarding against a real local HTTP receiver: capture, send, retry, give up, e-mail,
order per case, pause, resend, cancel, sweep, and project isolation."""

from datetime import datetime

import pytest
from sqlalchemy import event, func, select

from messaging.db import after_commit
from messaging.extensions import db
from messaging.forwarding.capture import capture_case, capture_form
from messaging.forwarding.sender import forward_location
from messaging.forwarding.sweep import sweep
from messaging.lib import clock
from messaging.models import (
    Case,
    Form,
    ForwardAttempt,
    ForwardLocation,
    ForwardRecord,
    OutboundEmail,
)
from tests.fakes.http_receiver import Receiver

T0 = datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture
def rx():
    with Receiver.start() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.set_now(T0)
    yield
    clock.set_now(None)


def add_location(project, url, kind="cases", **body):
    response = project.api().post("/api/v1/forwarding", json={"url": url, "kind": kind, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def new_form(case_ids=(), answers=None, form_id=None):
    form = Form(app_id="app-1", user_id="user-1", answers=answers or {"q1": "yes"}, case_ids=list(case_ids))
    if form_id:
        form.form_id = form_id
    db.session.add(form)
    db.session.flush()
    return form


def submit_form(project, **kw) -> str:
    """What the forms service does: save, capture in the transaction, commit (which dispatches)."""
    with project.scope():
        form = new_form(**kw)
        capture_form(form, [])
        db.session.commit()
        return form.form_id


def change_case(project, case_id=None, **fields) -> str:
    with project.scope():
        case = None
        if case_id:
            case = db.session.execute(select(Case).where(Case.case_id == case_id)).scalar_one_or_none()
        if case is None:
            case = Case(case_type="person", name="", properties={})
            if case_id:
                case.case_id = case_id
            db.session.add(case)
        for key, value in fields.items():
            setattr(case, key, value)
        case.modified_on = clock.now()
        db.session.flush()
        capture_case(case)
        db.session.commit()
        return case.case_id


def records(project, **where):
    with project.scope():
        stmt = select(ForwardRecord).order_by(ForwardRecord.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(ForwardRecord, key) == value)
        rows = db.session.execute(stmt).scalars().all()
        db.session.expunge_all()
        return rows


def emails(app):
    with app.app_context():
        rows = db.session.execute(select(OutboundEmail).order_by(OutboundEmail.id)).scalars().all()
        db.session.expunge_all()
        return rows


class StatementCounter:
    def __init__(self, engine):
        self.engine = engine
        self.statements = []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args):
        self.statements.append(statement)


# --- capture ----------------------------------------------------------------------------------------


def test_capture_without_locations_costs_one_query_and_adds_nothing(project):
    with project.scope():
        form = new_form()
        case = Case(case_type="person", name="A")
        db.session.add(case)
        db.session.flush()
        with StatementCounter(db.engine) as counter:
            assert capture_form(form, []) == 0
            assert capture_case(case) == 0
            assert capture_case(case) == 0  # cached for the transaction
        assert len(counter.statements) == 2
        assert all("forward_locations" in s for s in counter.statements)
        assert after_commit.pending_count() == 0  # nothing to enqueue after the commit
        with StatementCounter(db.engine) as counter:
            db.session.commit()
        assert counter.statements == []
        assert db.session.execute(select(func.count()).select_from(ForwardRecord)).scalar_one() == 0


def test_capture_adds_a_snapshot_per_location_of_the_kind_inside_the_transaction(project, rx):
    forms_a = add_location(project, rx.url + "/a", "forms")
    forms_b = add_location(project, rx.url + "/b", "forms", paused=True)
    add_location(project, rx.url + "/c", "cases")
    with project.scope():
        form = new_form(case_ids=["c1", "c2"], answers={"age": 31}, form_id="f" * 32)
        with StatementCounter(db.engine) as counter:
            assert capture_form(form, []) == 2
        # The locations, the records (one statement per location at most), the keys (one executemany).
        assert len(counter.statements) <= 4
        assert sum("INSERT INTO forward_record_keys" in s for s in counter.statements) == 1
        form.answers = {"age": 99}  # a later change does not alter the snapshot
        db.session.commit()
    rows = records(project)
    assert sorted(r.location_id for r in rows) == sorted([forms_a, forms_b])
    assert rows[0].payload == {
        "form_id": "f" * 32,
        "received_on": "2026-03-02T09:00:00Z",
        "app_id": "app-1",
        "user_id": "user-1",
        "answers": {"age": 31},
        "case_ids": ["c1", "c2"],
        "source": "api",
        "xmlns": None,
        "name": None,
        "cases": [],
    }
    assert {r.status for r in rows} == {"pending"}

    # A rolled-back transaction leaves nothing and dispatches nothing.
    with project.scope():
        capture_form(new_form(), [])
        assert after_commit.pending_count() == 2  # one sender per location
        db.session.rollback()
        assert after_commit.pending_count() == 0
    assert len(records(project)) == 2


def test_a_form_is_posted_as_json_with_the_extra_headers(project, rx, run_jobs):
    location_id = add_location(
        project,
        rx.url + "/inbox",
        "forms",
        headers={"Authorization": "Bearer s3cret-token-abcdef", "X-Source": "messaging"},
    )
    form_id = submit_form(project, case_ids=["case-1"], answers={"weight": 3.5})
    assert rx.count == 0  # nothing is sent in the request that saves the form
    run_jobs()
    (request,) = rx.requests
    assert request["path"] == "/inbox"
    assert request["json"] == {
        "form_id": form_id,
        "received_on": "2026-03-02T09:00:00Z",
        "app_id": "app-1",
        "user_id": "user-1",
        "answers": {"weight": 3.5},
        "case_ids": ["case-1"],
        "source": "api",
        "xmlns": None,
        "name": None,
        "cases": [],
    }
    assert request["headers"]["authorization"] == "Bearer s3cret-token-abcdef"
    assert request["headers"]["x-source"] == "messaging"
    assert request["headers"]["content-type"] == "application/json"
    (record,) = records(project)
    assert request["headers"]["x-forwarding-record-id"] == str(record.id)
    assert record.status == "succeeded" and record.attempts == 1 and record.last_status_code == 200
    attempts = project.api().get(f"/api/v1/forwarding/{location_id}/attempts").get_json()
    assert [(a["status_code"], a["succeeded"], a["response_excerpt"]) for a in attempts["results"]] == [
        (200, True, "ok")
    ]
    assert attempts["results"][0]["started_at"] == "2026-03-02T09:00:00Z"


def test_a_changed_case_is_posted_with_its_fields(project, rx, run_jobs):
    add_location(project, rx.url + "/cases", "cases")
    case_id = change_case(
        project,
        name="Amina",
        external_id="EXT-1",
        phone_number="+254712345678",
        owner_id="owner-1",
        user_id="user-1",
        properties={"village": "Kisumu"},
    )
    clock.advance(minutes=5)
    change_case(project, case_id, closed=True, closed_on=clock.now())
    run_jobs()
    first, second = rx.bodies()
    assert first == {
        "case_id": case_id,
        "case_type": "person",
        "name": "Amina",
        "external_id": "EXT-1",
        "phone_number": "+254712345678",
        "owner_id": "owner-1",
        "user_id": "user-1",
        "closed": False,
        "opened_on": "2026-03-02T09:00:00Z",
        "modified_on": "2026-03-02T09:00:00Z",
        "closed_on": None,
        "properties": {"village": "Kisumu"},
        "phone_raw": None,
        "phone_invalid": False,
        "language": None,
        "deleted": False,
    }
    assert second["closed"] is True and second["closed_on"] == "2026-03-02T09:05:00Z"
    assert second["modified_on"] == "2026-03-02T09:05:00Z"


# --- retries, timeouts, giving up, e-mail ---------------------------------------------------------------


def test_failures_are_retried_with_growing_delays_then_given_up_and_emailed(app, project, rx, run_jobs):
    from rq.registry import ScheduledJobRegistry

    from messaging.jobs import queue

    rx.status = 500
    location_id = add_location(project, rx.url + "/x", "forms", notify_emails=["ops@example.org"])
    form_id = submit_form(project)
    run_jobs()
    (record,) = records(project)
    assert (record.status, record.attempts, record.last_status_code) == ("pending", 1, 500)
    assert record.next_attempt_at == datetime(2026, 3, 2, 9, 1)
    with app.app_context():
        assert ScheduledJobRegistry(queue=queue("default")).count == 1  # the retry, via enqueue_in

    # Not due yet: running the scheduled retry early sends nothing.
    run_jobs(scheduled=True)
    assert rx.count == 1

    for n, delay in enumerate([60, 300, 1800, 7200, 43200], start=2):
        clock.advance(seconds=delay - 1)
        run_jobs(scheduled=True)
        assert rx.count == n - 1, f"attempt {n} went out early"
        clock.advance(seconds=1)
        run_jobs(scheduled=True)
        assert rx.count == n
    (record,) = records(project)
    assert (record.status, record.attempts) == ("failed", 6)
    assert record.notified_at == clock.now()

    (email,) = emails(app)
    assert email.to_addresses == ["ops@example.org"] and email.status == "printed"
    assert form_id in email.body and "HTTP 500" in email.body and rx.url in email.subject

    attempts = project.api().get(f"/api/v1/forwarding/{location_id}/attempts?limit=4").get_json()
    assert [a["attempt"] for a in attempts["results"]] == [6, 5, 4, 3]
    assert {a["status_code"] for a in attempts["results"]} == {500}
    assert all(a["response_excerpt"] == "" for a in attempts["results"])  # a 5xx answer is not kept
    assert attempts["results"][0]["error"] == "HTTP 500"
    rest = project.api().get(attempts["next"].replace("http://localhost", "")).get_json()
    assert [a["attempt"] for a in rest["results"]] == [2, 1] and rest["next"] is None

    # Nothing more happens afterwards, and no second e-mail.
    clock.advance(days=2)
    with app.app_context():
        sweep()
    run_jobs(scheduled=True)
    assert rx.count == 6 and len(emails(app)) == 1


def test_a_hanging_receiver_times_out_and_is_retried(project, rx, run_jobs, config):
    config(FORWARDING_TIMEOUT=0.5)
    rx.script = ["hang"]
    add_location(project, rx.url + "/slow", "forms")
    submit_form(project)
    run_jobs()
    (record,) = records(project)
    assert record.status == "pending" and record.last_status_code is None
    assert record.last_error == "timed out after 0.5 s"
    with project.scope():
        (attempt,) = db.session.execute(select(ForwardAttempt)).scalars().all()
        assert attempt.duration_ms >= 450 and attempt.status_code is None and not attempt.succeeded
    clock.advance(minutes=1)
    run_jobs(scheduled=True)
    (record,) = records(project)
    assert record.status == "succeeded" and record.attempts == 2


def test_connection_refused_is_a_failure_too(project, run_jobs):
    add_location(project, "http://127.0.0.1:9/closed", "forms")
    submit_form(project)
    run_jobs()
    (record,) = records(project)
    assert record.status == "pending" and record.attempts == 1 and "ConnectionError" in record.last_error


def test_a_redirect_is_not_success(project, rx, run_jobs):
    rx.script = [302]
    rx.redirect_to = rx.url + "/elsewhere"
    add_location(project, rx.url + "/moved", "forms")
    submit_form(project)
    run_jobs()
    (record,) = records(project)
    assert record.status == "pending" and record.last_status_code == 302
    assert [r["path"] for r in rx.requests] == ["/moved"]  # not followed


def test_failure_emails_come_once_per_burst_per_location_and_none_is_lost(app, project, rx, run_jobs, config):
    config(FORWARDING_RETRY_DELAYS=[60])
    rx.status = 500
    add_location(project, rx.url + "/x", "cases", notify_emails=["a@example.org", "b@example.org"])
    for name in ("one", "two", "three"):
        change_case(project, name=name)
    run_jobs()
    clock.advance(minutes=1)
    run_jobs(scheduled=True)
    assert [r.status for r in records(project)] == ["failed"] * 3
    (first,) = emails(app)
    assert first.to_addresses == ["a@example.org", "b@example.org"]
    assert "gave up on 3 record(s)" in first.body

    # Another give-up within the hour: no new e-mail yet, even from the sweep...
    clock.advance(minutes=10)
    late = change_case(project, name="four")
    run_jobs()
    clock.advance(minutes=1)
    run_jobs(scheduled=True)
    with app.app_context():
        sweep()
    assert len(emails(app)) == 1
    (unreported,) = records(project, status="failed", notified_at=None)
    # ...but once the hour has passed, the sweep reports it.
    clock.advance(hours=1)
    with app.app_context():
        assert sweep()["emailed"] == 1
    second = emails(app)[1]
    assert "gave up on 1 record(s)" in second.body and late in second.body
    assert records(project, status="failed", notified_at=None) == []


def test_without_addresses_a_give_up_is_recorded_but_not_emailed(app, project, rx, run_jobs, config):
    config(FORWARDING_RETRY_DELAYS=[])
    rx.status = 503
    add_location(project, rx.url + "/x", "forms")
    submit_form(project)
    run_jobs()
    (record,) = records(project)
    assert record.status == "failed" and record.attempts == 1 and record.notified_at is not None
    assert emails(app) == []


# --- order per case ---------------------------------------------------------------------------------


def test_later_changes_of_a_case_wait_for_the_earlier_one(project, rx, run_jobs):
    rx.script = [500]  # the first POST (case X, version 1) fails once
    add_location(project, rx.url + "/cases", "cases")
    x = change_case(project, name="x1")
    change_case(project, x, name="x2")
    y = change_case(project, name="y1")
    change_case(project, x, name="x3")
    run_jobs()
    assert [b["name"] for b in rx.bodies()] == ["x1", "y1"]
    assert [r.status for r in records(project)] == ["pending", "pending", "succeeded", "pending"]
    clock.advance(minutes=1)
    run_jobs(scheduled=True)
    assert [(b["case_id"], b["name"]) for b in rx.bodies()] == [
        (x, "x1"),
        (y, "y1"),
        (x, "x1"),
        (x, "x2"),
        (x, "x3"),
    ]
    assert {r.status for r in records(project)} == {"succeeded"}


def test_a_record_that_gave_up_no_longer_blocks_the_case(project, rx, run_jobs, config):
    config(FORWARDING_RETRY_DELAYS=[60])
    rx.script = [500, 500]
    add_location(project, rx.url + "/cases", "cases")
    x = change_case(project, name="x1")
    change_case(project, x, name="x2")
    run_jobs()
    assert [b["name"] for b in rx.bodies()] == ["x1"]
    clock.advance(minutes=1)
    run_jobs(scheduled=True)
    # x1 failed twice and gave up; x2 then went out instead of waiting forever.
    assert [b["name"] for b in rx.bodies()] == ["x1", "x1", "x2"]
    assert [r.status for r in records(project)] == ["failed", "succeeded"]


def test_forms_touching_the_same_case_keep_their_order(project, rx, run_jobs):
    rx.script = [500]
    add_location(project, rx.url + "/forms", "forms")
    first = submit_form(project, case_ids=["case-x"])
    second = submit_form(project, case_ids=["case-z", "case-x"])
    other = submit_form(project, case_ids=["case-z"])
    alone = submit_form(project)
    run_jobs()
    # `second` waits for `first` (case-x); `other` waits for `second` (case-z); `alone` goes.
    assert [b["form_id"] for b in rx.bodies()] == [first, alone]
    clock.advance(minutes=1)
    run_jobs(scheduled=True)
    assert [b["form_id"] for b in rx.bodies()] == [first, alone, first, second, other]


# --- pause, resend, cancel ----------------------------------------------------------------------------


def test_a_paused_location_captures_and_resume_sends_in_order(project, rx, run_jobs):
    location_id = add_location(project, rx.url + "/cases", "cases")
    api = project.api()
    paused = api.patch(f"/api/v1/forwarding/{location_id}", json={"paused": True}).get_json()
    assert paused["paused"] is True
    x = change_case(project, name="x1")
    change_case(project, x, name="x2")
    change_case(project, name="y1")
    run_jobs()
    with project.app.app_context():
        sweep()  # the sweep does not send for a paused location either
    run_jobs()
    assert rx.count == 0
    assert api.get(f"/api/v1/forwarding/{location_id}").get_json()["counts"]["pending"] == 3
    resumed = api.patch(f"/api/v1/forwarding/{location_id}", json={"paused": False}).get_json()
    assert resumed["paused"] is False
    run_jobs()
    assert [b["name"] for b in rx.bodies()] == ["x1", "y1", "x2"]


def test_resend_and_cancel(project, rx, run_jobs, config):
    config(FORWARDING_RETRY_DELAYS=[])
    rx.script = [500]
    location_id = add_location(project, rx.url + "/forms", "forms")
    api = project.api()
    submit_form(project)
    run_jobs()
    (failed,) = records(project)
    assert failed.status == "failed"
    listed = api.get(f"/api/v1/forwarding/{location_id}/records?status=failed").get_json()["results"]
    assert [r["id"] for r in listed] == [failed.id]

    resent = api.post(f"/api/v1/forwarding/records/{failed.id}/resend")
    assert resent.status_code == 200 and resent.get_json()["status"] == "pending"
    assert resent.get_json()["attempts"] == 0
    run_jobs()
    assert records(project)[0].status == "succeeded" and rx.count == 2

    # Resend a succeeded record: sent once more.
    assert api.post(f"/api/v1/forwarding/records/{failed.id}/resend").status_code == 200
    run_jobs()
    assert rx.count == 3

    # Cancel a pending one: it is never sent; cancelling again is a 409.
    api.patch(f"/api/v1/forwarding/{location_id}", json={"paused": True})
    submit_form(project)
    pending = records(project, status="pending")[0]
    cancelled = api.post(f"/api/v1/forwarding/records/{pending.id}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = api.post(f"/api/v1/forwarding/records/{pending.id}/cancel")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "record_not_pending"
    api.patch(f"/api/v1/forwarding/{location_id}", json={"paused": False})
    run_jobs()
    assert rx.count == 3

    # A record being sent cannot be resent.
    with project.scope():
        db.session.get(ForwardRecord, pending.id).status = "sending"
        db.session.commit()
    busy = api.post(f"/api/v1/forwarding/records/{pending.id}/resend")
    assert busy.status_code == 409 and busy.get_json()["error"]["code"] == "record_sending"


def test_resend_all_failed(project, rx, run_jobs, config):
    config(FORWARDING_RETRY_DELAYS=[])
    rx.status = 500
    location_id = add_location(project, rx.url + "/forms", "forms")
    submit_form(project)
    submit_form(project)
    run_jobs()
    rx.status = 200
    response = project.api().post(f"/api/v1/forwarding/{location_id}/resend-failed")
    assert response.get_json() == {"resent": 2}
    run_jobs()
    assert {r.status for r in records(project)} == {"succeeded"} and rx.count == 4


# --- robustness ---------------------------------------------------------------------------------------


def test_the_sweep_sends_what_redis_lost(app, project, rx, run_jobs):
    from messaging.jobs import redis_conn

    add_location(project, rx.url + "/forms", "forms")
    submit_form(project)
    redis_conn(app).flushdb()  # Redis restarted empty: the queued sender is gone
    run_jobs()
    assert rx.count == 0
    with app.app_context():
        assert sweep()["dispatched"] == 1
    run_jobs()
    assert rx.count == 1 and records(project)[0].status == "succeeded"


def test_a_retry_goes_out_when_due_without_rqs_scheduler(app, project, rx, run_jobs):
    """The retry's scheduled job is never moved (no scheduler, or a dead one holds its locks):
    the record's due time in the database is what sends it."""
    rx.status = 500
    add_location(project, rx.url + "/forms", "forms")
    submit_form(project)
    run_jobs()
    assert rx.count == 1 and records(project)[0].status == "pending"
    rx.status = 200
    with app.app_context():
        assert sweep()["dispatched"] == 0  # not due yet
    clock.advance(seconds=60)
    with app.app_context():
        assert sweep()["dispatched"] == 1
    run_jobs()  # the scheduled retry job is still waiting; only the sweep's sender runs
    assert rx.count == 2 and records(project)[0].status == "succeeded"


def test_the_sweep_puts_back_a_record_whose_worker_died(app, project, rx, run_jobs):
    add_location(project, rx.url + "/forms", "forms")
    with project.scope():
        form = new_form()
        capture_form(form, [])
        db.session.commit()
        record = db.session.execute(select(ForwardRecord)).scalar_one()
        record.status, record.claimed_at, record.claim_token = "sending", clock.now(), "dead-worker"
        db.session.commit()
    with app.app_context():
        assert sweep()["reset"] == 0  # a live worker may still own it
    clock.advance(minutes=16)
    with app.app_context():
        result = sweep()
    assert result["reset"] == 1 and result["dispatched"] == 1
    run_jobs()
    assert records(project)[0].status == "succeeded" and rx.count == 1


def test_running_the_sender_twice_sends_each_record_once(app, project, rx, run_jobs):
    location_id = add_location(project, rx.url + "/forms", "forms")
    for _ in range(3):
        submit_form(project)
    with app.app_context():
        forward_location(location_id)
        forward_location(location_id)
    run_jobs()
    assert rx.count == 3


def test_deleting_a_location_removes_its_records(project, rx, run_jobs):
    location_id = add_location(project, rx.url + "/forms", "forms")
    submit_form(project)
    assert project.api().delete(f"/api/v1/forwarding/{location_id}").status_code == 204
    assert project.api().get(f"/api/v1/forwarding/{location_id}").status_code == 404
    run_jobs()
    assert rx.count == 0 and records(project) == []


def test_no_forwarding_of_another_projects_data(project, other_project, rx, run_jobs):
    ours = add_location(project, rx.url + "/ours", "forms")
    theirs = add_location(other_project, rx.url + "/theirs", "forms")
    form_id = submit_form(project)
    run_jobs()
    assert [(r["path"], r["json"]["form_id"]) for r in rx.requests] == [("/ours", form_id)]
    assert records(other_project) == []
    (record,) = records(project)
    other_api = other_project.api()
    assert other_api.get(f"/api/v1/forwarding/{ours}").status_code == 404
    assert other_api.get(f"/api/v1/forwarding/{ours}/attempts").status_code == 404
    assert other_api.get(f"/api/v1/forwarding/records/{record.id}").status_code == 404
    assert other_api.post(f"/api/v1/forwarding/records/{record.id}/resend").status_code == 404
    assert [loc["id"] for loc in other_api.get("/api/v1/forwarding").get_json()["results"]] == [theirs]
    assert project.api().get(f"/api/v1/forwarding/{theirs}/records").status_code == 404


def test_smtp_is_used_when_configured(app, config):
    from messaging.notifications.mail import send_mail
    from tests.fakes.smtp_sink import SmtpSink

    with SmtpSink.start() as sink:
        config(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, MAIL_FROM="noreply@example.org")
        with app.app_context():
            email = send_mail(["ops@example.org"], "Forwarding failed", "Body text", topic="t")
            assert email.status == "sent"
    (message,) = sink.messages
    assert message["rcpt"] == ["ops@example.org"] and message["from"] == "noreply@example.org"
    assert "Subject: Forwarding failed" in message["data"] and "Body text" in message["data"]
    config(SMTP_HOST="127.0.0.1", SMTP_PORT=9)  # nothing listens: recorded as failed, not raised
    with app.app_context():
        email = send_mail(["ops@example.org"], "x", "y")
        assert email.status == "failed" and email.error


def test_records_keep_their_location_project(project, rx):
    location_id = add_location(project, rx.url + "/f", "forms")
    submit_form(project)
    with project.scope():
        record = db.session.execute(select(ForwardRecord)).scalar_one()
        location = db.session.get(ForwardLocation, location_id)
        assert record.project_id == location.project_id == project.id


def test_different_cases_go_out_in_parallel_and_each_case_stays_in_order(project, rx, run_jobs, config):
    import time as timing

    config(FORWARDING_PARALLEL=8, FORWARDING_TIMEOUT=5.0)
    add_location(project, rx.url + "/cases", "cases")
    for n in range(8):
        change_case(project, f"case-{n}", name="first")
    for n in range(8):
        change_case(project, f"case-{n}", name="second")
    rx.hang_seconds = 0.4
    rx.script = ["hang"] * 8  # the first change of each case: every answer takes 0.4 s
    started = timing.monotonic()
    run_jobs()
    took = timing.monotonic() - started
    assert took < 8 * 0.4, f"the 8 first changes were not sent in parallel ({took:.2f} s)"
    names = {}
    for body in rx.bodies():
        names.setdefault(body["case_id"], []).append(body["name"])
    assert names == {f"case-{n}": ["first", "second"] for n in range(8)}
    assert {r.status for r in records(project)} == {"succeeded"}
