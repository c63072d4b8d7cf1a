"""How an identifier finds a case (CommCare's look-up, set-based).

CommCare looks an identifier up as a phone number, then an external ID, then a
case ID, and takes the first case it finds. Here:

1. The identifier is trimmed. Blank, or longer than ``MAX_IDENTIFIER``
   characters: ``invalid``. A date or true/false cell is ``invalid`` too.
2. If it looks like a phone number (``messaging.case_groups.phones``), it is
   normalised to E.164 with the project's default country for national
   spellings (``0712 345 678`` in a Kenyan project) and matched against
   ``cases.phone_number``.
3. The same trimmed text is *also* matched exactly against ``external_id``
   and ``case_id`` (``case_id`` also in lower case). A number typed as an
   external ID therefore still finds its case.
4. All the cases found by any of the three are put together (a case found
   twice, e.g. by its phone and by its external ID, counts once). Deleted
   cases are set aside. Then:

   - exactly one case: that case (``match``);
   - several cases: ``ambiguous``. This includes a family phone shared by
     several cases, an external ID reused by several cases, and an identifier
     that is one case's phone number and *another* case's external ID. Nothing
     is added; the candidates are listed (at most ``MAX_CANDIDATES``) so the
     manager can add the one they mean by its case ID (``resolve_case_ids``
     matches the case ID only, so that always resolves);
   - none, but some deleted case matched: ``deleted``;
   - none at all: ``not_found``.

Resolution is set-based: at most four indexed queries find the cases of a
whole batch (up to ``CHUNK`` identifiers), separate rather than OR-ed (SQLite
would scan every case of the project for an OR over three indexes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import select

from messaging.case_groups.phones import phone_e164, quick_e164
from messaging.case_groups.results import AMBIGUOUS, DELETED, INVALID, MATCH, NOT_FOUND
from messaging.db import dialect
from messaging.db.dialect import in_values
from messaging.extensions import db
from messaging.models import Case, Project

MAX_IDENTIFIER = 255
MAX_CANDIDATES = 20
# Identifiers per look-up query in resolve_identifiers(): an import batch. PostgreSQL keeps
# to the indexes at this size with random_page_cost 1.1 (set per resolve: at the default
# of 4 it scanned the whole project's cases for 1,000 or more values at 100,000 cases).
CHUNK = 2000


class CaseRef(NamedTuple):
    """The few columns of a case that identifier look-ups need (a tuple: cheap to build)."""

    pk: int
    case_id: str
    name: str
    phone_number: str | None
    external_id: str | None
    closed: bool
    deleted: bool


@dataclass
class Resolution:
    """What one identifier resolved to.

    ``result`` is ``match``, ``ambiguous``, ``deleted``, ``not_found`` or
    ``invalid``; ``case`` is set for ``match`` (and for ``deleted`` when one
    deleted case matched); ``candidates`` lists ``(case, matched_by)`` for
    ``ambiguous`` (at most ``MAX_CANDIDATES``; ``candidate_count`` has them all).
    ``key`` is the same for two identifiers that mean the same thing.
    """

    result: str
    key: str
    case: CaseRef | None = None
    candidates: list[tuple[CaseRef, tuple[str, ...]]] = field(default_factory=list)
    candidate_count: int = 0
    phone: str | None = None
    message: str = ""


def identifier_text(value: object) -> str | None:
    """A cell or JSON value as identifier text (``None`` when it cannot be one).

    Whole numbers (Excel's numeric cells) become their digits; text is trimmed.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and value.is_integer():
            return str(int(Decimal(value)))
        return str(value)
    if isinstance(value, datetime | date | time):
        return None
    return str(value).strip()


def unresolved_key(text: str, e164: str | None) -> str:
    """The ``Resolution.key`` of an identifier that found no one case: its phone, else its text."""
    return f"phone:{e164}" if e164 else f"text:{text}"


def blank_message(identifier: object) -> str:
    """Why a value is ``invalid``: blank, or not text at all (a date, true/false)."""
    if identifier is None or (isinstance(identifier, str) and not identifier.strip()):
        return "The identifier is blank."
    return "This is not a phone number, external ID or case ID."


def resolve_identifiers(project: Project, identifiers: Sequence[str]) -> dict[str, Resolution]:
    """Resolve each identifier as the module docstring says, ``CHUNK`` per query.

    Returns a dict keyed by each identifier exactly as given.
    """
    region = project.default_country
    out: dict[str, Resolution] = {}
    pending: list[tuple[str, str]] = []  # (identifier, trimmed text)
    for identifier in dict.fromkeys(identifiers):
        text = identifier.strip() if isinstance(identifier, str) else None
        if not text:
            out[identifier] = Resolution(
                INVALID, f"invalid:{identifier!r}", message=blank_message(identifier)
            )
            continue
        if len(text) > MAX_IDENTIFIER:
            out[identifier] = Resolution(
                INVALID,
                f"invalid:{text}",
                message=f"Too long for a phone number, external ID or case ID (over {MAX_IDENTIFIER} "
                "characters).",
            )
            continue
        pending.append((identifier, text))
    if pending:
        # The look-ups read a few hundred cases through an index of a table in cache.
        dialect.prefer_index_lookups()
    for start in range(0, len(pending), CHUNK):
        out.update(_resolve_chunk(pending[start : start + CHUNK], region, project.id))
    return out


def resolve_case_ids(identifiers: Sequence[str]) -> dict[str, Resolution]:
    """Exact case ID look-up, for picking one of several candidates."""
    texts = {i: (i.strip().lower() if isinstance(i, str) else "") for i in identifiers}
    wanted = {t for t in texts.values() if t and len(t) <= MAX_IDENTIFIER}
    refs = {}
    if wanted:
        for row in db.session.execute(select(*_CASE_COLUMNS).where(Case.case_id.in_(wanted))):
            refs[row.case_id] = _ref(row)
    out = {}
    for identifier, text in texts.items():
        if not text:
            out[identifier] = Resolution(INVALID, "invalid:", message="The case ID is blank.")
        elif text not in refs:
            out[identifier] = Resolution(NOT_FOUND, f"text:{text}", message="No case has this case ID.")
        elif refs[text].deleted:
            out[identifier] = Resolution(
                DELETED, f"text:{text}", case=refs[text], message="This case has been deleted."
            )
        else:
            out[identifier] = Resolution(MATCH, f"case:{refs[text].case_id}", case=refs[text])
    return out


_CASE_COLUMNS = (
    Case.id,
    Case.case_id,
    Case.name,
    Case.phone_number,
    Case.external_id,
    Case.closed,
    Case.deleted,
)


_CASE_CORE_COLUMNS = tuple(Case.__table__.c[column.key] for column in _CASE_COLUMNS)


def _ref(row) -> CaseRef:
    pk, case_id, name, phone_number, external_id, closed, deleted = row
    return CaseRef(pk, case_id, name or "", phone_number, external_id, closed, deleted)


def _resolve_chunk(
    chunk: list[tuple[str, str]], region: str | None, project_id: int
) -> dict[str, Resolution]:
    """At most four indexed queries for a chunk (separate, not OR-ed: SQLite would
    scan every case of the project for an OR over three indexes).

    Core statements with the project's condition written out: the ORM's tenant
    scoping costs more per query than the query itself here."""
    quick = {identifier: quick_e164(text, region) for identifier, text in chunk}
    texts = {text for _, text in chunk}
    case_ids = texts | {t.lower() for t in texts}
    rows: dict[int, CaseRef] = {}

    connection = db.session.connection()
    cases = Case.__table__

    def fetch(column, values) -> None:
        stmt = select(*_CASE_CORE_COLUMNS).where(cases.c.project_id == project_id, in_values(column, values))
        for row in connection.execute(stmt).all():  # one fetchall, not a fetch per row
            rows.setdefault(row[0], _ref(row))

    candidates = {q for q in quick.values() if q}
    if candidates:
        fetch(cases.c.phone_number, list(candidates))
    stored = {ref.phone_number for ref in rows.values()}
    phones: dict[str, str | None] = {}
    for identifier, text in chunk:
        q = quick[identifier]
        phones[identifier] = q if q in stored else phone_e164(text, region)
    missing = {p for p in phones.values() if p and p not in stored}
    if missing:
        fetch(cases.c.phone_number, list(missing))
    fetch(cases.c.external_id, list(texts))
    fetch(cases.c.case_id, list(case_ids))

    found = _matches(chunk, phones, rows.values())
    return {
        identifier: _decide(found.get(identifier, {}), text, phones[identifier]) for identifier, text in chunk
    }


def _matches(
    chunk: list[tuple[str, str]], phones: dict[str, str | None], refs: Iterable[CaseRef]
) -> dict[str, dict[int, tuple[CaseRef, set[str]]]]:
    """For each identifier, the cases it found (by pk) and how (phone_number, external_id, case_id)."""
    by_phone: dict[str, list[str]] = {}
    by_text: dict[str, list[str]] = {}
    by_case_id: dict[str, list[str]] = {}
    for identifier, text in chunk:
        if phones[identifier]:
            by_phone.setdefault(phones[identifier], []).append(identifier)
        by_text.setdefault(text, []).append(identifier)
        by_case_id.setdefault(text, []).append(identifier)
        if text.lower() != text:
            by_case_id.setdefault(text.lower(), []).append(identifier)
    found: dict[str, dict[int, tuple[CaseRef, set[str]]]] = {}

    def note(identifiers: list[str], ref: CaseRef, how: str) -> None:
        for identifier in identifiers:
            entry = found.setdefault(identifier, {}).setdefault(ref.pk, (ref, set()))
            entry[1].add(how)

    for ref in refs:  # a case usually matches one way: look before calling
        if ref.phone_number and (identifiers := by_phone.get(ref.phone_number)):
            note(identifiers, ref, "phone_number")
        if ref.external_id is not None and (identifiers := by_text.get(ref.external_id)):
            note(identifiers, ref, "external_id")
        if identifiers := by_case_id.get(ref.case_id):
            note(identifiers, ref, "case_id")
    return found


_HOW_ORDER = {"phone_number": 0, "external_id": 1, "case_id": 2}


def _decide(matches: dict[int, tuple[CaseRef, set[str]]], text: str, e164: str | None) -> Resolution:
    key = unresolved_key(text, e164)
    live = [(ref, how) for ref, how in matches.values() if not ref.deleted]
    if len(live) == 1:
        ref = live[0][0]
        return Resolution(MATCH, f"case:{ref.case_id}", case=ref, phone=e164)
    if len(live) > 1:
        live.sort(key=lambda m: (m[0].closed, m[0].name.lower(), m[0].case_id))
        candidates = [(ref, tuple(sorted(how, key=_HOW_ORDER.get))) for ref, how in live[:MAX_CANDIDATES]]
        listed = ", ".join(f"{ref.case_id} ({ref.name or 'no name'})" for ref, _ in candidates[:5])
        more = f" and {len(live) - 5} more" if len(live) > 5 else ""
        return Resolution(
            AMBIGUOUS,
            key,
            candidates=candidates,
            candidate_count=len(live),
            phone=e164,
            message=f"{len(live)} cases match: {listed}{more}. Nothing was added: add the one you "
            "mean by its case ID.",
        )
    if matches:
        ref = next(iter(matches.values()))[0]
        return Resolution(DELETED, key, case=ref, phone=e164, message="This case has been deleted.")
    return Resolution(
        NOT_FOUND,
        key,
        phone=e164,
        message="No case has this phone number, external ID or case ID.",
    )
