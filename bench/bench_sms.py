"""SMS pipeline benchmarks: throughput, rate accuracy, faults. Prints its figures.

    .venv/bin/python bench/bench_sms.py              # quick (about 2-3 minutes)
    .venv/bin/python bench/bench_sms.py --full       # 10,000 messages per part
    .venv/bin/python bench/bench_sms.py --only faults

It runs the real thing: a fake Twilio server in its own process, real
``flask worker`` processes, the real twilio client, Redis, and a database
(a temporary SQLite file unless ``--database-url``). It FLUSHES the Redis DB
given by ``--redis-url`` (default DB 10).

1. Throughput: an unthrottled fake server; messages/s through the whole
   pipeline (queued rows -> worker -> Twilio -> sid recorded) with 1 and 2
   workers, beside a bare loop calling the same twilio client against the same
   server; the ratio per worker, and the worker's own CPU per message.
2. Rate accuracy: 3 senders at 10/s each for 30 s (2 workers): the measured
   rate of each sender and its worst second (any 1-s window).
3. Faults: the fake fails 20% with 500, 10% with 429 and 3% by hanging past
   the client timeout, while a worker is SIGKILLed three times: how many were
   sent, failed, duplicated and lost.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import FakeProcess, fresh_app, use_fake_gateway, worker_env_base  # noqa: E402

from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN  # noqa: E402

POOL = ["+15005550006", "+15005550007", "+15005550008"]


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="bench-sms-")
        self.database_url = args.database_url or f"sqlite:///{self.tmp}/bench.sqlite3"
        self.env_base = worker_env_base(self.database_url, args.redis_url)
        self.app, project, _key = fresh_app(self.env_base)
        self.project_id = project.id
        self.kind = args.provider

    # -- helpers ---------------------------------------------------------------

    def configure(self, fake_url: str, mps: int, pool=POOL, **env):
        self.fake_url = fake_url
        client_env = use_fake_gateway(self.app, self.project_id, fake_url, pool, mps, kind=self.kind)
        self.worker_env = dict(os.environ, **self.env_base, **client_env, **env)

    def fake(self, *flags: str) -> FakeProcess:
        return FakeProcess(*flags, kind=self.kind)

    def clear(self):
        from sqlalchemy import text

        from messaging.extensions import db
        from messaging.jobs import redis_conn

        db.session.execute(text("DELETE FROM messages"))
        db.session.commit()
        redis_conn().flushdb()

    def queue(self, rows):
        from messaging.db.tenancy import project_scope
        from messaging.sms import outbox

        with project_scope(self.project_id):
            return outbox.queue_messages(self.project_id, rows)

    def start_worker(self, burst: bool, scheduler: bool = False, queues: str = "sms"):
        cmd = [sys.executable, "-m", "flask", "worker", "--queues", queues]
        if burst:
            cmd.append("--burst")
        if not scheduler:
            cmd.append("--no-scheduler")
        log = open(Path(self.tmp) / f"worker-{time.time_ns()}.log", "wb")
        return subprocess.Popen(cmd, cwd=ROOT, env=self.worker_env, stdout=log, stderr=subprocess.STDOUT)

    def sending_window(self) -> float:
        """Seconds from the first message claimed to the last one recorded as sent."""
        from sqlalchemy import func, select

        from messaging.extensions import db
        from messaging.models import Message

        db.session.rollback()
        window = select(func.min(Message.claimed_at), func.max(Message.sent_at))
        first, last = db.session.execute(window).one()
        return max((last - first).total_seconds(), 1e-6)

    def status_counts(self) -> Counter:
        from sqlalchemy import func, select

        from messaging.extensions import db
        from messaging.models import Message

        db.session.rollback()
        rows = db.session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
        return Counter(dict(rows))

    # -- 1. throughput -----------------------------------------------------------

    def bare_loop(self, url: str, n: int) -> float:
        if self.kind != "twilio":
            return self.bare_gateway_loop(n)
        from messaging.gateways.twilio import twilio_client

        # The very client the pipeline uses (same keep-alive session and settings).
        client = twilio_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
        client.messages.create(to="+254700000000", from_=POOL[0], body="warm up")
        started = time.perf_counter()
        for i in range(n):
            client.messages.create(to=f"+2547{i:08d}", from_=POOL[i % 3], body=f"bare {i}")
        return n / (time.perf_counter() - started)

    def bare_gateway_loop(self, n: int) -> float:
        """A loop of the provider module's own client (its kept-alive session, its request and
        answer handling: what the pipeline calls), straight to the fake: msg/s."""
        from messaging.db.tenancy import project_scope
        from messaging.gateways.settings import build_gateway, gateway_config

        with project_scope(self.project_id):
            gateway = build_gateway(gateway_config(self.project_id))
        gateway.send("+254700000000", "warm up", None, None)
        started = time.perf_counter()
        for i in range(n):
            gateway.send(f"+2547{i:08d}", f"bare {i}", None, None)
        return n / (time.perf_counter() - started)

    def bare_loops_parallel(self, url: str, n: int, procs: int) -> float:
        """``procs`` bare loops at once, each in its own process (as the workers are): total msg/s.
        Twilio's loop calls its client directly; the others call the provider module's send."""
        if self.kind == "twilio":
            client = f"""
from messaging.gateways.twilio import twilio_client
client = twilio_client({DEFAULT_ACCOUNT_SID!r}, {DEFAULT_AUTH_TOKEN!r})
def send(i, body):
    client.messages.create(to=f"+2548{{i:08d}}", from_={POOL!r}[i % 3], body=body)
"""
        else:
            client = f"""
from messaging.db.tenancy import project_scope
from messaging.gateways.settings import build_gateway, gateway_config
with project_scope({self.project_id}):
    gateway = build_gateway(gateway_config({self.project_id}))
def send(i, body):
    gateway.send(f"+2548{{i:08d}}", body, None, None)
"""
        code = f"""
import sys, time
from messaging import create_app
app = create_app()
with app.app_context():
{textwrap.indent(client, "    ")}
    send(0, "warm up")
    start_at = float(sys.argv[1])
    time.sleep(max(0.0, start_at - time.time()))
    for i in range(int(sys.argv[2])):
        send(i, f"bare {{i}}")
    print(time.time() - start_at)
"""
        start_at = time.time() + 3.0  # after every process has started and warmed up
        share = n // procs
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(start_at), str(share)],
                cwd=ROOT,
                env=self.worker_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(procs)
        ]
        elapsed = max(float(run.communicate()[0].strip().splitlines()[-1]) for run in runs)
        return share * procs / elapsed

    def run_workers_burst(self, count: int) -> tuple[float, float]:
        """Run ``count`` burst workers to the end; (wall seconds, total CPU seconds of the workers)."""
        started = time.perf_counter()
        procs = [self.start_worker(burst=True) for _ in range(count)]
        cpu = 0.0
        for proc in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu += usage.ru_utime + usage.ru_stime
        return time.perf_counter() - started, cpu

    def throughput(self, n: int, rounds: int = 5):
        print(
            f"\n== Throughput through {self.kind} ({n} messages, unthrottled fake server, "
            f"database {self.database_url.split(':', 1)[0]}, {os.cpu_count()} CPUs)"
        )
        print(
            "   Each pipeline run is paired with a bare loop run just before it, and the ratio is "
            f"taken per pair ({rounds} rounds; the median is the figure): the machine's speed drifts "
            "between runs."
        )
        fake = self.fake()
        try:
            self.configure(fake.url, mps=10_000)  # unthrottled: above what the fakes and the machine can do
            self.bare_loop(fake.url, 200)  # warm-up
            results = {}
            for workers in (1, 2):
                # Start-up CPU of this many worker processes (imports, connections), measured
                # on an empty queue and taken off each run's CPU per message.
                _idle_wall, idle_cpu = self.run_workers_burst(workers)
                idle_cpu /= workers
                ratios, parallel_ratios, rates, cpus, bares = [], [], [], [], []
                for _ in range(rounds):
                    fake.reset()
                    bare = self.bare_loop(fake.url, n)
                    parallel = self.bare_loops_parallel(fake.url, n, workers) if workers > 1 else bare
                    self.clear()
                    fake.reset()
                    t0 = time.perf_counter()
                    result = self.queue(
                        {"phone": f"+2547{i:08d}", "body": f"through {i}", "case_id": None} for i in range(n)
                    )
                    queue_rate = n / (time.perf_counter() - t0)
                    _wall, cpu = self.run_workers_burst(workers)
                    counts = self.status_counts()
                    sent = counts.get("sent", 0)
                    at_fake = fake.stats()["messages"]
                    # From the first claim to the last sid recorded (the rows' own times): the
                    # workers' start-up, which drifts with the machine, stays out of the figure.
                    rate = sent / self.sending_window()
                    cpu_per = (cpu - workers * idle_cpu) / max(sent, 1) * 1000
                    ratios.append(rate / workers / bare)
                    parallel_ratios.append(rate / parallel)
                    rates.append(rate)
                    cpus.append(cpu_per)
                    bares.append(bare)
                    print(
                        f"   {workers} worker(s): bare loop {bare:5.0f} msg/s, pipeline {rate:5.0f} msg/s "
                        f"(sent {sent}/{n}, at fake {at_fake}; queueing {queue_rate:.0f} rows/s, "
                        f"{result.jobs} jobs), per worker / bare {rate / workers / bare:.2f}, "
                        f"worker CPU {cpu_per:.2f} ms/msg"
                        + (
                            f"; {workers} bare loops at once {parallel:.0f} msg/s, pipeline / them "
                            f"{rate / parallel:.2f}"
                            if workers > 1
                            else ""
                        )
                    )
                median = statistics.median(ratios)
                results[workers] = statistics.median(rates)
                print(
                    f"pipeline, {workers} worker(s):  {statistics.median(rates):6.0f} msg/s beside a bare "
                    f"loop of {statistics.median(bares):.0f} msg/s; per worker / bare loop {median:.2f} "
                    f"(target >= 0.7); worker CPU {statistics.median(cpus):.2f} ms per message"
                )
                if workers > 1:
                    print(
                        f"   {workers} workers beside {workers} bare loops running at once (each in its own "
                        "process, sharing the machine as the workers do): "
                        f"{statistics.median(parallel_ratios):.2f} (target >= 0.7)"
                    )
            return results
        finally:
            fake.stop()

    # -- 2. rate accuracy ----------------------------------------------------------

    def rate_accuracy(self, seconds: int, mps: int = 10):
        from messaging.gateways.base import pick_sender

        print(f"\n== Rate accuracy (3 senders at {mps}/s for {seconds} s, 2 workers)")
        fake = self.fake()
        try:
            self.configure(fake.url, mps=mps)
            self.clear()
            per_sender = mps * seconds
            phones: dict[str, list[str]] = {s: [] for s in POOL}
            i = 0
            while min(len(v) for v in phones.values()) < per_sender:
                phone = f"+2547{i:08d}"
                bucket = phones[pick_sender(phone, POOL)]
                if len(bucket) < per_sender:
                    bucket.append(phone)
                i += 1
            rows = [{"phone": p, "body": f"rate {p}"} for bucket in phones.values() for p in bucket]
            rows.sort(key=lambda r: r["phone"])
            self.queue(rows)
            wall, _ = self.run_workers_burst(2)
            msgs = fake.messages()
            print(f"sent {len(msgs)} of {len(rows)} in {wall:.1f} s")
            for sender in POOL:
                times = sorted(m["received_at"] for m in msgs if m["from"] == sender)
                span = times[-1] - times[0] if len(times) > 1 else 0
                rate = (len(times) - 1) / span if span else float("nan")
                print(
                    f"  {sender}: {len(times)} messages, measured {rate:5.2f}/s, "
                    f"worst second {worst_second(times)} (limit {mps})"
                )
            allt = sorted(m["received_at"] for m in msgs)
            print(f"  all senders: worst second {worst_second(allt)} (limit {3 * mps})")
        finally:
            fake.stop()

    # -- 3. faults -----------------------------------------------------------------

    def faults(self, n: int, kills: int = 3):
        print(
            f"\n== Faults through {self.kind} ({n} messages; fake: 20% 500, 10% 429, "
            f"3% hang past the timeout; {kills} SIGKILLs)"
        )
        fake = self.fake(
            "--error-rate-500",
            "0.2",
            "--error-rate-429",
            "0.1",
            "--hang-rate",
            "0.03",
            "--hang-seconds",
            "3",
            "--seed",
            "5",
        )
        try:
            self.configure(
                fake.url,
                mps=1000,
                SMS_HTTP_TIMEOUT="1",
                SMS_RETRY_DELAYS="1,2,4",
                SMS_SENDING_TIMEOUT="8",
                SMS_JOB_STALE_SECONDS="20",
                SMS_SWEEP_GRACE="3",
                SMS_UNKNOWN_CHECK_DELAY="5",
            )
            self.clear()
            self.queue({"phone": f"+2547{i:08d}", "body": f"fault {i}"} for i in range(n))
            started = time.time()
            workers = [self.start_worker(burst=False, scheduler=True, queues="high,sms") for _ in range(2)]
            killed = 0
            deadline = started + self.args.fault_timeout
            next_kill = None  # the first kill once sending is under way
            while time.time() < deadline:
                counts = self.status_counts()
                pending = counts.get("queued", 0) + counts.get("sending", 0)
                if next_kill is None and pending < n - 50:
                    next_kill = time.time() + 0.5
                if killed < kills and next_kill is not None and time.time() >= next_kill:
                    index = killed % 2
                    os.kill(workers[index].pid, signal.SIGKILL)
                    workers[index].wait()
                    killed += 1
                    workers[index] = self.start_worker(burst=False, scheduler=True, queues="high,sms")
                    print(f"  t={time.time() - started:5.1f}s SIGKILL #{killed} (pending {pending})")
                    next_kill = time.time() + 3.0
                if pending == 0 and killed >= kills:
                    break
                time.sleep(0.5)
            elapsed = time.time() - started
            for proc in workers:
                proc.terminate()
            for proc in workers:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.report_faults(fake, n, killed, elapsed)
        finally:
            fake.stop()

    def report_faults(self, fake, n, killed, elapsed):
        from sqlalchemy import select

        from messaging.extensions import db
        from messaging.models import Message

        db.session.rollback()
        rows = db.session.execute(
            select(Message.id, Message.body, Message.status, Message.error_code, Message.attempts)
        ).all()
        at_fake = Counter(m["body"] for m in fake.messages())
        statuses = Counter(r.status for r in rows)
        sent = [r for r in rows if r.status in ("sent", "delivered")]
        failed = [r for r in rows if r.status == "failed"]
        pending = [r for r in rows if r.status in ("queued", "sending")]
        duplicated = sum(c - 1 for c in at_fake.values() if c > 1)
        sent_missing = sum(1 for r in sent if at_fake[r.body] == 0)
        failed_but_there = sum(1 for r in failed if at_fake[r.body] > 0)
        stats = fake.stats()["stats"]
        print(f"finished in {elapsed:.0f} s; statuses {dict(statuses)}")
        print(f"fake server: {dict(sorted(stats.items()))}")
        print(f"sent (recorded, and at the gateway): {len(sent) - sent_missing}")
        print(f"failed (with a reason):        {len(failed)} {dict(Counter(r.error_code for r in failed))}")
        print(f"   of which at the gateway anyway: {failed_but_there}")
        print(f"duplicated at the gateway:     {duplicated}  (SIGKILLs: {killed}; target <= kills)")
        print(
            f"lost (never settled, or 'sent' but not at the gateway): {len(pending) + sent_missing}  "
            "(target 0)"
        )
        print(f"attempts: {dict(sorted(Counter(r.attempts for r in rows).items()))}")
        twice = [r for r in rows if at_fake[r.body] > 1]
        for r in twice[:10]:
            print(
                f"   at the gateway {at_fake[r.body]} times: message {r.id} {r.status} "
                f"{r.error_code} attempts {r.attempts}"
            )


def worst_second(times: list[float]) -> int:
    times = sorted(times)
    worst, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="10,000 messages for throughput and faults")
    p.add_argument("--only", choices=["throughput", "rate", "faults"])
    p.add_argument("--messages", type=int, help="messages for throughput (default 3,000; 10,000 with --full)")
    p.add_argument("--rounds", type=int, default=5, help="paired throughput runs (the median is the figure)")
    p.add_argument("--fault-messages", type=int, help="default 2,000; 10,000 with --full")
    p.add_argument("--rate-seconds", type=int, default=30)
    p.add_argument("--fault-timeout", type=float, default=300.0)
    p.add_argument("--database-url", default="")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    p.add_argument(
        "--provider",
        default="twilio",
        choices=["twilio", "africastalking", "vonage", "infobip", "telerivet", "all"],
        help="the gateway and its fake (all: each in turn; rate accuracy: the kinds with number pools)",
    )
    args = p.parse_args(argv)
    if args.provider == "all":
        for kind in ("twilio", "africastalking", "vonage", "infobip", "telerivet"):
            run(argparse.Namespace(**{**vars(args), "provider": kind}))
        return
    run(args)


def run(args):
    bench = Bench(args)
    if args.only in (None, "throughput"):
        bench.throughput(args.messages or (10_000 if args.full else 3_000), args.rounds)
    if args.only in (None, "rate") and args.provider in ("twilio", "vonage"):  # the kinds with number pools
        bench.rate_accuracy(args.rate_seconds)
    if args.only in (None, "faults"):
        bench.faults(args.fault_messages or (10_000 if args.full else 2_000))


if __name__ == "__main__":
    main()
