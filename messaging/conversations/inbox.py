"""Inbox triage: which inbound messages need a person, and what a case manager did about them.

Rules:

- An inbound message needs a person when nothing handled it (outcome ``unhandled``), when it came
  from a number no case has (``unknown_number``), or when something else asks for one (a flagged
  survey answer): inbound handling, or that other code, calls :func:`open_item`, and the message
  is then an inbox *item*, in state ``open``.
- States: ``open``, ``handled``, ``archived``. Any change among the three is allowed (open to
  handled or archived, and back to open); the same state again changes nothing.
- ``inbox_state`` NULL means no person needs to look, whatever the outcome: that includes the
  rows handled before the inbox had states (migration 0011 added the column, empty). Counting
  those as open would need ``inbox_state IS NULL AND outcome IN (...)`` in every query, which no
  index answers: the navigation's count on every page would read every triaged message of the
  project once no old row is left (30 ms at 300,000 inbound messages on PostgreSQL, growing), for
  messages that may be years old. Old rows stay in the message log and the conversations; a data
  step in a migration (``UPDATE inbound_messages SET inbox_state = 'open' WHERE inbox_state IS
  NULL AND outcome IN ('unhandled', 'unknown_number')``) would bring them into the inbox.
- An item is assigned to one active web user of its project, or to nobody. An unknown user,
  another project's or a deactivated one is refused (``Invalid``, field ``assignee``). Assigning
  keeps the state; reopening keeps the assignee.
- Every change of state or assignee sets ``inbox_changed_at``. The caller commits.
- Another project's message, or a message that is not an item, is ``NotFound``.
- Lists are newest first (by message id, the order messages arrived in).
- The open count stops at ``OPEN_COUNT_CAP`` (the navigation shows "99+"): it runs on every page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from messaging.errors import Invalid, NotFound
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import InboundMessage, Message, WebUser

log = logging.getLogger(__name__)

OPEN, HANDLED, ARCHIVED = "open", "handled", "archived"
STATES = (OPEN, HANDLED, ARCHIVED)
OPEN_COUNT_CAP = 100
MAX_USER_ID = 2**31 - 1  # web_users.id is an INTEGER


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


# ``change_item(..., assignee_id=UNCHANGED)`` (the default) keeps the assignee; None unassigns.
UNCHANGED = _Unchanged()


@dataclass(frozen=True)
class ItemDetails:
    """What an inbox item shows besides its message: its inbound row and its assignee."""

    row: InboundMessage
    assignee: WebUser | None


def check_state(state) -> str:
    if state not in STATES:
        raise Invalid("invalid_state", f"state must be one of {', '.join(STATES)}.", field="state")
    return state


def items_query(*, state: str | None = None, assignee: AssigneeFilter | None = None):
    """A select of the items' ``Message`` rows (current project), filtered by state (None: any) and
    by assignee (None: anyone). The caller orders and pages it by ``Message.id``, newest first."""
    stmt = select(Message).join(InboundMessage, InboundMessage.message_id == Message.id)
    if state is None:
        stmt = stmt.where(InboundMessage.inbox_state.is_not(None))
    else:
        stmt = stmt.where(InboundMessage.inbox_state == check_state(state))
    if assignee is not None and assignee.unassigned:
        stmt = stmt.where(InboundMessage.assignee_id.is_(None))
    elif assignee is not None and assignee.user_id is not None:
        stmt = stmt.where(InboundMessage.assignee_id == assignee.user_id)
    return stmt


@dataclass(frozen=True)
class AssigneeFilter:
    """Whose items a list shows: one user's (``user_id``), nobody's (``unassigned``), or anyone's."""

    user_id: int | None = None
    unassigned: bool = False


def read_assignee_filter(raw: str | None, current_user_id: int) -> AssigneeFilter:
    """``assignee=`` of a list: a web user's id, ``me`` (``current_user_id``), ``none`` (unassigned),
    or blank (anyone); anything else is ``Invalid`` (field ``assignee``)."""
    value = (raw or "").strip().lower()
    if not value:
        return AssigneeFilter()
    if value == "me":
        return AssigneeFilter(user_id=current_user_id)
    if value == "none":
        return AssigneeFilter(unassigned=True)
    if value.isascii() and value.isdigit() and int(value) <= MAX_USER_ID:
        return AssigneeFilter(user_id=int(value))
    raise Invalid("invalid_assignee", "assignee must be a web user's id, me or none.", field="assignee")


def details_of(message_ids) -> dict[int, ItemDetails]:
    """Each item's inbound row and assignee, read for a whole page in two queries."""
    ids = list(message_ids)
    if not ids:
        return {}
    rows = (
        db.session.execute(select(InboundMessage).where(InboundMessage.message_id.in_(ids))).scalars().all()
    )
    assignee_ids = {row.assignee_id for row in rows if row.assignee_id is not None}
    users = {}
    if assignee_ids:
        users = {
            user.id: user
            for user in db.session.execute(select(WebUser).where(WebUser.id.in_(assignee_ids))).scalars()
        }
    return {row.message_id: ItemDetails(row, users.get(row.assignee_id)) for row in rows}


def get_item(message_id: int) -> tuple[Message, ItemDetails]:
    """One item of the current project: its message and details; ``NotFound`` otherwise."""
    message = db.session.execute(
        items_query().where(InboundMessage.message_id == message_id)
    ).scalar_one_or_none()
    if message is None:
        raise NotFound("not_found", f"There is no inbox item {message_id} in this project.")
    return message, details_of([message.id])[message.id]


def change_item(
    message_id: int,
    *,
    state: str | None = None,
    assignee_id: int | None | _Unchanged = UNCHANGED,
    by_user_id: int | None = None,
) -> InboundMessage:
    """Set an item's state (None keeps it) and/or assignee (``UNCHANGED`` keeps it, None unassigns).

    ``by_user_id`` is who did it, for the log. The caller commits.
    """
    if state is not None:
        check_state(state)
    message, details = get_item(message_id)
    row = details.row
    if assignee_id is not UNCHANGED and assignee_id is not None:
        _check_assignee(assignee_id, row.project_id)
    changed = False
    if state is not None and row.inbox_state != state:
        row.inbox_state = state
        changed = True
    if assignee_id is not UNCHANGED and row.assignee_id != assignee_id:
        row.assignee_id = assignee_id
        changed = True
    if changed:
        row.inbox_changed_at = clock.now()
        log.info(
            "inbox item changed project_id=%s message_id=%s state=%s assignee_id=%s by_user_id=%s",
            row.project_id,
            message.id,
            row.inbox_state,
            row.assignee_id,
            by_user_id,
        )
    return row


def open_item(message_id: int, *, reason: str | None = None) -> InboundMessage:
    """Put an inbound message of the current project in the inbox as ``open`` (again, if it was
    handled or archived), keeping its assignee. ``reason`` is a short code for the log (say
    ``survey_flag``). ``NotFound`` when there is no such inbound message. The caller commits."""
    row = db.session.execute(
        select(InboundMessage).where(InboundMessage.message_id == message_id)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("not_found", f"There is no inbound message {message_id} in this project.")
    if row.inbox_state != OPEN:
        row.inbox_state = OPEN
        row.inbox_changed_at = clock.now()
        log.info(
            "inbox item opened project_id=%s message_id=%s reason=%s", row.project_id, message_id, reason
        )
    return row


def open_count(project_id: int, cap: int = OPEN_COUNT_CAP) -> int:
    """How many items of the project are open, counted up to ``cap``: one range of
    ``ix_inbound_messages_inbox``, at most ``cap`` entries long."""
    open_ids = select(InboundMessage.message_id).where(
        InboundMessage.project_id == project_id, InboundMessage.inbox_state == OPEN
    )
    return db.session.execute(select(func.count()).select_from(open_ids.limit(cap).subquery())).scalar_one()


def _check_assignee(assignee_id, project_id: int) -> WebUser:
    if (
        isinstance(assignee_id, bool)
        or not isinstance(assignee_id, int)
        or not 0 < assignee_id <= MAX_USER_ID
    ):
        raise Invalid("invalid_assignee", "assignee must be a web user's id or null.", field="assignee")
    user = db.session.execute(select(WebUser).where(WebUser.id == assignee_id)).scalar_one_or_none()
    if user is None or user.project_id != project_id or not user.is_active_user:
        raise Invalid(
            "unknown_assignee",
            f"assignee: there is no active web user {assignee_id} in this project.",
            field="assignee",
        )
    return user
