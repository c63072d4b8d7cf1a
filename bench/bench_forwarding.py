"""Benchmark: forms forwarded per second to a local HTTP receiver, against a bare loop of POSTs.

    python bench/bench_forwarding.py                 # 10,000 forms, SQLite in a temp folder
    python bench/bench_forwarding.py --forms 2000 --database-url postgresql://postgres@127.0.0.1/bench
    python bench/bench_forwarding.py --forms 2000 --latency-ms 20   # a receiver 20 ms away

What it measures, in one process (the same Python, the same ``requests`` client):

1. capture: saving forms with ``capture_form`` in transactions of 500 (the outbox insert cost);
2. bare loop: ``requests.Session().post`` of the same JSON payloads to the receiver, one after another;
3. forwarding: ``dispatch_location``, then a real RQ ``SimpleWorker`` (burst) running the sender jobs
   until every record is ``succeeded``: claim, POST, attempt row, record update, commit per chunk.

The receiver (tests/fakes/http_receiver.py, answering 200) runs in a process of its own, as a
real receiver runs elsewhere: in this process its threads would share the sender's interpreter
lock, and parallel POSTs would measure that lock. On loopback a POST is all CPU (the client's
and the receiver's), so the job's parallel POSTs (``FORWARDING_PARALLEL``, threads sharing one
interpreter) cannot beat a bare loop that does nothing else; ``--latency-ms`` makes the receiver
answer as a distant one does, where they pay off. It prints forms/s for each and the ratio
forwarding / bare loop. It needs Redis; it uses its own
queue prefix and never flushes the Redis database. The database (default: a new SQLite file) is
built from the migrations, so do not point --database-url at a database you care about: it is
upgraded and filled with a benchmark project.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", type=int, default=10_000)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="the receiver answers after this long, as a distant one does (0: loopback speed)",
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    os.environ.setdefault("APP_ENV", "development")
    import logging

    import requests

    from messaging import create_app
    from messaging.db.tenancy import project_scope
    from messaging.extensions import db
    from messaging.forwarding import capture, dispatch, locations
    from messaging.models import Form, ForwardRecord
    from messaging.projects.setup import create_project
    from workers.worker import make_worker

    tmp = tempfile.mkdtemp(prefix="bench-forwarding-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    prefix = f"bench-fwd-{os.getpid()}:"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": args.redis_url,
            "RQ_QUEUE_PREFIX": prefix,
            "SECRET_KEY": "bench",
            # The receiver listens on loopback, which user-typed URLs may not reach unless allowed.
            "OUTBOUND_ALLOW_HOSTS": ["127.0.0.1"],
        }
    )
    logging.getLogger().setLevel(logging.WARNING)
    n = args.forms
    sys.path.insert(0, str(ROOT / "bench"))
    from common import ReceiverProcess

    rx = ReceiverProcess(args.latency_ms)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        slug = f"bench-{os.getpid()}"
        project, _admin, _key = create_project(slug, f"admin@{slug}.example.org", "bench password 1", None)
        db.session.commit()
        project_id = project.id
        with project_scope(project_id):
            location_id = locations.create_location(rx.url + "/inbox", "forms").id
            db.session.commit()

            # 1. capture
            t0 = time.perf_counter()
            for start in range(0, n, 500):
                for i in range(start, min(start + 500, n)):
                    form = Form(
                        app_id="app",
                        user_id="user",
                        answers={"q1": "yes", "q2": i, "village": "Kisumu"},
                        case_ids=[f"case-{i % 2000}"],
                    )
                    db.session.add(form)
                    db.session.flush()
                    capture.capture_form(form, [])
                db.session.commit()
            capture_s = time.perf_counter() - t0
            payloads = [
                p for (p,) in db.session.execute(db.select(ForwardRecord.payload).order_by(ForwardRecord.id))
            ]
            db.session.commit()

        # 2. the bare loop, same receiver, same client library, keep-alive
        session = requests.Session()
        session.trust_env = False
        headers = {"Content-Type": "application/json"}
        t0 = time.perf_counter()
        for payload in payloads:
            response = session.post(
                rx.url + "/bare", data=json.dumps(payload).encode(), headers=headers, timeout=10
            )
            response.raise_for_status()
            response.content  # noqa: B018 - read the answer, as the forwarder does
        bare_s = time.perf_counter() - t0

        # 3. forwarding through the outbox, the sender job and a real RQ worker
        bare_received = len(rx.received())
        t0 = time.perf_counter()
        dispatch.dispatch_location(location_id)
        worker = make_worker(app)
        previous_left = None
        while True:
            worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
            with project_scope(project_id):
                left = db.session.execute(
                    db.select(db.func.count())
                    .select_from(ForwardRecord)
                    .where(ForwardRecord.status != "succeeded")
                ).scalar_one()
                db.session.commit()
            if not left:
                break
            if left == previous_left:
                sys.exit(f"no progress: {left} record(s) not sent; see the worker's log above")
            previous_left = left
            dispatch.dispatch_location(location_id)
        forward_s = time.perf_counter() - t0
        received = len(rx.received()) - bare_received
        rx.stop()
        from messaging.jobs import redis_conn

        for key in redis_conn(app).scan_iter(f"rq:*{prefix}*"):
            redis_conn(app).delete(key)

    print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}")
    print(
        f"forms: {n:,}  (receiver got {received:,} forwarded POSTs; forwarding in parallel: "
        f"{app.config['FORWARDING_PARALLEL']})"
    )
    print(f"capture (outbox insert, 500 a transaction): {n / capture_s:,.0f} forms/s")
    print(f"bare loop of requests.post:                 {n / bare_s:,.0f} posts/s  ({bare_s:.1f} s)")
    print(f"forwarded by the job:                       {n / forward_s:,.0f} forms/s  ({forward_s:.1f} s)")
    print(f"ratio forwarding / bare loop:               {bare_s / forward_s:.2f}")


if __name__ == "__main__":
    main()
