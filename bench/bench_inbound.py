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

from common import free_port  # noqa: E402

from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, signed_inbound_request  # noqa: E402

TO = "+15005550006"


def prepare(env: dict) -> int:
    """Schema from the migrations, a project and its Twilio gateway; returns the project id."""
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
    from messaging.sms import gateway_settings
    from messaging.db.tenancy import project_scope
    from messaging.jobs import redis_conn
    redis_conn().flushdb()
    project, _a, _k = create_project('bench', 'bench@example.org', 'correct horse battery', None, 'KE', 'UTC')
    db.session.commit()
    with project_scope(project.id):
        gateway_settings.save_gateway(project.id, kind='twilio', account_sid='{DEFAULT_ACCOUNT_SID}',
                             auth_token='{DEFAULT_AUTH_TOKEN}', from_numbers=['{TO}'], mps=10)
        db.session.commit()
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


def wait_up(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("gunicorn did not start")


def load(port: int, rate: float, seconds: float, retries_pct: float, connections: int):
    url = f"http://127.0.0.1:{port}/twilio/inbound"
    total = int(rate * seconds)
    rng = random.Random(7)
    sids: list[str] = []
    plan = []
    for i in range(total):
        if sids and rng.random() * 100 < retries_pct:
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
        form, headers = signed_inbound_request(DEFAULT_AUTH_TOKEN, url, params)
        plan.append((urllib.parse.urlencode(form), headers))
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
            due, body, headers = item
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
                results.append((status, (t1 - t0) * 1000, t1 - due))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for i, (body, headers) in enumerate(plan):
        jobs.put((start + i / rate, body, headers))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return results, elapsed, len(sids)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


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
        results, elapsed, distinct_sent = load(port, args.rate, args.seconds, args.retries, args.connections)
    finally:
        server.terminate()
        server.wait(20)
    stored, stored_distinct = count_stored(env)
    ok = [ms for status, ms, _ in results if status == 200]
    statuses = Counter(status for status, _, _ in results)
    lateness = [late * 1000 for _, _, late in results]
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


if __name__ == "__main__":
    main()
