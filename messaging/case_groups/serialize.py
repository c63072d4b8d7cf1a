"""THE JSON of case groups and their members (the API and exports alike).

- A group: its id, name, member count and times.
- A member is THE case JSON (``messaging.cases.serialize.case_json``) plus
  ``added_at``, the time it was added to the group.
- A candidate of an ambiguous identifier: its case's id, name, phone number,
  external ID and closed flag, and ``matched_by`` (how the identifier found it:
  ``phone_number``, ``external_id``, ``case_id``, in that order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.cases.serialize import case_json
from messaging.lib import clock
from messaging.models import CaseGroup, CaseGroupMember

if TYPE_CHECKING:
    from messaging.case_groups.adding import AddOutcome
    from messaging.case_groups.resolve import CaseRef


def group_json(group: CaseGroup, member_count: int) -> dict:
    return {
        "id": group.id,
        "name": group.name,
        "member_count": member_count,
        "filter": group.filter,
        "created_at": clock.isoformat(group.created_at),
        "modified_at": clock.isoformat(group.modified_at),
    }


def member_json(member: CaseGroupMember) -> dict:
    return {
        **case_json(member.case),
        "added_at": clock.isoformat(member.added_at) if member.added_at else None,
    }


def candidate_json(ref: CaseRef, matched_by: tuple[str, ...]) -> dict:
    return {
        "case_id": ref.case_id,
        "name": ref.name,
        "phone_number": ref.phone_number,
        "external_id": ref.external_id,
        "closed": ref.closed,
        "matched_by": list(matched_by),
    }


def candidates_json(outcome: AddOutcome) -> list[dict]:
    return [candidate_json(ref, how) for ref, how in outcome.candidates]
