"""Benchmark: the case conversation page (the chat) of a case with 10,000 messages, server time.

    .venv/bin/python bench/bench_conversation.py                  # SQLite in a temp folder
    .venv/bin/python bench/bench_conversation.py --database-url postgresql://postgres@127.0.0.1:5432/bench

Issue 21's target: "the chat page of a case with 10,000 messages renders its latest page in
under 100 ms server time". What it builds (schema from the migrations, one project):

- one case (with a phone number, and a second open case sharing it: a family phone) whose
  thread holds ``--messages`` messages (10,000), both directions; most carry the case and
  its number, some only the number (sent before the case existed) and some only the case
  (an earlier number); its inbound ones have their handling rows, a quarter of its
  outbound ones a web user as author;
- every inbound message's handling row is an inbox item: open for the newest tenth of the
  log, handled before (the navigation counts the open ones on every page);
- ``--others`` messages (200,000) of ``--other-cases`` other cases (5,000) and unknown numbers,
  interleaved with the thread, and the newest tenth of the log after the thread's last
  message (so the case's latest page is not the tip of the log).

Messages are inserted in bulk through SQLAlchemy Core (not the send pipeline). On
PostgreSQL the database is then VACUUM ANALYZEd, as autovacuum would do (statistics and
the visibility map of a settled table); SQLite gets no ANALYZE (the app never runs one).

Then a web user (the project's admin) logs in through Flask's test client (the login form,
CSRF and all), and this process times ``--renders`` requests of each (after a few warm-up
ones, the first reported apart as "cold"):

1. ``GET /cases/<case_id>/conversation``: the latest page (50 messages) with the reply box;
2. ``GET /cases/<case_id>/conversation?before=<id>``: the page before it;
3. ``GET .../conversation/messages?after=<last id>&watch=<20 ids>``: the live view's poll
   when nothing is new (what every open page asks every few seconds);
4. ``GET .../conversation/messages?after=<id>``: a catch-up of 100 newer messages (the most
   one live update sends).

"Server time" is the WSGI call through the test client, in this process, with no network
and no browser: login session look-up, queries, template. It prints, per request, median
and p95 in ms, the SQL statements per request and the median time spent executing them
(cursor execute; fetching rows is not counted), and PASS/FAIL of the p95 against 100 ms.
``--statements`` also prints each statement's median time: where the SQL time goes.

It DROPS AND RECREATES the schema of ``--database-url`` and FLUSHES the Redis DB of
``--redis-url`` (default DB 10). The app runs with APP_ENV=production settings (cookies not
marked secure, so the test client keeps them); INFO logging is off.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import fresh_app, worker_env_base  # noqa: E402

TARGET_MS = 100.0
PHONE = "+254712345678"
OLD_PHONE = "+254712345600"
ADMIN_EMAIL = "bench@example.org"
ADMIN_PASSWORD = "bench-password"
CHUNK = 10_000


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


def other_phone(i: int) -> str:
    return f"+2547{20 + i // 1_000_000:02d}{i % 1_000_000:06d}"


# --- building the data ----------------------------------------------------------------------------


def sender(rng: random.Random, in_thread: bool, case_pk: int, other_pks: list[int]) -> tuple[int | None, str]:
    """The case (or None) and the number of the next message."""
    if in_thread:
        roll = rng.random()
        if roll < 0.90:
            return case_pk, PHONE
        if roll < 0.95:
            return None, PHONE  # texted before the case had this number
        return case_pk, OLD_PHONE  # the case's earlier number
    n = rng.randrange(len(other_pks) + len(other_pks) // 4)
    if n < len(other_pks):
        return other_pks[n], other_phone(n)
    return None, other_phone(len(other_pks) + n)  # unknown numbers


@dataclass
class Built:
    case_pk: int
    case_id: str
    thread_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0


def build(project_id: int, admin_id: int, args) -> Built:
    """The case, its family-phone sibling, other cases, and every message, in bulk."""
    from sqlalchemy import insert, select

    from messaging.db.tenancy import project_scope
    from messaging.extensions import db
    from messaging.lib import clock
    from messaging.models import Case, InboundMessage, Message

    t0 = time.perf_counter()
    rng = random.Random(21)
    with project_scope(project_id):
        case = Case(case_type="person", name="Amina", phone_raw=PHONE, phone_number=PHONE)
        sibling = Case(case_type="person", name="Juma", phone_raw=PHONE, phone_number=PHONE)
        db.session.add_all([case, sibling])
        db.session.flush()
        others = [
            {
                "project_id": project_id,
                "case_id": f"other-{i:06d}",
                "case_type": "person",
                "name": f"Other {i}",
                "phone_raw": other_phone(i),
                "phone_number": other_phone(i),
                "phone_invalid": False,
                "closed": False,
                "deleted": False,
                "properties": {},
            }
            for i in range(args.other_cases)
        ]
        db.session.execute(insert(Case), others)
        db.session.commit()
        other_pks = list(
            db.session.execute(
                select(Case.id).where(Case.case_id.like("other-%")).order_by(Case.id)
            ).scalars()
        )
        built = Built(case.id, case.case_id)

    total = args.messages + args.others
    tail = args.others // 10  # the newest tenth of the log comes after the thread's last message
    spread = total - tail
    # Which positions of the log belong to the thread: evenly spread over the first part.
    thread_positions = {round(k * (spread - 1) / max(args.messages - 1, 1)) for k in range(args.messages)}
    while len(thread_positions) < args.messages:  # rounding collisions (tiny logs only)
        thread_positions.add(rng.randrange(spread))
    start = clock.now() - timedelta(seconds=total * 30)
    tail_start = start + timedelta(seconds=spread * 30)
    messages = Message.__table__
    handling = InboundMessage.__table__
    sid = 0
    rows: list[dict] = []
    in_thread_flags: list[bool] = []

    def flush(batch: list[dict], flags: list[bool]) -> None:
        if not batch:
            return
        with project_scope(project_id):
            conn = db.session.connection()
            ids = conn.execute(
                insert(messages).returning(messages.c.id, sort_by_parameter_order=True), batch
            ).scalars()
            ids = list(ids)
            inbound = [
                {
                    "message_id": mid,
                    "project_id": project_id,
                    "phone": row["phone"],
                    "received_at": row["created_at"],
                    "handled_at": row["created_at"],
                    "outcome": "unhandled" if row["case_id"] else "unknown_number",
                    "detail": "default reply sent",
                    "case_count": 1 if row["case_id"] else 0,
                    "routing": "one open case" if row["case_id"] else "no case",
                    # Unhandled messages are inbox items: the newest tenth still open, older ones
                    # handled (the navigation counts the open ones on every page).
                    "inbox_state": "open" if row["created_at"] >= tail_start else "handled",
                    "inbox_changed_at": row["created_at"],
                }
                for mid, row in zip(ids, batch, strict=True)
                if row["direction"] == "inbound"
            ]
            if inbound:
                conn.execute(insert(handling), inbound)
            db.session.commit()
        built.thread_ids.extend(mid for mid, flag in zip(ids, flags, strict=True) if flag)

    for position in range(total):
        in_thread = position in thread_positions
        inbound = rng.random() < 0.5
        at = start + timedelta(seconds=position * 30)
        case_pk, phone = sender(rng, in_thread, built.case_pk, other_pks)
        author = admin_id if in_thread and not inbound and rng.random() < 0.25 else None
        status = "received" if inbound else rng.choice(("delivered", "delivered", "sent", "failed"))
        sid += 1
        in_thread_flags.append(in_thread)
        rows.append(
            {
                "project_id": project_id,
                "direction": "inbound" if inbound else "outbound",
                "case_id": case_pk,
                "phone": phone,
                "from_number": phone if inbound else "+15005550006",
                "to_number": "+15005550006" if inbound else phone,
                "body": f"Message {position}: see you at the clinic on Monday at 9, bring the card",
                "segments": 1,
                "encoding": "GSM-7",
                "status": status,
                "gateway": "twilio",
                "gateway_sid": f"SM{sid:032x}",
                "error_code": "30003" if status == "failed" else None,
                "error_message": "Unreachable destination handset" if status == "failed" else None,
                "bypass_opt_out": False,
                "auto_reply": False,
                "author_id": author,
                "attempts": 0 if inbound else 1,
                "created_at": at,
                "queued_at": None if inbound else at,
                "sent_at": None if inbound else at,
                "updated_at": at,
            }
        )
        if len(rows) >= CHUNK:
            flush(rows, in_thread_flags)
            rows, in_thread_flags = [], []
            if sys.stdout.isatty():
                print(f"   inserted {position + 1:,} / {total:,} messages", end="\r", flush=True)
    flush(rows, in_thread_flags)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    built.seconds = time.perf_counter() - t0
    return built


# --- logging in and timing --------------------------------------------------------------------------


def login(app):
    """A test client logged in as the project's admin through the login form."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    if response.status_code != 302:
        sys.exit(f"login failed: {response.status_code} {response.get_data(as_text=True)[:300]}")
    return client


class SqlClock:
    """Counts the statements and sums their time (cursor execute to its end), per request."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.statements = 0
        self.seconds = 0.0
        self.log: list[tuple[str, float]] = []  # (statement, seconds) of the current request
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_args):
        self._started.append(time.perf_counter())

    def _after(self, _conn, _cursor, statement, *_args):
        took = time.perf_counter() - self._started.pop()
        self.seconds += took
        self.statements += 1
        self.log.append((statement, took))

    def reset(self) -> None:
        self.statements, self.seconds = 0, 0.0
        self.log = []


@dataclass
class Timing:
    name: str
    cold_ms: float
    ms: list[float]
    sql_ms: list[float]
    statements: int
    check: str
    # Each statement's times (ms) over the timed requests, in the order a request runs them.
    per_statement: list[tuple[str, list[float]]] = field(default_factory=list)


def time_requests(client, sql: SqlClock, name: str, url: str, renders: int, check) -> Timing:
    """``renders`` GETs of ``url`` after three warm-up ones (the first reported as cold)."""
    times, sql_times, statements = [], [], 0
    per_statement: list[tuple[str, list[float]]] = []
    cold = None
    for i in range(renders + 3):
        sql.reset()
        t0 = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 200:
            sys.exit(f"{url}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        if cold is None:
            cold = elapsed
            seen = check(response)
        if i >= 3:
            times.append(elapsed)
            sql_times.append(sql.seconds * 1000)
            statements = sql.statements
            if not per_statement:
                per_statement = [(text, []) for text, _ in sql.log]
            for (_, took), (_, series) in zip(sql.log, per_statement, strict=False):
                series.append(took * 1000)
    return Timing(name, cold, times, sql_times, statements, seen, per_statement)


def print_statements(timings: list[Timing]) -> None:
    """Each request's statements, in order, with their median time (where the SQL time goes)."""
    for t in timings:
        print(f"   SQL of '{t.name}' (median ms, statement):")
        for text, series in t.per_statement:
            print(f"     {statistics.median(series):6.2f}  {' '.join(text.split())[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages in the case's thread")
    parser.add_argument("--others", type=int, default=200_000, help="messages of other numbers and cases")
    parser.add_argument("--other-cases", type=int, default=5_000)
    parser.add_argument("--renders", type=int, default=50, help="timed requests of each kind")
    parser.add_argument(
        "--statements", action="store_true", help="also print each SQL statement's median time per request"
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-conversation-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    env = worker_env_base(database_url, args.redis_url)
    # Production settings (no template reloading, the real session cookie), minus secure cookies.
    env.update(
        {"APP_ENV": "production", "SECRET_KEY": "bench-secret-" + "x" * 20, "SESSION_COOKIE_SECURE": "0"}
    )
    app, project, _key = fresh_app(env)
    logging.disable(logging.INFO)

    from sqlalchemy import select

    from messaging.extensions import db
    from messaging.models import WebUser

    admin_id = db.session.execute(select(WebUser.id).where(WebUser.email == ADMIN_EMAIL)).scalar_one()
    dialect = db.engine.dialect.name
    print(
        f"== Conversation page: a case with {args.messages:,} messages among {args.others:,} others, "
        f"{dialect} ({database_url.split('@')[-1]})"
    )
    built = build(project.id, admin_id, args)
    print(f"   built in {built.seconds:.1f} s (thread: {len(built.thread_ids):,} messages)")
    db.session.remove()

    client = login(app)
    sql = SqlClock(db.engine)
    ids = built.thread_ids  # ascending
    base = f"/cases/{built.case_id}/conversation"
    last = ids[-1]
    watched = ",".join(str(i) for i in ids[-20:])

    def rows_of(response) -> str:
        html = response.get_data(as_text=True)
        shown = [int(i) for i in re.findall(r'<tr class="msg [^"]*" id="message-(\d+)"', html)]
        ok = bool(shown) and shown == sorted(shown) and shown[-1] == last and "Juma" in html
        return f"{len(shown)} rows, newest is the thread's newest: {'yes' if ok else 'NO'}"

    def older_rows(response) -> str:
        html = response.get_data(as_text=True)
        shown = [int(i) for i in re.findall(r'<tr class="msg [^"]*" id="message-(\d+)"', html)]
        return f"{len(shown)} rows, all older: {'yes' if shown and max(shown) < ids[-50] else 'NO'}"

    def live_rows(expected: int):
        def check(response) -> str:
            body = response.get_json()
            got = len(body["rows"])
            return f"{got} rows (expected {expected}): {'yes' if got == expected else 'NO'}"

        return check

    timings = [
        time_requests(client, sql, "latest page", base, args.renders, rows_of),
        time_requests(client, sql, "page before it", f"{base}?before={ids[-50]}", args.renders, older_rows),
        time_requests(
            client,
            sql,
            "live poll, nothing new, 20 watched",
            f"{base}/messages?after={last}&watch={watched}",
            args.renders,
            live_rows(20),
        ),
        time_requests(
            client,
            sql,
            "live catch-up, 100 newer",
            f"{base}/messages?after={ids[-101]}",
            args.renders,
            live_rows(100),
        ),
    ]
    print(f"   server time of {args.renders} requests each (after 3 warm-up ones), in ms:")
    print(f"   {'request':38} {'cold':>7} {'median':>7} {'p95':>7} {'SQL med':>8} {'stmts':>5}  result")
    for t in timings:
        verdict = "PASS" if pct(t.ms, 95) < TARGET_MS else "FAIL"
        print(
            f"   {t.name:38} {t.cold_ms:7.1f} {statistics.median(t.ms):7.1f} {pct(t.ms, 95):7.1f} "
            f"{statistics.median(t.sql_ms):8.1f} {t.statements:5d}  {verdict} (p95 < {TARGET_MS:.0f} ms); "
            f"{t.check}"
        )
    if args.statements:
        print_statements(timings)
    page = timings[0]
    print(
        f"target (latest page of a case with {args.messages:,} messages under {TARGET_MS:.0f} ms "
        f"server time, p95): {'MET' if pct(page.ms, 95) < TARGET_MS else 'NOT MET'} "
        f"(median {statistics.median(page.ms):.1f} ms, p95 {pct(page.ms, 95):.1f} ms on {dialect})"
    )


if __name__ == "__main__":
    main()
