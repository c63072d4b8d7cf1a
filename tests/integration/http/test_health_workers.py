"""GET /healthz/workers and the dashboard's sending section: live workers, RQ's scheduler and the
queued messages due now, with 503 when sending is stalled or a service does not answer."""

import time
from datetime import datetime, timedelta

import pytest
from redis import Redis
from rq import Queue, Worker
from sqlalchemy import update

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Message
from tests.conftest import REDIS_URL, app_test_config, login
from tests.factories import send

T0 = datetime(2026, 3, 2, 9, 0, 0)


def _health(app):
    response = app.test_client().get("/healthz/workers")
    return response.status_code, response.get_json()


def _registered_worker(app, queue_names=None, name="registered-worker"):
    """A worker registered in RQ's registry with its pulse beating (no process behind it), on the
    app's ``sms`` queue unless ``queue_names`` (full Redis names) are given."""
    from messaging.jobs import mark_worker_alive, queue

    redis = Redis.from_url(REDIS_URL)  # RQ raises the socket timeout of the connection a Worker gets
    names = queue_names or [queue("sms", app).name]
    worker = Worker([Queue(n, connection=redis) for n in names], name=name, connection=redis)
    worker.register_birth()
    mark_worker_alive(redis, name)
    return worker


def _wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_without_a_worker_it_says_none_is_alive_and_answers_503_stalled(app):
    status, body = _health(app)
    assert status == 503
    assert body["status"] == "stalled"
    assert body["workers"] == {"alive": 0, "status": "ok"}
    assert body["scheduler"] == {"running": False, "status": "ok"}
    assert body["messages"]["due"] == 0
    assert body["messages"]["oldest_due_seconds"] is None


def test_a_running_flask_worker_is_alive_once_with_its_scheduler(app, worker_process):
    assert _wait_for(lambda: _health(app)[0] == 200), worker_process.log_path.read_text()[-2000:]
    status, body = _health(app)
    assert body["status"] == "ok"
    # One worker listening on four queues counts once.
    assert body["workers"]["alive"] == 1
    assert _wait_for(lambda: _health(app)[1]["scheduler"]["running"] is True)
    assert body["messages"] == {
        "due": 0,
        "oldest_due_seconds": None,
        "max_due_seconds": 300.0,
        "status": "ok",
    }


def test_the_scheduler_is_not_running_while_one_queue_has_no_lock(app):
    from rq.scheduler import RQScheduler

    from messaging.jobs import QUEUE_NAMES, queue, redis_conn

    redis = redis_conn(app)
    _registered_worker(app)
    for name in QUEUE_NAMES[1:]:
        redis.set(RQScheduler.get_locking_key(queue(name, app).name), "a-scheduler", ex=60)
    assert _health(app)[1]["scheduler"]["running"] is False
    redis.set(RQScheduler.get_locking_key(queue(QUEUE_NAMES[0], app).name), "a-scheduler", ex=60)
    assert _health(app)[1]["scheduler"]["running"] is True


def test_only_workers_of_this_apps_queues_whose_pulse_beats_are_alive(app):
    from messaging import create_app
    from messaging.jobs import ALIVE_KEY, queue, redis_conn

    _registered_worker(app, queue_names=["otherapp-sms", "otherapp-default"], name="other-app")
    assert _health(app)[1]["workers"]["alive"] == 0
    # The app whose RQ_QUEUE_PREFIX names those queues counts it.
    other_app = create_app({**app_test_config(), "RQ_QUEUE_PREFIX": "otherapp-"})
    assert _health(other_app)[1]["workers"]["alive"] == 1

    busy = _registered_worker(app, queue_names=[queue("sms", app).name, queue("low", app).name], name="busy")
    busy.set_state("busy")
    status, body = _health(app)
    assert (status, body["workers"]["alive"]) == (200, 1)

    # Killed in the middle of a long job: RQ keeps it registered and busy until the job's
    # timeout, but its pulse has stopped, so it is dead.
    busy.connection.delete(ALIVE_KEY.format(name="busy"))
    status, body = _health(app)
    assert (status, body["workers"]["alive"]) == (503, 0)
    assert busy.connection.exists(busy.key)

    # Reading workers leaves the app's Redis timeouts alone (RQ raises them for a working worker;
    # the suite's in-process workers may have done so already: start from the app's own value).
    pool_kwargs = redis_conn(app).connection_pool.connection_kwargs
    pool_kwargs["socket_timeout"] = 30
    _health(app)
    assert pool_kwargs["socket_timeout"] == 30


def schedule(project, due_at):
    """One message due at ``due_at``, written as a scheduled send is (``queue_messages``)."""
    from messaging.sms.outbox import queue_messages

    with project.scope():
        queue_messages(project.id, [{"phone": "+254712000001", "body": "later", "due_at": due_at}])


def test_due_messages_are_counted_from_when_they_became_due_and_stall_past_the_limit(
    app, project, monkeypatch
):
    _registered_worker(app)
    clock.set_now(T0 - timedelta(hours=1))
    send(project)  # due as soon as queued: waited an hour at T0
    schedule(project, T0 - timedelta(minutes=2))  # scheduled: waited two minutes at T0
    retry = send(project)
    schedule(project, T0 + timedelta(minutes=5))  # not due yet
    with project.scope():
        # A retry waits from its next attempt, not from when it was first queued.
        db.session.execute(
            update(Message).where(Message.id == retry).values(next_attempt_at=T0 - timedelta(seconds=30))
        )
        db.session.commit()
    clock.set_now(T0)

    status, body = _health(app)
    assert body["messages"]["due"] == 3
    assert body["messages"]["oldest_due_seconds"] == pytest.approx(3600.0)
    assert (status, body["status"]) == (503, "stalled")  # an hour is past HEALTH_MAX_DUE_SECONDS (300)

    monkeypatch.setitem(app.config, "HEALTH_MAX_DUE_SECONDS", 4000.0)
    status, body = _health(app)
    assert (status, body["status"], body["messages"]["max_due_seconds"]) == (200, "ok", 4000.0)

    # Once the hour-old message has left, the oldest due is the two-minute one.
    with project.scope():
        db.session.execute(
            update(Message).where(Message.id != retry, Message.due_at.is_(None)).values(status="sent")
        )
        db.session.commit()
    monkeypatch.setitem(app.config, "HEALTH_MAX_DUE_SECONDS", 100.0)
    status, body = _health(app)
    assert body["messages"]["due"] == 2
    assert body["messages"]["oldest_due_seconds"] == pytest.approx(120.0)
    assert (status, body["status"]) == (503, "stalled")

    clock.set_now(T0 + timedelta(minutes=10))  # the scheduled one is due too now, since T0 + 5 min
    body = _health(app)[1]
    assert body["messages"]["due"] == 3
    assert body["messages"]["oldest_due_seconds"] == pytest.approx(720.0)


def test_another_projects_message_counts_in_the_endpoint_but_not_on_this_projects_dashboard(
    app, project, other_project
):
    clock.set_now(T0 - timedelta(minutes=3))
    send(other_project, phone="+256772000001")
    clock.set_now(T0)

    body = _health(app)[1]
    assert body["messages"]["due"] == 1
    assert body["messages"]["oldest_due_seconds"] == pytest.approx(180.0)

    page = login(app, project.admin_email, project.password).get("/").get_data(as_text=True)
    assert '<span class="num" id="messages-due">0</span>' in page
    assert '<span class="num" id="oldest-due-wait">–</span>' in page


def test_the_dashboard_shows_workers_scheduler_and_the_projects_backlog_and_warns_when_stalled(app, project):
    clock.set_now(T0 - timedelta(seconds=190))
    send(project)
    send(project)
    clock.set_now(T0)
    web = login(app, project.admin_email, project.password)

    page = web.get("/").get_data(as_text=True)
    assert 'data-status="stalled"' in page
    assert 'id="queue-stalled"' in page and "no worker is running" in page
    assert '<span class="num" id="workers-alive">0</span>' in page
    assert '<span class="num" id="scheduler-running">no</span>' in page
    assert '<span class="num" id="messages-due">2</span>' in page
    assert '<span class="num" id="oldest-due-wait">3 min 10 s</span>' in page

    _registered_worker(app)
    page = web.get("/").get_data(as_text=True)
    assert 'data-status="ok"' in page
    assert 'id="queue-stalled"' not in page
    assert '<span class="num" id="workers-alive">1</span>' in page

    clock.set_now(T0 + timedelta(minutes=10))
    page = web.get("/").get_data(as_text=True)
    assert (
        'id="queue-stalled"' in page and "the oldest message due has waited longer than 5.0 minutes" in page
    )


def test_the_dashboard_says_which_service_does_not_answer(app, project, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from messaging import queue_health

    web = login(app, project.admin_email, project.password)

    def redis_down(app=None):
        raise RedisConnectionError("connection refused")

    monkeypatch.setattr(queue_health, "live_worker_count", redis_down)
    response = web.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="queue-unavailable"' in page and "Redis does not answer" in page
    assert '<span class="num" id="workers-alive">?</span>' in page
    assert '<span class="num" id="messages-due">0</span>' in page


def test_redis_down_answers_503_with_workers_and_scheduler_unavailable(app):
    from messaging import create_app

    broken = create_app({**app_test_config(), "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = broken.test_client().get("/healthz/workers")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["workers"] == {"alive": None, "status": "unavailable"}
    assert body["scheduler"] == {"running": None, "status": "unavailable"}
    assert body["messages"]["status"] == "ok" and body["messages"]["due"] == 0


def test_the_database_down_answers_503_with_messages_unavailable(app):
    from messaging import create_app

    broken = create_app(
        {**app_test_config(), "SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none"}
    )
    response = broken.test_client().get("/healthz/workers")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["messages"] == {
        "due": None,
        "oldest_due_seconds": None,
        "max_due_seconds": 300.0,
        "status": "unavailable",
    }
    assert body["workers"]["status"] == "ok"
