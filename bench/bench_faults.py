"""Fault drill: one broadcast sent through a PostgreSQL crash, a Redis crash and a SIGKILL of the
worker holding RQ's scheduler lock. Prints its figures (issue 25's target: 0 lost, 0 duplicates,
every message final within 60 s of the last fault).

    .venv/bin/python bench/bench_faults.py                    # 3,000 messages, 5% gateway errors
    .venv/bin/python bench/bench_faults.py --messages 500 --mps 5
    .venv/bin/python bench/bench_faults.py --retry-delays 30,120,600 --sending-timeout 120   # all as shipped

It runs the server as deployed, against services it starts itself (never the machine's):
a private PostgreSQL (``initdb`` in a temporary folder) and a private Redis, each on a free port
(tests/fakes/private_services.py); the schema from ``flask db upgrade``; a web process
(gunicorn, 2 processes x 4 threads, as ``make run``) and ``--workers`` ``flask worker``
processes, each in its own process group; the fake Twilio in its own process answering
``--error-rate`` of its requests with a 500.

1. Setup through the HTTP API of the web process: ``flask create-project`` (its API token),
   ``PUT /api/v1/gateway`` (Twilio, the fake, 3 numbers at ``--mps`` each), an .xlsx of N cases
   (``POST /api/v1/cases/imports``), a case group filled by an .xlsx of their external ids
   (``POST /api/v1/case-groups/<id>/imports``), then ONE ``POST /api/v1/broadcasts``.
2. Faults, once the fake has received ``--start-after`` of the messages:
   - PostgreSQL: ``pg_ctl stop -m immediate``, ``--pg-down`` seconds down, started again
     (crash recovery runs);
   - ``--gap`` seconds later, Redis: SIGKILL, ``--redis-down`` seconds down, started again EMPTY
     (every queued job, scheduled retry and lock is gone);
   - ``--gap`` seconds later, the worker whose RQ scheduler holds ``rq:scheduler-lock:<queue>``
     (the lock names the scheduler; its hash gives the scheduler's pid, whose parent is the
     worker) is killed with SIGKILL, with its forked scheduler (its whole process group), and
     a new worker is started at once.
   The web process is never restarted.
3. Until every message of the broadcast is final (sent, delivered or failed) or ``--timeout``
   seconds after the last fault. Meanwhile the bench reads the messages table every
   ``--poll`` seconds to remember each retry's due time (``next_attempt_at``, which the claim
   clears).

Figures: messages sent, failed (by reason), lost (recipients without a final message),
duplicated (the fake got the same to+body more than once; sends beyond the messages sent),
seconds from the last fault until all were final, and the longest wait past due: per message,
``sent_at`` minus the latest of its creation, due time and last retry's due time (or now,
unsent), max and p95. Even without faults the last message of a broadcast waits its turn at
the gateway's rate (N / (3 x mps) seconds): that figure is printed beside it.

Settings: retries wait ``--retry-delays`` (default 5,10,20 s instead of 30 s, 2 and 10 minutes:
at 5% errors a few messages fail twice in a row, and the shipped delays alone would keep them
unsent for minutes, which says nothing about faults); everything else is as shipped, including
``SMS_SENDING_TIMEOUT`` (120 s: the rows a killed worker was sending wait that long before the
sweep asks the gateway about them). The processes' logs stay in the temporary folder printed.
The exit code is 0 whatever the figures; the last line says OK or NOT OK.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import FakeProcess, free_port, worker_env_base  # noqa: E402

from tests.fakes.private_services import (  # noqa: E402
    PrivatePostgres,
    PrivateRedis,
    ServiceUnavailable,
    wait_until,
)

POOL = ["+15005550006", "+15005550007", "+15005550008"]
TEXT = "Reminder: the clinic is open on Thursday from 8am. Reply STOP to stop these messages."
QUEUE_PREFIX = "bench-"  # worker_env_base's RQ_QUEUE_PREFIX
FINAL = ("sent", "delivered", "failed")
TARGET_FINAL_SECONDS = 60.0
LOG_MARKERS = {
    "failed jobs": "exception raised while executing",
    "tracebacks": "Traceback (most recent call last)",
    "waiting for Redis": "waiting for Redis to answer",
    "database away": "the database is away",
    "scheduler takeovers": "took over the scheduler locks",
    "RQ quitting": "unhandled exception, quitting",
}


def phone(i: int) -> str:
    """A distinct valid Kenyan mobile number for each i (+254712000000, +254712000001, ...)."""
    return f"+2547{12 + i // 1_000_000:02d}{i % 1_000_000:06d}"


def workbook(header: list[str], rows) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    sheet = wb.create_sheet()
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Api:
    """The web process's JSON API with the project's token (no proxies)."""

    def __init__(self, base_url: str, token: str):
        import requests

        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, expect: int, **kw) -> dict:
        response = self.session.request(method, self.base_url + path, timeout=60, **kw)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def wait_import(self, imported: dict, timeout: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.call("GET", f"/api/v1/imports/{imported['id']}", 200)
            if state["status"] in ("done", "failed"):
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(f"import {imported['id']} not done after {timeout:.0f} s: {state}")
            time.sleep(0.5)


class Tracker(threading.Thread):
    """Reads the broadcast's messages every ``every`` seconds: remembers each retry's due time
    (the claim clears ``next_attempt_at``) and when every message was first seen final."""

    def __init__(self, engine, broadcast_id: str, expected: int, every: float):
        super().__init__(name="tracker", daemon=True)
        self.engine = engine
        self.broadcast_id = broadcast_id
        self.expected = expected
        self.every = every
        self.retry_due: dict[int, datetime] = {}
        self.all_final_at: float | None = None
        self.unfinished = expected
        self.read_errors = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT id, status, next_attempt_at FROM messages "
            "WHERE broadcast_id = :b AND direction = 'outbound'"
        )
        while not self.stopping.is_set():
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(query, {"b": self.broadcast_id}).all()
            except Exception:  # the database is down: that is the drill
                self.read_errors += 1
            else:
                for row in rows:
                    if row.status == "queued" and row.next_attempt_at is not None:
                        seen = self.retry_due.get(row.id)
                        if seen is None or row.next_attempt_at > seen:
                            self.retry_due[row.id] = row.next_attempt_at
                self.unfinished = self.expected - sum(1 for r in rows if r.status in FINAL)
                if self.unfinished == 0 and self.all_final_at is None:
                    self.all_final_at = time.monotonic()
            self.stopping.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


class Drill:
    def __init__(self, args):
        self.args = args
        self.n = args.messages
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))
        self.workers: list[subprocess.Popen] = []
        self.retired: list[subprocess.Popen] = []
        self.web: subprocess.Popen | None = None
        self.faults: list[tuple[str, float, float]] = []  # (what, started, ended) on the monotonic clock

    # -- processes ---------------------------------------------------------------

    def popen(self, name: str, cmd: list[str]) -> subprocess.Popen:
        """A process of the server, in its own process group, its output in ``<name>.log``."""
        path = self.tmp / f"{name}.log"
        with open(path, "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc.log_path = path
        proc.name = name
        return proc

    def flask(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "flask", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)}: {result.stderr[-2000:]}")
        return result.stdout

    def start_worker(self) -> subprocess.Popen:
        number = len(self.workers) + len(self.retired) + 1
        proc = self.popen(f"worker-{number}", [sys.executable, "-m", "flask", "worker"])
        self.workers.append(proc)
        return proc

    def start_web(self) -> None:
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        self.web = self.popen(
            "web",
            [
                *(sys.executable, "-m", "gunicorn"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"),
                *("--access-logfile", "-", "wsgi:app"),
            ],
        )
        wait_until(self.web_answers, what=f"the web process (log {self.web.log_path})", seconds=60)

    def web_answers(self) -> bool:
        import requests

        if self.web.poll() is not None:
            raise RuntimeError(f"the web process exited; log {self.web.log_path}")
        session = requests.Session()
        session.trust_env = False  # no proxy between the bench and its own server
        try:
            return session.get(self.web_url + "/healthz", timeout=2).status_code < 500
        except requests.RequestException:
            return False

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)

    # -- setup -------------------------------------------------------------------

    def start_services(self) -> None:
        self.pg = PrivatePostgres().start()
        self.redis = PrivateRedis().start()
        self.fake = FakeProcess("--seed", "25", "--error-rate-500", str(self.args.error_rate))
        self.env = dict(os.environ, **worker_env_base(self.pg.url, self.redis.url))
        self.env.update(TWILIO_API_BASE_URL=self.fake.url, SMS_RETRY_DELAYS=self.args.retry_delays)
        if self.args.sending_timeout is not None:
            self.env["SMS_SENDING_TIMEOUT"] = str(self.args.sending_timeout)

    def setup_project(self) -> None:
        from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

        self.flask("db", "upgrade")
        created = self.flask(
            "create-project",
            "faults",
            "--admin-email",
            "faults@example.org",
            "--admin-password",
            "fault-drill-pw",
        )
        self.start_web()
        for _ in range(self.args.workers):
            self.start_worker()
        self.api = Api(self.web_url, created.strip().splitlines()[-1])
        gateway = {
            "kind": "twilio",
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN,
            "from_numbers": POOL,
            "mps": self.args.mps,
        }
        self.api.call("PUT", "/api/v1/gateway", 200, json=gateway)
        started = time.perf_counter()
        cases = workbook(
            ["external_id", "case_type", "name", "phone_number"],
            ([f"EXT-{i:07d}", "person", f"Person {i}", phone(i)] for i in range(self.n)),
        )
        imported = self.api.wait_import(
            self.api.call("POST", "/api/v1/cases/imports", 202, files={"file": ("cases.xlsx", cases)})
        )
        group = self.api.call("POST", "/api/v1/case-groups", 201, json={"name": "Fault drill"})
        self.group_id = group["id"]
        members = workbook(["case_identifier"], ([f"EXT-{i:07d}"] for i in range(self.n)))
        added = self.api.wait_import(
            self.api.call(
                "POST",
                f"/api/v1/case-groups/{self.group_id}/imports",
                202,
                files={"file": ("members.xlsx", members)},
            )
        )
        print(
            f"setup through the API in {time.perf_counter() - started:.1f} s: cases {imported['counts']}, "
            f"group members {added['counts']}",
            flush=True,
        )

    # -- faults ------------------------------------------------------------------

    def at_fake(self) -> int:
        return self.fake.stats()["messages"]

    def fault(self, what: str, started: float) -> None:
        self.faults.append((what, started, time.monotonic()))

    def crash_postgres(self) -> None:
        started = time.monotonic()
        at = self.at_fake()
        self.pg.crash()
        time.sleep(self.args.pg_down)
        self.pg.start()
        self.fault("PostgreSQL crash", started)
        print(
            f"fault 1: PostgreSQL crashed (pg_ctl stop -m immediate) with {at:,} messages at the fake; "
            f"started again after {time.monotonic() - started:.1f} s",
            flush=True,
        )

    def crash_redis(self) -> None:
        started = time.monotonic()
        at = self.at_fake()
        self.redis.crash()
        time.sleep(self.args.redis_down)
        self.redis.start()
        self.fault("Redis crash", started)
        print(
            f"fault 2: Redis killed (SIGKILL) with {at:,} messages at the fake; "
            f"started again EMPTY after {time.monotonic() - started:.1f} s",
            flush=True,
        )

    def scheduler_holder(self) -> tuple[subprocess.Popen | None, int | None]:
        """The worker whose scheduler holds ``rq:scheduler-lock:<queue>``, and the scheduler's pid."""
        from redis import Redis

        with Redis.from_url(self.redis.url, socket_connect_timeout=2) as redis:
            for queue in ("sms", "high", "default", "low"):
                name = redis.get(f"rq:scheduler-lock:{QUEUE_PREFIX}{queue}")
                if name:
                    break
            else:
                return None, None
            pid = redis.hget(f"rq:scheduler:{name.decode()}", "pid")
        if not pid:
            return None, None
        try:
            with open(f"/proc/{int(pid)}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return None, None
        for proc in self.workers:
            if proc.pid == parent and proc.poll() is None:
                return proc, int(pid)
        return None, int(pid)

    def kill_scheduler_worker(self) -> None:
        started = time.monotonic()
        holder, scheduler_pid = None, None
        while holder is None and time.monotonic() - started < self.args.holder_wait:
            holder, scheduler_pid = self.scheduler_holder()
            if holder is None:
                time.sleep(0.5)
        waited = time.monotonic() - started
        if holder is None:
            holder = self.workers[0]
            print(
                f"fault 3: NO worker held the scheduler lock after {waited:.0f} s "
                f"(scheduler pid {scheduler_pid}); killing {holder.name} instead",
                flush=True,
            )
        at = self.at_fake()
        killed_at = time.monotonic()
        os.killpg(holder.pid, signal.SIGKILL)  # the worker and its forked scheduler
        holder.wait(timeout=10)
        self.workers.remove(holder)
        self.retired.append(holder)
        new = self.start_worker()
        self.fault("SIGKILL of the scheduler's worker", killed_at)
        print(
            f"fault 3: {holder.name} (pid {holder.pid}, scheduler pid {scheduler_pid}, lock found after "
            f"{waited:.1f} s) killed with its process group (SIGKILL) with {at:,} messages at the fake; "
            f"{new.name} started at once",
            flush=True,
        )

    # -- figures -----------------------------------------------------------------

    def figures(self, engine, broadcast_id: str, tracker: Tracker) -> dict:
        from sqlalchemy import text

        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, status, skip_reason, error_code, created_at, due_at, sent_at FROM messages "
                    "WHERE broadcast_id = :b AND direction = 'outbound'"
                ),
                {"b": broadcast_id},
            ).all()
            now = conn.execute(text("SELECT (now() AT TIME ZONE 'UTC')")).scalar_one()
        sent = sum(1 for r in rows if r.status in ("sent", "delivered"))
        failed = Counter(r.skip_reason or r.error_code or "no reason" for r in rows if r.status == "failed")
        unfinished = Counter(r.status for r in rows if r.status not in FINAL)
        at_fake = Counter((m["to"], m["body"]) for m in self.fake.messages())
        waits = []
        for r in rows:
            if r.status == "failed":
                continue
            due = max(t for t in (r.created_at, r.due_at, tracker.retry_due.get(r.id)) if t is not None)
            end = r.sent_at if r.sent_at is not None else now
            waits.append(max((end - due).total_seconds(), 0.0))
        return {
            "rows": len(rows),
            "sent": sent,
            "failed": failed,
            "unfinished": unfinished,
            "lost": (self.n - len(rows)) + sum(unfinished.values()),
            "duplicated": sum(n - 1 for n in at_fake.values() if n > 1),
            "beyond": max(0, sum(at_fake.values()) - sent),
            "at_fake": sum(at_fake.values()),
            "wait_max": max(waits, default=0.0),
            "wait_p95": percentile(waits, 0.95),
            "retried": len(tracker.retry_due),
        }

    def log_summary(self) -> None:
        for proc in [self.web, *self.retired, *self.workers]:
            text = proc.log_path.read_text(errors="replace")
            counts = {label: text.count(marker) for label, marker in LOG_MARKERS.items()}
            shown = ", ".join(f"{label} {n}" for label, n in counts.items() if n)
            state = "running" if proc.poll() is None else f"exited {proc.returncode}"
            print(
                f"   {proc.name:9} {state:14} {len(text.splitlines()):6,} log lines; "
                f"{shown or 'no fault lines'}"
            )

    # -- the whole run -----------------------------------------------------------

    def run(self) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        args = self.args
        print(
            f"== Fault drill: one broadcast of {self.n:,} messages, {args.workers} workers, gateway "
            f"{len(POOL)} numbers x {args.mps}/s, {args.error_rate:.0%} of requests answered 500; "
            f"SMS_RETRY_DELAYS={args.retry_delays}, SMS_SENDING_TIMEOUT="
            f"{args.sending_timeout if args.sending_timeout is not None else '120 (as shipped)'}",
            flush=True,
        )
        print(f"   logs in {self.tmp}", flush=True)
        try:
            self.start_services()
            engine = create_engine(
                self.pg.url.replace("postgresql://", "postgresql+psycopg2://"), poolclass=NullPool
            )
            self.setup_project()
            body = {"name": "Fault drill", "recipients": {"case_groups": [self.group_id]}, "text": TEXT}
            broadcast_id = self.api.call("POST", "/api/v1/broadcasts", 201, json=body)["id"]
            created = time.monotonic()
            tracker = Tracker(engine, broadcast_id, self.n, args.poll)
            tracker.start()
            wait_until(
                lambda: self.at_fake() >= args.start_after * self.n,
                what=f"{args.start_after:.0%} of the messages at the fake (logs in {self.tmp})",
                seconds=300,
            )
            print(
                f"sending: {self.at_fake():,} messages at the fake "
                f"{time.monotonic() - created:.1f} s after the POST"
            )
            self.crash_postgres()
            time.sleep(args.gap)
            self.crash_redis()
            time.sleep(args.gap)
            self.kill_scheduler_worker()
            last_fault = self.faults[-1][2]
            deadline = last_fault + args.timeout
            next_report = time.monotonic() + 15
            while tracker.all_final_at is None and time.monotonic() < deadline:
                time.sleep(0.5)
                if time.monotonic() >= next_report:
                    next_report += 15
                    print(
                        f"   {time.monotonic() - last_fault:5.0f} s after the last fault: "
                        f"{tracker.unfinished:,} not final, {self.at_fake():,} at the fake",
                        flush=True,
                    )
            tracker.stop()
            self.report(engine, broadcast_id, tracker, created, last_fault)
        finally:
            for proc in [*self.workers, self.web]:
                if proc is not None:
                    self.stop(proc)
            if hasattr(self, "fake"):
                self.fake.stop()
            for service in ("pg", "redis"):
                if hasattr(self, service):
                    getattr(self, service).cleanup()

    def report(self, engine, broadcast_id: str, tracker: Tracker, created: float, last_fault: float) -> None:
        f = self.figures(engine, broadcast_id, tracker)
        api_view = self.api.call("GET", f"/api/v1/broadcasts/{broadcast_id}", 200)
        final_after = None if tracker.all_final_at is None else tracker.all_final_at - last_fault
        paced = self.n / (len(POOL) * self.args.mps)
        print(f"messages written:        {f['rows']:8,} of {self.n:,} recipients")
        print(f"sent (or delivered):     {f['sent']:8,}")
        print(f"failed:                  {sum(f['failed'].values()):8,}  {dict(f['failed'])}")
        print(f"lost (not final):        {f['lost']:8,}  {dict(f['unfinished'])}")
        print(
            f"duplicated:              {f['duplicated']:8,}  (same to+body twice at the fake); "
            f"sends beyond the messages sent: {f['beyond']:,} ({f['at_fake']:,} at the fake)"
        )
        if final_after is None:
            print(
                f"all final:               NO, {tracker.unfinished:,} not final "
                f"{self.args.timeout:.0f} s after the last fault"
            )
        else:
            print(
                f"all final:               {final_after:8.1f} s after the last fault "
                f"({tracker.all_final_at - created:.1f} s after the POST)"
            )
        print(
            f"longest wait past due:   {f['wait_max']:8.1f} s max, {f['wait_p95']:.1f} s p95 "
            f"(without faults the last message waits ~{paced:.0f} s for its turn at "
            f"{len(POOL)} x {self.args.mps}/s; "
            f"{f['retried']:,} messages retried)"
        )
        print(
            "the web process after the faults: GET /api/v1/broadcasts/<id> -> "
            f"{api_view.get('counts', api_view)}"
        )
        health = self.api.session.get(self.web_url + "/healthz/workers", timeout=30)
        print(f"the web process's GET /healthz/workers -> {health.status_code} {health.text.strip()[:400]}")
        print(f"database read errors while it was down: {tracker.read_errors}")
        print("processes:")
        self.log_summary()
        misses = []
        if f["lost"]:
            misses.append(f"{f['lost']} lost")
        if f["duplicated"] or f["beyond"]:
            misses.append(f"{f['duplicated'] + f['beyond']} duplicated")
        if final_after is None or final_after > TARGET_FINAL_SECONDS:
            misses.append("not all final within 60 s of the last fault")
        verdict = "OK" if not misses else "NOT OK: " + "; ".join(misses)
        print(f"{verdict} (target: 0 lost, 0 duplicates, all final within 60 s of the last fault)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=3000, help="recipients of the one broadcast")
    p.add_argument("--workers", type=int, default=2, help="flask worker processes")
    p.add_argument("--mps", type=int, default=20, help="messages a second per sender number (3 numbers)")
    p.add_argument("--error-rate", type=float, default=0.05, help="share of the fake's answers that are 500")
    p.add_argument("--retry-delays", default="5,10,20", help="SMS_RETRY_DELAYS (shipped: 30,120,600)")
    p.add_argument("--sending-timeout", type=float, help="SMS_SENDING_TIMEOUT (default as shipped, 120)")
    p.add_argument("--start-after", type=float, default=0.1, help="share at the fake before the first fault")
    p.add_argument("--pg-down", type=float, default=4.0, help="seconds PostgreSQL stays down")
    p.add_argument("--redis-down", type=float, default=2.0, help="seconds Redis stays down")
    p.add_argument("--gap", type=float, default=8.0, help="seconds between one fault's end and the next")
    p.add_argument(
        "--holder-wait", type=float, default=90.0, help="seconds to wait for a scheduler lock holder"
    )
    p.add_argument(
        "--timeout", type=float, default=180.0, help="seconds after the last fault to wait for all final"
    )
    p.add_argument("--poll", type=float, default=1.0, help="seconds between reads of the messages table")
    args = p.parse_args(argv)
    try:
        Drill(args).run()
    except ServiceUnavailable as exc:
        print(f"SKIPPED: cannot start a private service: {exc}")


if __name__ == "__main__":
    main()
