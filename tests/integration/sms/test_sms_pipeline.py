"""The send pipeline against the fake Twilio server, over real HTTP with the real twilio client."""

import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from messaging.gateways.base import pick_sender
from messaging.lib import clock
from tests.factories import POOL, T0, rows, send


def test_success_records_sid_sender_and_segments(app, twilio_project, fake, run_jobs):
    message_id = send(twilio_project, "+254712000001", "Habari! Clinic is open on Monday 😀")
    [row] = rows(twilio_project)
    assert row["id"] == message_id and row["status"] == "queued" and row["job_id"]
    assert row["encoding"] == "UCS-2" and row["segments"] == 1
    assert run_jobs() == 1
    [row] = rows(twilio_project)
    [sent] = fake.messages
    assert row["status"] == "sent"
    assert row["gateway_sid"] == sent["sid"]
    assert row["from_number"] == sent["from"] == pick_sender("+254712000001", POOL)
    assert sent["to"] == "+254712000001" and sent["body"].startswith("Habari")
    assert row["attempts"] == 1 and row["sent_at"] is not None and row["error_code"] is None


def test_a_recipient_always_gets_the_same_sender(app, twilio_project, fake, run_jobs):
    phones = [f"+2547120001{i:02d}" for i in range(30)]
    for phone in phones * 2:
        send(twilio_project, phone, "hi")
    run_jobs()
    senders = {}
    for msg in fake.messages:
        senders.setdefault(msg["to"], set()).add(msg["from"])
    assert all(len(s) == 1 for s in senders.values())
    assert {next(iter(s)) for s in senders.values()} == set(POOL)  # the pool is used


def test_invalid_and_not_mobile_fail_at_once(app, twilio_project, fake, run_jobs):
    fake.fail_numbers = {"+254712000002": 21211, "+254712000003": 21614}
    send(twilio_project, "+254712000002", "a")
    send(twilio_project, "+254712000003", "b")
    send(twilio_project, "+254712000004", "c")  # one failure never blocks the others
    run_jobs(scheduled=True)
    by_phone = {r["phone"]: r for r in rows(twilio_project)}
    assert by_phone["+254712000002"]["status"] == "failed"
    assert by_phone["+254712000002"]["error_code"] == "21211"
    assert "not a valid phone number" in by_phone["+254712000002"]["error_message"]
    assert by_phone["+254712000003"]["error_code"] == "21614"
    assert by_phone["+254712000002"]["attempts"] == by_phone["+254712000003"]["attempts"] == 1
    assert by_phone["+254712000004"]["status"] == "sent"
    assert fake.stats["failed_number"] == 2  # no retry


def test_21610_records_an_opt_out_and_later_sends_are_not_attempted(app, twilio_project, fake, run_jobs):
    from messaging.sms.optouts import is_opted_out

    fake.fail_numbers = {"+254712000005": 21610}
    send(twilio_project, "+254712000005", "first")
    run_jobs()
    [row] = rows(twilio_project)
    assert row["status"] == "failed" and row["error_code"] == "21610" and row["skip_reason"] == "opted_out"
    with twilio_project.scope():
        assert is_opted_out(twilio_project.id, "+254712000005")
    requests_before = fake.stats["requests"]
    send(twilio_project, "+254712000005", "second")
    run_jobs()
    second = rows(twilio_project)[-1]
    assert second["status"] == "failed" and second["skip_reason"] == "opted_out"
    assert fake.stats["requests"] == requests_before


def test_retries_5xx_with_growing_delays_then_fails_with_the_reason(app, twilio_project, fake, run_jobs):
    clock.set_now(T0)
    fake.error_rate_500 = 1.0
    send(twilio_project, "+254712000006", "retry me")
    run_jobs()
    expected = [30, 120, 600]
    for attempt, delay in enumerate(expected, start=1):
        [row] = rows(twilio_project)
        assert row["status"] == "queued" and row["attempts"] == attempt
        assert row["error_code"] == "20500"
        assert row["next_attempt_at"] == clock.now() + timedelta(seconds=delay)
        # Too early: the retry job runs but does not send.
        run_jobs(scheduled=True, rounds=1)
        assert rows(twilio_project)[0]["attempts"] == attempt
        clock.advance(seconds=delay)
        run_jobs(scheduled=True, rounds=1)
    [row] = rows(twilio_project)
    assert row["status"] == "failed" and row["attempts"] == 4
    assert row["error_code"] == "20500" and row["error_message"].startswith("Gave up after 4 attempts")
    assert fake.stats["server_error"] == 4 and not fake.messages


def test_429_is_retried_and_then_passes(app, twilio_project, fake, run_jobs):
    clock.set_now(T0)
    fake.error_rate_429 = 1.0
    send(twilio_project, "+254712000007", "later")
    run_jobs()
    assert rows(twilio_project)[0]["error_code"] == "20429"
    fake.error_rate_429 = 0.0
    clock.advance(seconds=30)
    run_jobs(scheduled=True, rounds=2)
    [row] = rows(twilio_project)
    assert row["status"] == "sent" and row["attempts"] == 2 and row["error_code"] is None
    assert len(fake.messages) == 1


def test_connection_refused_is_retried(app, twilio_project, fake, run_jobs):
    from tests.conftest import free_port

    clock.set_now(T0)
    app.config["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{free_port()}"
    send(twilio_project, "+254712000008", "anyone there?")
    run_jobs()
    [row] = rows(twilio_project)
    assert row["status"] == "queued" and row["error_code"] == "connection_error"
    app.config["TWILIO_API_BASE_URL"] = fake.url
    clock.advance(seconds=30)
    run_jobs(scheduled=True, rounds=2)
    assert rows(twilio_project)[0]["status"] == "sent"
    assert len(fake.messages) == 1


def test_a_timeout_is_resolved_by_asking_twilio_not_by_sending_again(app, twilio_project, fake, run_jobs):
    from messaging.sms.sweep import sweep

    clock.set_now(T0)
    app.config["SMS_HTTP_TIMEOUT"] = 0.5
    fake.configure(hang_rate=1.0, hang_seconds=1.0)
    send(twilio_project, "+254712000009", "slow network")
    run_jobs()
    [row] = rows(twilio_project)
    assert row["status"] == "sending" and row["error_code"] == "timeout"
    assert row["next_attempt_at"] == T0 + timedelta(seconds=60)
    fake.configure(hang_rate=0.0)
    assert _wait(lambda: len(fake.messages) == 1)  # Twilio got it after all
    clock.advance(seconds=59)
    with app.app_context():
        assert sweep().resolved_sent == 0  # not asked before SMS_UNKNOWN_CHECK_DELAY
    clock.advance(seconds=1)
    with app.app_context():
        stats = sweep()
    assert stats.resolved_sent == 1
    [row] = rows(twilio_project)
    assert row["status"] == "sent" and row["gateway_sid"] == fake.messages[0]["sid"]
    run_jobs(scheduled=True)
    assert len(fake.messages) == 1  # never sent twice


def test_a_message_stuck_in_sending_that_never_left_is_sent_once_by_the_sweep(
    app, twilio_project, fake, run_jobs
):
    from messaging.jobs import redis_conn
    from messaging.sms.claims import claim
    from messaging.sms.sweep import sweep

    clock.set_now(T0)
    message_id = send(twilio_project, "+254712000010", "worker died")
    with twilio_project.scope():
        claimed = claim(twilio_project.id, [message_id], clock.now())  # a worker claims, then dies
    assert [r.id for r in claimed] == [message_id]
    redis_conn(app).flushdb()
    clock.advance(seconds=60)
    with app.app_context():
        assert sweep().resolved_requeued == 0  # not stuck yet: it may still be sending
    clock.advance(seconds=61)
    with app.app_context():
        stats = sweep()
    assert stats.resolved_requeued == 1
    run_jobs()
    [row] = rows(twilio_project)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert len(fake.messages) == 1


def test_the_same_job_run_twice_sends_once(app, twilio_project, fake, run_jobs):
    from messaging.jobs import queue
    from workers.jobs.sms import send_messages

    ids = [send(twilio_project, f"+2547120002{i:02d}", f"m{i}") for i in range(5)]
    # The same ids in a second job (as the sweep or an RQ retry could enqueue).
    with app.app_context():
        queue("sms").enqueue(send_messages, twilio_project.id, ids, job_id="duplicate-job")
        run_jobs()
        send_messages(twilio_project.id, ids)  # and once more, directly
    assert len(fake.messages) == 5
    assert {r["status"] for r in rows(twilio_project)} == {"sent"}
    assert {r["attempts"] for r in rows(twilio_project)} == {1}


def test_two_workers_racing_on_the_same_ids_send_each_once(app, twilio_project, fake):
    from messaging.extensions import db
    from messaging.sms.sending import send_batch

    ids = [send(twilio_project, f"+2547120003{i:02d}", f"race {i}") for i in range(40)]
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        try:
            with app.app_context():
                barrier.wait()
                send_batch(twilio_project.id, ids)
                db.session.remove()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(fake.messages) == 40
    assert len({m["to"] for m in fake.messages}) == 40
    assert {r["status"] for r in rows(twilio_project)} == {"sent"}


def test_sweep_requeues_everything_after_redis_flushdb(app, twilio_project, fake, run_jobs, monkeypatch):
    from messaging.jobs import redis_conn
    from messaging.sms.outbox import queue_messages
    from messaging.sms.sweep import sweep

    monkeypatch.setitem(app.config, "SMS_BATCH_SIZE", 100)  # several jobs to lose and re-queue
    clock.set_now(T0)
    with twilio_project.scope():
        result = queue_messages(
            twilio_project.id,
            ({"phone": f"+25471300{i:04d}", "body": f"bulk {i}", "case_id": None} for i in range(250)),
        )
    assert result.queued == 250 and result.jobs == 3
    redis_conn(app).flushdb()  # Redis restarted empty
    assert run_jobs() == 0
    with app.app_context():
        assert sweep().requeued == 0  # within the grace period: jobs may just be on their way
    clock.advance(seconds=31)
    with app.app_context():
        stats = sweep()
    assert stats.requeued == 250 and stats.jobs == 3
    run_jobs()
    assert len(fake.messages) == 250
    assert len({m["to"] for m in fake.messages}) == 250
    assert {r["status"] for r in rows(twilio_project)} == {"sent"}
    with app.app_context():
        assert sweep().requeued == 0


def test_a_retry_stranded_in_the_scheduled_registry_is_sent_by_the_sweep_once_overdue(
    app, twilio_project, fake, run_jobs
):
    """No scheduler moves the retry job (dead, or a dead one holds its locks): the sweep does."""
    from rq.registry import ScheduledJobRegistry

    from messaging.jobs import queue
    from messaging.sms.sweep import sweep

    clock.set_now(T0)
    fake.error_rate_429 = 1.0
    send(twilio_project, "+254712000012", "retry without a scheduler")
    run_jobs()
    fake.error_rate_429 = 0.0
    [row] = rows(twilio_project)
    stranded = ScheduledJobRegistry(queue=queue("sms", app))
    assert row["status"] == "queued" and stranded.get_job_ids() == [row["job_id"]]

    clock.advance(seconds=30 + 9)  # due, but within the grace (10 s): the scheduler may still move it
    with app.app_context():
        assert sweep().requeued == 0
    assert stranded.get_job_ids() == [row["job_id"]]

    clock.advance(seconds=2)  # due for longer than the grace: stranded
    with app.app_context():
        stats = sweep()
    assert stats.requeued == 1 and stats.jobs == 1
    assert stranded.get_job_ids() == []  # the stranded job is gone, not left to run later
    assert rows(twilio_project)[0]["job_id"] != row["job_id"]
    assert run_jobs() == 1  # no scheduled jobs moved: the sweep's job is in the queue
    [row] = rows(twilio_project)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert len(fake.messages) == 1


def test_sweep_leaves_rows_whose_job_is_still_queued(app, twilio_project, fake, run_jobs):
    from messaging.sms.sweep import sweep

    clock.set_now(T0)
    send(twilio_project, "+254712000011", "patience")
    clock.advance(seconds=120)
    with app.app_context():
        assert sweep().requeued == 0
    assert run_jobs() == 1
    assert len(fake.messages) == 1


def test_bulk_queue_records_skips_and_schedules(app, twilio_project, fake, run_jobs):
    from messaging.sms.optouts import opt_out
    from messaging.sms.outbox import queue_messages
    from messaging.sms.sweep import sweep

    clock.set_now(T0)
    with twilio_project.scope():
        opt_out(twilio_project.id, "+254713100001", "keyword")
        from messaging.extensions import db

        db.session.commit()
        data = [{"phone": f"+25471310{i:04d}", "body": "hi {i}", "broadcast_id": "b1"} for i in range(1200)]
        data.append({"phone": "0712", "body": "bad", "broadcast_id": "b1"})
        data.append(
            {
                "phone": "+254713199999",
                "body": "later",
                "broadcast_id": "b1",
                "due_at": T0 + timedelta(hours=1),
            }
        )
        result = queue_messages(twilio_project.id, data)
    assert result.queued == 1199 and result.scheduled == 1
    assert result.failed == {"opted_out": 1, "invalid_number": 1}
    assert result.jobs == 3  # one per insert batch of 500 rows (up to 500 ids a job)
    run_jobs()
    assert len(fake.messages) == 1199
    assert len(rows(twilio_project, status="failed")) == 2
    assert rows(twilio_project, phone="+254713199999")[0]["status"] == "queued"
    clock.advance(hours=1, seconds=31)
    with app.app_context():
        assert sweep().requeued == 1
    run_jobs()
    assert rows(twilio_project, phone="+254713199999")[0]["status"] == "sent"


def test_cancel_fails_what_no_worker_claimed(app, twilio_project, fake, run_jobs):
    from messaging.extensions import db
    from messaging.sms.outbox import cancel_messages, queue_messages

    with twilio_project.scope():
        queue_messages(
            twilio_project.id,
            [{"phone": f"+25471320{i:04d}", "body": "x", "broadcast_id": "bc"} for i in range(30)],
        )
        queue_messages(twilio_project.id, [{"phone": "+254713300000", "body": "other", "broadcast_id": "zz"}])
        assert cancel_messages(twilio_project.id, "bc") == 30
        db.session.commit()
    run_jobs()
    assert [m["body"] for m in fake.messages] == ["other"]
    cancelled = rows(twilio_project, broadcast_id="bc")
    assert {(r["status"], r["skip_reason"]) for r in cancelled} == {("failed", "cancelled")}


def test_opt_out_bypass_and_opt_in(app, twilio_project, fake, run_jobs):
    from messaging.extensions import db
    from messaging.sms.optouts import opt_in, opt_out

    with twilio_project.scope():
        assert opt_out(twilio_project.id, "+254712000012", "keyword") is True
        assert opt_out(twilio_project.id, "+254712000012", "keyword") is False
        db.session.commit()
    send(twilio_project, "+254712000012", "news")
    send(twilio_project, "+254712000012", "You are unsubscribed. Reply START to undo.", bypass_opt_out=True)
    run_jobs()
    assert [m["body"] for m in fake.messages] == ["You are unsubscribed. Reply START to undo."]
    assert rows(twilio_project)[0]["skip_reason"] == "opted_out"
    with twilio_project.scope():
        assert opt_in(twilio_project.id, "+254712000012") is True
        db.session.commit()
    send(twilio_project, "+254712000012", "welcome back")
    run_jobs()
    assert fake.messages[-1]["body"] == "welcome back"


def test_opt_outs_are_per_project(app, twilio_project, other_project, fake):
    from messaging.extensions import db
    from messaging.sms.optouts import is_opted_out, opt_out

    with twilio_project.scope():
        opt_out(twilio_project.id, "+254712000013", "api")
        db.session.commit()
    with other_project.scope():
        assert not is_opted_out(other_project.id, "+254712000013")


def test_a_number_that_opts_out_after_queueing_is_not_sent_to(
    app, twilio_project, other_project, fake, run_jobs
):
    """The send job reads the opt-out list when it claims the rows, not only when they were queued."""
    from messaging.extensions import db
    from messaging.sms.optouts import opt_out

    stays, leaves = "+254712000021", "+254712000022"
    send(twilio_project, stays, "to stays")
    send(twilio_project, leaves, "to leaves")
    send(twilio_project, leaves, "STOP confirmation", bypass_opt_out=True)
    with twilio_project.scope():
        opt_out(twilio_project.id, leaves, "keyword")
        db.session.commit()
    with other_project.scope():  # another project's list does not count
        opt_out(other_project.id, stays, "keyword")
        db.session.commit()
    run_jobs()
    assert sorted(m["body"] for m in fake.messages) == ["STOP confirmation", "to stays"]
    by_body = {r["body"]: r for r in rows(twilio_project)}
    assert by_body["to leaves"]["status"] == "failed"
    assert by_body["to leaves"]["skip_reason"] == "opted_out"
    assert by_body["to stays"]["status"] == by_body["STOP confirmation"]["status"] == "sent"


def test_a_send_job_claims_in_chunks_and_reads_opt_outs_in_the_claim(app, twilio_project, fake, run_jobs):
    """520 messages in one job at 3 x 100/s: three claims (250, 250, 20), each of which also
    reads the opt-out list; no separate opt-out query per chunk."""
    from sqlalchemy import event

    from messaging.extensions import db
    from messaging.sms.optouts import opt_out
    from messaging.sms.outbox import queue_messages
    from messaging.sms.tuning import DEFAULT_BATCH_SIZE

    with twilio_project.scope():
        opt_out(twilio_project.id, "+254714000007", "keyword")
        db.session.commit()
    app.config["SMS_BATCH_SIZE"] = 600
    try:
        with twilio_project.scope():
            result = queue_messages(
                twilio_project.id,
                ({"phone": f"+25471400{i:04d}", "body": f"chunk {i}"} for i in range(521)),
                insert_batch=600,
            )
            # Opted out after queueing: only the send job's claim can notice.
            opt_out(twilio_project.id, "+254714000008", "keyword")
            db.session.commit()
    finally:
        app.config["SMS_BATCH_SIZE"] = DEFAULT_BATCH_SIZE
    assert result.queued == 520 and result.jobs == 1  # +254714000007 was skipped when queued
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()).lower())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert run_jobs() == 1
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    touching_opt_outs = [s for s in statements if "opt_outs" in s]
    assert len(touching_opt_outs) == 3
    assert all(s.startswith("update messages set status=") for s in touching_opt_outs)
    assert len(fake.messages) == 519
    [late] = rows(twilio_project, phone="+254714000008")
    assert late["status"] == "failed" and late["skip_reason"] == "opted_out"


def test_a_slow_gateway_makes_the_job_hand_back_before_the_sweep_could_take_its_rows(
    app, twilio_project, fake, run_jobs, monkeypatch
):
    """Each request takes 0.1 s and the sending lease is 0.25 s (SMS_SENDING_TIMEOUT 0.5 s): a job
    stops sending its claimed rows in time, gives the rest back, and every message goes once."""
    from messaging.extensions import db
    from messaging.sms.outbox import queue_messages

    fake.configure(hang_rate=1.0, hang_seconds=0.1)  # slow answers, well within the HTTP timeout
    monkeypatch.setitem(app.config, "SMS_SENDING_TIMEOUT", 0.5)
    with twilio_project.scope():
        result = queue_messages(
            twilio_project.id, ({"phone": f"+25471500{i:04d}", "body": f"slow {i}"} for i in range(8))
        )
        db.session.commit()
    assert result.jobs == 1
    jobs = run_jobs()
    assert jobs >= 3  # the first job and at least two hand-backs (about 3 sends per lease)
    assert sorted(m["body"] for m in fake.messages) == sorted(f"slow {i}" for i in range(8))
    sent = rows(twilio_project)
    assert {r["status"] for r in sent} == {"sent"}
    assert {r["attempts"] for r in sent} == {1}  # a handed-back row's claim is not counted


def test_a_job_takes_the_pools_senders_in_turn(app, twilio_project, fake):
    """Ids whose senders come in runs (all of one sender, then the next) are reordered so that
    any chunk of the job holds about as many rows for each sender; rows that are no longer
    queued go last, and each sender's ids stay in order."""
    from messaging.extensions import db
    from messaging.sms.outbox import MESSAGES, send_sms
    from messaging.sms.sending import interleave_senders

    phones = {sender: [] for sender in POOL}
    i = 0
    while min(len(v) for v in phones.values()) < 4:
        phone = f"+2547160{i:05d}"
        bucket = phones[pick_sender(phone, POOL)]
        if len(bucket) < 4:
            bucket.append(phone)
        i += 1
    in_runs = [phone for sender in POOL for phone in phones[sender]]  # 4 of one sender, then ...
    with twilio_project.scope():
        ids = [send_sms(twilio_project.id, phone, "turns") for phone in in_runs]
        db.session.commit()
        cancelled = ids[1]
        db.session.execute(update(MESSAGES).where(MESSAGES.c.id == cancelled).values(status="failed"))
        db.session.commit()
        ordered = interleave_senders(twilio_project.id, ids, lambda phone: pick_sender(phone, POOL))
    assert sorted(ordered) == sorted(ids) and ordered[-1] == cancelled
    sender_of = {message_id: pick_sender(phone, POOL) for message_id, phone in zip(ids, in_runs, strict=True)}
    first_nine = [sender_of[message_id] for message_id in ordered[:9]]
    assert all(first_nine.count(sender) == 3 for sender in POOL)
    for sender in POOL:
        mine = [message_id for message_id in ordered[:-1] if sender_of[message_id] == sender]
        assert mine == sorted(mine)


def test_send_sms_joins_the_callers_transaction(app, twilio_project, fake, run_jobs):
    from messaging.extensions import db
    from messaging.jobs import queue
    from messaging.sms.outbox import send_sms

    with twilio_project.scope():
        send_sms(twilio_project.id, "+254712000014", "rolled back")
        db.session.rollback()
        assert queue("sms").count == 0
    assert rows(twilio_project) == []
    send(twilio_project, "+254712000015", "committed")
    with app.app_context():
        assert queue("sms").count == 1


def test_console_gateway_records_messages(app, project, run_jobs):
    import json

    from messaging.jobs import redis_conn

    send(project, "+254712000016", "dev only")
    run_jobs()
    [row] = rows(project)
    assert row["status"] == "sent" and row["gateway_sid"].startswith("CO")
    [record] = [json.loads(r) for r in redis_conn(app).lrange(f"sms:console:{project.id}", 0, -1)]
    assert record["to"] == "+254712000016" and record["body"] == "dev only"


def test_unreadable_token_fails_with_a_clear_reason(app, twilio_project, fake, run_jobs):
    from messaging.extensions import db
    from messaging.models import GatewayConfig

    with twilio_project.scope():
        cfg = db.session.execute(select(GatewayConfig)).scalar_one()
        cfg.auth_token_encrypted = "garbage"
        db.session.commit()
    send(twilio_project, "+254712000017", "x")
    run_jobs()
    [row] = rows(twilio_project)
    assert row["status"] == "failed" and row["skip_reason"] == "no_gateway"
    assert "auth token" in row["error_message"]


def _wait(predicate, seconds=10.0):
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_database_blip_while_recording_outcomes_is_waited_out_not_left_for_the_sweep(
    app, twilio_project, fake, run_jobs
):
    """The sids the gateway answered exist only in the job's memory until committed."""
    from flask_sqlalchemy.session import Session
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    blips = []

    def database_away_once_sent(session):
        if fake.messages and len(blips) < 2:  # the first two commits after the gateway answered
            blips.append(1)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    send(twilio_project, "+254712000013", "recorded despite the blip")
    event.listen(Session, "before_commit", database_away_once_sent)
    try:
        assert run_jobs() == 1
    finally:
        event.remove(Session, "before_commit", database_away_once_sent)
    assert len(blips) == 2
    [row] = rows(twilio_project)
    [sent] = fake.messages
    assert row["status"] == "sent" and row["gateway_sid"] == sent["sid"] and row["attempts"] == 1


def test_redis_going_away_mid_job_hands_the_unsent_rows_back_and_records_the_sent(
    app, twilio_project, fake, run_jobs, monkeypatch, caplog
):
    """Nothing is left 'sending' for the sweep to ask the gateway about minutes later."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from messaging.sms.outbox import queue_messages
    from messaging.sms.ratelimit import RateLimiter

    real_reserve = RateLimiter.reserve
    failures = []

    def reserve_until_redis_dies(self, limits, max_ahead=1.0, count=1):
        if fake.messages and not failures:  # the first chunk went out: Redis dies once
            failures.append(1)
            raise RedisConnectionError("Connection refused")
        return real_reserve(self, limits, max_ahead=max_ahead, count=count)

    monkeypatch.setattr(RateLimiter, "reserve", reserve_until_redis_dies)
    with twilio_project.scope():
        queue_messages(
            twilio_project.id,
            ({"phone": f"+25471400{i:04d}", "body": f"bulk {i}", "case_id": None} for i in range(300)),
        )
    assert run_jobs() == 2  # the first job hands its second chunk back; its new job sends it
    assert failures == [1]
    assert "rate limiter unavailable" in caplog.text
    by_status = {}
    for row in rows(twilio_project):
        by_status.setdefault(row["status"], []).append(row["attempts"])
    assert list(by_status) == ["sent"] and by_status["sent"] == [1] * 300  # the hand-back is not an attempt
    assert len(fake.messages) == 300 and len({m["to"] for m in fake.messages}) == 300


def test_a_job_started_by_a_worker_that_died_is_lost_at_once_not_at_its_timeout(
    app, twilio_project, fake, run_jobs
):
    """A SIGKILLed worker leaves its job 'started' in RQ for the job's timeout (30 minutes);
    its pulse key, refreshed every 2 s while it lives, is what tells the sweep."""
    from rq.job import JobStatus

    from messaging.jobs import mark_worker_alive, queue, redis_conn
    from messaging.sms.sweep import sweep

    clock.set_now(T0)
    send(twilio_project, "+254712000014", "from a worker that was killed")
    [row] = rows(twilio_project)
    job = queue("sms", app).fetch_job(row["job_id"])
    job.worker_name = "worker-killed"
    job.started_at = T0
    job.save()
    job.set_status(JobStatus.STARTED)  # as RQ left it: the worker took it, then died
    queue("sms", app).remove(job.id)
    clock.advance(seconds=11)  # past the sweep's grace

    mark_worker_alive(redis_conn(app), "worker-killed")
    with app.app_context():
        assert sweep().requeued == 0  # its worker still beats: the job may be sending
    redis_conn(app).delete("messaging:worker-alive:worker-killed")  # the pulse lapsed
    with app.app_context():
        assert sweep().requeued == 1
    assert run_jobs() == 1
    assert rows(twilio_project)[0]["status"] == "sent" and len(fake.messages) == 1


def test_a_flask_worker_keeps_its_pulse_while_it_runs(app, worker_process):
    from messaging.jobs import redis_conn, workers_alive

    redis = redis_conn(app)
    deadline = time.monotonic() + 20
    names = []
    while time.monotonic() < deadline and not names:
        names = [
            key.decode().removeprefix("messaging:worker-alive:")
            for key in redis.keys("messaging:worker-alive:*")
        ]
        time.sleep(0.2)
    assert names and workers_alive(redis, names) == set(names)
    ttl = redis.ttl(f"messaging:worker-alive:{names[0]}")
    assert 0 < ttl <= 10


def test_a_row_claimed_by_a_job_whose_worker_died_is_settled_after_the_short_delay(
    app, twilio_project, fake, run_jobs
):
    """The claim names its job; once that job's worker has no pulse, its rows still in
    'sending' are settled by asking the gateway SMS_DEAD_CLAIMER_DELAY (10 s) after the
    claim, not at SMS_SENDING_TIMEOUT (120 s). A live worker's rows are left to it."""
    from rq.job import JobStatus

    from messaging.jobs import mark_worker_alive, queue, redis_conn
    from messaging.sms.claims import claim
    from messaging.sms.sweep import sweep

    clock.set_now(T0)
    message_id = send(twilio_project, "+254712000015", "claimed, then the worker was killed")
    [row] = rows(twilio_project)
    job = queue("sms", app).fetch_job(row["job_id"])
    queue("sms", app).remove(job.id)
    job.worker_name = "worker-mid-send"
    job.started_at = T0
    job.save()
    job.set_status(JobStatus.STARTED)
    with twilio_project.scope():
        [claimed] = claim(twilio_project.id, [message_id], clock.now(), job.id)
    assert rows(twilio_project)[0]["status"] == "sending" and rows(twilio_project)[0]["job_id"] == job.id

    mark_worker_alive(redis_conn(app), "worker-mid-send")
    redis_conn(app).delete("messaging:worker-alive:worker-mid-send")
    clock.advance(seconds=5)
    with app.app_context():
        assert sweep().resolved_requeued == 0  # too soon after the claim to ask the gateway
    clock.advance(seconds=6)
    mark_worker_alive(redis_conn(app), "worker-mid-send")
    with app.app_context():
        assert sweep().resolved_requeued == 0  # its worker beats: it may be sending right now
    redis_conn(app).delete("messaging:worker-alive:worker-mid-send")  # SIGKILL: the pulse lapsed
    with app.app_context():
        stats = sweep()
    assert stats.resolved_requeued == 1  # Twilio has no such message: queued again
    run_jobs()
    [row] = rows(twilio_project)
    assert row["status"] == "sent" and row["attempts"] == 2 and len(fake.messages) == 1


def test_a_row_claimed_by_a_job_whose_worker_died_after_sending_is_adopted_not_sent_again(
    app, twilio_project, fake, run_jobs
):
    from messaging.gateways.settings import build_gateway, gateway_config
    from messaging.sms.claims import claim
    from messaging.sms.sweep import sweep

    clock.set_now(T0)
    message_id = send(twilio_project, "+254712000016", "sent, then the worker was killed")
    with twilio_project.scope():
        claim(twilio_project.id, [message_id], clock.now(), "job-gone-with-redis")
    # The gateway took it; the worker died before recording the outcome (its job is gone too).
    with twilio_project.scope():
        gateway = build_gateway(gateway_config(twilio_project.id))
        gateway.send(
            "+254712000016", "sent, then the worker was killed", pick_sender("+254712000016", POOL), None
        )
    clock.advance(seconds=21)
    with app.app_context():
        assert sweep().resolved_sent == 1
    [row] = rows(twilio_project)
    assert row["status"] == "sent" and row["gateway_sid"] == fake.messages[0]["sid"]
    run_jobs()  # the message's original job, still queued, finds it sent
    assert len(fake.messages) == 1
