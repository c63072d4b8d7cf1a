"""A case's conversation (its thread): the messages a case manager reads before replying.

Rules:

- The thread of a case is every message of the case and, when the case has a
  phone number, every message of that number (both directions): a shared
  family phone's texts show on each of its cases, as the participant sent them.
- A page is the latest ``PAGE_SIZE`` messages (or the ones before a message
  id), shown oldest first; a case with 10,000 messages reads one page, never
  the whole thread. Ids are found first, through the case's index and the
  phone's, then the page's rows are loaded: what a page costs depends on the
  thread, never on how many messages the rest of the project has (about 7 ms
  for a case of 10,000 messages among 200,000 others, on either database).
- What is newer than a message id (``after``) comes oldest first, at most
  ``limit`` at a time: the live view and the API read on from the last id they
  have, so nothing is skipped or shown twice.
- What the page shows beside a message (how an inbound one was handled, the
  survey session a message belongs to, the web user who wrote a reply) is read
  for the whole page at once: one query per kind, never one per message.
- Other cases sharing the number are named, so a case manager knows a reply
  reaches a phone that more than one case uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from messaging.extensions import db
from messaging.models import Case, InboundMessage, Message, SurveySession, WebUser

PAGE_SIZE = 50
MAX_AFTER = 250


def thread_statement(case: Case):
    """SELECT of the case's thread (no order, no limit)."""
    if case.phone_number:
        return select(Message).where((Message.case_id == case.id) | (Message.phone == case.phone_number))
    return select(Message).where(Message.case_id == case.id)


def _branch_ids(case: Case) -> list:
    """The thread's message ids as one SELECT per index: the case's, and its number's."""
    branches = [select(Message.id).where(Message.case_id == case.id)]
    if case.phone_number:
        branches.append(select(Message.id).where(Message.phone == case.phone_number))
    return branches


@dataclass
class ThreadPage:
    """One page of a thread, oldest first, and the id to ask for the page before it (None: the start)."""

    messages: list[Message]
    older_than: int | None


def latest_page(case: Case, before_id: int | None = None, size: int = PAGE_SIZE) -> ThreadPage:
    """The latest ``size`` messages of the thread (before ``before_id`` when given), oldest first."""
    ids: set[int] = set()
    for branch in _branch_ids(case):
        if before_id is not None:
            branch = branch.where(Message.id < before_id)
        # Ids first, each branch through its own index (project and case, or project and
        # phone), sorted as "id + 0": ordered by the bare id, a planner may walk the primary
        # key backwards through every newer message of the project instead (a case whose
        # last message is 200,000 messages old), and sorting whole rows (with their case
        # joined) cost 40 ms on SQLite for a case of 10,000 messages; ids alone cost 5.
        ids.update(db.session.execute(branch.order_by((Message.id + 0).desc()).limit(size + 1)).scalars())
    newest = sorted(ids, reverse=True)[: size + 1]
    older_than = newest[size - 1] if len(newest) > size else None
    return ThreadPage(_load(newest[:size]), older_than)


def _load(ids: list[int]) -> list[Message]:
    """The messages of ``ids``, oldest first."""
    if not ids:
        return []
    return list(db.session.execute(select(Message).where(Message.id.in_(ids)).order_by(Message.id)).scalars())


def messages_after(case: Case, after_id: int, limit: int = MAX_AFTER) -> list[Message]:
    """The thread's messages newer than ``after_id``, oldest first, at most ``limit``."""
    ids: set[int] = set()
    for branch in _branch_ids(case):
        branch = branch.where(Message.id > after_id)
        # "id + 0" as in latest_page: the cost is bounded by the thread, never by the project.
        ids.update(db.session.execute(branch.order_by(Message.id + 0).limit(limit)).scalars())
    return _load(sorted(ids)[:limit])


def messages_among(case: Case, ids: Iterable[int]) -> list[Message]:
    """The thread's messages whose id is in ``ids`` (the live view re-reads the ones whose
    status may still change), oldest first."""
    ids = sorted(set(ids))
    if not ids:
        return []
    stmt = thread_statement(case).where(Message.id.in_(ids))
    return list(db.session.execute(stmt.order_by(Message.id)).scalars())


@dataclass
class ThreadDetails:
    """What the page shows beside each message, by message id: how an inbound message was
    handled, the survey session it belongs to, and the author of a reply."""

    handling: dict[int, InboundMessage] = field(default_factory=dict)
    sessions: dict[int, SurveySession] = field(default_factory=dict)
    authors: dict[int, WebUser] = field(default_factory=dict)


def thread_details(messages: list[Message]) -> ThreadDetails:
    """The details of ``messages``: one query per kind for the whole list."""
    details = ThreadDetails()
    inbound_ids = [m.id for m in messages if m.direction == "inbound"]
    if inbound_ids:
        rows = db.session.execute(select(InboundMessage).where(InboundMessage.message_id.in_(inbound_ids)))
        details.handling = {row.message_id: row for row in rows.scalars()}
    session_of = {m.id: m.survey_session_id for m in messages if m.survey_session_id}
    session_of.update(
        {mid: row.survey_session_id for mid, row in details.handling.items() if row.survey_session_id}
    )
    if session_of:
        found = db.session.execute(
            select(SurveySession).where(SurveySession.id.in_(set(session_of.values())))
        ).scalars()
        by_id = {s.id: s for s in found}
        details.sessions = {mid: by_id[sid] for mid, sid in session_of.items() if sid in by_id}
    author_of = {m.id: m.author_id for m in messages if m.author_id}
    if author_of:
        users = db.session.execute(select(WebUser).where(WebUser.id.in_(set(author_of.values()))))
        by_id = {u.id: u for u in users.scalars()}
        details.authors = {mid: by_id[uid] for mid, uid in author_of.items() if uid in by_id}
    return details


def cases_sharing_phone(case: Case) -> list[Case]:
    """The other (not deleted) cases with the case's phone number."""
    if not case.phone_number:
        return []
    stmt = select(Case).where(
        Case.phone_number == case.phone_number, Case.deleted.is_(False), Case.id != case.id
    )
    return list(db.session.execute(stmt.order_by(Case.id)).scalars())
