import time

from workers import periodic


def test_periodic_tick_enqueues_once_per_slot_across_processes(app, run_jobs):
    import workers.jobs  # noqa: F401  (registers the tasks)
    from messaging.queues import queue, redis_conn

    redis = redis_conn(app)
    now = time.time()
    first = periodic.tick(redis, now=now)
    second = periodic.tick(redis, now=now)  # another worker, same second
    assert "heartbeat" in first
    assert "heartbeat" not in second
    assert queue("low", app).count == 1
    assert run_jobs() == len(first)  # every registered periodic task ran once
    assert redis.get("messaging:heartbeat").decode().startswith("periodic-heartbeat-")


def _wait_for(predicate, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_flask_worker_process_runs_periodic_and_queued_jobs(app, worker_process):
    from messaging.queues import queue, redis_conn

    redis = redis_conn(app)
    # The worker's ticker enqueues the heartbeat, and the worker runs it.
    assert _wait_for(lambda: (redis.get("messaging:heartbeat") or b"").startswith(b"periodic-"))
    queue("low", app).enqueue("workers.jobs.maintenance.heartbeat", job_id="manual-hb")
    assert _wait_for(lambda: redis.get("messaging:heartbeat") == b"manual-hb")
