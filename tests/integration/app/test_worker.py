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


def test_locks_of_a_scheduler_without_a_pulse_are_taken_over_long_before_they_expire(app, worker_process):
    """RQ's locks outlive a SIGKILLed scheduler by a minute; its pulse (10 s) does not: a
    worker without a live scheduler takes locks whose holder has no pulse at its next
    takeover check (every 5 s), not when they expire."""
    import signal

    from rq.scheduler import RQScheduler

    from messaging.jobs import QUEUE_NAMES, queue, redis_conn

    redis = redis_conn(app)
    locks = [RQScheduler.get_locking_key(queue(name, app).name) for name in QUEUE_NAMES]
    assert _wait_for(lambda: _children(worker_process.pid) and all(redis.exists(k) for k in locks))
    [own_scheduler] = _children(worker_process.pid)
    # Another worker's scheduler, killed with its worker, holds the locks for two more minutes;
    # this worker's own scheduler dies too, so it has none.
    for key in locks:
        redis.set(key, "killed-scheduler", ex=120)
    os.kill(own_scheduler, signal.SIGKILL)
    started = time.monotonic()
    assert _wait_for(lambda: all(redis.get(k) not in (None, b"killed-scheduler") for k in locks), seconds=20)
    assert time.monotonic() - started < 15
    assert _wait_for(lambda: [p for p in _children(worker_process.pid) if p != own_scheduler], seconds=5)
    assert "scheduler locks of a scheduler with no pulse cleared" in worker_process.log_path.read_text()


def test_clearing_dead_holders_leaves_the_locks_of_a_scheduler_with_a_pulse(app):
    from rq.scheduler import RQScheduler

    from messaging.jobs import redis_conn
    from workers.scheduler import clear_dead_holders, mark_scheduler_alive

    redis = redis_conn(app)
    names = ["t-held-by-live", "t-held-by-dead", "t-free"]
    keys = {n: RQScheduler.get_locking_key(n) for n in names}
    redis.delete(*keys.values())
    redis.set(keys["t-held-by-live"], "live-one", ex=60)
    redis.set(keys["t-held-by-dead"], "dead-one", ex=60)
    mark_scheduler_alive(redis, "live-one")

    assert clear_dead_holders(redis, names) == ["t-held-by-dead"]
    assert redis.get(keys["t-held-by-live"]) == b"live-one"
    assert not redis.exists(keys["t-held-by-dead"]) and not redis.exists(keys["t-free"])
    redis.delete(*keys.values())


def test_a_connection_given_back_with_an_unread_reply_is_not_lent_again_as_is(app):
    """RQ's SIGTERM handler can stop a worker between a command and its reply; the next
    command on that pooled connection must not read the stale reply as its own."""
    from messaging.jobs import redis_conn

    redis = redis_conn(app)
    pool = redis.connection_pool
    interrupted = pool.get_connection()
    interrupted.send_command("SET", "stale-reply-probe", "x")  # its reply is never read
    pool.release(interrupted)
    _wait_for(lambda: redis.get("stale-reply-probe") == b"x")

    with redis.pipeline() as pipe:  # what RQ's register_death does at teardown
        pipe.set("after-the-interruption", 1)
        pipe.expire("after-the-interruption", 60)
        assert pipe.execute() == [True, True]
    assert redis.get("after-the-interruption") == b"1"
