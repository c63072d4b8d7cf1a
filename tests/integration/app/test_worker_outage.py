"""``flask worker`` rides through Redis and PostgreSQL outages and stops only when asked.

- Redis: a private ``redis-server`` is killed while the worker runs a job (RQ's
  bookkeeping after the job then hits the dead connection, which made RQ
  quit), then started again on the same port: the worker runs the next job.
  The periodic ticker logs a Redis outage once, not once a tick.
- PostgreSQL: a private cluster is crashed (``pg_ctl stop -m immediate``)
  while the worker sends real send jobs to the fake Twilio, and started again
  seconds later: the worker is still running, every message ends ``sent`` (or
  ``failed`` with a reason), none reached the gateway twice, the gateway got
  exactly the messages marked sent, and the log has at most one failure per
  job the outage touched (no loop of failing jobs). The sweep and the claims
  recover the interrupted jobs; the test lowers the sweep's delays to stay short.

The Redis and PostgreSQL tests start their own servers
(tests/fakes/private_services.py), so they run the same in the SQLite and the
PostgreSQL suites; they are skipped where redis-server or PostgreSQL's
binaries are missing.
"""

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from tests.conftest import ROOT, app_test_config, make_project, worker_env
from tests.factories import POOL, rows
from tests.fakes.private_services import (
    FakeTwilioProcess,
    PrivatePostgres,
    PrivateRedis,
    ServiceUnavailable,
    wait_until,
)
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

MESSAGE_COUNT = 200
# The sweep's delays, lowered so that the interrupted jobs are recovered within the test.
FAST_SWEEP = {
    "SMS_BATCH_SIZE": "20",
    "SMS_SWEEP_GRACE": "2",
    "SMS_SENDING_TIMEOUT": "6",
    "SMS_UNKNOWN_CHECK_DELAY": "2",
    "SMS_JOB_STALE_SECONDS": "10",
    "SMS_RETRY_DELAYS": "1,2,4",
}
FINAL = ("sent", "delivered", "failed")


@pytest.fixture
def private_redis():
    try:
        server = PrivateRedis()
        server.start()
    except ServiceUnavailable as exc:
        pytest.skip(f"no private Redis: {exc}")
    yield server
    server.cleanup()


@pytest.fixture
def private_postgres():
    try:
        server = PrivatePostgres()
        server.start()
    except ServiceUnavailable as exc:
        pytest.skip(f"no private PostgreSQL: {exc}")
    yield server
    server.cleanup()


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def test_the_worker_waits_out_a_redis_outage_during_a_job_and_works_again(app, private_redis, tmp_path):
    log_path = Path(tmp_path) / "worker.log"
    env = worker_env()
    env["REDIS_URL"] = private_redis.url
    worker = start_worker(env, log_path)
    try:
        redis = Redis.from_url(private_redis.url)
        wait_until(lambda: redis.smembers("rq:workers"), what="the worker to register")
        running = Queue("default", connection=redis).enqueue("time.sleep", 2)
        wait_until(lambda: running.get_status(refresh=True) == "started", what="the job to start")

        private_redis.crash()  # the job finishes into a dead connection
        redis.close()
        time.sleep(4)
        assert worker.poll() is None, log_path.read_text()[-3000:]

        private_redis.start()
        redis = Redis.from_url(private_redis.url)
        job = Queue("default", connection=redis).enqueue("os.getpid")
        wait_until(
            lambda: Job.fetch(job.id, connection=redis).get_status() == "finished",
            what="a job after",
            seconds=60,
        )
        assert Job.fetch(job.id, connection=redis).return_value() == worker.pid
        redis.close()

        log = log_path.read_text()
        assert log.count("waiting for Redis to answer") == 1, log[-3000:]
        assert "Redis answers again" in log

        worker.send_signal(signal.SIGTERM)  # a warm shutdown still stops it
        assert worker.wait(timeout=30) == 0, log_path.read_text()[-3000:]
    finally:
        stop(worker)


class RedisThatIsDown:
    def set(self, *args, **kwargs):
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("Connection refused")


def test_the_periodic_ticker_logs_an_outage_once_not_every_tick(caplog):
    from workers.periodic import Ticker

    ticker = Ticker(RedisThatIsDown(), interval=0.01)
    ticker.start()
    time.sleep(0.3)
    ticker.stop()
    ticker.join(timeout=5)
    failures = [r for r in caplog.records if "periodic tick failed" in r.getMessage()]
    assert len(failures) == 1


# --- PostgreSQL crashes while the worker sends ------------------------------------------


def upgrade_schema(env: dict) -> None:
    """``flask db upgrade`` on the private database, as an operator would run it."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def project_sending_through(app):
    """A project whose Twilio gateway is the fake, 10 messages a second per number (30/s in all):
    slow enough that the crash lands in the middle of the sending."""
    project = make_project(app, "outage")
    response = project.api().put(
        "/api/v1/gateway",
        json={
            "kind": "twilio",
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN,
            "from_numbers": POOL,
            "mps": 10,
        },
    )
    assert response.status_code == 200, response.get_json()
    return project


def queue_many(project, count: int) -> None:
    from messaging.sms.outbox import queue_messages

    with project.scope():
        result = queue_messages(
            project.id,
            (
                {"phone": f"+25471400{i:04d}", "body": f"Clinic reminder {i}", "case_id": None}
                for i in range(count)
            ),
            per_job=int(FAST_SWEEP["SMS_BATCH_SIZE"]),
        )
    assert result.queued == count and result.jobs == count // int(FAST_SWEEP["SMS_BATCH_SIZE"])


def unfinished(project) -> int:
    return sum(1 for row in rows(project) if row["status"] not in FINAL)


def test_the_worker_sends_its_queue_through_a_postgresql_crash(private_postgres, private_redis, tmp_path):
    from messaging import create_app
    from messaging.extensions import db

    fake = FakeTwilioProcess("--seed", "7")
    env = worker_env()
    env.update(
        DATABASE_URL=private_postgres.url,
        REDIS_URL=private_redis.url,
        TWILIO_API_BASE_URL=fake.url,
        **FAST_SWEEP,
    )
    upgrade_schema(env)
    app = create_app(
        {**app_test_config(), "SQLALCHEMY_DATABASE_URI": private_postgres.url, "REDIS_URL": private_redis.url}
    )
    project = project_sending_through(app)
    log_path = Path(tmp_path) / "worker.log"
    worker = start_worker(env, log_path)
    try:
        queue_many(project, MESSAGE_COUNT)
        wait_until(lambda: fake.stats()["messages"] >= 40, what="the sending to start", seconds=60)
        private_postgres.crash()
        sent_before_crash = fake.stats()["messages"]
        time.sleep(4)
        assert worker.poll() is None, log_path.read_text()[-3000:]
        private_postgres.start()

        wait_until(
            lambda: unfinished(project) == 0,
            what=f"every message final after the crash (worker log {log_path})",
            seconds=90,
        )
        assert worker.poll() is None, log_path.read_text()[-3000:]

        messages = rows(project)
        assert sent_before_crash < MESSAGE_COUNT  # the crash came in the middle of the sending
        assert all(m["status"] == "sent" or (m["status"] == "failed" and m["skip_reason"]) for m in messages)
        at_gateway = Counter((m["to"], m["body"]) for m in fake.messages())
        assert max(at_gateway.values()) == 1, [key for key, n in at_gateway.items() if n > 1][:5]
        assert set(at_gateway) == {(m["to_number"], m["body"]) for m in messages if m["status"] == "sent"}

        # The job that met the outage fails once (the sweep does its work again); then the worker
        # waits for the database instead of taking and failing every queued job meanwhile.
        log = log_path.read_text(errors="replace")
        waits = log.count("waiting for it before taking the next job")
        assert 1 <= waits <= 2, log[-6000:]
        assert log.count("the database answers again") == waits, log[-6000:]
        assert log.count("exception raised while executing") <= 2 * waits, log[-6000:]

        worker.send_signal(signal.SIGTERM)  # a warm shutdown still stops it
        assert worker.wait(timeout=30) == 0, log_path.read_text()[-3000:]
    except BaseException:
        print("worker log (end):\n" + log_path.read_text(errors="replace")[-6000:])
        raise
    finally:
        stop(worker)
        fake.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
