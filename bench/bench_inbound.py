"""Inbound webhook under load: signed Twilio requests from this process to gunicorn.

    .venv/bin/python bench/bench_inbound.py                      # 200 req/s for 60 s, SQLite file
    .venv/bin/python bench/bench_inbound.py --rate 200 --seconds 20
    .venv/bin/python bench/bench_inbound.py --database-url postgresql://postgres@127.0.0.1/bench_h7

gunicorn runs ``wsgi:app`` with the production settings (APP_ENV=production,
4 sync workers unless ``--workers``) in its own processes on loopback. This
process is the load: an open-loop schedule (request i leaves at i/rate, on a
pool of keep-alive connections, so a slow answer does not slow the offered
rate), each a real ``X-Twilio-Signature`` form post with a fresh MessageSid;
``--retries`` percent of the requests re-send an earlier MessageSid, as Twilio
does on retry. No worker runs: the handling jobs wait in Redis (the webhook's
own work is the measure). It prints requests/s achieved, p50/p95/p99/max
latency, status counts, and the messages stored against distinct sids sent
(target: none lost, none stored twice, p99 < 100 ms).

With ``--webhooks`` (the default; ``--no-webhooks`` for the webhook request
alone, as above), issue 21's setting: "inbound at 200 messages/s for 60 s with the
loop guard and webhooks on: p99 of the webhook answer under 100 ms, none lost, none
handled twice". Then:

- a message event webhook (``POST /api/v1/webhooks``, events ``message.inbound``)
  points at tests/fakes/http_receiver.py in its own process (answering 200), so
  every stored message also writes its event's outbox record in the webhook request;
- the project has a default reply, so every message (none is a keyword) is
  unhandled and its automatic reply goes through the loop guard; ``--loop-share``
  percent of the messages (5) come from ``--loopers`` auto-responder numbers (10)
  sending one identical text, which the guard must hold back;
- ``--rq-workers`` ``flask worker`` processes (2, all queues, with the scheduler and
  its sweeps) handle the messages while the load runs, send the replies to the fake
  Twilio server (its own process; the gateway's ``--reply-mps``, 250, so replies keep
  up with 200 messages/s) and POST the events;
- after the load it waits (``--drain-timeout``) until every message is handled and
  every event record delivered, and prints: the time that took, the handling lag
  (received -> handled) and the event lag (webhook answered -> receiver), and the
  checks: every message handled (``handled_at`` set, an outcome); handled once
  (exactly one automatic reply row, sent or held back, per stored message of each
  number: a second handling would write a second one); the loop guard's hold-backs
  and the most automatic replies sent to one number (at most 5 an hour); and every
  stored message's ``message.inbound`` event received exactly once (by its
  ``data.message_id``; missing, duplicated and unexpected ones counted).

The target line for this setting adds "every event once, every message handled once"
to the webhook's own target, and a line says whether the machine reached the offered
rate (if not, the figures are at the rate it reached).

It DROPS AND RECREATES the schema of ``--database-url`` and FLUSHES the Redis DB
of ``--redis-url`` (default DB 9).
"""

from __future__ import annotations

import argparse
import http.client
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import FakeProcess, ReceiverProcess, free_port, wait_up  # noqa: E402

from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, signed_inbound_request  # noqa: E402

TO = "+15005550006"
DEFAULT_REPLY = "Thank you, we got your message. A nurse will call you back."
LOOP_TEXT = "I am away from the office. I will read your message when I am back."


def prepare(env: dict, webhook_url: str = "", mps: int = 10) -> int:
    """Schema from the migrations, a project and its Twilio gateway; returns the project id.

    With ``webhook_url``: a ``message.inbound`` webhook to it (through the API) and the default reply."""
    code = f"""
import os
from sqlalchemy import text
from messaging import create_app
from messaging.extensions import db
app = create_app()
with app.app_context():
    if db.engine.dialect.name == 'postgresql':
        with db.engine.begin() as c:
            c.execute(text('DROP SCHEMA public CASCADE')); c.execute(text('CREATE SCHEMA public'))
    else:
        db.drop_all()
        with db.engine.begin() as c:
            c.execute(text('DROP TABLE IF EXISTS alembic_version'))
    from flask_migrate import upgrade
    upgrade(directory='{ROOT / "migrations"}')
    from messaging.projects.setup import create_project
    from messaging.gateways import settings as gateway_settings
    from messaging.db.tenancy import project_scope
    from messaging.jobs import redis_conn
    redis_conn().flushdb()
    project, _a, _k = create_project('bench', 'bench@example.org', 'correct horse battery', None, 'KE', 'UTC')
    db.session.commit()
    with project_scope(project.id):
        gateway_settings.save_gateway(project.id, gateway_settings.GatewayInput(kind='twilio',
            values={{'account_sid': '{DEFAULT_ACCOUNT_SID}', 'auth_token': '{DEFAULT_AUTH_TOKEN}'}},
            from_numbers=['{TO}'], mps={mps}))
        db.session.commit()
    print(project.id)
"""
    if webhook_url:
        code += f"""
    from messaging.surveys.settings import set_default_reply
    with project_scope(project.id):
        set_default_reply(project.id, {DEFAULT_REPLY!r})
        db.session.commit()
    answer = app.test_client().post('/api/v1/webhooks', headers={{'Authorization': 'Token ' + _k}},
        json={{'url': '{webhook_url}/events', 'events': ['message.inbound'], 'name': 'bench'}})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    print(project.id)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    return int(out.stdout.strip().splitlines()[-1])


def count_stored(env: dict) -> tuple[int, int]:
    code = """
from sqlalchemy import text
from messaging import create_app
from messaging.extensions import db
app = create_app()
with app.app_context():
    total = db.session.execute(text("SELECT count(*) FROM messages WHERE direction='inbound'")).scalar()
    distinct = db.session.execute(
        text("SELECT count(DISTINCT gateway_sid) FROM messages WHERE direction='inbound'")
    ).scalar()
    print(total, distinct)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    total, distinct = out.stdout.split()
    return int(total), int(distinct)


def looper_phone(k: int) -> str:
    """The number of the ``k``-th auto-responder (it sends LOOP_TEXT again and again)."""
    return f"+25479900{k:04d}"


def plan_requests(url: str, total: int, retries_pct: float, loopers: int, loop_pct: float):
    """The signed requests, in order: ``[(body, headers, sid)]``, and the distinct sids.

    ``loop_pct`` percent of the new sids come from one of ``loopers`` auto-responder numbers
    sending ``LOOP_TEXT`` (a separate random stream: the rest of the plan is unchanged)."""
    rng = random.Random(7)
    loop_rng = random.Random(21)
    sids: list[str] = []
    plan = []
    for i in range(total):
        fresh = not (sids and rng.random() * 100 < retries_pct)
        if not fresh:
            sid = rng.choice(sids)
        else:
            sid = f"SM{i:032x}"
            sids.append(sid)
        params = {
            "AccountSid": DEFAULT_ACCOUNT_SID,
            "From": f"+2547{rng.randrange(10**8):08d}",
            "To": TO,
            "Body": f"hello {i}",
            "MessageSid": sid,
        }
        if loopers and fresh and loop_rng.random() * 100 < loop_pct:
            params.update({"From": looper_phone(loop_rng.randrange(loopers)), "Body": LOOP_TEXT})
        form, headers = signed_inbound_request(DEFAULT_AUTH_TOKEN, url, params)
        plan.append((urllib.parse.urlencode(form), headers, sid))
    return plan, sids


def load(
    port: int,
    rate: float,
    seconds: float,
    retries_pct: float,
    connections: int,
    loopers: int = 0,
    loop_pct: float = 0.0,
):
    """The open-loop load; each result is (status, latency ms, lateness s, sid, answered at (wall clock))."""
    url = f"http://127.0.0.1:{port}/twilio/inbound"
    plan, sids = plan_requests(url, int(rate * seconds), retries_pct, loopers, loop_pct)
    jobs: queue.Queue = queue.Queue()
    results = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.5

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            item = jobs.get()
            if item is None:
                return
            due, body, headers, sid = item
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/twilio/inbound", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError as exc:
                status = f"error {exc.__class__.__name__}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            t1 = time.perf_counter()
            with lock:
                results.append((status, (t1 - t0) * 1000, t1 - due, sid, time.time()))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for i, (body, headers, sid) in enumerate(plan):
        jobs.put((start + i / rate, body, headers, sid))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return results, elapsed, len(sids)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


class Workers:
    """The processes webhooks-on needs beside gunicorn: fake Twilio (the replies), the event
    receiver, and ``flask worker`` processes (all queues, with the scheduler)."""

    def __init__(self, env: dict, count: int, tmp: str):
        self.fake = FakeProcess()
        self.receiver = ReceiverProcess()
        env.update(
            {
                "FLASK_APP": "wsgi.py",
                "TWILIO_API_BASE_URL": self.fake.url,
                # The receiver listens on loopback, which a webhook URL may not reach unless allowed.
                "OUTBOUND_ALLOW_HOSTS": "127.0.0.1",
            }
        )
        self.env, self.count, self.tmp = env, count, tmp
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        from redis import Redis
        from rq import Worker

        for n in range(self.count):
            log = open(Path(self.tmp) / f"worker-{n}.log", "wb")  # noqa: SIM115 - lives with the process
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "flask", "worker"],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        redis = Redis.from_url(self.env["REDIS_URL"])
        deadline = time.time() + 60
        while Worker.count(connection=redis) < self.count:
            if time.time() > deadline or any(p.poll() is not None for p in self.procs):
                sys.exit(f"the RQ workers did not start; logs in {self.tmp}")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.receiver.stop()
        self.fake.stop()


def open_app(env: dict):
    """The app in a pushed context, in this process (after the load: its CPU no longer matters)."""
    os.environ.update(env)
    from messaging import create_app

    app = create_app()
    app.app_context().push()
    return app


def drain(project_id: int, timeout: float) -> dict:
    """Wait until every inbound message is handled and every event record delivered (or
    ``timeout``); returns the seconds each took (None: not within the timeout)."""
    from sqlalchemy import func, select

    from messaging.db.tenancy import project_scope
    from messaging.extensions import db
    from messaging.models import ForwardRecord, InboundMessage

    unhandled_q = select(func.count(InboundMessage.message_id)).where(
        InboundMessage.project_id == project_id, InboundMessage.handled_at.is_(None)
    )
    undelivered_q = select(func.count(ForwardRecord.id)).where(
        ForwardRecord.project_id == project_id, ForwardRecord.status.in_(("pending", "sending"))
    )
    t0 = time.perf_counter()
    done: dict = {"handled": None, "delivered": None}
    with project_scope(project_id):
        while time.perf_counter() - t0 < timeout:
            db.session.rollback()
            elapsed = time.perf_counter() - t0
            if done["handled"] is None and db.session.execute(unhandled_q).scalar() == 0:
                done["handled"] = elapsed
            if done["delivered"] is None and db.session.execute(undelivered_q).scalar() == 0:
                done["delivered"] = elapsed
            if None not in done.values():
                break
            time.sleep(0.5)
        db.session.rollback()
    return done


def check_handling(project_id: int) -> dict:
    """What the database says about handling: every message handled, each once, the loop guard."""
    from sqlalchemy import func, select

    from messaging.db.tenancy import project_scope
    from messaging.extensions import db
    from messaging.inbound.loop_guard import HOURLY_CAP, SKIP_REASON
    from messaging.models import ForwardRecord, InboundMessage, Message

    with project_scope(project_id):
        inbound = db.session.execute(
            select(
                InboundMessage.message_id,
                InboundMessage.phone,
                InboundMessage.received_at,
                InboundMessage.handled_at,
                InboundMessage.outcome,
            ).where(InboundMessage.project_id == project_id)
        ).all()
        replies = db.session.execute(
            select(Message.phone, Message.skip_reason, Message.error_message, Message.status).where(
                Message.project_id == project_id,
                Message.direction == "outbound",
                Message.auto_reply.is_(True),
            )
        ).all()
        records = dict(
            db.session.execute(
                select(ForwardRecord.status, func.count())
                .where(ForwardRecord.project_id == project_id)
                .group_by(ForwardRecord.status)
            ).all()
        )
        retried = db.session.execute(
            select(func.count()).where(ForwardRecord.project_id == project_id, ForwardRecord.attempts > 1)
        ).scalar()
        db.session.rollback()
    per_phone = Counter(row.phone for row in inbound)
    replies_per_phone = Counter(row.phone for row in replies)
    sent_per_phone = Counter(row.phone for row in replies if row.skip_reason is None)
    held = [row for row in replies if row.skip_reason == SKIP_REASON]
    return {
        "stored_ids": {row.message_id for row in inbound},
        "unhandled": sum(1 for row in inbound if row.handled_at is None or row.outcome == "pending"),
        "outcomes": dict(Counter(row.outcome for row in inbound)),
        "lag_ms": [
            (row.handled_at - row.received_at).total_seconds() * 1000 for row in inbound if row.handled_at
        ],
        "extra_replies": sum(max(0, replies_per_phone[p] - n) for p, n in per_phone.items())
        + sum(n for p, n in replies_per_phone.items() if p not in per_phone),
        "missing_replies": sum(max(0, n - replies_per_phone[p]) for p, n in per_phone.items()),
        "held_identical": sum(1 for row in held if "same message" in (row.error_message or "")),
        "held_hourly": sum(1 for row in held if "last hour" in (row.error_message or "")),
        "held": len(held),
        "most_sent_to_one": max(sent_per_phone.values(), default=0),
        "cap": HOURLY_CAP,
        "reply_statuses": dict(Counter(row.status for row in replies)),
        "records": records,
        "records_retried": retried,
    }


def check_events(received: list[dict], stored_ids: set[int], answered_at: dict[str, float]) -> dict:
    """Every stored message's ``message.inbound`` event received once, by its ``data.message_id``."""
    events = [r for r in received if (r.get("json") or {}).get("event") == "message.inbound"]
    per_message = Counter(e["json"]["data"]["message_id"] for e in events)
    lags = [
        (e["at"] - answered_at[e["json"]["data"]["gateway_sid"]]) * 1000
        for e in events
        if e["json"]["data"].get("gateway_sid") in answered_at
    ]
    return {
        "posts": len(received),
        "events": len(events),
        "delivered": len(set(per_message) & stored_ids),
        "missing": len(stored_ids - set(per_message)),
        "duplicates": sum(n - 1 for n in per_message.values() if n > 1),
        "duplicate_event_ids": len(events) - len({e["json"]["id"] for e in events}),
        "unexpected": len(set(per_message) - stored_ids),
        "lag_ms": lags,
    }


def report_webhooks(args, workers: Workers, project_id: int, results, drained: dict, base_ok: bool) -> None:
    """The lines of the webhooks-on setting (after the webhook's own figures)."""
    handling = check_handling(project_id)
    answered_at: dict[str, float] = {}
    for status, _ms, _late, sid, at in results:
        if status == 200:
            answered_at[sid] = min(at, answered_at.get(sid, at))
    events = check_events(workers.receiver.received(), handling["stored_ids"], answered_at)
    fake = workers.fake.stats()

    def seconds(value):
        return f"{value:.1f} s" if value is not None else f"NOT within {args.drain_timeout:.0f} s"

    print(
        f"webhooks on: a message.inbound webhook to a local receiver, a default reply (the loop guard "
        f"on every message), {args.rq_workers} RQ workers, replies to fake Twilio at {args.reply_mps} mps; "
        f"{args.loop_share:g}% of messages from {args.loopers} auto-responder numbers"
    )
    print(
        f"after the load: all handled in {seconds(drained['handled'])}, "
        f"all events delivered in {seconds(drained['delivered'])}"
    )
    lag = handling["lag_ms"]
    print(
        f"handling lag ms (received -> handled): p50 {pct(lag, 50):.0f}  p99 {pct(lag, 99):.0f}  "
        f"max {max(lag, default=float('nan')):.0f}"
    )
    once = handling["extra_replies"] == 0 and handling["missing_replies"] == 0
    print(
        f"handled: {len(handling['stored_ids']) - handling['unhandled']} of {len(handling['stored_ids'])} "
        f"stored (not handled {handling['unhandled']}); outcomes {handling['outcomes']}; one automatic reply "
        f"per message of each number: {'yes' if once else 'NO'} (extra {handling['extra_replies']} "
        f"= handled twice, missing {handling['missing_replies']})"
    )
    print(
        f"loop guard: held back {handling['held']} (identical {handling['held_identical']}, hourly cap "
        f"{handling['held_hourly']}); most automatic replies sent to one number: "
        f"{handling['most_sent_to_one']} (cap {handling['cap']} an hour); replies "
        f"{handling['reply_statuses']}, at the fake Twilio {fake.get('messages', '?')}"
    )
    events_once = events["missing"] == 0 and events["duplicates"] == 0 and events["unexpected"] == 0
    print(
        f"events: message.inbound received for {events['delivered']} of {len(handling['stored_ids'])} stored "
        f"messages (missing {events['missing']}, duplicates {events['duplicates']}, unexpected "
        f"{events['unexpected']}, same event id twice {events['duplicate_event_ids']}); receiver POSTs "
        f"{events['posts']}; records {handling['records']}, retried {handling['records_retried']}"
    )
    lag = events["lag_ms"]
    print(
        f"event lag ms (webhook answered -> receiver): p50 {pct(lag, 50):.0f}  p99 {pct(lag, 99):.0f}  "
        f"max {max(lag, default=float('nan')):.0f}"
    )
    target = base_ok and handling["unhandled"] == 0 and once and events_once
    print(
        "target with webhooks (none lost, none twice, p99 < 100 ms, every message handled once, "
        "every event once):",
        "MET" if target else "NOT MET",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--retries", type=float, default=2.0, help="percent of requests re-sending a sid")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument(
        "--webhooks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a message.inbound webhook, the default reply (loop guard) and RQ workers handling",
    )
    parser.add_argument("--rq-workers", type=int, default=2, help="flask worker processes (webhooks on)")
    parser.add_argument("--reply-mps", type=int, default=250, help="the gateway's mps (webhooks on)")
    parser.add_argument("--loopers", type=int, default=10, help="auto-responder numbers (webhooks on)")
    parser.add_argument("--loop-share", type=float, default=5.0, help="percent of messages from them")
    parser.add_argument("--drain-timeout", type=float, default=600, help="seconds to wait after the load")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-inbound-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "bench-secret-" + "x" * 20,
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis_url,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "SESSION_COOKIE_SECURE": "0",
        }
    )
    workers = Workers(env, args.rq_workers, tmp) if args.webhooks else None
    try:
        if workers is not None:
            project_id = prepare(env, webhook_url=workers.receiver.url, mps=args.reply_mps)
            workers.start()
        else:
            prepare(env)
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        log = open(Path(tmp) / "gunicorn.log", "wb")
        server = subprocess.Popen(
            [gunicorn, "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--keep-alive", "30", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_up(port)
            results, elapsed, distinct_sent = load(
                port,
                args.rate,
                args.seconds,
                args.retries,
                args.connections,
                loopers=args.loopers if workers is not None else 0,
                loop_pct=args.loop_share if workers is not None else 0.0,
            )
        finally:
            server.terminate()
            server.wait(20)
        drained = None
        if workers is not None:
            open_app(env)
            drained = drain(project_id, args.drain_timeout)
        stored, stored_distinct = count_stored(env)
        ok = [ms for status, ms, *_ in results if status == 200]
        statuses = Counter(status for status, *_ in results)
        lateness = [late * 1000 for _, _, late, *_ in results]
        print(f"database: {database_url.split('@')[-1]}  gunicorn workers: {args.workers}")
        print(
            f"offered: {args.rate:.0f} req/s for {args.seconds:.0f} s = {len(results)} requests "
            f"({len(results) - distinct_sent} Twilio retries of an earlier sid)"
        )
        print(f"achieved: {len(results) / elapsed:.1f} req/s   statuses: {dict(statuses)}")
        print(
            f"latency ms (200s): p50 {pct(ok, 50):.1f}  p95 {pct(ok, 95):.1f}  p99 {pct(ok, 99):.1f}  "
            f"max {max(ok) if ok else float('nan'):.1f}   (client lag p99 {pct(lateness, 99):.1f} ms)"
        )
        lost = distinct_sent - stored_distinct
        print(
            f"messages: distinct sids sent {distinct_sent}, stored {stored} "
            f"(lost {lost}, stored twice {stored - stored_distinct})"
        )
        target = lost == 0 and stored == stored_distinct and pct(ok, 99) < 100
        print("target (none lost, none twice, p99 < 100 ms):", "MET" if target else "NOT MET")
        reached = len(results) / elapsed >= 0.97 * args.rate and pct(lateness, 99) < 1000
        print(
            f"offered rate reached: {'yes' if reached else 'NO'} ({len(results) / elapsed:.1f} of "
            f"{args.rate:.0f} req/s; client lag p99 {pct(lateness, 99):.0f} ms)"
            + ("" if reached else ": this machine could not keep up; the figures are at the rate it reached")
        )
        if workers is not None:
            report_webhooks(args, workers, project_id, results, drained, target)
    finally:
        if workers is not None:
            workers.stop()


if __name__ == "__main__":
    main()
