"""Adding cases to a group by identifier: plan a batch (reads only), then insert it.

- What happens to a matched case, in this order: already in the group:
  ``already_member`` (even if it is closed since); closed: ``closed``
  (refused); otherwise ``added`` (``would_add`` in a dry run).
- An identifier that does not resolve to one live case keeps its resolution's
  result and message (``messaging.case_groups.resolve``); ``by="case_id"``
  matches the case ID only.
- With an import's ``seen`` rows, a row that resolves to the same case as an
  earlier row (whatever the spelling: the phone in row 2 and the case ID in
  row 9), or that repeats an earlier row's unresolved identifier, is
  ``duplicate_in_file``, reported with the first row's number and never added twice.
- A dry run gives the same per-row results as the real run would, with
  ``would_add`` in place of ``added``, and changes nothing.
- Set-based: one query finds the batch's cases, one their memberships (only
  where the insert cannot answer: a closed case, a dry run), and one multi-row
  ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` adds them, so two imports (or
  a click and an import) racing on the same case add it once and each reports
  truthfully. Only ``added`` changes anything; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, DateTime, Integer, String, literal, select, true

from messaging.case_groups import members
from messaging.case_groups.groups import group_project, refuse_if_dynamic
from messaging.case_groups.resolve import (
    CaseRef,
    Resolution,
    blank_message,
    identifier_text,
    resolve_case_ids,
    resolve_identifiers,
)
from messaging.case_groups.results import (
    ADDED,
    ALREADY_MEMBER,
    CLOSED,
    DUPLICATE_IN_FILE,
    INVALID,
    MATCH,
    WOULD_ADD,
)
from messaging.db import dialect
from messaging.db.dialect import insert_ignoring_conflicts
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import CaseGroup, CaseGroupMember


@dataclass
class AddOutcome:
    """The result of one identifier (one row), with the case or the candidates it found."""

    identifier: str | None
    result: str
    message: str
    case: CaseRef | None = None
    candidates: list[tuple[CaseRef, tuple[str, ...]]] = field(default_factory=list)
    candidate_count: int = 0


@dataclass
class AddPlan:
    """What :func:`plan_adds` decided for a batch, before anything is written.

    Plain data (no ORM objects), so that another thread, on its own database
    connection, can apply it (:func:`apply_adds`) while the next batch is planned.
    ``outcomes`` holds the final outcome of each row that adds nothing; the
    rows of ``to_add`` (case pk -> row indexes) wait for the insert.
    """

    texts: list[str | None]
    cases: list[CaseRef | None]
    outcomes: list[AddOutcome | None]
    to_add: dict[int, list[int]]
    dry_run: bool
    user_id: int | None

    def only(self, index: int) -> AddPlan:
        """The plan of one row (for applying a failed batch row by row)."""
        return AddPlan(
            [self.texts[index]],
            [self.cases[index]],
            [self.outcomes[index]],
            {pk: [0] for pk, indexes in self.to_add.items() if index in indexes},
            self.dry_run,
            self.user_id,
        )


def add_by_identifier(
    group: CaseGroup, identifier: object, *, by: str = "any", user_id: int | None = None
) -> AddOutcome:
    """Add one case by phone number, external ID or case ID (``by="case_id"``: case ID only).

    Returns the outcome (``added``, ``already_member``, ``not_found``,
    ``ambiguous`` with candidates, ``closed``, ``deleted``, ``invalid``); only
    ``added`` changes anything. The caller commits.
    """
    (outcome,) = add_identifiers(group, [(0, identifier)], by=by, user_id=user_id)
    return outcome


def add_identifiers(
    group: CaseGroup,
    rows: Sequence[tuple[int, object]],
    *,
    by: str = "any",
    dry_run: bool = False,
    user_id: int | None = None,
    seen: dict[str, int] | None = None,
) -> list[AddOutcome]:
    """Add a batch of ``(row_number, identifier)`` to the group, set-based.

    One outcome per row, in order. With ``seen`` (an import's rows so far:
    ``Resolution.key`` -> first row number), rows that resolve to the same
    case as an earlier row (or repeat an unresolved identifier) are
    ``duplicate_in_file``, and this batch's new keys are added to ``seen``. ``dry_run`` changes nothing and
    says ``would_add``. The caller commits.
    """
    refuse_if_dynamic(group)
    plan = plan_adds(group, rows, by=by, dry_run=dry_run, user_id=user_id, seen=seen)
    return apply_adds(group, plan)


def plan_adds(
    group: CaseGroup,
    rows: Sequence[tuple[int, object]],
    *,
    by: str = "any",
    dry_run: bool = False,
    user_id: int | None = None,
    seen: dict[str, int] | None = None,
) -> AddPlan:
    """Resolve a batch and decide each row's outcome; reads only (see :func:`add_identifiers`)."""
    texts = [identifier_text(value) for _, value in rows]
    resolutions = _resolve(group, rows, texts, by)
    # Membership is asked for only where the insert cannot answer it: a closed
    # case (not inserted, but "already a member" beats "closed") and a dry run.
    already = members.members_among(
        group.id, {r.case.pk for r in resolutions if r.result == MATCH and (dry_run or r.case.closed)}
    )

    outcomes: list[AddOutcome | None] = [None] * len(rows)
    first_row: dict[str, int] = {}
    to_add: dict[int, list[int]] = {}  # case pk -> row indexes
    for index, ((number, _), text, res) in enumerate(zip(rows, texts, resolutions, strict=True)):
        if seen is not None and res.result != INVALID:
            earlier = seen.get(res.key) or first_row.get(res.key)
            if earlier is not None:
                outcomes[index] = _duplicate(text, res, earlier)
                continue
            first_row[res.key] = number
        if res.result == MATCH and res.case.pk not in already and not res.case.closed:
            to_add.setdefault(res.case.pk, []).append(index)
        else:
            outcomes[index] = _not_added(text, res, already)
    if seen is not None:
        for key, number in first_row.items():
            seen.setdefault(key, number)
    cases = [res.case for res in resolutions]
    return AddPlan(texts, cases, outcomes, to_add, dry_run, user_id)


def _resolve(group: CaseGroup, rows, texts: list[str | None], by: str) -> list[Resolution]:
    """Each row's resolution, in order (a value that cannot be text is ``invalid``)."""
    lookup = [t for t in texts if t is not None]
    if by == "case_id":
        resolved = resolve_case_ids(lookup)
    else:
        resolved = resolve_identifiers(group_project(group), lookup)

    def resolution(index: int) -> Resolution:
        text = texts[index]
        if text is None:
            return Resolution(INVALID, "invalid:", message=blank_message(rows[index][1]))
        return resolved[text]

    return [resolution(i) for i in range(len(rows))]


def _duplicate(text: str | None, res: Resolution, earlier: int) -> AddOutcome:
    what = "the same case as" if res.result == MATCH else "a repeat of"
    return AddOutcome(
        text,
        DUPLICATE_IN_FILE,
        f"This is {what} row {earlier}; it is not added twice.",
        case=res.case if res.result == MATCH else None,
    )


def _not_added(text: str | None, res: Resolution, already: set[int]) -> AddOutcome:
    """The outcome of a row that the insert will not add: unresolved, a member, closed."""
    if res.result != MATCH:
        return AddOutcome(text, res.result, res.message, res.case, res.candidates, res.candidate_count)
    if res.case.pk in already:
        note = " (The case is closed.)" if res.case.closed else ""
        return AddOutcome(text, ALREADY_MEMBER, "Already in this group." + note, res.case)
    return AddOutcome(text, CLOSED, "This case is closed, so it was not added.", res.case)


def apply_adds(group: CaseGroup, plan: AddPlan) -> list[AddOutcome]:
    """Insert the planned members (none in a dry run); one outcome per row, in order.
    The caller commits."""
    outcomes = list(plan.outcomes)
    if plan.to_add:
        inserted = (
            set(plan.to_add) if plan.dry_run else insert_members(group.id, list(plan.to_add), plan.user_id)
        )
        for pk, indexes in plan.to_add.items():
            for index in indexes:
                text, case = plan.texts[index], plan.cases[index]
                if pk not in inserted:  # already a member (or another request added it just now)
                    outcomes[index] = AddOutcome(text, ALREADY_MEMBER, "Already in this group.", case)
                elif plan.dry_run:
                    outcomes[index] = AddOutcome(text, WOULD_ADD, "Would be added.", case)
                else:
                    outcomes[index] = AddOutcome(text, ADDED, "Added.", case)
        if inserted and not plan.dry_run:
            group.modified_at = clock.now()
    return outcomes


def insert_members(group_id: str, pks: list[int], user_id: int | None) -> set[int]:
    """INSERT ... SELECT over the pks (bound as one parameter) ON CONFLICT DO NOTHING
    RETURNING: the case pks really added."""
    table = CaseGroupMember.__table__
    now = clock.now()
    pk = dialect.values_table(pks, BigInteger).c.value
    # The WHERE keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    rows = select(literal(group_id, String), pk, literal(now, DateTime), literal(user_id, Integer)).where(
        true()
    )
    stmt = (
        insert_ignoring_conflicts(table, table.c.group_id, table.c.case_pk)
        .from_select(["group_id", "case_pk", "added_at", "added_by"], rows)
        .returning(table.c.case_pk)
    )
    return set(db.session.connection().execute(stmt).scalars())
