"""Start-up shared by the benchmarks: a free port, the fake Twilio server in its own
process, and a fresh app (schema from the migrations, an empty Redis DB, a project)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, timeout: float = 30) -> None:
    """Wait until the app on 127.0.0.1:``port`` answers ``/healthz`` (gunicorn started by a bench)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("gunicorn did not start")


class FakeProcess:
    """A provider's fake (tests/fakes/<kind>_server.py, Twilio's by default) in its own process
    (its CPU is not ours)."""

    def __init__(self, *flags: str, kind: str = "twilio"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "fakes" / f"{kind}_server.py"),
                "--port",
                str(self.port),
                *flags,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the fake {kind} server did not start")

    def _get(self, path):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def stats(self):
        return self._get("/_fake/stats")

    def messages(self):
        return self._get("/_fake/messages")

    def reset(self):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.open(urllib.request.Request(self.url + "/_fake/reset", method="POST"), timeout=10).read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def worker_env_base(database_url: str, redis_url: str) -> dict:
    """The environment of the bench's own app and of the workers it starts."""
    return {
        "APP_ENV": "development",
        "SECRET_KEY": "bench-secret",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RQ_QUEUE_PREFIX": "bench-",
        "FLASK_APP": "wsgi.py",
        "PUBLIC_BASE_URL": "",
        # The fakes listen on loopback (Infobip's base URL is a setting, checked as a user's URL).
        "OUTBOUND_ALLOW_HOSTS": "127.0.0.1",
    }


def fresh_app(env_base: dict):
    """The app in a pushed context, on a wiped database and Redis DB, with one project.

    Returns ``(app, project, api_key)``.
    """
    os.environ.update(env_base)
    from flask_migrate import upgrade
    from sqlalchemy import text

    from messaging import create_app
    from messaging.extensions import db
    from messaging.jobs import redis_conn
    from messaging.projects.setup import create_project

    app = create_app()
    app.app_context().push()
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(directory=str(ROOT / "migrations"))
    redis_conn().flushdb()
    project, _admin, key = create_project("bench", "bench@example.org", "bench-password")
    db.session.commit()
    return app, project, key


# Each provider's gateway settings against its fake at a URL, and the environment that points
# its client there (Infobip takes its base URL as a setting).
def provider_settings(kind: str, fake_url: str) -> tuple[dict, dict]:
    """``(gateway values, environment)`` of a ``kind`` gateway whose API is the fake at ``fake_url``."""
    if kind == "twilio":
        from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

        return {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN}, {
            "TWILIO_API_BASE_URL": fake_url
        }
    if kind == "africastalking":
        from tests.fakes.africastalking_server import DEFAULT_API_KEY, DEFAULT_USERNAME

        return {"username": DEFAULT_USERNAME, "api_key": DEFAULT_API_KEY, "sender_id": "BENCH"}, {
            "AFRICASTALKING_API_BASE_URL": fake_url
        }
    if kind == "vonage":
        from tests.fakes.vonage_server import DEFAULT_API_KEY, DEFAULT_API_SECRET

        return {"api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_API_SECRET}, {
            "VONAGE_API_BASE_URL": fake_url
        }
    if kind == "infobip":
        from tests.fakes.infobip_server import DEFAULT_API_KEY

        return {"base_url": fake_url, "api_key": DEFAULT_API_KEY, "sender": "BENCH"}, {}
    if kind == "telerivet":
        from tests.fakes.telerivet_server import DEFAULT_API_KEY, DEFAULT_PROJECT_ID

        return {"api_key": DEFAULT_API_KEY, "project_id": DEFAULT_PROJECT_ID}, {
            "TELERIVET_API_BASE_URL": fake_url
        }
    raise ValueError(f"no fake for {kind}")


def use_fake_gateway(app, project_id: int, fake_url: str, pool, mps: int, kind: str = "twilio") -> dict:
    """Give the project a ``kind`` gateway whose API is the fake server at ``fake_url``; returns
    the environment that points the workers' clients at it."""
    from messaging.db.tenancy import project_scope
    from messaging.extensions import db
    from messaging.gateways import settings as gateway_settings

    values, env = provider_settings(kind, fake_url)
    app.config.update(env)
    with project_scope(project_id):
        gateway_settings.save_gateway(
            project_id,
            gateway_settings.GatewayInput(kind=kind, values=values, from_numbers=list(pool), mps=mps),
        )
        db.session.commit()
    return env


_RECEIVER_CODE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from tests.fakes.http_receiver import Receiver


class Stamped(list):
    # The receiver appends one entry per request; stamp its arrival (wall clock) as it does.
    def append(self, entry):
        entry["at"] = time.time()
        super().append(entry)


rx = Receiver.start()
rx._requests = Stamped()
latency = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
if latency:
    # Every answer waits as a distant receiver's would (the network's round trip and its own work).
    answer = rx._next_answer
    rx._next_answer = lambda: (time.sleep(latency), answer())[1]
print(rx.url, flush=True)
for line in sys.stdin:
    if line.strip() != "dump":
        break
    got = [{"at": r["at"], "path": r["path"], "json": r["json"]} for r in rx.requests]
    print(json.dumps(got), flush=True)
rx.stop()
"""


class ReceiverProcess:
    """tests/fakes/http_receiver.py's ``Receiver`` (answering 200, after ``latency_ms``) in its own
    process, so its CPU is not the load's; ``received()`` returns every request so far: path, JSON
    body and arrival time (``time.time()``)."""

    def __init__(self, latency_ms: float = 0.0):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _RECEIVER_CODE, str(ROOT), str(latency_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the HTTP receiver did not start")

    def received(self) -> list[dict]:
        self.proc.stdin.write("dump\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)


def seed_mothers(
    project_id: int, n: int, properties, *, closed=lambda i: False, batch: int = 5000, indexed: bool = False
) -> None:
    """N ``mother`` cases with valid numbers (Core bulk insert, ``batch`` a statement): case ``i``
    gets ``properties(i)`` and is closed when ``closed(i)``; with ``indexed``, an ``indexed_on``
    a microsecond apart (as the app stamps them); then ANALYZE on PostgreSQL."""
    from datetime import timedelta

    from sqlalchemy import insert, text

    from messaging.extensions import db
    from messaging.lib import clock
    from messaging.models import Case
    from messaging.models.base import new_id

    now = clock.now()
    for start in range(0, n, batch):
        with db.engine.begin() as conn:
            conn.execute(
                insert(Case.__table__),
                [
                    {
                        "project_id": project_id,
                        "case_id": new_id(),
                        "case_type": "mother",
                        "name": f"Mother {i}",
                        "phone_raw": f"+2547{12 + i // 1_000_000:02d}{i % 1_000_000:06d}",
                        "phone_number": f"+2547{12 + i // 1_000_000:02d}{i % 1_000_000:06d}",
                        "phone_invalid": False,
                        "closed": closed(i),
                        "deleted": False,
                        "opened_on": now,
                        "modified_on": now,
                        "properties": properties(i),
                        "indexed_on": now + timedelta(microseconds=i) if indexed else None,
                    }
                    for i in range(start, min(start + batch, n))
                ],
            )
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE cases"))
