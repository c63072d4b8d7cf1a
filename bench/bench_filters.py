"""Case filters: counting the cases a filter chooses, and snapshotting them as a broadcast's recipients.

    .venv/bin/python bench/bench_filters.py                       # PostgreSQL (the bench DB), 100,000 cases
    .venv/bin/python bench/bench_filters.py --cases 20000 --database-url sqlite:////tmp/filters.sqlite3

It WIPES the database given by ``--database-url`` and FLUSHES the Redis DB of
``--redis-url`` (default DB 9). Everything runs in this process.

1. Seed N open ``mother`` cases (Core bulk insert) with ``risk`` (high, low,
   medium), ``village`` (Village 1 to 20), ``weeks`` (0 to 40, as text, as forms
   write it) and ``next_visit`` (a date); a tenth are closed.
2. **Count** (target: at most 300 ms on PostgreSQL): the filter ``risk eq high``,
   ``village in [Village 2, Village 3]``, ``weeks gt 20``: the median of 7 counts
   after one to warm the cache (``messaging.cases.filters.count``).
3. **Snapshot** (target: at most 3 s): a broadcast to that filter and to every open
   mother case (two sends); its firing's recipients written by
   ``recipients.snapshot`` (one ``INSERT ... SELECT``), timed.
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

from common import fresh_app, seed_mothers, worker_env_base  # noqa: E402

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/bench"
SEED_BATCH = 5000
FILTER = {
    "case_type": "mother",
    "criteria": [
        {"property": "risk", "op": "eq", "value": "high"},
        {"property": "village", "op": "in", "value": ["Village 2", "Village 3"]},
        {"property": "weeks", "op": "gt", "value": 20},
    ],
}


def seed(project_id: int, n: int) -> None:
    from messaging.lib import clock

    today = clock.now().date()
    seed_mothers(
        project_id,
        n,
        lambda i: {
            "risk": ("high", "low", "medium")[i % 3],
            "village": f"Village {1 + i % 20}",
            "weeks": str(i % 41),
            "next_visit": (today + timedelta(days=i % 60)).isoformat(),
        },
        closed=lambda i: i % 10 == 9,
        batch=SEED_BATCH,
    )


def counts() -> dict:
    from messaging.cases import filters

    filters.count(FILTER["case_type"], FILTER["criteria"])  # warm the cache
    times, found = [], 0
    for _ in range(7):
        started = time.perf_counter()
        found = filters.count(FILTER["case_type"], FILTER["criteria"])
        times.append(time.perf_counter() - started)
    return {"cases": found, "ms": statistics.median(times) * 1000}


def snapshot_seconds(project, recipients: dict) -> tuple[float, int]:
    from messaging.broadcasts import firing, manage
    from messaging.broadcasts import recipients as recipients_module
    from messaging.extensions import db
    from messaging.lib import clock
    from messaging.models import Broadcast, BroadcastFiring

    send_at = (clock.now() + timedelta(days=1)).replace(microsecond=0).isoformat() + "Z"
    b = manage.create_broadcast(
        project, {"name": "bench", "recipients": recipients, "text": "Hi", "send_at": send_at}
    )
    db.session.commit()
    fired = firing.new_firing(db.session.get(Broadcast, b.id), clock.now())
    db.session.commit()
    row = db.session.get(BroadcastFiring, fired.id)
    started = time.perf_counter()
    recipients_module.snapshot(db.session.get(Broadcast, b.id), row)
    seconds = time.perf_counter() - started
    db.session.expire_all()
    return seconds, db.session.get(BroadcastFiring, fired.id).total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--database-url", default=PG_DEFAULT)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()

    _app, project, _key = fresh_app(worker_env_base(args.database_url, args.redis_url))
    from messaging.db.tenancy import set_current_project

    set_current_project(project.id)
    database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(f"database: {database}; cases: {args.cases:,}")
    started = time.perf_counter()
    seed(project.id, args.cases)
    print(f"seeded in {time.perf_counter() - started:.1f} s")
    counted = counts()
    print(
        f"count, three criteria over {args.cases:,} cases: {counted['cases']:,} cases in "
        f"{counted['ms']:.0f} ms (median of 7; target <= 300 ms on PostgreSQL)"
    )
    for label, recipients in (
        ("the filter", {"filter": FILTER}),
        ("every open mother case", {"filter": {"case_type": "mother", "criteria": []}}),
    ):
        seconds, total = snapshot_seconds(project, recipients)
        print(f"snapshot, {label}: {total:,} recipients written in {seconds:.2f} s (target <= 3 s)")


if __name__ == "__main__":
    main()
