"""Contact lookup: which case an inbound SMS belongs to, and why.

Rules:

- The candidates are the cases whose ``phone_number`` is the sender (not
  deleted); with a ``case_type`` (a keyword's survey restricted to one), the
  cases of that type if there are any.
- Several (a family phone): the case of the open survey session first, then
  open cases before closed, then the most recently active (latest of
  ``modified_on`` and its last message), then the highest id.
- A survey started by a keyword on a number that several open cases share (of
  the survey's case type, when it has one) asks which case it is about
  (``family_cases``; the session remembers the answer) instead of guessing.
- The choice and why is a sentence (stored in ``inbound_messages.routing`` and
  shown on the conversation page). No case: "Unknown number".
"""

from __future__ import annotations

from sqlalchemy import func, select

from messaging.extensions import db
from messaging.models import Case, Message, SurveySession


def find_case(phone: str, case_type: str | None = None):
    """``(case or None, number of cases with this phone, routing note)`` for a sender."""
    cases = list(
        db.session.execute(select(Case).where(Case.phone_number == phone, Case.deleted.is_(False))).scalars()
    )
    if case_type:
        typed = [c for c in cases if c.case_type == case_type]
        cases = typed or cases
    if not cases:
        return None, 0, "Unknown number: no case has this phone number."
    if len(cases) == 1:
        return cases[0], 1, f"Routed to {_label(cases[0])}, the only case with this number."
    ids = [c.id for c in cases]
    session_case = db.session.execute(
        select(SurveySession.case_pk).where(
            SurveySession.phone == phone, SurveySession.status == "open", SurveySession.case_pk.in_(ids)
        )
    ).scalar()
    if session_case is not None:
        chosen = next(c for c in cases if c.id == session_case)
        why = "it has an open survey session"
    else:
        chosen = _most_recently_active(cases, ids)
        why = "it is the most recently active" + (" open case" if not chosen.closed else " case")
    return (
        chosen,
        len(cases),
        f"This number belongs to {len(cases)} cases; routed to {_label(chosen)} because {why}.",
    )


def family_cases(phone: str, case_type: str | None = None) -> list[Case]:
    """The open cases sharing ``phone`` (of ``case_type`` when given), oldest first: two or more
    means a survey must ask which one it is about."""
    stmt = select(Case).where(Case.phone_number == phone, Case.deleted.is_(False), Case.closed.is_(False))
    if case_type:
        stmt = stmt.where(Case.case_type == case_type)
    return list(db.session.execute(stmt.order_by(Case.id)).scalars())


def _most_recently_active(cases: list[Case], ids: list[int]) -> Case:
    last_message = dict(
        db.session.execute(
            select(Message.case_id, func.max(Message.created_at))
            .where(Message.case_id.in_(ids))
            .group_by(Message.case_id)
        ).all()
    )

    def activity(c):
        latest = max(x for x in (c.modified_on, last_message.get(c.id)) if x is not None)
        return (not c.closed, latest, c.id)

    return max(cases, key=activity)


def _label(case: Case) -> str:
    return f"{case.name or 'case'} ({case.case_id})"
