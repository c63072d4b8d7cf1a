"""The dashboard with a large message log: server time to draw the page.

    .venv/bin/python bench/bench_dashboard.py           # PostgreSQL (the bench DB), 1,000,000 messages
    .venv/bin/python bench/bench_dashboard.py --messages 100000 --database-url sqlite:////tmp/dash.sqlite3

It WIPES the database given by ``--database-url`` and FLUSHES the Redis DB of
``--redis-url`` (default DB 9).

1. Seed N messages spread over the last 40 days (Core bulk insert): outbound
   delivered, sent and failed, inbound received, a few queued.
2. **The page** (target: at most 200 ms of server time with 1,000,000 messages):
   GET / through the test client, logged in; the first draw counts and keeps the
   past days (``message_day_counts``), later draws read two days of the log. The
   first draw and the median of 7 later ones are printed.
3. **The usage report** (no target; printed): the Usage page's 30 days by day,
   direction, gateway and country, the median of 3 draws.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import fresh_app, worker_env_base  # noqa: E402

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/bench"
SEED_BATCH = 10_000
STATUSES = ["delivered"] * 7 + ["sent", "failed"]


def seed(project_id: int, n: int) -> None:
    from sqlalchemy import insert, text

    from messaging.extensions import db
    from messaging.lib import clock
    from messaging.models import Message

    now = clock.now()
    span = 40 * 24 * 3600
    for start in range(0, n, SEED_BATCH):
        rows = []
        for i in range(start, min(start + SEED_BATCH, n)):
            at = now - timedelta(seconds=(i * 7919) % span)
            inbound = i % 10 == 0
            rows.append(
                {
                    "project_id": project_id,
                    "direction": "inbound" if inbound else "outbound",
                    "phone": f"+2547{12 + i % 80:02d}{i % 1_000_000:06d}",
                    "body": "Hello",
                    "segments": 1,
                    "encoding": "GSM-7",
                    "status": "received" if inbound else ("queued" if i % 1000 == 1 else STATUSES[i % 9]),
                    "error_code": "30003" if STATUSES[i % 9] == "failed" else None,
                    "bypass_opt_out": False,
                    "auto_reply": False,
                    "attempts": 1,
                    "created_at": at,
                    "updated_at": at,
                }
            )
        with db.engine.begin() as conn:
            conn.execute(insert(Message.__table__), rows)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE messages"))


def draw_times(client, path: str, marker: str, draws: int) -> list[float]:
    """Seconds of each of ``draws`` GETs of a page (each checked to have drawn ``marker``)."""
    times = []
    for _ in range(draws):
        started = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - started)
        assert r.status_code == 200 and marker in r.get_data(as_text=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=PG_DEFAULT)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()

    app, project, _key = fresh_app(worker_env_base(args.database_url, args.redis_url))
    database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(f"database: {database}; messages: {args.messages:,}")
    started = time.perf_counter()
    seed(project.id, args.messages)
    print(f"seeded in {time.perf_counter() - started:.1f} s")

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    r = client.post(
        "/login", data={"email": "bench@example.org", "password": "bench-password", "csrf_token": token}
    )
    assert r.status_code == 302, r.status_code
    times = draw_times(client, "/", 'id="days-chart"', 8)
    print(
        f"dashboard, {args.messages:,} messages: first draw {times[0] * 1000:.0f} ms (counts and keeps "
        f"the past days), then {statistics.median(times[1:]) * 1000:.0f} ms (median of 7; target <= 200 ms)"
    )
    times = draw_times(client, "/usage", 'id="usage-rows"', 3)
    print(f"usage page, last 30 days: {statistics.median(times) * 1000:.0f} ms (median of 3)")


if __name__ == "__main__":
    main()
