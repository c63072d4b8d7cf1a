"""Cases and forms: CommCare's owner rules, in the one module everything calls.

The API (``POST /api/v1/forms``), the web UI, the bulk case upload and SMS
surveys all change cases through this module, so the rules below hold
whichever way a change arrives.

Entry points
------------
``apply_form(payload, *, source="api", on_applied=None) -> FormResult``
    Validate and apply one form (its own transaction: it commits on success,
    rolls back and raises a ``DomainError`` on any refusal, so nothing is written).
``resolve_new_owner(app, user, owner_id) -> str``
    The owner of a case a user creates (the case-sharing rules).
``check_owner_allowed(user, owner_id)``
    An explicit ``owner_id`` must be the user or one of their case-sharing groups.
``known_owner(owner_id) -> MobileWorker | UserGroup | None``
    For callers without a submitting user (bulk upload).
``set_case_phone(case, raw, default_region)``
    Parse a phone number with ``phonenumbers``; keep an invalid one raw, flagged.
``user_case_list_stmt(user_id)``
    The user's case list: open cases owned by the user or any of their case-sharing groups.

The rules (CommCare's, seeds 000-002)
-------------------------------------
- Forms apply in the order the server receives them, each in one transaction.
  Cases a form touches are locked (``SELECT ... FOR UPDATE`` on PostgreSQL, in
  case-id order so two forms never deadlock; SQLite serialises writers), and
  re-read under the lock, so two forms racing on one case never lose an update.
- A repeated ``form_id`` changes nothing and returns the first result
  (``FormResult.duplicate`` is True). The unique constraint on
  ``(project_id, form_id)`` makes this race-safe: the loser of a race rolls
  back and answers with the winner's result.
- New case, no ``owner_id``: with case sharing on in the application, the
  user's one case-sharing group owns it; a user in none or in several is
  refused (422 ``case_sharing_no_group`` / ``case_sharing_multiple_groups``,
  CommCare's message) and nothing is written. With case sharing off, the user
  owns it.
- An explicit ``owner_id`` (in ``create`` or ``update``) must be the user or one
  of the user's case-sharing groups, else 422 ``owner_not_allowed``.
- Turning case sharing on later changes no existing owner (nothing here ever
  reassigns an owner except a form that sets ``owner_id``).
- ``user_id`` is always the last submitter; ``owner_id`` changes only when a
  form sets it.
- An update to a closed case updates it and leaves it closed (no reopen).
- Cases are not tied to an application: any application of the project may
  update a case, so cases of one case type are shared across applications.
- A ``create`` for a case that already exists is applied as an update of its
  name, type and (explicit) owner -- CommCare's semantics for a phone that
  resends a registration form under a new form id. A block for an unknown
  ``case_id`` without ``create`` is 422 ``case_not_found``.
- Unknown ``app_id`` / ``user_id`` in this project: 422 ``unknown_application`` /
  ``unknown_user``. Malformed input: 400 ``validation_error`` with the field.

Case block keys: ``update`` keys ``external_id``, ``phone_number`` and
``language`` set those fields; ``case_name``, ``case_type`` and ``owner_id`` set
those (as in CommCare's update block); every other key is a case property. A
property set to ``null`` is removed.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from messaging.db import dialect, tenancy
from messaging.errors import Conflict, Invalid, RuleBroken
from messaging.extensions import db
from messaging.forwarding import sender as forwarding
from messaging.lib import clock
from messaging.models import (
    Application,
    Case,
    CaseTransaction,
    Form,
    GroupMembership,
    MobileWorker,
    Project,
    UserGroup,
)
from messaging.people.directory import case_sharing_groups

log = logging.getLogger(__name__)

# CommCare's own words (PRODUCT.md, seeds 000-002).
CASE_SHARING_MESSAGE = (
    "The case sharing settings for your user are incorrect. This user must be in exactly one "
    "case sharing group. Please contact your supervisor."
)

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
FIELD_KEYS = {"external_id", "phone_number", "language"}
CASE_KEYS = {"case_name", "case_type", "owner_id"}
PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
MAX_BLOCKS = 1000
MAX_VALUE_LENGTH = 10_000


@dataclass
class FormResult:
    """What applying a form produced (or, for a resubmission, the first result)."""

    form: Form
    duplicate: bool = False
    created_case_ids: list[str] = field(default_factory=list)

    @property
    def case_ids(self) -> list[str]:
        return list(self.form.case_ids or [])

    def as_json(self) -> dict:
        return {
            "form_id": self.form.form_id,
            "received_on": clock.isoformat(self.form.received_on),
            "case_ids": self.case_ids,
        }


# --- validation of the payload ------------------------------------------------------


def _bad(field_name: str, message: str) -> Invalid:
    return Invalid("validation_error", f"{field_name}: {message}", field=field_name)


def _id(value, field_name: str, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise _bad(field_name, "is required.")
        return None
    if not isinstance(value, str) or not ID_PATTERN.match(value.strip()):
        raise _bad(field_name, "must be an id: 1 to 64 letters, digits, '-', '_', '.' or ':'.")
    return value.strip()


def _scalar(value, field_name: str):
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_VALUE_LENGTH:
            raise _bad(field_name, f"must be at most {MAX_VALUE_LENGTH} characters.")
        return value
    raise _bad(field_name, "must be a string, number, true/false or null.")


def _text(value, field_name: str, max_length: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(field_name, "must be a string.")
    text = str(value).strip()
    if len(text) > max_length:
        raise _bad(field_name, f"must be at most {max_length} characters.")
    return text


@dataclass
class Block:
    case_id: str
    create: dict | None
    update: dict
    close: bool

    @property
    def kind(self) -> str:
        parts = (["create"] if self.create is not None else []) + (["update"] if self.update else [])
        return ",".join(parts + (["close"] if self.close else [])) or "noop"

    def as_json(self) -> dict:
        body: dict = {"case_id": self.case_id}
        if self.create is not None:
            body["create"] = self.create
        if self.update:
            body["update"] = self.update
        if self.close:
            body["close"] = True
        return body


def parse_blocks(raw_blocks) -> list[Block]:
    """Check the shape of the case blocks (400 on anything malformed)."""
    if raw_blocks is None:
        return []
    if not isinstance(raw_blocks, list):
        raise _bad("cases", "must be a list of case blocks.")
    if len(raw_blocks) > MAX_BLOCKS:
        raise _bad("cases", f"must have at most {MAX_BLOCKS} case blocks.")
    blocks = []
    for i, raw in enumerate(raw_blocks):
        where = f"cases[{i}]"
        if not isinstance(raw, dict):
            raise _bad(where, "must be an object.")
        unknown = set(raw) - {"case_id", "create", "update", "close"}
        if unknown:
            raise _bad(where, f"unknown keys: {', '.join(sorted(unknown))}.")
        create = raw.get("create")
        if create is not None:
            if not isinstance(create, dict):
                raise _bad(f"{where}.create", "must be an object.")
            extra = set(create) - {"case_type", "case_name", "owner_id"}
            if extra:
                raise _bad(f"{where}.create", f"unknown keys: {', '.join(sorted(extra))}.")
            case_type = _text(create.get("case_type"), f"{where}.create.case_type", 100)
            if not case_type:
                raise _bad(f"{where}.create.case_type", "is required.")
            create = {
                "case_type": case_type,
                "case_name": _text(create.get("case_name"), f"{where}.create.case_name", 255) or "",
                "owner_id": _id(create.get("owner_id"), f"{where}.create.owner_id", required=False),
            }
        # A create may leave out case_id: the server then makes one.
        case_id = _id(raw.get("case_id"), f"{where}.case_id", required=create is None)
        if case_id is None:
            from messaging.models import new_id

            case_id = new_id()
        update = raw.get("update") or {}
        if not isinstance(update, dict):
            raise _bad(f"{where}.update", "must be an object.")
        clean = {}
        for key, value in update.items():
            if not isinstance(key, str) or not PROPERTY_KEY.match(key):
                raise _bad(f"{where}.update", f"{key!r} is not a valid property name.")
            if key == "owner_id":
                clean[key] = _id(value, f"{where}.update.owner_id", required=True)
            elif key in ("case_type",):
                clean[key] = _text(value, f"{where}.update.{key}", 100) or None
                if not clean[key]:
                    raise _bad(f"{where}.update.case_type", "must not be empty.")
            elif key in FIELD_KEYS | {"case_name"}:
                clean[key] = _text(value, f"{where}.update.{key}", 255 if key != "language" else 16)
            else:
                clean[key] = _scalar(value, f"{where}.update.{key}")
        close = raw.get("close", False)
        if not isinstance(close, bool):
            raise _bad(f"{where}.close", "must be true or false.")
        blocks.append(Block(case_id, create, clean, close))
    return blocks


# --- owners ---------------------------------------------------------------------------


def resolve_new_owner(app: Application, user: MobileWorker, owner_id: str | None) -> str:
    """The owner of a case ``user`` creates with ``app`` (CommCare's rules)."""
    if owner_id:
        check_owner_allowed(user, owner_id)
        return owner_id
    if not app.case_sharing:
        return user.id
    groups = case_sharing_groups(user.id)
    if len(groups) == 1:
        return groups[0].id
    code = "case_sharing_no_group" if not groups else "case_sharing_multiple_groups"
    raise RuleBroken(
        code,
        CASE_SHARING_MESSAGE,
        details={"user_id": user.id, "case_sharing_groups": [g.id for g in groups]},
    )


def check_owner_allowed(user: MobileWorker, owner_id: str) -> None:
    """An explicit owner must be the user or one of the user's case-sharing groups."""
    if owner_id == user.id:
        return
    allowed = [g.id for g in case_sharing_groups(user.id)]
    if owner_id not in allowed:
        raise RuleBroken(
            "owner_not_allowed",
            "owner_id must be the submitting user or one of the user's case-sharing groups.",
            details={"owner_id": owner_id, "allowed": [user.id, *allowed]},
        )


def known_owner(owner_id: str):
    """The mobile worker or case-sharing group with this id in the project, or None."""
    worker = db.session.execute(select(MobileWorker).where(MobileWorker.id == owner_id)).scalar_one_or_none()
    if worker is not None:
        return worker
    group = db.session.execute(
        select(UserGroup).where(UserGroup.id == owner_id, UserGroup.case_sharing.is_(True))
    ).scalar_one_or_none()
    return group


def owner_ids_for(user_id: str) -> list[str]:
    """The ids whose cases are in the user's case list: the user and their case-sharing groups."""
    group_ids = db.session.execute(
        select(UserGroup.id)
        .join(GroupMembership, GroupMembership.group_id == UserGroup.id)
        .where(GroupMembership.user_id == user_id, UserGroup.case_sharing.is_(True))
    ).scalars()
    return [user_id, *group_ids]


def user_case_list_stmt(user_id: str):
    """Open cases owned by the user or any of their case-sharing groups (a supervisor sees all)."""
    return select(Case).where(
        Case.owner_id.in_(owner_ids_for(user_id)), Case.closed.is_(False), Case.deleted.is_(False)
    )


def owner_label(owner_id: str | None) -> str:
    """A person-readable owner: the worker's username or the group's name."""
    if not owner_id:
        return ""
    worker = db.session.execute(select(MobileWorker.username).where(MobileWorker.id == owner_id)).scalar()
    if worker:
        return worker
    group = db.session.execute(select(UserGroup.name).where(UserGroup.id == owner_id)).scalar()
    return f"{group} (group)" if group else owner_id


# --- phone numbers ------------------------------------------------------------------


def project_country(project_id: int | None = None) -> str:
    project_id = project_id or tenancy.current_project_id()
    return (
        db.session.execute(select(Project.default_country).where(Project.id == project_id)).scalar() or "US"
    )


def set_case_phone(case: Case, raw, default_region: str) -> None:
    """Store the number in E.164 beside the raw value; an invalid one is kept raw and flagged."""
    from messaging.lib.phones import normalize_phone

    text = "" if raw is None else str(raw).strip()
    if not text:
        case.phone_raw = None
        case.phone_number = None
        case.phone_invalid = False
        return
    e164 = normalize_phone(raw, default_region)
    case.phone_raw = text[:64]
    case.phone_number = e164
    case.phone_invalid = e164 is None


# --- applying a case block ----------------------------------------------------------


def apply_update(case: Case, update: dict, default_region: str) -> None:
    """Apply an ``update`` dict to a case (fields, CommCare keys, properties)."""
    props = dict(case.properties or {})
    for key, value in update.items():
        if key == "phone_number":
            set_case_phone(case, value, default_region)
        elif key == "external_id":
            case.external_id = value or None
        elif key == "language":
            case.language = value or None
        elif key == "case_name":
            case.name = value or ""
        elif key == "case_type":
            case.case_type = value
        elif key == "owner_id":
            case.owner_id = value
        elif value is None:
            props.pop(key, None)
        else:
            props[key] = value
    if props != (case.properties or {}):
        case.properties = props  # a new dict so the JSON column is marked changed


def _lock_cases(case_ids: list[str]) -> dict[str, Case]:
    if not case_ids:
        return {}
    stmt = (
        select(Case)
        .where(Case.case_id.in_(sorted(set(case_ids))), Case.deleted.is_(False))
        .order_by(Case.case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {c.case_id: c for c in db.session.execute(stmt).scalars()}


def _existing_form(form_id: str) -> Form | None:
    return db.session.execute(select(Form).where(Form.form_id == form_id)).scalar_one_or_none()


def apply_form(
    payload: dict,
    *,
    source: str = "api",
    on_applied: Callable[[FormResult], None] | None = None,
) -> FormResult:
    """Validate and apply one form in its own transaction; see the module docstring.

    ``payload``: ``{form_id?, app_id, user_id, answers?, cases: [block, ...]}``.
    ``source`` records where it came from ("api", "sms_survey", "web", ...).
    ``on_applied(result)`` runs inside the transaction just before the commit,
    for callers that must change their own rows atomically with the form.
    Returns a ``FormResult``; ``result.duplicate`` is True for a resubmitted
    ``form_id`` (nothing changed). Raises ``Invalid`` or ``RuleBroken``, after a rollback.
    """
    if not isinstance(payload, dict):
        raise Invalid("invalid_json", "The form must be a JSON object.")
    form_id = _id(payload.get("form_id"), "form_id", required=False)
    app_id = _id(payload.get("app_id"), "app_id", required=True)
    user_id = _id(payload.get("user_id"), "user_id", required=True)
    answers = payload.get("answers") or {}
    if not isinstance(answers, dict):
        raise _bad("answers", "must be an object.")
    blocks = parse_blocks(payload.get("cases"))

    for attempt in range(3):
        try:
            return _apply(form_id, app_id, user_id, answers, blocks, source, on_applied)
        except IntegrityError:
            db.session.rollback()
            if form_id:
                first = _existing_form(form_id)
                if first is not None:
                    log.info("form resubmitted during a race form_id=%s", form_id)
                    return FormResult(first, duplicate=True)
            # Two forms created the same new case at once: try again, the
            # create now finds the case and applies as an update.
            log.info("form retry after a conflict form_id=%s attempt=%s", form_id, attempt + 1)
        except Exception:
            db.session.rollback()
            raise
    raise Conflict("conflict", "The form conflicted with other changes three times; send it again.")


def _apply(form_id, app_id, user_id, answers, blocks, source, on_applied) -> FormResult:
    dialect.begin_write()
    if form_id:
        first = _existing_form(form_id)
        if first is not None:
            return FormResult(first, duplicate=True)
    app = db.session.execute(select(Application).where(Application.id == app_id)).scalar_one_or_none()
    if app is None:
        raise RuleBroken(
            "unknown_application",
            f"There is no application '{app_id}' in this project.",
            details={"app_id": app_id},
        )
    user = db.session.execute(select(MobileWorker).where(MobileWorker.id == user_id)).scalar_one_or_none()
    if user is None:
        raise RuleBroken(
            "unknown_user",
            f"There is no mobile worker '{user_id}' in this project.",
            details={"user_id": user_id},
        )

    now = clock.now()
    form_kwargs = {"form_id": form_id} if form_id else {}
    form = Form(
        **form_kwargs,
        app_id=app.id,
        user_id=user.id,
        received_on=now,
        answers=answers,
        case_ids=list(dict.fromkeys(b.case_id for b in blocks)),
        source=source,
    )
    db.session.add(form)
    # Insert the form first: a racing duplicate form_id fails here, before any case work.
    db.session.flush()

    cases = _lock_cases([b.case_id for b in blocks])
    # Received = when the form got its locks: the order it applies in.
    now = clock.now()
    form.received_on = now
    region = project_country()
    created: list[str] = []
    transactions = []
    for block in blocks:
        case = cases.get(block.case_id)
        if case is None:
            if block.create is None:
                raise RuleBroken(
                    "case_not_found",
                    f"Case '{block.case_id}' does not exist; a case block without 'create' "
                    "can only change an existing case.",
                    details={"case_id": block.case_id},
                )
            case = Case(
                case_id=block.case_id,
                case_type=block.create["case_type"],
                name=block.create["case_name"],
                owner_id=resolve_new_owner(app, user, block.create["owner_id"]),
                opened_on=now,
                properties={},
            )
            db.session.add(case)
            cases[block.case_id] = case
            created.append(block.case_id)
        elif block.create is not None:
            # CommCare: a create for an existing case applies as an update.
            case.case_type = block.create["case_type"]
            if block.create["case_name"]:
                case.name = block.create["case_name"]
            if block.create["owner_id"]:
                check_owner_allowed(user, block.create["owner_id"])
                case.owner_id = block.create["owner_id"]
        if "owner_id" in block.update:
            check_owner_allowed(user, block.update["owner_id"])
        apply_update(case, block.update, region)
        if block.close and not case.closed:
            case.closed = True
            case.closed_on = now
        case.user_id = user.id
        case.modified_on = now
        transactions.append((case, block))
    db.session.flush()
    for case, block in transactions:
        db.session.add(
            CaseTransaction(
                case_pk=case.id, form_pk=form.id, kind=block.kind, actions=block.as_json(), server_date=now
            )
        )
    # Data forwarding: an outbox row per location, in this transaction, so a
    # forwarded form or case is never lost nor sent for a rolled-back form.
    forwarding.capture_form(form)
    for case in dict.fromkeys(c for c, _ in transactions):
        forwarding.capture_case(case)
    result = FormResult(form, created_case_ids=created)
    if on_applied is not None:
        on_applied(result)
    db.session.commit()
    log.info(
        "form applied form_id=%s app_id=%s user_id=%s source=%s cases=%s created=%s",
        form.form_id,
        app.id,
        user.id,
        source,
        len(form.case_ids),
        len(created),
    )
    return result


# --- reading --------------------------------------------------------------------------


def case_history(case: Case) -> list[tuple[CaseTransaction, Form]]:
    """The forms that touched a case, oldest first, with what each did."""
    rows = db.session.execute(
        select(CaseTransaction, Form)
        .join(Form, Form.id == CaseTransaction.form_pk)
        .where(CaseTransaction.case_pk == case.id)
        .order_by(CaseTransaction.id)
    ).all()
    return [(t, f) for t, f in rows]


def form_blocks(form: Form) -> list[dict]:
    """A form's case blocks as applied, in order."""
    return list(
        db.session.execute(
            select(CaseTransaction.actions)
            .where(CaseTransaction.form_pk == form.id)
            .order_by(CaseTransaction.id)
        ).scalars()
    )


def search_cases_stmt(q: str | None = None):
    """Cases (not deleted) matching a search text on name, ids, external id or phone."""
    stmt = select(Case).where(Case.deleted.is_(False))
    q = (q or "").strip()
    if q:
        like = f"%{q.lower()}%"
        from sqlalchemy import func

        conditions = [
            func.lower(Case.name).like(like),
            Case.case_id == q,
            Case.external_id == q,
            Case.phone_raw == q,
        ]
        try:
            from messaging.lib.phones import normalize_phone

            e164 = normalize_phone(q, project_country())
        except Exception:  # not a number: search the other fields only
            e164 = None
        if e164:
            conditions.append(Case.phone_number == e164)
        stmt = stmt.where(or_(*conditions))
    return stmt
