"""Broadcast fan-out and delivery: one big "send now" broadcast. Prints its figures.

    .venv/bin/python bench/bench_broadcast.py                          # 100,000 recipients, PostgreSQL
    .venv/bin/python bench/bench_broadcast.py --skip-send              # only the fan-out
    .venv/bin/python bench/bench_broadcast.py --recipients 1000000 --skip-send   # flat memory?
    .venv/bin/python bench/bench_broadcast.py --database-url sqlite:////tmp/b.sqlite3

It runs the real thing: a fake Twilio server in its own process (unthrottled),
real ``flask worker`` processes, Redis, and a database. It WIPES the database
given by ``--database-url`` (the PostgreSQL schema is dropped, as the tests do)
and FLUSHES the Redis DB given by ``--redis-url`` (default DB 9).

1. Seed: N cases with distinct valid Kenyan mobile numbers (+2547...), all in
   one case group, bulk-inserted with Core (not through the API), ANALYZEd.
2. Bare insert: N message rows of the same shape as the fan-out writes,
   inserted with plain executemany in batches of 500 (one transaction each),
   on the same, empty, ``messages`` table; then the table is emptied again.
3. Fan-out: one ``flask worker --queues default`` is started and waits; the
   broadcast is created through the API (``POST /api/v1/broadcasts``, Flask
   test client, the request commits and enqueues the firing job). The clock
   runs from that call until the firing is ``done`` (every message row written
   and every send job enqueued: ``run_firing`` marks it done after the last
   batch's jobs are in Redis). Peak memory is that worker process's RSS
   high-water mark, ``VmHWM`` from ``/proc/<pid>/status`` read when the firing
   is done. (Not ``ru_maxrss`` from ``wait4``: subprocess starts the worker with
   vfork + exec, so the kernel folds this bench process's own peak into it.)
4. Send (unless ``--skip-send``): 2 ``flask worker`` processes (all queues,
   with the scheduler, as deployed) drain the send jobs to the fake gateway;
   seconds until no message of the firing is queued or sending.

The machine's other load (tests running beside it) shows up in the timings.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import FakeProcess, fresh_app, use_fake_gateway, worker_env_base  # noqa: E402

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/bench"
POOL = ["+15005550006", "+15005550007", "+15005550008"]
TEXT = "Reminder: the clinic is open on Thursday from 8am. Reply STOP to stop these messages."
SURVEY_LANGUAGES = ("en", "fr", "sw", "pt")
TEXT_PLACEHOLDER = "Hello {case.name}, the clinic is open on Thursday from 8am. Reply STOP to stop."
SEED_BATCH = 5000
BARE_BATCH = 500
QUEUED_TARGET_SECONDS = 10.0
MEMORY_TARGET_MB = 200.0


def phone(i: int) -> str:
    """A distinct valid Kenyan mobile number for each i (+254712000000, +254712000001, ...)."""
    return f"+2547{12 + i // 1_000_000:02d}{i % 1_000_000:06d}"


def proc_status_kb(pid: int, field: str) -> int:
    """A ``kB`` field (VmHWM, VmRSS) of /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, args):
        self.args = args
        self.n = args.recipients
        self.tmp = tempfile.mkdtemp(prefix="bench-broadcast-")
        self.database_url = args.database_url
        self.env_base = worker_env_base(self.database_url, args.redis_url)
        self.app, project, key = fresh_app(self.env_base)
        from messaging.extensions import db

        self.dialect = db.engine.dialect.name
        logging.disable(logging.INFO)  # the bench's own app: no per-request log lines
        self.project_id = project.id
        self.api_key = key
        self.worker_env = dict(os.environ, **self.env_base)

    # -- helpers ---------------------------------------------------------------

    def start_worker(self, queues: str, scheduler: bool, name: str):
        cmd = [sys.executable, "-m", "flask", "worker", "--queues", queues]
        if not scheduler:
            cmd.append("--no-scheduler")
        path = Path(self.tmp) / f"worker-{name}-{time.time_ns()}.log"
        with open(path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.worker_env, stdout=log, stderr=subprocess.STDOUT)
        proc.log_path = path
        return proc

    def wait_workers(self, count: int, procs, timeout: float = 60.0) -> None:
        """Until ``count`` workers have registered in Redis (they are listening)."""
        from rq import Worker

        from messaging.jobs import redis_conn

        deadline = time.time() + timeout
        while Worker.count(connection=redis_conn()) < count:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a worker exited with {proc.returncode}; logs in {self.tmp}")
            if time.time() > deadline:
                raise RuntimeError(f"workers did not start; logs in {self.tmp}")
            time.sleep(0.05)

    @staticmethod
    def stop_worker(proc) -> resource.struct_rusage:
        proc.terminate()
        deadline = time.time() + 30
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return usage
            if time.time() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                return usage
            time.sleep(0.05)

    def analyze(self):
        from sqlalchemy import text

        from messaging.extensions import db

        db.session.commit()
        if self.dialect == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        else:
            db.session.execute(text("ANALYZE"))
            db.session.commit()

    # -- 1. seed -----------------------------------------------------------------

    def seed(self) -> None:
        from sqlalchemy import insert, literal, select

        from messaging.case_groups import groups
        from messaging.db.tenancy import project_scope
        from messaging.extensions import db
        from messaging.lib import clock
        from messaging.models import Case, CaseGroupMember
        from messaging.models.base import new_id

        started = time.perf_counter()
        cases = Case.__table__
        now = clock.now()
        for start in range(0, self.n, SEED_BATCH):
            with db.engine.begin() as conn:
                conn.execute(
                    insert(cases),
                    [
                        {
                            "project_id": self.project_id,
                            "case_id": new_id(),
                            "case_type": "person",
                            "name": f"Person {i}",
                            "external_id": f"EXT-{i:07d}",
                            "phone_raw": phone(i),
                            "phone_number": phone(i),
                            "phone_invalid": False,
                            "language": SURVEY_LANGUAGES[i % 4] if self.args.survey else None,
                            "closed": False,
                            "deleted": False,
                            "opened_on": now,
                            "modified_on": now,
                            "properties": {},
                        }
                        for i in range(start, min(start + SEED_BATCH, self.n))
                    ],
                )
        with project_scope(self.project_id):
            group = groups.create_group("Bench recipients")
            db.session.commit()
            self.group_id = group.id
        members = CaseGroupMember.__table__
        with db.engine.begin() as conn:
            conn.execute(
                insert(members).from_select(
                    ["group_id", "case_pk", "added_at"],
                    select(literal(self.group_id), cases.c.id, literal(now)).where(
                        cases.c.project_id == self.project_id
                    ),
                )
            )
        self.analyze()
        print(
            f"seeded {self.n:,} cases in one case group in {time.perf_counter() - started:.1f} s "
            f"(Core bulk insert, then ANALYZE)",
            flush=True,
        )

    # -- configuration -------------------------------------------------------------

    def configure(self, fake_url: str, mps: int = 1000) -> None:
        use_fake_gateway(self.app, self.project_id, fake_url, POOL, mps)
        self.worker_env = dict(os.environ, **self.env_base, TWILIO_API_BASE_URL=fake_url)

    # -- 2. bare insert ----------------------------------------------------------

    def bare_insert(self) -> float:
        """rows/s of a plain executemany INSERT of N message rows, 500 a transaction."""
        from sqlalchemy import insert, select, text

        from messaging.extensions import db
        from messaging.lib import clock
        from messaging.models import Case, Message
        from messaging.models.base import new_id

        messages = Message.__table__
        cases = Case.__table__
        first_pk = db.session.execute(
            select(cases.c.id).where(cases.c.project_id == self.project_id).order_by(cases.c.id).limit(1)
        ).scalar_one()
        db.session.commit()
        broadcast_id, firing_id = new_id(), new_id()
        stmt = insert(messages)
        started = time.perf_counter()
        for start in range(0, self.n, BARE_BATCH):
            now = clock.now()
            job_base = new_id()
            rows = [
                {
                    "project_id": self.project_id,
                    "direction": "outbound",
                    "case_id": first_pk + i,
                    "phone": phone(i),
                    "to_number": phone(i),
                    "from_number": None,
                    "body": self.text,
                    "segments": 1,
                    "encoding": "GSM-7",
                    "status": "queued",
                    "gateway": None,
                    "broadcast_id": broadcast_id,
                    "firing_id": firing_id,
                    "survey_session_id": None,
                    "bypass_opt_out": False,
                    "attempts": 0,
                    "job_id": f"sms-{job_base}-{(i - start) // 100}",
                    "skip_reason": None,
                    "error_code": None,
                    "error_message": None,
                    "created_at": now,
                    "queued_at": now,
                    "due_at": None,
                    "next_attempt_at": None,
                    "failed_at": None,
                    "updated_at": now,
                }
                for i in range(start, min(start + BARE_BATCH, self.n))
            ]
            with db.engine.begin() as conn:
                conn.execute(stmt, rows)
        seconds = time.perf_counter() - started
        # Empty the table again: the fan-out starts from the same state.
        with db.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("TRUNCATE messages CASCADE"))
            else:
                conn.execute(text("DELETE FROM messages"))
        self.analyze()
        return self.n / seconds

    # -- 3. fan-out --------------------------------------------------------------

    def firing_row(self, broadcast_id: str):
        from sqlalchemy import select

        from messaging.extensions import db
        from messaging.models import BroadcastFiring

        db.session.rollback()
        f = BroadcastFiring.__table__
        return db.session.execute(
            select(f.c.id, f.c.status, f.c.total, f.c.cursor, f.c.messages, f.c.started_at, f.c.finished_at)
            .where(f.c.broadcast_id == broadcast_id)
            .execution_options(all_projects=True)
        ).first()

    def make_survey(self, client) -> str:
        """A one-question survey in four languages (each case reads one of them)."""
        survey = {
            "name": "Bench survey",
            "questions": [
                {
                    "id": "came",
                    "type": "select",
                    "text": {
                        "en": "Did you come?",
                        "fr": "Êtes-vous venue ?",
                        "sw": "Ulikuja?",
                        "pt": "Voce veio?",
                    },
                    "choices": [
                        {"en": "Yes", "fr": "Oui", "sw": "Ndiyo", "pt": "Sim"},
                        {"en": "No", "fr": "Non", "sw": "Hapana", "pt": "Nao"},
                    ],
                }
            ],
        }
        response = client.post(
            "/api/v1/surveys", json=survey, headers={"Authorization": f"Token {self.api_key}"}
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/v1/surveys: {response.status_code} {response.get_data()!r}")
        return response.get_json()["id"]

    def fan_out(self) -> dict:
        from rq import Queue

        from messaging.jobs import redis_conn

        worker = self.start_worker("default", scheduler=False, name="fanout")
        self.wait_workers(1, [worker])
        idle_hwm = proc_status_kb(worker.pid, "VmHWM") / 1024
        idle_cpu = proc_cpu_seconds(worker.pid)
        client = self.app.test_client()
        body = {"name": "Bench broadcast", "recipients": {"case_groups": [self.group_id]}}
        if self.args.survey:
            body["survey_id"] = self.make_survey(client)
        else:
            body["text"] = self.text
        try:
            t0 = time.perf_counter()
            response = client.post(
                "/api/v1/broadcasts", json=body, headers={"Authorization": f"Token {self.api_key}"}
            )
            t_api = time.perf_counter()
            if response.status_code != 201:
                raise RuntimeError(f"POST /api/v1/broadcasts: {response.status_code} {response.get_data()!r}")
            broadcast_id = response.get_json()["id"]
            t_snapshot = None
            deadline = t0 + self.args.timeout
            while True:
                row = self.firing_row(broadcast_id)
                now = time.perf_counter()
                if t_snapshot is None and row is not None and row.total is not None:
                    t_snapshot = now
                if row is not None and row.status in ("done", "cancelled"):
                    t_done = now
                    break
                if worker.poll() is not None:
                    raise RuntimeError(f"the fan-out worker exited; logs in {self.tmp}")
                if now > deadline:
                    raise RuntimeError(f"the firing is not done after {self.args.timeout} s: {row}")
                time.sleep(0.02)
            hwm = proc_status_kb(worker.pid, "VmHWM") / 1024
            rss_after = proc_status_kb(worker.pid, "VmRSS") / 1024
            job_cpu = proc_cpu_seconds(worker.pid) - idle_cpu
        finally:
            self.stop_worker(worker)
        done_line = re.search(
            rf"firing run .*firing_id={row.id} (\{{.*\}})", worker.log_path.read_text(errors="replace")
        )
        if done_line is None:
            raise RuntimeError(
                f"the firing job ran elsewhere: another worker is listening on {self.args.redis_url} "
                f"(queue bench-default); stop it. Our worker's log: {worker.log_path}"
            )
        jobs = Queue("bench-sms", connection=redis_conn()).count
        return {
            "broadcast_id": broadcast_id,
            "firing": row,
            "api": t_api - t0,
            "snapshot": (t_snapshot or t_done) - t0,
            "seconds": t_done - t0,
            "idle_hwm": idle_hwm,
            "hwm": hwm,
            "rss_after": rss_after,
            "cpu": job_cpu,
            "jobs": jobs,
            "stats": ast.literal_eval(done_line.group(1)),
        }

    def message_counts(self, firing_id: str) -> dict:
        from sqlalchemy import func, select

        from messaging.extensions import db
        from messaging.models import Message

        db.session.rollback()
        m = Message.__table__
        return dict(
            db.session.execute(
                select(m.c.status, func.count())
                .where(m.c.firing_id == firing_id)
                .group_by(m.c.status)
                .execution_options(all_projects=True)
            ).all()
        )

    # -- 4. send -----------------------------------------------------------------

    def send(self, firing_id: str, fake: FakeProcess, workers: int = 2) -> dict:
        from sqlalchemy import func, select

        from messaging.extensions import db
        from messaging.models import Message

        m = Message.__table__
        pending_q = (
            select(func.count())
            .where(m.c.firing_id == firing_id, m.c.status.in_(("queued", "sending")))
            .execution_options(all_projects=True)
        )
        t0 = time.perf_counter()
        procs = [
            self.start_worker("high,default,sms", scheduler=True, name=f"send{i}") for i in range(workers)
        ]
        cpu = 0.0
        try:
            self.wait_workers(workers, procs)
            t_ready = time.perf_counter()
            deadline = t0 + self.args.timeout
            while True:
                db.session.rollback()
                pending = db.session.execute(pending_q).scalar_one()
                if pending == 0:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{pending} messages still pending after {self.args.timeout} s")
                time.sleep(0.25)
            t_done = time.perf_counter()
        finally:
            for proc in procs:
                usage = self.stop_worker(proc)
                cpu += usage.ru_utime + usage.ru_stime
        return {
            "seconds": t_done - t0,
            "startup": t_ready - t0,
            "rate": self.n / max(t_done - t_ready, 1e-6),
            "cpu": cpu,
            "at_fake": fake.stats()["messages"],
            "counts": self.message_counts(firing_id),
        }

    # -- the whole run -----------------------------------------------------------

    def run(self) -> None:
        args = self.args
        self.text = TEXT_PLACEHOLDER if args.placeholders else TEXT
        print(
            f"== Broadcast: {self.n:,} recipients, database {self.dialect}, "
            f"{'a survey in four languages' if args.survey else 'text'} "
            f"{'with {case.name}' if args.placeholders else 'without placeholders'}",
            flush=True,
        )
        self.seed()
        fake = FakeProcess()
        try:
            self.configure(fake.url)
            bare = None if args.no_bare else self.bare_insert()
            if bare is not None:
                print(f"bare insert of {self.n:,} message rows done ({bare:,.0f} rows/s)", flush=True)
            f = self.fan_out()
            firing = f["firing"]
            counts = self.message_counts(firing.id)
            fanout_rate = self.n / f["seconds"]
            walk = f["seconds"] - f["snapshot"]
            print(
                f"firing {firing.status}: {firing.total:,} recipients, {firing.messages:,} messages, "
                f"rows by status {counts}, send jobs in the sms queue {f['jobs']:,} "
                f"(at least {-(-self.n // 100):,}, 100 messages a job); the job's stats {f['stats']}"
            )
            limit, ok = "", ""
            if self.dialect == "postgresql":
                limit = " (target <= 10 s on PostgreSQL)"
                ok = "OK" if f["seconds"] <= QUEUED_TARGET_SECONDS else "MISSED"
            print(f"send -> all rows written and queued:   {f['seconds']:8.2f} s{limit} {ok}")
            print(f"   API call (create + commit + enqueue): {f['api']:8.2f} s")
            print(f"   snapshot (INSERT ... SELECT), ~:      {f['snapshot'] - f['api']:8.2f} s")
            print(
                f"   walk ({f['stats'].get('batches', 0):,} batches):              "
                f"{walk:8.2f} s = {self.n / max(walk, 1e-6):,.0f} rows/s"
            )
            print(f"   fan-out worker CPU:                   {f['cpu']:8.2f} s (the database's not counted)")
            ok = "OK" if f["hwm"] < MEMORY_TARGET_MB else "MISSED"
            print(
                f"fan-out process peak RSS (VmHWM):      {f['hwm']:8.1f} MB (target < 200 MB) {ok}; "
                f"idle worker before the job {f['idle_hwm']:.1f} MB, "
                f"growth {f['hwm'] - f['idle_hwm']:.1f} MB; RSS after {f['rss_after']:.1f} MB"
            )
            print("   (a `flask worker --queues default` SimpleWorker running the firing job in-process;")
            print("    flat memory: compare with --recipients 1000000, whose peak should be the same)")
            print(f"fanout rows/s:      {fanout_rate:10,.0f}  (send -> done, snapshot included)")
            if bare is None:
                print("bare insert rows/s:    skipped (--no-bare)")
            else:
                print(f"bare insert rows/s: {bare:10,.0f}  (executemany, {BARE_BATCH} rows a transaction)")
                print(f"ratio:              {fanout_rate / bare:10.2f}  (fan-out / bare insert)")
            if args.skip_send:
                return
            s = self.send(firing.id, fake)
            print(
                f"all sent with 2 workers:               {s['seconds']:8.1f} s after the workers started "
                f"({s['startup']:.1f} s start-up), {s['rate']:,.0f} msg/s; "
                f"statuses {s['counts']}, at fake {s['at_fake']:,}; worker CPU {s['cpu']:.0f} s"
            )
            print(
                f"send -> all sent (fan-out, then the 2 workers; not overlapped): "
                f"{f['seconds'] + s['seconds']:8.1f} s  (gateway cap {len(POOL)} senders x 1000/s)"
            )
        finally:
            fake.stop()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipients", type=int, default=100_000)
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_PG_URL") or PG_DEFAULT,
        help=f"a database to WIPE and use (default BENCH_PG_URL or {PG_DEFAULT})",
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="a Redis DB to FLUSH")
    p.add_argument("--skip-send", action="store_true", help="only measure the fan-out")
    p.add_argument("--no-bare", action="store_true", help="skip the bare insert (and the ratio)")
    p.add_argument("--placeholders", action="store_true", help="text with {case.name} (one lookup a batch)")
    p.add_argument(
        "--survey",
        action="store_true",
        help="an SMS survey whose first question is in four languages (cases in en, fr, sw, pt)",
    )
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for each phase")
    args = p.parse_args(argv)
    if args.redis_url.rstrip("/").rsplit("/", 1)[-1] in ("13", "14", "15"):
        p.error("Redis DBs 13-15 belong to the tests; use 9 or 10")
    Bench(args).run()


if __name__ == "__main__":
    main()
