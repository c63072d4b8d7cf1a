"""Test harness: a real database (SQLite or PostgreSQL) and a real Redis.

- ``TEST_DATABASE_URL``: the database to test on (default: a SQLite file in a
  temporary folder). ``make test`` runs the suite once on each. The schema is
  built by the Alembic migrations, so they are tested too.
- ``TEST_REDIS_URL``: default ``redis://127.0.0.1:6379/15``; flushed around
  every test, so never point it at a Redis DB that holds anything you want.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("APP_ENV", "test")

_tmp = tempfile.mkdtemp(prefix="messaging-tests-")
DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_tmp}/test.sqlite3"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _check_redis() -> None:
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # a clear message beats 200 connection errors
        pytest.exit(f"Redis is not answering at {REDIS_URL} ({exc}). Start it: see README.", returncode=3)


def app_test_config() -> dict:
    return {
        "APP_ENV": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        # One cheap hash instead of scrypt's 90 ms (messaging.accounts.passwords); production keeps scrypt.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SERVER_NAME": None,
        "PUBLIC_BASE_URL": "",
        # The fakes (forwarding receivers, gateways) listen on loopback.
        "OUTBOUND_ALLOW_HOSTS": ["127.0.0.1"],
        # One POST at a time, so a receiver's scripted answers meet the records in a known order;
        # the tests of parallel sending set it higher.
        "FORWARDING_PARALLEL": 1,
    }


@pytest.fixture(scope="session")
def app():
    _check_redis()
    from messaging import create_app
    from messaging.extensions import db

    application = create_app(app_test_config())
    with application.app_context():
        _reset_schema(db)
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        db.session.remove()
    yield application


def _reset_schema(db) -> None:
    from messaging.db import dialect

    dialect.drop_everything(db.engine, db.metadata)


def _table_names(db) -> list[str]:
    return [t.name for t in reversed(db.metadata.sorted_tables)]


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty every table and the test Redis DB after each test."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    from messaging.extensions import db
    from messaging.lib import clock

    clock.set_now(None)
    with application.app_context():
        db.session.remove()
        from messaging.db import dialect

        dialect.empty_tables(db.engine, _table_names(db))
        from messaging.jobs import redis_conn

        redis_conn(application).flushdb()


@pytest.fixture
def ctx(app):
    """An app context with a clean session, for service-level tests."""
    from messaging.extensions import db

    with app.app_context():
        yield
        db.session.remove()


class ApiClient:
    """A Flask test client that sends the project's API token."""

    def __init__(self, client, key: str):
        self.client = client
        self.key = key

    def _headers(self, headers):
        merged = {"Authorization": f"Token {self.key}"}
        merged.update(headers or {})
        return merged

    def get(self, path, **kw):
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path, **kw):
        return self.client.post(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, path, **kw):
        return self.client.put(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, path, **kw):
        return self.client.patch(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, path, **kw):
        return self.client.delete(path, headers=self._headers(kw.pop("headers", None)), **kw)


class ProjectHandle:
    def __init__(self, project_id, slug, admin_email, password, key, app):
        self.id = project_id
        self.slug = slug
        self.admin_email = admin_email
        self.password = password
        self.key = key
        self.app = app

    def api(self) -> ApiClient:
        return ApiClient(self.app.test_client(), self.key)

    def scope(self):
        """Context manager: an app context scoped to this project."""
        from contextlib import contextmanager

        from messaging.db import tenancy
        from messaging.extensions import db

        @contextmanager
        def _scope():
            with self.app.app_context():
                tenancy.set_current_project(self.id)
                try:
                    yield
                finally:
                    db.session.remove()

        return _scope()


def make_project(app, slug: str, country: str = "KE", timezone: str = "Africa/Nairobi") -> ProjectHandle:
    from messaging.extensions import db
    from messaging.projects.setup import create_project

    email, password = f"admin@{slug}.example.org", "correct horse battery"
    with app.app_context():
        project, _admin, key = create_project(slug, email, password, None, country, timezone)
        db.session.commit()
        handle = ProjectHandle(project.id, slug, email, password, key, app)
        db.session.remove()
    return handle


@pytest.fixture
def project(app) -> ProjectHandle:
    return make_project(app, "alpha")


@pytest.fixture
def other_project(app) -> ProjectHandle:
    return make_project(app, "beta", country="UG", timezone="Africa/Kampala")


@pytest.fixture
def api(project) -> ApiClient:
    return project.api()


def csrf_token_from(html: str) -> str:
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


class WebClient:
    """A logged-in browser-like test client that sends CSRF tokens on posts."""

    def __init__(self, client):
        self.client = client

    def token(self) -> str:
        return csrf_token_from(self.client.get("/settings").get_data(as_text=True))

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, data=None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token())
        return self.client.post(path, data=data, **kw)


def login(app, email: str, password: str) -> WebClient:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = csrf_token_from(page)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return WebClient(client)


@pytest.fixture
def web(app, project) -> WebClient:
    return login(app, project.admin_email, project.password)


# --- jobs -------------------------------------------------------------------------


def _enqueue_due_scheduled(app) -> int:
    """Move scheduled jobs (retries, enqueue_in) to their queues now, as if due."""
    from rq.registry import ScheduledJobRegistry

    from messaging import jobs as queues

    moved = 0
    for q in queues.all_queues(app):
        registry = ScheduledJobRegistry(queue=q)
        for job_id in registry.get_job_ids():
            registry.remove(job_id)
            job = q.fetch_job(job_id)
            if job is not None:
                q.enqueue_job(job)
                moved += 1
    return moved


@pytest.fixture
def run_jobs(app):
    """Run queued jobs with a real RQ SimpleWorker in burst mode on real Redis.

    ``run_jobs(scheduled=True)`` also runs scheduled jobs (retries) at once,
    so tests exercise delays without sleeping through them.
    """
    from workers.worker import make_worker

    def _run(scheduled: bool = False, rounds: int = 10) -> int:
        total = 0
        with app.app_context():
            for _ in range(rounds):
                if scheduled:
                    _enqueue_due_scheduled(app)
                worker = make_worker(app)
                worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
                done = worker.jobs_performed
                total += done
                if not scheduled or not done:
                    break
        return total

    return _run


# --- servers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(app):
    """The app served over real HTTP on 127.0.0.1 in a thread."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()


def worker_env() -> dict:
    env = dict(os.environ)
    env.update(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "test-secret",
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "FLASK_APP": "wsgi.py",
            "OUTBOUND_ALLOW_HOSTS": "127.0.0.1",
        }
    )
    return env


@pytest.fixture
def worker_process(app):
    """A real ``flask worker`` process on the test database and Redis."""
    log_path = Path(_tmp) / f"worker-{time.time_ns()}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "worker"],
            cwd=ROOT,
            env=worker_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        proc.log_path = log_path
        yield proc
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the fake Twilio ---------------------------------------------------------------


@pytest.fixture
def fake(app):
    """A fake Twilio server, with the app's twilio client pointed at it."""
    from tests.fakes.twilio_server import FakeTwilio

    server = FakeTwilio.start(seed=7)
    saved = {k: app.config.get(k) for k in ("TWILIO_API_BASE_URL", "SMS_HTTP_TIMEOUT", "PUBLIC_BASE_URL")}
    app.config["TWILIO_API_BASE_URL"] = server.url
    app.config["SMS_HTTP_TIMEOUT"] = 5.0
    yield server
    app.config.update(saved)
    server.stop()


@pytest.fixture
def twilio_project(project, fake):
    """The project's gateway set to Twilio (the fake) with a pool of three numbers at 100/s."""
    from tests.factories import POOL
    from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

    response = project.api().put(
        "/api/v1/gateway",
        json={
            "kind": "twilio",
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN,
            "from_numbers": POOL,
            "mps": 100,
        },
    )
    assert response.status_code == 200, response.get_json()
    return project


@contextmanager
def recorded_queries(app):
    """The SQL statements run while the block runs."""
    from sqlalchemy import event

    from messaging.extensions import db

    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
