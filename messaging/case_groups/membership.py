"""Case groups: named lists of cases, filled by identifier or from Excel (seed 003).

Views (web and API) call these functions; they raise a ``DomainError`` for a
refusal and leave the commit to the caller.

How an identifier finds a case
------------------------------
CommCare looks an identifier up as a phone number, then an external ID, then a
case ID, and takes the first case it finds. Here:

1. The identifier is trimmed. Blank, or longer than ``MAX_IDENTIFIER``
   characters: ``invalid``. A date or true/false cell is ``invalid`` too.
2. If it looks like a phone number (:func:`messaging.lib.phones.looks_like_phone`:
   digits with ``+``, spaces, dashes, brackets, ``00``, Excel's ``254712345678.0``
   or ``2.54712345678E+11``), it is normalised to E.164 with the project's
   default country for national spellings (``0712 345 678`` in a Kenyan
   project) and matched against ``cases.phone_number``.
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
     is added; the candidates are listed so the manager can add the one they
     mean by its case ID (:func:`add_by_identifier` with ``by="case_id"``
     matches the case ID only, so that always resolves);
   - none, but some deleted case matched: ``deleted``;
   - none at all: ``not_found``.

What happens to a matched case, in this order: already in the group:
``already_member`` (even if it is closed since); closed: ``closed``
(refused); otherwise ``added`` (``would_add`` in a dry run).

Excel imports add one more result, ``duplicate_in_file``: a row that resolves
to the same case as an earlier row of the file (whatever the spelling: the
phone in row 2 and the case ID in row 9), or that repeats an earlier row's
unresolved identifier. It is reported with the first row's number and never
added twice. A dry run gives the same per-row results as the real run would,
with ``would_add`` in place of ``added``, and changes nothing.

Resolution is set-based: one query finds the cases of a whole batch (up to
``imports.BATCH_SIZE`` identifiers), one finds their memberships, one the
earlier rows of the same import, and one multi-row ``INSERT ... ON CONFLICT
DO NOTHING RETURNING`` adds them, so two imports (or a click and an import)
racing on the same case add it once and each reports truthfully.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import NamedTuple

import phonenumbers
from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    String,
    delete,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager

from messaging.db import dialect
from messaging.db.dialect import in_values, insert_ignoring_conflicts
from messaging.errors import Conflict, Invalid, NotFound
from messaging.extensions import db
from messaging.imports import runner as imports
from messaging.lib import clock
from messaging.lib.phones import looks_like_phone, normalize_phone
from messaging.lib.xlsx import make_example_workbook
from messaging.models import Case, CaseGroup, CaseGroupMember, Project

log = logging.getLogger(__name__)

MAX_NAME = 200
MAX_IDENTIFIER = 255
MAX_CANDIDATES = 20
# Identifiers per look-up query in resolve_identifiers(): an import batch. PostgreSQL keeps
# to the indexes at this size with random_page_cost 1.1 (set per resolve: at the default
# of 4 it scanned the whole project's cases for 1,000 or more values at 100,000 cases).
CHUNK = 2000
IMPORT_KIND = "case_group"
IMPORT_HEADER = "case_identifier"
EXAMPLE_FILENAME = "cases_bulk_example.xlsx"
EXAMPLE_ROWS = [["254712345678"], ["PATIENT-0042"]]

# Results of adding one identifier (per import row, and in the API answer).
ADDED = "added"
WOULD_ADD = "would_add"
ALREADY_MEMBER = "already_member"
NOT_FOUND = "not_found"
AMBIGUOUS = "ambiguous"
INVALID = "invalid"
CLOSED = "closed"
DELETED = "deleted"
DUPLICATE_IN_FILE = "duplicate_in_file"
ERROR = "error"

RESULT_LABELS = {
    ADDED: "Added",
    WOULD_ADD: "Would be added",
    ALREADY_MEMBER: "Already in this group",
    NOT_FOUND: "Not found",
    AMBIGUOUS: "Several cases match",
    INVALID: "Not an identifier",
    CLOSED: "Case closed",
    DELETED: "Case deleted",
    DUPLICATE_IN_FILE: "Repeated in the file",
    ERROR: "Error",
}

# How the API answers each result of a single add: (status, error code or None).
API_STATUS = {
    ADDED: (201, None),
    ALREADY_MEMBER: (200, None),
    NOT_FOUND: (404, "not_found"),
    AMBIGUOUS: (409, "ambiguous"),
    CLOSED: (422, "case_closed"),
    DELETED: (422, "case_deleted"),
    INVALID: (400, "invalid_identifier"),
}


# --- results ---------------------------------------------------------------------


class CaseRef(NamedTuple):
    """The few columns of a case that identifier look-ups need (a tuple: cheap to build)."""

    pk: int
    case_id: str
    name: str
    phone_number: str | None
    external_id: str | None
    closed: bool
    deleted: bool

    def as_dict(self) -> dict:
        return {
            "case_id": self.case_id,
            "name": self.name,
            "phone_number": self.phone_number,
            "external_id": self.external_id,
            "closed": self.closed,
        }


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


@dataclass
class AddOutcome:
    identifier: str | None
    result: str
    message: str
    case: CaseRef | None = None
    candidates: list[tuple[CaseRef, tuple[str, ...]]] = field(default_factory=list)
    candidate_count: int = 0

    def candidates_json(self) -> list[dict]:
        return [{**c.as_dict(), "matched_by": list(by)} for c, by in self.candidates]


# --- groups ----------------------------------------------------------------------


def _check_name(name: str | None, exclude_id: str | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise Invalid("validation_error", "name: is required.", field="name")
    if len(name) > MAX_NAME:
        raise Invalid("validation_error", f"name: must be at most {MAX_NAME} characters.", field="name")
    stmt = select(CaseGroup.id).where(func.lower(CaseGroup.name) == name.lower())
    if exclude_id:
        stmt = stmt.where(CaseGroup.id != exclude_id)
    if db.session.execute(stmt).first():
        raise _duplicate(name)
    return name


def _duplicate(name: str) -> Conflict:
    return Conflict(
        "duplicate_name",
        f"A case group named '{name}' already exists. Choose another name.",
        details={"name": name},
    )


def _flush_unique(name: str) -> None:
    """Flush; a concurrent request that took the name first makes this a 409."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise _duplicate(name) from None


def create_group(name: str, user_id: int | None = None) -> CaseGroup:
    """A new, empty group. A name already used in the project (any case) is a 409."""
    name = _check_name(name)
    now = clock.now()
    group = CaseGroup(name=name, created_by=user_id, created_at=now, modified_at=now)
    db.session.add(group)
    _flush_unique(name)
    log.info("case group created group_id=%s user_id=%s", group.id, user_id)
    return group


def rename_group(group: CaseGroup, name: str) -> CaseGroup:
    name = _check_name(name, exclude_id=group.id)
    group.name = name
    group.modified_at = clock.now()
    _flush_unique(name)
    return group


def delete_group(group: CaseGroup) -> int:
    """Delete the group and its member links; the cases stay. Returns the member count."""
    removed = db.session.execute(delete(CaseGroupMember).where(CaseGroupMember.group_id == group.id)).rowcount
    db.session.delete(group)
    db.session.flush()
    log.info("case group deleted group_id=%s members=%s", group.id, removed)
    return removed


def member_counts(group_ids: Iterable[str]) -> dict[str, int]:
    ids = list(group_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(CaseGroupMember.group_id, func.count())
        .where(CaseGroupMember.group_id.in_(ids))
        .group_by(CaseGroupMember.group_id)
    )
    counts = dict.fromkeys(ids, 0)
    counts.update({group_id: n for group_id, n in rows})
    return counts


def list_groups() -> list[tuple[CaseGroup, int]]:
    """Every group of the project by name, with its member count (one query)."""
    count = (
        select(func.count())
        .select_from(CaseGroupMember)
        .where(CaseGroupMember.group_id == CaseGroup.id)
        .scalar_subquery()
    )
    rows = db.session.execute(select(CaseGroup, count).order_by(func.lower(CaseGroup.name), CaseGroup.id))
    return [(group, n) for group, n in rows]


# --- members ---------------------------------------------------------------------


def members_query(group: CaseGroup, q: str | None = None):
    """A select of the group's ``CaseGroupMember`` rows with their ``case`` loaded.

    ``q`` searches the case name and external ID (contains, any case), the
    case ID (starts with), and the phone number (the same number in any
    spelling, or a run of at least 3 digits anywhere in it).
    """
    stmt = (
        select(CaseGroupMember)
        .join(Case, Case.id == CaseGroupMember.case_pk)
        .where(CaseGroupMember.group_id == group.id)
        .options(contains_eager(CaseGroupMember.case))
    )
    q = (q or "").strip()[:MAX_IDENTIFIER]
    if q:
        conditions = [
            Case.name.ilike(f"%{_escape_like(q)}%", escape="\\"),
            Case.external_id.ilike(f"%{_escape_like(q)}%", escape="\\"),
            Case.case_id.startswith(q.lower(), autoescape=True),
        ]
        digits = "".join(ch for ch in q if ch.isdigit())
        if looks_like_phone(q):
            e164 = normalize_phone(q, _project(group).default_country)
            if e164:
                conditions.append(Case.phone_number == e164)
        if len(digits) >= 3 and all(ch.isdigit() or ch in "+ -()." for ch in q):
            conditions.append(Case.phone_number.contains(digits, autoescape=True))
        stmt = stmt.where(or_(*conditions))
    return stmt


def member_order():
    """Key columns for the member list: newest first, unique (ends with the case)."""
    return [CaseGroupMember.added_at, CaseGroupMember.case_pk]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def remove_case(group: CaseGroup, case_id: str) -> bool:
    """Take the case (by its public ``case_id``) out of the group.

    Raises 404 when the project has no such case; returns False when the case
    was not a member.
    """
    pk = db.session.execute(select(Case.id).where(Case.case_id == case_id)).scalar_one_or_none()
    if pk is None:
        raise NotFound("not_found", "There is no case with this case ID.", details={"case_id": case_id})
    removed = db.session.execute(
        delete(CaseGroupMember).where(CaseGroupMember.group_id == group.id, CaseGroupMember.case_pk == pk)
    ).rowcount
    if removed:
        log.info("case removed from group group_id=%s case_id=%s", group.id, case_id)
    return bool(removed)


# --- resolving identifiers --------------------------------------------------------


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
                INVALID, f"invalid:{identifier!r}", message=_message_blank(identifier)
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


def phone_e164(text: str, region: str | None) -> str | None:
    """``normalize_phone(text, region)`` if ``text`` looks like a phone number, else ``None``.

    The same answers, faster for plain digit strings (the seed's
    ``254712345678``, national ``0712345678``, Excel's numeric cells): the
    normaliser parses such a number both as international and as national and
    then picks one by its country code; here the reading that would win is
    tried first and the other only when it is not valid (about twice as fast;
    ``tests/unit/test_case_group_phones.py`` checks the two agree).
    """
    if not (text.isascii() and text.isdigit()):
        return normalize_phone(text, region) if looks_like_phone(text) else None
    if not 7 <= len(text) <= 18:
        return None
    if text.startswith("00") or text.startswith("011") or region not in _COUNTRY_CODES:
        return normalize_phone(text, region)
    if len(text) >= 10 and text.startswith(_COUNTRY_CODES[region]):
        return _valid_phone("+" + text, None) or _valid_phone(text, region)
    return _valid_phone(text, region) or (_valid_phone("+" + text, None) if len(text) >= 10 else None)


_COUNTRY_CODES = {r: str(phonenumbers.country_code_for_region(r)) for r in phonenumbers.SUPPORTED_REGIONS}


def _valid_phone(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _message_blank(identifier: object) -> str:
    if identifier is None or (isinstance(identifier, str) and not identifier.strip()):
        return "The identifier is blank."
    return "This is not a phone number, external ID or case ID."


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


_PLUS_DIGITS = re.compile(r"\+\d[\d \-]*")
_NATIONAL_DIGITS = re.compile(r"0\d[\d \-]*")


def _simple_national_prefixes() -> dict[str, tuple[str, re.Pattern]]:
    """Regions whose national prefix is a plain ``0`` (Kenya's ``0712 345 678``):
    region -> (country code, international dialling prefix as a pattern)."""
    out = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if meta and meta.national_prefix_for_parsing == "0" and meta.national_prefix_transform_rule is None:
            out[region] = (str(meta.country_code), re.compile(meta.international_prefix or "(?!)"))
    return out


_SIMPLE_NATIONAL = _simple_national_prefixes()


def _quick_e164(text: str, region: str | None) -> str | None:
    """A phone candidate found without phonenumbers, for the common spellings.

    ``+254 712 345 678``, in a project whose country code they start with
    ``254712345678`` (text or a numeric cell), and in a project whose
    national prefix is a plain ``0`` the national ``0712 345 678``, normalise
    to ``+`` and their digits (the national prefix replaced by the country
    code) whenever that is a valid number. Phone numbers in the database are
    stored normalised (canonical E.164), so when the candidate equals a stored
    number it *is* the normalised identifier; only candidates that match no
    case go through the full normaliser
    (``tests/unit/test_case_group_phones.py`` checks the two agree).
    """
    if text[0] == "+":
        if not _PLUS_DIGITS.fullmatch(text):
            return None
        digits = text[1:].replace(" ", "").replace("-", "")
    elif text[0] == "0":
        simple = _SIMPLE_NATIONAL.get(region)
        if simple is None or not _NATIONAL_DIGITS.fullmatch(text):
            return None
        national = text.replace(" ", "").replace("-", "")
        if simple[1].match(national):  # starts with the international prefix (KE: 000)
            return None
        digits = simple[0] + national[1:]
    elif text.isascii() and text.isdigit() and region in _COUNTRY_CODES:
        if len(text) < 10 or not text.startswith(_COUNTRY_CODES[region]):
            return None
        digits = text
    else:
        return None
    return "+" + digits if 8 <= len(digits) <= 15 else None


def _resolve_chunk(
    chunk: list[tuple[str, str]], region: str | None, project_id: int
) -> dict[str, Resolution]:
    """At most four indexed queries for a chunk (separate, not OR-ed: SQLite would
    scan every case of the project for an OR over three indexes).

    Core statements with the project's condition written out: the ORM's tenant
    scoping costs more per query than the query itself here."""
    quick = {identifier: _quick_e164(text, region) for identifier, text in chunk}
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

    for ref in rows.values():  # a case usually matches one way: look before calling
        if ref.phone_number and (identifiers := by_phone.get(ref.phone_number)):
            note(identifiers, ref, "phone_number")
        if ref.external_id is not None and (identifiers := by_text.get(ref.external_id)):
            note(identifiers, ref, "external_id")
        if identifiers := by_case_id.get(ref.case_id):
            note(identifiers, ref, "case_id")

    return {
        identifier: _decide(found.get(identifier, {}), text, phones[identifier]) for identifier, text in chunk
    }


_HOW_ORDER = {"phone_number": 0, "external_id": 1, "case_id": 2}


def _decide(matches: dict[int, tuple[CaseRef, set[str]]], text: str, e164: str | None) -> Resolution:
    unresolved_key = f"phone:{e164}" if e164 else f"text:{text}"
    live = [(ref, how) for ref, how in matches.values() if not ref.deleted]
    if len(live) == 1:
        ref = live[0][0]
        return Resolution("match", f"case:{ref.case_id}", case=ref, phone=e164)
    if len(live) > 1:
        live.sort(key=lambda m: (m[0].closed, m[0].name.lower(), m[0].case_id))
        candidates = [(ref, tuple(sorted(how, key=_HOW_ORDER.get))) for ref, how in live[:MAX_CANDIDATES]]
        listed = ", ".join(f"{ref.case_id} ({ref.name or 'no name'})" for ref, _ in candidates[:5])
        more = f" and {len(live) - 5} more" if len(live) > 5 else ""
        return Resolution(
            AMBIGUOUS,
            unresolved_key,
            candidates=candidates,
            candidate_count=len(live),
            phone=e164,
            message=f"{len(live)} cases match: {listed}{more}. Nothing was added: add the one you "
            "mean by its case ID.",
        )
    if matches:
        ref = next(iter(matches.values()))[0]
        return Resolution(
            DELETED, unresolved_key, case=ref, phone=e164, message="This case has been deleted."
        )
    return Resolution(
        NOT_FOUND,
        unresolved_key,
        phone=e164,
        message="No case has this phone number, external ID or case ID.",
    )


def _resolve_case_ids(identifiers: Sequence[str]) -> dict[str, Resolution]:
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
            out[identifier] = Resolution("match", f"case:{refs[text].case_id}", case=refs[text])
    return out


# --- adding ------------------------------------------------------------------------


def _project(group: CaseGroup) -> Project:
    return db.session.get(Project, group.project_id)


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
    plan = plan_adds(group, rows, by=by, dry_run=dry_run, user_id=user_id, seen=seen)
    return apply_adds(group, plan)


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
    lookup = [t for t in texts if t is not None]
    if by == "case_id":
        resolved = _resolve_case_ids(lookup)
    else:
        resolved = resolve_identifiers(_project(group), lookup)

    def resolution(index: int) -> Resolution:
        text = texts[index]
        if text is None:
            return Resolution(INVALID, "invalid:", message=_message_blank(rows[index][1]))
        return resolved[text]

    resolutions = [resolution(i) for i in range(len(rows))]
    # Membership is asked for only where the insert cannot answer it: a closed
    # case (not inserted, but "already a member" beats "closed") and a dry run.
    members = _members_among(
        group.id, {r.case.pk for r in resolutions if r.result == "match" and (dry_run or r.case.closed)}
    )

    outcomes: list[AddOutcome | None] = [None] * len(rows)
    first_row: dict[str, int] = {}
    to_add: dict[int, list[int]] = {}  # case pk -> row indexes
    for index, ((number, _), text, res) in enumerate(zip(rows, texts, resolutions, strict=True)):
        if seen is not None and res.result != INVALID:
            earlier = seen.get(res.key) or first_row.get(res.key)
            if earlier is not None:
                what = "the same case as" if res.result == "match" else "a repeat of"
                outcomes[index] = AddOutcome(
                    text,
                    DUPLICATE_IN_FILE,
                    f"This is {what} row {earlier}; it is not added twice.",
                    case=res.case if res.result == "match" else None,
                )
                continue
            first_row[res.key] = number
        if res.result != "match":
            outcomes[index] = AddOutcome(
                text, res.result, res.message, res.case, res.candidates, res.candidate_count
            )
        elif res.case.pk in members:
            note = " (The case is closed.)" if res.case.closed else ""
            outcomes[index] = AddOutcome(text, ALREADY_MEMBER, "Already in this group." + note, res.case)
        elif res.case.closed:
            outcomes[index] = AddOutcome(text, CLOSED, "This case is closed, so it was not added.", res.case)
        else:
            to_add.setdefault(res.case.pk, []).append(index)
    if seen is not None:
        for key, number in first_row.items():
            seen.setdefault(key, number)
    cases = [res.case for res in resolutions]
    return AddPlan(texts, cases, outcomes, to_add, dry_run, user_id)


def apply_adds(group: CaseGroup, plan: AddPlan) -> list[AddOutcome]:
    """Insert the planned members (none in a dry run); one outcome per row, in order.
    The caller commits."""
    outcomes = list(plan.outcomes)
    if plan.to_add:
        inserted = (
            set(plan.to_add) if plan.dry_run else _insert_members(group.id, list(plan.to_add), plan.user_id)
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


def _members_among(group_id: str, pks: set[int]) -> set[int]:
    if not pks:
        return set()
    members = CaseGroupMember.__table__
    return set(
        db.session.connection()
        .execute(
            select(members.c.case_pk).where(
                members.c.group_id == group_id, in_values(members.c.case_pk, pks, BigInteger)
            )
        )
        .scalars()
    )


def _rebuild_seen(imp, region: str | None) -> dict[str, int]:
    """The ``seen`` keys of the rows a previous run of this import recorded (a resumed
    import reports repeats of those rows as an uninterrupted one would)."""
    seen: dict[str, int] = {}
    for number, identifier, result, case_id, _ in imports.iter_outcomes(imp.id):
        if result in (INVALID, ERROR, DUPLICATE_IN_FILE) or identifier is None:
            continue
        if case_id and result in (ADDED, WOULD_ADD, ALREADY_MEMBER, CLOSED):
            key = f"case:{case_id}"
        else:
            e164 = phone_e164(identifier, region)
            key = f"phone:{e164}" if e164 else f"text:{identifier}"
        seen.setdefault(key, number)
    return seen


def _insert_members(group_id: str, pks: list[int], user_id: int | None) -> set[int]:
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


# --- Excel ---------------------------------------------------------------------------


def example_workbook() -> bytes:
    """``cases_bulk_example.xlsx``: the ``case_identifier`` column and two example rows."""
    return make_example_workbook([IMPORT_HEADER], EXAMPLE_ROWS)


def start_group_import(
    group: CaseGroup, data: bytes, filename: str, *, dry_run: bool = False, user_id: int | None = None
):
    """Check and store the upload and queue the job (commits); raises a ``DomainError`` on a refused file."""
    return imports.start_import(
        IMPORT_KIND, data, filename, target_id=group.id, dry_run=dry_run, user_id=user_id
    )


def _group_deleted(batch) -> list[imports.RowOutcome]:
    return [
        imports.RowOutcome(
            number,
            identifier_text(record.get(IMPORT_HEADER)),
            ERROR,
            message="The case group was deleted during the import.",
        )
        for number, record in batch
    ]


def _plan_import_batch(imp, batch, state: dict) -> AddPlan | None:
    """The import's planning step (reads only): ``None`` when the group is gone."""
    group = db.session.get(CaseGroup, imp.target_id)
    if group is None:
        return None
    if "seen" not in state:
        state["seen"] = _rebuild_seen(imp, _project(group).default_country) if imp.processed else {}
    return plan_adds(
        group,
        [(number, record.get(IMPORT_HEADER)) for number, record in batch],
        dry_run=imp.dry_run,
        user_id=imp.created_by,
        seen=state["seen"],
    )


def _split_import_plan(plan: AddPlan | None, index: int) -> AddPlan | None:
    return plan.only(index) if plan is not None else None


def _apply_import_plan(imp, batch, plan: AddPlan | None) -> list[imports.RowOutcome]:
    """The import's writing step: the planned members inserted, a result per row."""
    group = db.session.get(CaseGroup, imp.target_id) if plan is not None else None
    if group is None:
        return _group_deleted(batch)
    return [
        imports.RowOutcome(
            number,
            outcome.identifier,
            outcome.result,
            outcome.case.case_id if outcome.case else None,
            outcome.message,
        )
        for (number, _), outcome in zip(batch, apply_adds(group, plan), strict=True)
    ]


def _import_target_link(imp) -> tuple[str, str] | None:
    from flask import url_for

    group = db.session.get(CaseGroup, imp.target_id) if imp.target_id else None
    if group is None:
        return None
    return f"Back to {group.name}", url_for("web.case_group", case_group_id=group.id)


imports.register(
    imports.ImportHandler(
        kind=IMPORT_KIND,
        label="Add cases to a case group",
        required_header=IMPORT_HEADER,
        plan_batch=_plan_import_batch,
        apply_plan=_apply_import_plan,
        split_plan=_split_import_plan,
        result_labels=RESULT_LABELS,
        target_link=_import_target_link,
    )
)
