"""``flask worker`` rides through a Redis outage and stops only when asked.

A private ``redis-server`` on a free port is killed while the worker runs a job
(RQ's bookkeeping after the job then hits the dead connection, which made RQ
quit), then started again on the same port.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.job import Job

from tests.conftest import ROOT, free_port, worker_env


def start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    until(lambda: answers(port), what="redis-server to start")
    return proc


def answers(port: int) -> bool:
    try:
        with Redis(port=port, socket_connect_timeout=0.5) as redis:
            return redis.ping()
    except Exception:
        return False


def until(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds}s for {what}"
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def test_the_worker_waits_out_a_redis_outage_during_a_job_and_works_again(app, tmp_path):
    port = free_port()
    redis_proc = start_redis(port)
    log_path = Path(tmp_path) / "worker.log"
    env = worker_env()
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    with open(log_path, "wb") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        redis = Redis(port=port)
        until(lambda: redis.smembers("rq:workers"), what="the worker to register")
        running = Queue("default", connection=redis).enqueue("time.sleep", 2)
        until(lambda: running.get_status(refresh=True) == "started", what="the job to start")

        stop(redis_proc)  # the job finishes into a dead connection
        redis.close()
        time.sleep(4)
        assert worker.poll() is None, log_path.read_text()[-3000:]

        redis_proc = start_redis(port)
        redis = Redis(port=port)
        job = Queue("default", connection=redis).enqueue("os.getpid")
        until(
            lambda: Job.fetch(job.id, connection=redis).get_status() == "finished",
            what="a job after",
            seconds=60,
        )
        assert Job.fetch(job.id, connection=redis).return_value() == worker.pid
        redis.close()

        log = log_path.read_text()
        assert log.count("waiting for Redis to answer") == 1, log[-3000:]
        assert "Redis answers again" in log

        worker.send_signal(signal.SIGTERM)  # a warm shutdown still stops it
        assert worker.wait(timeout=30) == 0, log_path.read_text()[-3000:]
    finally:
        stop(worker)
        stop(redis_proc)


class RedisThatIsDown:
    def set(self, *args, **kwargs):
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("Connection refused")


def test_the_periodic_ticker_logs_an_outage_once_not_every_tick(caplog):
    from workers.periodic import Ticker

    ticker = Ticker(RedisThatIsDown(), interval=0.01)
    ticker.start()
    time.sleep(0.3)
    ticker.stop()
    ticker.join(timeout=5)
    failures = [r for r in caplog.records if "periodic tick failed" in r.getMessage()]
    assert len(failures) == 1
