"""``make run``'s script (``scripts/run.sh``) rides through a dying worker.

Rules checked, on the real script with its real web server and worker:
- a worker that dies (here SIGKILL) is started again, and the script prints a line saying so;
- the web server keeps answering meanwhile: it is never stopped because the worker stopped;
- SIGTERM to the script, or a Ctrl-C (SIGINT to the terminal's whole process group), stops
  every process it started (web server, worker, the worker's scheduler, the supervisor) within
  seconds, leaving none behind; the worker gets one stop signal (a warm shutdown, never RQ's
  cold one) and is not started again on the way out.

The script runs on a SQLite file of its own (on both suites) and the suite's Redis DB,
which is flushed before and after.
"""

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker

from tests.conftest import REDIS_URL, ROOT, free_port, worker_env

STARTUP_SECONDS = 40  # database upgrade, demo data, gunicorn and the worker, on a busy 2-core machine


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    pgid: int
    state: str
    args: str


def processes() -> dict[int, Process]:
    """Every process on the machine, read from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # it ended while we looked
            continue
        found[int(entry)] = Process(int(entry), int(fields[1]), int(fields[2]), fields[0], args)
    return found


def descendants(root: int, table: dict[int, Process]) -> list[Process]:
    children: dict[int, list[Process]] = {}
    for process in table.values():
        children.setdefault(process.ppid, []).append(process)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def supervised_worker(script_pid: int) -> Process | None:
    """The ``flask worker`` started by the script's supervisor (not the scheduler it forks)."""
    tree = descendants(script_pid, processes())
    supervisors = {p.pid for p in tree if "supervise.sh" in p.args}
    workers = [p for p in tree if p.ppid in supervisors and "flask worker" in p.args and p.state != "Z"]
    return workers[0] if workers else None


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status
    except OSError:
        return 0


def wait_for(predicate, seconds: float, what: str, log: Path, port: int | None = None):
    """Poll ``predicate`` until it returns something truthy; with ``port``, the web server must
    answer /healthz at every poll."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port is not None:
            assert healthz(port) == 200, f"/healthz stopped answering while waiting for {what}\n{tail(log)}"
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}\n{tail(log)}")


def tail(log: Path, lines: int = 40) -> str:
    """The log's last lines, without the access lines of our own /healthz polls."""
    kept = [line for line in log.read_text(errors="replace").splitlines() if "GET /healthz" not in line]
    return "\n".join(kept[-lines:])


def alive_in(groups: set[int]) -> list[Process]:
    return [p for p in processes().values() if p.pgid in groups and p.state != "Z"]


def registered_worker_pids(redis: Redis) -> set[int]:
    return {worker.pid for worker in Worker.all(connection=redis)}


def stop_with_sigterm(script: subprocess.Popen) -> int:
    script.send_signal(signal.SIGTERM)
    return 128 + signal.SIGTERM


def stop_with_ctrl_c(script: subprocess.Popen) -> int:
    os.killpg(script.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
    return 128 + signal.SIGINT


def start_script(tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    """scripts/run.sh in a session (and process group) of its own, as a terminal would run it."""
    port, log = free_port(), tmp_path / "run.log"
    env = worker_env()
    env.update(
        {
            "PORT": str(port),
            "DATABASE_URL": f"sqlite:///{tmp_path}/run.db",
            "APP_ENV": "development",
            "DEMO_CASES": "20",
        }
    )
    with open(log, "wb") as out:
        script = subprocess.Popen(
            ["./scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return script, port, log


@pytest.mark.parametrize("stop", [stop_with_sigterm, stop_with_ctrl_c])
def test_run_script_restarts_a_killed_worker_and_keeps_serving(tmp_path, stop):
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    script, port, log = start_script(tmp_path)
    groups = {script.pid}  # the script's process group; the web server and the worker have their own
    try:
        wait_for(lambda: healthz(port) == 200, STARTUP_SECONDS, "the web server", log)
        first = wait_for(lambda: supervised_worker(script.pid), 10, "the worker", log, port)
        groups |= {p.pgid for p in descendants(script.pid, processes())}
        wait_for(lambda: first.pid in registered_worker_pids(redis), 20, "the worker to register", log, port)

        os.kill(first.pid, signal.SIGKILL)

        restarted = wait_for(
            lambda: (w := supervised_worker(script.pid)) and w.pid != first.pid and w,
            15,
            "a new worker",
            log,
            port,
        )
        groups |= {p.pgid for p in descendants(script.pid, processes())}
        wait_for(
            lambda: restarted.pid in registered_worker_pids(redis),
            20,
            "the new worker to register",
            log,
            port,
        )
        assert f"worker (pid {first.pid}) was killed by SIGKILL; starting it again in 1 s" in log.read_text()
        assert script.poll() is None
        assert healthz(port) == 200

        started = {p.pid for p in descendants(script.pid, processes())}
        assert len(started) >= 5  # the supervisor, the worker, gunicorn and its two workers
        expected_code = stop(script)
        assert script.wait(timeout=20) == expected_code, tail(log)
        wait_for(lambda: not alive_in(groups), 5, "every process of the script to end", log)
        assert not [p for p in processes().values() if p.pid in started and p.state != "Z"]
        assert healthz(port) == 0
        output = log.read_text()
        assert "Stopping web server and worker..." in output
        assert f"[PID {restarted.pid}]: warm shut down requested" in output
        assert "cold shut down" not in output  # what a second stop signal would do
        assert output.count("starting it again") == 1
    finally:
        stop_for_good(script, groups)
        redis.flushdb()


def stop_for_good(script: subprocess.Popen, groups: set[int]) -> None:
    """After a failure too: the script's own cleanup first, then SIGKILL to whatever is left."""
    groups |= {p.pgid for p in descendants(script.pid, processes())}  # while the tree is whole
    if script.poll() is None:
        script.terminate()
        try:
            script.wait(timeout=15)
        except subprocess.TimeoutExpired:
            script.kill()
            script.wait()
    for _ in range(3):  # an orphaned supervisor may start one more worker meanwhile, in a new group
        table = processes()
        leftovers = [p for p in table.values() if p.pgid in groups and p.state != "Z"]
        for process in leftovers + [d for p in leftovers for d in descendants(p.pid, table)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        time.sleep(0.2)
