import os
import time

from workers import periodic


def test_periodic_tick_enqueues_once_per_slot_across_processes(app, run_jobs):
    from messaging.jobs import queue, redis_conn

    redis = redis_conn(app)
    now = time.time()
    first = periodic.tick(redis, now=now)
    second = periodic.tick(redis, now=now)  # another worker, same second
    assert "heartbeat" in first
    assert "heartbeat" not in second
    heartbeat_jobs = [j for j in queue("low", app).get_job_ids() if j.startswith("periodic-heartbeat-")]
    assert len(heartbeat_jobs) == 1
    assert run_jobs() == len(first)
    assert redis.get("messaging:heartbeat").decode().startswith("periodic-heartbeat-")


def _wait_for(predicate, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_flask_worker_process_runs_periodic_and_queued_jobs(app, worker_process):
    from messaging.jobs import queue, redis_conn

    redis = redis_conn(app)
    # The worker's ticker enqueues the heartbeat, and the worker runs it.
    assert _wait_for(lambda: (redis.get("messaging:heartbeat") or b"").startswith(b"periodic-"))
    queue("low", app).enqueue("workers.jobs.maintenance.heartbeat", job_id="manual-hb")
    assert _wait_for(lambda: redis.get("messaging:heartbeat") == b"manual-hb")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_scheduler_stops_when_its_worker_is_killed(app, worker_process):
    """RQ forks the scheduler from the worker; SIGKILL on the worker must not leave it
    running on its own with the scheduler locks."""
    from rq.scheduler import RQScheduler

    from messaging.jobs import QUEUE_NAMES, queue, redis_conn

    redis = redis_conn(app)
    locks = [RQScheduler.get_locking_key(queue(name, app).name) for name in QUEUE_NAMES]
    assert _wait_for(lambda: _children(worker_process.pid) and all(redis.exists(k) for k in locks))
    [scheduler_pid] = _children(worker_process.pid)
    worker_process.kill()
    worker_process.wait()
    assert _wait_for(lambda: not _running(scheduler_pid), seconds=15)
    assert not any(redis.exists(k) for k in locks)  # released on the way out, not left to expire


def test_a_worker_started_while_a_dead_schedulers_locks_remain_takes_them_over_when_they_expire(
    app, worker_process
):
    """A scheduler killed with its worker (kill -9 on the whole group) leaves its locks until
    they expire; the worker started meanwhile must take them then, not at RQ's next maintenance
    (10 minutes later), and its scheduler must move a delayed job to the queue."""
    from datetime import timedelta

    from rq.scheduler import RQScheduler

    from messaging.jobs import QUEUE_NAMES, queue, redis_conn

    redis = redis_conn(app)
    locks = [RQScheduler.get_locking_key(queue(name, app).name) for name in QUEUE_NAMES]
    # The locks of a scheduler that died without releasing them; RQ gives them interval + 60 s,
    # shortened here to keep the test quick.
    redis.delete(*locks)
    for key in locks:
        redis.set(key, "dead-scheduler", ex=4)
    # Our worker starts (the fixture) while they are held: no scheduler for now.
    assert _wait_for(lambda: redis.smembers("rq:workers"))
    time.sleep(1)
    assert not _children(worker_process.pid)
    assert {redis.get(k) for k in locks} == {b"dead-scheduler"}

    delayed = queue("low", app).enqueue_in(
        timedelta(seconds=1), "workers.jobs.maintenance.heartbeat", job_id="delayed-hb"
    )
    assert _wait_for(lambda: _children(worker_process.pid), seconds=15)
    assert all(redis.get(k) not in (None, b"dead-scheduler") for k in locks)
    assert _wait_for(lambda: delayed.get_status(refresh=True) == "finished", seconds=15)
    assert "took over the scheduler locks" in worker_process.log_path.read_text()
