"""Job functions: ids in, the project's scope entered by one decorator, one domain call, one log line.

Rules:
- Each module here holds the jobs of one domain; each job is declared once
  in ``messaging.jobs`` (path, queue, timeout) and enqueued from there.
- A job takes ids only and makes one domain call; the rows in the database
  say what to do, so a job that runs twice does its work once.
- ``@project_job``: the first argument is the project id, and the call runs
  inside that project's scope (``messaging.db.tenancy``). ``@row_job(Model)``:
  the first argument is the id of a row of ``Model``, and the call runs in the
  scope of the row's project (nothing runs for a row that is gone).
- ``@periodic_job``: a periodic task over every project. It logs at INFO
  only when it did something (a result with a non-zero count), at DEBUG
  otherwise, so ticks every 10 to 60 seconds do not bury ``make run``'s
  banner or fill production logs.
- One log line per job, naming the job id and the ids involved; never a
  participant's phone number or a message's text at INFO (a number passed
  as an argument, as to the per-number inbound job, shows its last four
  digits only).
"""

from __future__ import annotations

import dataclasses
import functools
import logging

from rq import get_current_job
from sqlalchemy import select

from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.lib.redact import mask_phones_in

log = logging.getLogger(__name__)


def current_job_id() -> str | None:
    job = get_current_job()
    return job.id if job else None


def _counts(result) -> dict:
    if dataclasses.is_dataclass(result):
        return dataclasses.asdict(result)
    if isinstance(result, dict):
        return result
    return {"result": result}


def did_something(result) -> bool:
    """Whether a periodic job's result reports any work (a non-zero count)."""
    for value in _counts(result).values():
        if isinstance(value, dict | list | tuple | set):
            if value:
                return True
        elif value:
            return True
    return False


def project_job(fn):
    """The first argument is the project id: run the job in that project's scope."""

    @functools.wraps(fn)
    def run(project_id: int, *ids):
        with project_scope(project_id):
            result = fn(project_id, *ids)
        log.info(
            "%s done job_id=%s project_id=%s ids=%s %s",
            fn.__name__,
            current_job_id(),
            project_id,
            _describe_ids(ids),
            _counts(result),
        )
        return result

    return run


def row_job(model):
    """The first argument is the id of a ``model`` row: run the job in its project's scope."""

    def decorate(fn):
        @functools.wraps(fn)
        def run(row_id, *ids):
            key = model.__mapper__.primary_key[0]
            project_id = db.session.execute(
                select(model.project_id).where(key == row_id).execution_options(all_projects=True)
            ).scalar()
            if project_id is None:
                log.info("%s skipped job_id=%s id=%s: no such row", fn.__name__, current_job_id(), row_id)
                return None
            with project_scope(project_id):
                result = fn(row_id, *ids)
            log.info(
                "%s done job_id=%s project_id=%s id=%s %s",
                fn.__name__,
                current_job_id(),
                project_id,
                row_id,
                _counts(result) if result is not None else "",
            )
            return result

        return run

    return decorate


def periodic_job(fn):
    """A periodic task over every project: logged at INFO only when it did something."""

    @functools.wraps(fn)
    def run():
        result = fn()
        level = logging.INFO if did_something(result) else logging.DEBUG
        log.log(level, "%s done job_id=%s %s", fn.__name__, current_job_id(), _counts(result))
        return result

    return run


def _describe_ids(ids: tuple) -> str:
    parts = []
    for value in ids:
        if isinstance(value, list | tuple):
            parts.append(f"{len(value)} ids {value[0]}..{value[-1]}" if value else "0 ids")
        else:
            parts.append(mask_phones_in(str(value)))
    return ",".join(parts)
