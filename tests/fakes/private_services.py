"""Private Redis and PostgreSQL servers that a test or a bench starts, crashes and starts again.

Rules:
- Never the machine's services: each instance listens on a free port on
  127.0.0.1 only, and PostgreSQL keeps its cluster in a temporary folder of
  its own (``initdb`` there, trust authentication, no password).
- ``crash()`` is a crash, not a shutdown: Redis gets SIGKILL (and, with no
  persistence, comes back empty, as a Redis restarted without its data);
  PostgreSQL gets ``pg_ctl stop -m immediate`` (no checkpoint: the next start
  runs crash recovery, as after a power cut of the database alone).
- ``start()`` after a crash starts it again on the same port (and the same
  data folder for PostgreSQL), so clients keep their URL and reconnect.
- ``cleanup()`` (also run at exit) stops what is still running and removes
  the PostgreSQL folder: nothing is left behind, even when a test fails.
- initdb and postgres refuse to run as root: as root they run as the
  ``postgres`` user (``runuser``), which owns the folder.
- The binaries are looked up on PATH, then in /usr/lib/postgresql/<version>/bin
  (where Debian's packages put them). A missing binary or user raises
  :class:`ServiceUnavailable` with the reason: tests turn it into
  ``pytest.skip``, benches print it.
- No pytest here: bench/ imports this module too.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from redis import Redis

HOST = "127.0.0.1"


class ServiceUnavailable(RuntimeError):
    """The binaries (or the user) needed to run a private service are missing."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(condition, what: str, seconds: float = 30.0) -> None:
    """Poll ``condition`` every 0.1 s until it is true; ``TimeoutError`` naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {seconds:g} s for {what}")
        time.sleep(0.1)


def require_binary(name: str) -> str:
    """The path of ``name``: on PATH, else in Debian's versioned PostgreSQL folder (the newest)."""
    path = shutil.which(name)
    if path is None:
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_of_folder)
        path = found[-1] if found else None
    if path is None:
        raise ServiceUnavailable(f"{name} is not on PATH (nor in /usr/lib/postgresql/*/bin)")
    return path


def _version_of_folder(path: str) -> tuple[int, ...]:
    version = path.split("/")[4]
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class PrivateRedis:
    """A ``redis-server`` on a free port, without persistence (a restart comes back empty)."""

    def __init__(self, port: int | None = None):
        self.binary = require_binary("redis-server")
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        atexit.register(self.cleanup)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start it (again, on the same port) and wait until it answers."""
        if self.running():
            return self
        self.proc = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", HOST),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._started, what=f"redis-server on port {self.port} to answer")
        return self

    def _started(self) -> bool:
        if self.proc.poll() is not None:  # e.g. the port was taken meanwhile
            raise RuntimeError(f"redis-server exited with {self.proc.returncode} (port {self.port})")
        return self.answers()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def answers(self) -> bool:
        try:
            with Redis(host=HOST, port=self.port, socket_connect_timeout=0.5) as redis:
                return bool(redis.ping())
        except Exception:
            return False

    def crash(self) -> None:
        """SIGKILL: no shutdown, nothing saved."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.crash()

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (``initdb`` in a temporary folder) on a free port."""

    superuser = "postgres"

    def __init__(self, port: int | None = None, database: str = "app"):
        self.initdb = require_binary("initdb")
        self.pg_ctl = require_binary("pg_ctl")
        require_binary("postgres")
        self.run_as = self._run_as()
        self.port = port or free_port()
        self.database = database
        self.folder = tempfile.mkdtemp(prefix="private-postgres-")
        self.data = os.path.join(self.folder, "data")
        self.log_path = os.path.join(self.folder, "postgres.log")
        self.initialised = False
        atexit.register(self.cleanup)

    @staticmethod
    def _run_as() -> list[str]:
        """The command prefix that runs PostgreSQL's tools as a user they accept."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServiceUnavailable("running as root and there is no 'postgres' user to run initdb") from exc
        runuser = shutil.which("runuser")
        if runuser is None:
            raise ServiceUnavailable("running as root and runuser is not on PATH")
        return [runuser, "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://{self.superuser}@{HOST}:{self.port}/{self.database}"

    def _tool(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*self.run_as, *args],
            cwd=self.folder,  # the postgres user may not enter the caller's folder
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
                f"{self.log_tail()}"
            )
        return result

    def log_tail(self, chars: int = 2000) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return "\npostgres.log: " + fh.read()[-chars:]
        except OSError:
            return ""

    def _initialise(self) -> None:
        if self.run_as:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._tool(
            self.initdb,
            *("-D", self.data, "-U", self.superuser, "-A", "trust"),
            *("-E", "UTF8", "--locale=C", "--no-sync"),
        )
        self.initialised = True

    def start(self) -> PrivatePostgres:
        """Start it (again, on the same port and data folder: crash recovery runs) and wait until
        it accepts connections; the first start makes the cluster and the database."""
        first = not self.initialised
        if first:
            self._initialise()
        options = " ".join(
            [
                f"-p {self.port}",
                f"-c listen_addresses={HOST}",
                f"-c unix_socket_directories={self.folder}",
                # Durable enough for a process crash (the kernel keeps what was written);
                # a throwaway cluster need not survive the machine's.
                "-c fsync=off",
                "-c max_connections=200",
            ]
        )
        self._tool(
            self.pg_ctl, "-D", self.data, "-l", self.log_path, "-o", options, "-w", "-t", "120", "start"
        )
        if first:
            self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host=HOST, port=self.port, user=self.superuser, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()

    def running(self) -> bool:
        if not self.initialised:
            return False
        return self._tool(self.pg_ctl, "-D", self.data, "status", check=False).returncode == 0

    def answers(self) -> bool:
        import psycopg2

        try:
            conn = psycopg2.connect(
                host=HOST, port=self.port, user=self.superuser, dbname=self.database, connect_timeout=1
            )
        except psycopg2.Error:
            return False
        conn.close()
        return True

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every backend is killed, nothing is checkpointed."""
        if self.running():
            self._tool(self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop")

    def cleanup(self) -> None:
        """Stop it if it runs and remove its folder."""
        if os.path.isdir(self.folder):
            try:
                self.crash()
            finally:
                shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class FakeTwilioProcess:
    """tests/fakes/twilio_server.py in its own process, with its command-line ``flags``
    (``--error-rate-500 0.05`` ...); ``messages()`` and ``stats()`` read what it received."""

    def __init__(self, *flags: str):
        import sys
        from pathlib import Path

        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("twilio_server.py")),
                "--port",
                str(self.port),
                *flags,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(self.stop)
        wait_until(self._answers, what="the fake Twilio to start", seconds=20)

    def _answers(self) -> bool:
        try:
            self.stats()
        except OSError:
            return False
        return True

    def _get(self, path: str):
        import json
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict:
        """``{"stats": request counts by outcome, "messages": how many it accepted}``."""
        return self._get("/_fake/stats")

    def messages(self) -> list[dict]:
        return self._get("/_fake/messages")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
