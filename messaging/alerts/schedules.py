"""Each case's schedule under each rule, recomputed in the transaction that changes the case.

Rules:
- :func:`cases_changed` runs inside every transaction that changes cases (a
  form, a bulk upload batch), after the changes are flushed; :func:`recompute`
  is the same work for a rule's job over the existing cases. Nothing commits here.
- For each active rule of a case's type, the case's occurrences are made to
  agree with the case as it is now (:mod:`messaging.alerts.rules` says when):
  - **Not matching** (criteria fail, the case closed or deleted): its pending
    occurrences are cancelled, reason ``case_closed`` or ``stopped_matching``.
  - **A rule without a start** sends once each time a case starts matching: the
    first computation that finds it matching after it did not (or never was)
    adds ``entered:<n>`` occurrences due now (and its repeats); later saves while
    it still matches add nothing.
  - **A rule with a start**: occurrences are keyed by the date value they count
    from (``anchor``) and their number (``seq``). Those already there stay (a
    pending one follows a changed ``time``); when the date moves, each pending
    occurrence moves with it (new anchor, new due time); a new date after the
    old one's messages went adds new occurrences; pending ones the rule no longer
    has (fewer repeats) are cancelled, ``rule_changed``; ones cancelled while
    the case did not match come back when it matches again and they are still
    ahead. A missing or unreadable date records one skipped occurrence
    (``no_date`` / ``bad_date``) and cancels pending ones with that reason.
  - An occurrence already past when it is scheduled is recorded ``skipped``
    (``past_due``), never sent late.
- Rows are written in bulk: one INSERT of new occurrences, one UPDATE of changed
  ones, per batch. The case rows are locked by the caller (forms and uploads lock
  what they change; the rule's job locks its batch), so two computations of one
  case never interleave; the unique ``(rule_id, case_pk, anchor, seq)`` makes a
  repeated computation write nothing new.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, DateTime, String, insert, select, update

from messaging.alerts import rules as R
from messaging.db import dialect
from messaging.db.after_commit import transaction_cache
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.localtime import get_zone
from messaging.models import AlertCaseState, AlertOccurrence, AlertRule, Case, Project

log = logging.getLogger(__name__)

# An occurrence due more than this before it is scheduled is past due.
PAST_SLACK = timedelta(seconds=60)
OCCURRENCES = AlertOccurrence.__table__
STATES = AlertCaseState.__table__
# Cancelled for one of these, an occurrence still ahead comes back when the case matches again.
REVIVABLE = ("stopped_matching", "rule_paused", "rule_changed", "no_date", "bad_date")
# What a recompute may change: pending ones, and cancelled ones that come back.
_OPEN = ("pending", "cancelled")
RULE_COLUMNS = (AlertRule.id, AlertRule.case_type, AlertRule.criteria, AlertRule.start, AlertRule.repeat)
CASE_COLUMNS = (
    Case.id,
    Case.case_type,
    Case.name,
    Case.owner_id,
    Case.external_id,
    Case.closed,
    Case.deleted,
    Case.properties,
)


@dataclass
class _Occ:
    id: int
    anchor: str
    seq: int
    due_at: datetime
    status: str
    reason: str | None


class _Writes:
    """The batch's changes, written in bulk by :meth:`flush`."""

    def __init__(self, project_id: int, now: datetime):
        self.project_id = project_id
        self.now = now
        self.new: list[dict] = []
        self.changed: dict[int, dict] = {}
        self.new_states: list[dict] = []
        self.changed_states: list[dict] = []
        self.stats: Counter = Counter()

    def add(
        self, rule_id: str, case_pk: int, anchor: str, seq: int, due: datetime, status="pending", reason=None
    ):
        if status == "pending" and due < self.now - PAST_SLACK:
            status, reason = "skipped", "past_due"
        self.new.append(
            {
                "project_id": self.project_id,
                "rule_id": rule_id,
                "case_pk": case_pk,
                "anchor": anchor,
                "seq": seq,
                "due_at": due,
                "status": status,
                "reason": reason,
                "messages": 0,
                "created_at": self.now,
                "updated_at": self.now,
            }
        )
        self.stats["scheduled" if status == "pending" else reason] += 1

    def change(self, occ: _Occ, **values):
        if values.get("status") == "pending" and values.get("due_at", occ.due_at) < self.now - PAST_SLACK:
            values.update(status="skipped", reason="past_due")
        current = {"id": occ.id, "status": occ.status, "reason": occ.reason, "due_at": occ.due_at}
        self.changed.setdefault(occ.id, {**current, "anchor": occ.anchor}).update(values)
        if values["status"] == "pending":
            self.stats["moved" if occ.status == "pending" else "revived"] += 1
        else:
            self.stats[values["reason"]] += 1

    def cancel(self, occ: _Occ, reason: str):
        self.change(occ, status="cancelled", reason=reason)

    def flush(self) -> None:
        if self.new:
            db.session.execute(insert(OCCURRENCES), self.new)
        if self.changed:
            dialect.update_each(
                OCCURRENCES,
                list(self.changed.values()),
                match=(OCCURRENCES.c.id, "id"),
                types={
                    "id": BigInteger,
                    "status": String,
                    "reason": String,
                    "due_at": DateTime,
                    "anchor": String,
                },
                values=lambda v: {
                    "status": v["status"],
                    "reason": v["reason"],
                    "due_at": v["due_at"],
                    "anchor": v["anchor"],
                    "updated_at": self.now,
                },
                where=(OCCURRENCES.c.status.in_(_OPEN),),
            )
        if self.new_states:
            db.session.execute(insert(STATES), self.new_states)
        for values in self.changed_states:
            db.session.execute(
                update(STATES)
                .where(STATES.c.rule_id == values["rule_id"], STATES.c.case_pk == values["case_pk"])
                .values(matching=values["matching"], entered=values["entered"], updated_at=self.now)
            )


def project_zone(project_id: int):
    """The project's time zone (UTC when it has none), read once per transaction."""
    cache = transaction_cache("project_zone")
    if project_id not in cache:
        timezone = db.session.execute(select(Project.timezone).where(Project.id == project_id)).scalar()
        try:
            cache[project_id] = get_zone(timezone or "UTC")
        except ValueError:
            cache[project_id] = get_zone("UTC")
    return cache[project_id]


def active_rules(project_id: int) -> list:
    """The project's active rules (rows of ``RULE_COLUMNS``), read once per transaction (with the
    project's zone, in the same query: a form pays one query when no rule applies to its cases)."""
    cache = transaction_cache("alert_rules")
    if project_id not in cache:
        rows = db.session.execute(
            select(*RULE_COLUMNS, Project.timezone)
            .join(Project, Project.id == AlertRule.project_id)
            .where(AlertRule.active.is_(True), AlertRule.deleted_at.is_(None))
        ).all()
        cache[project_id] = rows
        if rows:
            try:
                transaction_cache("project_zone")[project_id] = get_zone(rows[0].timezone or "UTC")
            except ValueError:
                transaction_cache("project_zone")[project_id] = get_zone("UTC")
    return cache[project_id]


def cases_changed(project_id: int, cases: Iterable) -> Counter:
    """Bring the schedules of these changed cases (``Case`` objects, flushed) up to date under
    every active rule. A project without active rules costs one query per transaction."""
    rules = active_rules(project_id)
    if not rules:
        return Counter()
    cases = list({c.id: c for c in cases}.values())
    types = {c.case_type for c in cases}
    # Rules of other types: a case that changed type keeps their pending occurrences, which the
    # tick cancels (``stopped_matching``) when it finds the case no longer matches.
    rules = [r for r in rules if r.case_type in types]
    return recompute(project_id, rules, cases) if cases and rules else Counter()


def case_pks_changed(project_id: int, case_pks: Iterable[int]) -> Counter:
    """:func:`cases_changed` for cases known by primary key (rows written with Core)."""
    if not active_rules(project_id):
        return Counter()
    case_pks = list(dict.fromkeys(case_pks))
    if not case_pks:
        return Counter()
    rows = db.session.execute(select(*CASE_COLUMNS).where(Case.id.in_(case_pks))).all()
    return cases_changed(project_id, rows)


def recompute(project_id: int, rules: list, case_rows, now: datetime | None = None) -> Counter:
    """Make the occurrences of ``case_rows`` (rows of ``CASE_COLUMNS``, or ``Case`` objects) agree
    with ``rules`` (rows of ``RULE_COLUMNS``, or ``AlertRule`` objects)."""
    now = now or clock.now()
    writes = _Writes(project_id, now)
    rule_ids = [r.id for r in rules]
    case_pks = [c.id for c in case_rows]
    if not rule_ids or not case_pks:
        return writes.stats
    # Only rules without a start count entries into the matching state.
    triggered = [r.id for r in rules if r.start is None]
    states = {}
    if triggered:
        states = {
            (s.rule_id, s.case_pk): s
            for s in db.session.execute(
                select(
                    AlertCaseState.rule_id,
                    AlertCaseState.case_pk,
                    AlertCaseState.matching,
                    AlertCaseState.entered,
                ).where(AlertCaseState.rule_id.in_(triggered), AlertCaseState.case_pk.in_(case_pks))
            )
        }
    occurrences: dict[tuple[str, int], list[_Occ]] = defaultdict(list)
    for o in db.session.execute(
        select(
            AlertOccurrence.rule_id,
            AlertOccurrence.case_pk,
            AlertOccurrence.id,
            AlertOccurrence.anchor,
            AlertOccurrence.seq,
            AlertOccurrence.due_at,
            AlertOccurrence.status,
            AlertOccurrence.reason,
        ).where(AlertOccurrence.rule_id.in_(rule_ids), AlertOccurrence.case_pk.in_(case_pks))
    ):
        occurrences[(o.rule_id, o.case_pk)].append(_Occ(o.id, o.anchor, o.seq, o.due_at, o.status, o.reason))
    zone = project_zone(project_id)
    for c in case_rows:
        fields = R.fields_of(c)
        for rule in rules:
            key = (rule.id, c.id)
            if rule.case_type != c.case_type and key not in states and not occurrences.get(key):
                continue
            _one(rule, c.id, fields, c.case_type, states.get(key), occurrences.get(key, []), zone, writes)
    writes.flush()
    return writes.stats


def _one(
    rule: AlertRule, case_pk: int, fields: dict, case_type: str, state, occs: list[_Occ], zone, w: _Writes
):
    pending = [o for o in occs if o.status == "pending"]
    matching = case_type == rule.case_type and R.matches(rule.criteria or [], fields)
    entered = state.entered if state is not None else 0
    if rule.start is not None:
        pass  # a rule with a start follows the date, not entries: it keeps no state
    elif state is None and matching:
        w.new_states.append(
            {
                "project_id": w.project_id,
                "rule_id": rule.id,
                "case_pk": case_pk,
                "matching": matching,
                "entered": entered + 1,
                "updated_at": w.now,
            }
        )
    elif state is not None and bool(state.matching) != matching:
        w.changed_states.append(
            {
                "rule_id": rule.id,
                "case_pk": case_pk,
                "matching": matching,
                "entered": entered + (1 if matching else 0),
            }
        )
    if not matching:
        reason = "case_closed" if fields["closed"] else "stopped_matching"
        for o in pending:
            w.cancel(o, reason)
        return
    if rule.start is None:
        if state is None or not state.matching:
            anchor = f"entered:{entered + 1}"
            for seq, due in R.triggered_times(w.now, rule.repeat):
                w.add(rule.id, case_pk, anchor, seq, due)
        return
    raw = R.case_value(fields, rule.start["property"])
    try:
        times = R.occurrence_times(rule.start, rule.repeat, raw, zone)
    except (R.NoDate, R.BadDate) as exc:
        reason = "no_date" if isinstance(exc, R.NoDate) else "bad_date"
        anchor = reason if reason == "no_date" else f"bad_date:{R.anchor_of(raw)}"[:64]
        for o in pending:
            w.cancel(o, reason)
        if not any(o.anchor == anchor for o in occs):
            w.add(rule.id, case_pk, anchor, 0, w.now, status="skipped", reason=reason)
        return
    _follow_the_date(rule, case_pk, R.anchor_of(raw), times, occs, pending, w)


def _follow_the_date(rule, case_pk, anchor, times, occs, pending, w: _Writes) -> None:
    current = {o.seq: o for o in occs if o.anchor == anchor}
    movable = {o.seq: o for o in pending if o.anchor != anchor}
    kept: set[int] = set()
    for seq, due in times:
        o = current.get(seq)
        if o is not None:
            kept.add(o.id)
            if o.status == "pending" and o.due_at != due:
                w.change(o, status="pending", due_at=due)
            elif o.status == "cancelled" and o.reason in REVIVABLE and due >= w.now - PAST_SLACK:
                w.change(o, status="pending", reason=None, due_at=due)
            continue
        o = movable.get(seq)
        if o is not None:
            kept.add(o.id)
            w.change(o, status="pending", anchor=anchor, due_at=due)
            continue
        w.add(rule.id, case_pk, anchor, seq, due)
    for o in pending:
        if o.id not in kept:
            w.cancel(o, "rule_changed")


def cancel_pending(rule_id: str, reason: str, now: datetime | None = None) -> int:
    """Cancel every pending occurrence of a rule (paused, changed, deleted); returns how many."""
    now = now or clock.now()
    return db.session.execute(
        update(AlertOccurrence)
        .where(AlertOccurrence.rule_id == rule_id, AlertOccurrence.status == "pending")
        .values(status="cancelled", reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


def forget_states(rule_id: str) -> None:
    """Drop what a rule knew of which cases matched (its case type changed: they start afresh)."""
    db.session.execute(STATES.delete().where(STATES.c.rule_id == rule_id))
