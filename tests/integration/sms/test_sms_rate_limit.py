"""Messages per second per sender, held across processes by Redis."""

import subprocess
import sys
import threading
import time

from messaging.sms.ratelimit import RateLimiter
from tests.conftest import ROOT, worker_env
from tests.factories import rows
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN


def _worst_second(times: list[float]) -> int:
    times = sorted(times)
    worst, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


def test_limiter_spaces_slots_across_threads(app):
    from messaging.jobs import redis_conn

    limiter = RateLimiter(redis_conn(app))
    stamps = []
    lock = threading.Lock()

    def take(n):
        for _ in range(n):
            assert limiter.acquire({"sms:rate:test": 20}, max_wait=10)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=take, args=(10,)) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert len(stamps) == 40
    assert elapsed >= 39 / 20 - 0.05  # 40 slots 50 ms apart
    assert _worst_second(stamps) <= 21


def test_limiter_refuses_slots_beyond_max_ahead(app):
    from messaging.jobs import redis_conn

    limiter = RateLimiter(redis_conn(app))
    assert limiter.reserve({"k": 1}, max_ahead=0.5).granted
    second = limiter.reserve({"k": 1}, max_ahead=0.5)
    assert not second.granted and 0.5 < second.wait <= 1.02  # 1 s and the headroom
    # A project-wide key limits too: the slowest key decides.
    assert limiter.reserve({"a": 100, "p": 100}, max_ahead=1).granted
    nxt = limiter.reserve({"b": 100, "p": 100}, max_ahead=1)
    assert nxt.granted and nxt.wait > 0


def test_slots_leave_headroom_so_a_late_message_does_not_crowd_a_second(app):
    """At 10/s the slots are 102 ms apart: the 11 slots of 10 consecutive intervals span 1.02 s,
    so a message may go up to 20 ms late and no second at the gateway holds more than 10."""
    from messaging.jobs import redis_conn
    from messaging.sms.ratelimit import HEADROOM

    limiter = RateLimiter(redis_conn(app))
    res = limiter.reserve({"sms:rate:headroom": 10}, max_ahead=1.0, count=11)
    assert res.granted and HEADROOM == 0.02
    assert abs(res.spacing - 0.102) < 1e-6
    assert res.slot(10) - res.slot(0) >= 1.0 + 0.02 - 1e-6
    nxt = limiter.reserve({"sms:rate:headroom": 10}, max_ahead=2.0)
    assert nxt.granted and nxt.start - res.slot(10) >= 0.102 - 0.005  # the next caller queues behind


def test_two_worker_processes_together_keep_the_senders_rate(app, project, fake):
    from messaging.extensions import db
    from messaging.sms.outbox import queue_messages

    api = project.api()
    response = api.put(
        "/api/v1/gateway",
        json={
            "kind": "twilio",
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN,
            "from_numbers": ["+15005550006"],
            "mps": 5,
        },
    )
    assert response.status_code == 200
    with project.scope():
        queue_messages(
            project.id,
            [{"phone": f"+25471400{i:04d}", "body": f"rate {i}"} for i in range(30)],
            per_job=5,
        )
        db.session.commit()
    env = worker_env()
    env["TWILIO_API_BASE_URL"] = fake.url
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "worker", "--burst", "--no-scheduler", "--queues", "sms"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    for proc in workers:
        assert proc.wait(timeout=60) == 0
    times = [m["received_at"] for m in fake.messages]
    assert len(times) == 30
    assert len({m["to"] for m in fake.messages}) == 30
    assert _worst_second(times) <= 6  # 5/s, plus one at a window's edge
    assert max(times) - min(times) >= 29 / 5 - 0.3
    assert {r["status"] for r in rows(project)} == {"sent"}
