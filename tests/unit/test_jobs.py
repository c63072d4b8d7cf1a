"""The job catalogue and the job decorators' logging rules."""

import dataclasses
import logging

from messaging import jobs
from workers.jobs import did_something
from workers.worker import QuietPeriodicJobs


def test_every_job_path_names_a_function_of_workers_jobs():
    import importlib

    specs = [s for s in vars(jobs).values() if isinstance(s, jobs.JobSpec)]
    specs += [task.job for task in jobs.PERIODIC]
    assert len(specs) >= 12
    for spec in specs:
        module, _, name = spec.path.rpartition(".")
        assert module.startswith("workers.jobs.")
        assert callable(getattr(importlib.import_module(module), name)), spec.path
        assert spec.queue in jobs.QUEUE_NAMES


def test_periodic_names_are_unique():
    names = [task.name for task in jobs.PERIODIC]
    assert len(names) == len(set(names))


@dataclasses.dataclass
class Stats:
    requeued: int = 0
    failed: int = 0


def test_a_periodic_job_did_something_only_when_a_count_is_not_zero():
    assert not did_something({})
    assert not did_something({"started": 0, "requeued": 0})
    assert did_something({"started": 1})
    assert not did_something(Stats())
    assert did_something(Stats(failed=2))
    assert not did_something(0) and did_something(3)
    assert not did_something(None)
    assert not did_something({"by_reason": {}}) and did_something({"by_reason": {"x": 1}})


def _record(message: str, level=logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("rq.worker", level, __file__, 1, message, None, None)


def test_rq_lines_about_periodic_jobs_are_dropped_and_others_kept():
    quiet = QuietPeriodicJobs()
    assert not quiet.filter(
        _record("Worker w: high: workers.jobs.broadcasts.tick() (periodic-broadcast-tick-1)")
    )
    assert not quiet.filter(_record("Successfully completed workers.jobs.sms.sweep() job in 0:00:00.002s"))
    assert not quiet.filter(_record("Worker w: high: Job OK (periodic-sms-sweep-12)"))
    assert quiet.filter(_record("Worker w: sms: workers.jobs.sms.send_messages(1, [1, 2]) (sms-abc)"))
    assert quiet.filter(_record("periodic-sms-sweep-12 failed", level=logging.ERROR))
