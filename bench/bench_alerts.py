"""Conditional alerts: applying a new rule, the cost of rules on apply_form, and a minute of due reminders.

    .venv/bin/python bench/bench_alerts.py                       # PostgreSQL (the bench DB), 100,000 cases
    .venv/bin/python bench/bench_alerts.py --cases 20000 --database-url sqlite:////tmp/alerts.sqlite3

It WIPES the database given by ``--database-url`` and FLUSHES the Redis DB of
``--redis-url`` (default DB 9). Everything runs in this process, as a worker's job would.

1. Seed N open ``mother`` cases (Core bulk insert), half ``risk=high``, each with
   a ``next_visit`` date 3 to 60 days ahead and a valid number.
2. **A new rule over the existing cases** (target: schedules for all written in
   at most 10 s on PostgreSQL, memory flat): ``manage.create_rule`` then the
   rule's job (``applying.apply_rule``), timed from the job's start to its end;
   the process's RSS before and after (flat: one batch in memory at a time).
3. **apply_form with 10 active rules on the case's type against none** (target:
   at most 1.3x): paired rounds of ``FORMS`` forms each (each form updates one
   case's ``next_visit``), the rules switched off and on between the halves;
   the median of the rounds' ratios.
4. **100,000 reminders due in the same minute, with placeholders** (target: all
   queued in at most 10 s): every case gets an occurrence due now of a rule whose
   text has ``{case.name}`` and ``{case.next_visit}``; timed from the tick's start
   until every occurrence is sent (messages written, send jobs in Redis).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import fresh_app, seed_mothers, worker_env_base  # noqa: E402

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/bench"
SEED_BATCH = 5000
FORMS = 100
ROUNDS = 7
RULE = {
    "name": "ANC visit reminder",
    "case_type": "mother",
    "criteria": [{"property": "risk", "op": "eq", "value": "high"}],
    "start": {"property": "next_visit", "offset_days": -2, "time": "09:00"},
    "text": "Hello {case.name}, your visit is on {case.next_visit}.",
}


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def seed(project_id: int, n: int) -> None:
    from messaging.lib import clock

    today = clock.now().date()
    seed_mothers(
        project_id,
        n,
        lambda i: {
            "risk": "high" if i % 2 == 0 else "low",
            "next_visit": (today + timedelta(days=3 + i % 58)).isoformat(),
        },
        batch=SEED_BATCH,
    )


def new_rule_over_existing_cases(project_id: int) -> dict:
    from sqlalchemy import func, select

    from messaging.alerts import applying, manage
    from messaging.extensions import db
    from messaging.models import AlertOccurrence

    rule = manage.create_rule(project_id, RULE)
    db.session.commit()
    rule_id = rule.id
    db.session.expunge_all()
    before = rss_mb()
    started = time.perf_counter()
    applying.apply_rule(project_id, rule_id)
    seconds = time.perf_counter() - started
    written = db.session.execute(
        select(func.count()).select_from(AlertOccurrence).where(AlertOccurrence.rule_id == rule_id)
    ).scalar()
    db.session.expunge_all()
    return {
        "seconds": seconds,
        "occurrences": written,
        "rss_before": before,
        "rss_after": rss_mb(),
        "rule_id": rule_id,
    }


def forms_cost(project_id: int) -> dict:
    from sqlalchemy import select, update

    from messaging.alerts import manage
    from messaging.cases.forms import apply_form
    from messaging.extensions import db
    from messaging.models import AlertRule, Application, Case, MobileWorker

    app_row = Application(name="bench app")
    worker = MobileWorker(username="bench-worker")
    db.session.add_all([app_row, worker])
    db.session.commit()
    app_id, user_id = app_row.id, worker.id
    case_ids = (
        db.session.execute(select(Case.case_id).order_by(Case.id).limit(FORMS * ROUNDS * 2)).scalars().all()
    )
    rule_ids = []
    for n in range(10):
        rule = manage.create_rule(
            project_id,
            {**RULE, "name": f"rule {n}", "start": {**RULE["start"], "offset_days": -n}, "active": False},
        )
        rule_ids.append(rule.id)
    db.session.execute(update(AlertRule).values(active=False))  # only these ten, switched on and off
    db.session.commit()

    def set_rules(active: bool) -> None:
        db.session.execute(update(AlertRule).where(AlertRule.id.in_(rule_ids)).values(active=active))
        db.session.commit()

    def run(cases) -> float:
        started = time.perf_counter()
        for n, case_id in enumerate(cases):
            apply_form(
                {
                    "app_id": app_id,
                    "user_id": user_id,
                    "cases": [{"case_id": case_id, "update": {"next_visit": f"2030-01-{1 + n % 28:02d}"}}],
                }
            )
        return (time.perf_counter() - started) / len(cases)

    ratios, with_rules, without = [], [], []
    cursor = 0
    for _ in range(ROUNDS):
        batch = case_ids[cursor : cursor + 2 * FORMS]
        cursor += 2 * FORMS
        set_rules(False)
        none = run(batch[:FORMS])
        set_rules(True)
        ten = run(batch[FORMS:])
        without.append(none)
        with_rules.append(ten)
        ratios.append(ten / none)
    set_rules(False)
    return {
        "median_ratio": statistics.median(ratios),
        "ms_without": statistics.median(without) * 1000,
        "ms_with": statistics.median(with_rules) * 1000,
    }


def due_reminders(project_id: int, n: int) -> dict:
    from sqlalchemy import func, insert, select

    from messaging.alerts import manage, sending
    from messaging.extensions import db
    from messaging.lib import clock
    from messaging.models import AlertOccurrence, AlertRule, Case, Message

    rule = manage.create_rule(project_id, {**RULE, "name": "due now", "criteria": [], "active": False})
    db.session.commit()
    rule_id = rule.id
    now = clock.now()
    pks = db.session.execute(select(Case.id).order_by(Case.id).limit(n)).scalars().all()
    for start in range(0, len(pks), SEED_BATCH):
        db.session.execute(
            insert(AlertOccurrence.__table__),
            [
                {
                    "project_id": project_id,
                    "rule_id": rule_id,
                    "case_pk": pk,
                    "anchor": "bench",
                    "seq": 0,
                    "due_at": now - timedelta(seconds=30),
                    "status": "pending",
                    "messages": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for pk in pks[start : start + SEED_BATCH]
            ],
        )
    db.session.execute(
        AlertRule.__table__.update().where(AlertRule.__table__.c.id == rule_id).values(active=True)
    )
    db.session.commit()
    db.session.expunge_all()
    started = time.perf_counter()
    stats = sending.tick(batch=sending.BATCH, max_batches=10_000)
    seconds = time.perf_counter() - started
    messages = db.session.execute(
        select(func.count()).select_from(Message).where(Message.alert_id == rule_id)
    ).scalar()
    return {"seconds": seconds, "occurrences": len(pks), "messages": messages, "stats": stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--database-url", default=PG_DEFAULT)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()

    app, project, _key = fresh_app(worker_env_base(args.database_url, args.redis_url))
    from messaging.db.tenancy import set_current_project

    project_id = project.id
    set_current_project(project_id)
    database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(f"database: {database}; cases: {args.cases:,}")
    started = time.perf_counter()
    seed(project_id, args.cases)
    print(f"seeded in {time.perf_counter() - started:.1f} s")

    applied = new_rule_over_existing_cases(project_id)
    print(
        f"new rule over {args.cases:,} open cases: {applied['occurrences']:,} occurrences written in "
        f"{applied['seconds']:.1f} s (target <= 10 s); RSS {applied['rss_before']:.0f} -> "
        f"{applied['rss_after']:.0f} MB"
    )
    cost = forms_cost(project_id)
    print(
        f"apply_form with 10 active rules / none: median ratio {cost['median_ratio']:.2f} (target <= 1.3); "
        f"{cost['ms_with']:.2f} ms against {cost['ms_without']:.2f} ms a form"
    )
    due = due_reminders(project_id, args.cases)
    print(
        f"{due['occurrences']:,} reminders due in the same minute, with placeholders: {due['messages']:,} "
        f"messages queued in {due['seconds']:.1f} s (target <= 10 s) {due['stats']}"
    )


if __name__ == "__main__":
    main()
