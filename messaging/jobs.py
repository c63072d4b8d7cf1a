"""One Redis connection and the named RQ queues, built once from REDIS_URL.

RQ 2 has no ``Connection`` context: every queue and worker gets
``connection=`` explicitly from here.
"""

from flask import current_app
from redis import Redis
from rq import Queue

# Queue names, most urgent first; a worker listens to all of them in this order.
QUEUE_NAMES = ("high", "default", "sms", "low")

_EXTENSION = "messaging_redis"


def init_app(app) -> None:
    app.extensions[_EXTENSION] = Redis.from_url(
        app.config["REDIS_URL"],
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=30,
    )


def redis_conn(app=None) -> Redis:
    """The process's Redis connection (a pool underneath, safe across threads)."""
    app = app or current_app
    return app.extensions[_EXTENSION]


def queue(name: str = "default", app=None) -> Queue:
    """A named queue on the shared connection."""
    app = app or current_app
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    prefix = app.config.get("RQ_QUEUE_PREFIX", "")
    return Queue(prefix + name, connection=redis_conn(app))


def all_queues(app=None) -> list[Queue]:
    return [queue(name, app) for name in QUEUE_NAMES]
