"""Applying a form: its case blocks create, update and close cases, in one transaction.

The API (``POST /api/v1/forms``), the web UI and SMS surveys all apply forms
through ``apply_form``, so the rules below (and the owner rules of
``messaging.cases.ownership``) hold whichever way a form arrives.

- Forms apply in the order the server receives them, each in one transaction.
  Cases a form touches are locked (``SELECT ... FOR UPDATE`` on PostgreSQL, in
  case-id order so two forms never deadlock; SQLite serialises writers), and
  re-read under the lock, so two forms racing on one case never lose an update.
- A repeated ``form_id`` changes nothing and returns the first result
  (``FormResult.duplicate`` is True). The unique constraint on
  ``(project_id, form_id)`` makes this race-safe: the loser of a race rolls
  back and answers with the winner's result.
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
  ``unknown_user``. Malformed input: 400 ``validation_error`` with the field
  (``messaging.cases.blocks``).
- A refused form writes nothing: ``apply_form`` rolls back and raises the ``DomainError``.
- Each block applied leaves a history row (``CaseTransaction``), and the form and
  each case it changed are captured for data forwarding in the same transaction,
  which also brings the cases' conditional alert schedules up to date
  (``messaging.alerts.schedules``).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from messaging.alerts.schedules import cases_changed
from messaging.cases.blocks import Block, checked_id, invalid_field, parse_blocks
from messaging.cases.indexing import stamp
from messaging.cases.ownership import check_owner_allowed, resolve_new_owner
from messaging.cases.serialize import block_json
from messaging.cases.updates import apply_update, project_country
from messaging.db import dialect, tenancy
from messaging.errors import Conflict, Invalid, RuleBroken
from messaging.extensions import db
from messaging.forwarding.capture import capture_case, capture_form
from messaging.lib import clock
from messaging.models import Application, Case, CaseTransaction, Form, MobileWorker

log = logging.getLogger(__name__)


@dataclass
class FormResult:
    """What applying a form produced (or, for a resubmission, the first result)."""

    form: Form
    duplicate: bool = False
    created_case_ids: list[str] = field(default_factory=list)

    @property
    def case_ids(self) -> list[str]:
        return list(self.form.case_ids or [])


@dataclass
class Submission:
    """A form as submitted, its shape checked (``parse_submission``, or the XForm receiver's own).

    ``app_id`` None: no application (case sharing off, as for an XForm posted to the
    receiver without one). ``user_id`` None: submitted by a web user through CommCare's
    receiver (no mobile worker): an explicit owner must then be one of the project's
    owners, a created case without one has none, and cases keep their last ``user_id``.
    """

    form_id: str | None
    app_id: str | None
    user_id: str | None
    answers: dict
    blocks: list[Block]
    source: str
    xmlns: str | None = None
    name: str | None = None
    meta: dict | None = None
    xml: str | None = None


def parse_submission(payload, source: str) -> Submission:
    """Check the form's shape: 400 (``Invalid``) on anything malformed."""
    if not isinstance(payload, dict):
        raise Invalid("invalid_json", "The form must be a JSON object.")
    form_id = checked_id(payload.get("form_id"), "form_id", required=False)
    app_id = checked_id(payload.get("app_id"), "app_id", required=True)
    user_id = checked_id(payload.get("user_id"), "user_id", required=True)
    answers = payload.get("answers") or {}
    if not isinstance(answers, dict):
        raise invalid_field("answers", "must be an object.")
    blocks = parse_blocks(payload.get("cases"))
    identity = {}
    for key in ("xmlns", "name"):
        value = payload.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 255):
            raise invalid_field(key, "must be a text of 1 to 255 characters.")
        identity[key] = value.strip() if value else None
    return Submission(form_id, app_id, user_id, answers, blocks, source, **identity)


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
    return apply_submission(parse_submission(payload, source), on_applied=on_applied)


def apply_submission(
    submission: Submission, *, on_applied: Callable[[FormResult], None] | None = None
) -> FormResult:
    """Apply a checked submission in its own transaction (what :func:`apply_form` does after
    checking its JSON; the XForm receiver builds its own); same rules and results."""
    form_id = submission.form_id
    for attempt in range(3):
        try:
            return _apply(submission, on_applied)
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


@dataclass
class _Applying:
    """One form being applied: who sent it, when it got its locks, the cases it touches."""

    app: Application | None
    user: MobileWorker | None
    now: datetime
    region: str
    cases: dict[str, Case]
    created: list[str] = field(default_factory=list)


def _apply(submission: Submission, on_applied) -> FormResult:
    dialect.begin_write()
    if submission.form_id:
        first = _existing_form(submission.form_id)
        if first is not None:
            return FormResult(first, duplicate=True)
    app, user = _app_and_user(submission)
    form = _add_form(submission, app, user)
    blocks = submission.blocks
    cases = _lock_cases([b.case_id for b in blocks])
    # Received = when the form got its locks: the order it applies in.
    now = clock.now()
    form.received_on = now
    run = _Applying(app, user, now, project_country(), cases)
    transactions = [(_apply_block(run, block), block) for block in blocks]
    db.session.flush()
    _record(form, transactions, now)
    result = FormResult(form, created_case_ids=run.created)
    if on_applied is not None:
        on_applied(result)
    # Last before the commit: the stamp's row lock is held until then.
    stamp(form.project_id, [form], dict.fromkeys(c for c, _ in transactions))
    db.session.commit()
    log.info(
        "form applied form_id=%s app_id=%s user_id=%s source=%s cases=%s created=%s",
        form.form_id,
        app.id if app else None,
        user.id if user else None,
        submission.source,
        len(form.case_ids),
        len(run.created),
    )
    return result


def _app_and_user(submission: Submission) -> tuple[Application | None, MobileWorker | None]:
    app = user = None
    if submission.app_id is not None:
        app = _known(Application, submission.app_id, "unknown_application", "application", "app_id")
    if submission.user_id is not None:
        user = _known(MobileWorker, submission.user_id, "unknown_user", "mobile worker", "user_id")
    return app, user


def _known(model, row_id: str, code: str, what: str, field_name: str):
    """The ``model`` row ``row_id`` of this project, or ``RuleBroken(code)`` naming ``field_name``."""
    row = db.session.execute(select(model).where(model.id == row_id)).scalar_one_or_none()
    if row is None:
        raise RuleBroken(
            code, f"There is no {what} '{row_id}' in this project.", details={field_name: row_id}
        )
    return row


def _add_form(submission: Submission, app: Application, user: MobileWorker) -> Form:
    form_kwargs = {"form_id": submission.form_id} if submission.form_id else {}
    form = Form(
        **form_kwargs,
        app_id=app.id if app else None,
        user_id=user.id if user else None,
        received_on=clock.now(),
        answers=submission.answers,
        case_ids=list(dict.fromkeys(b.case_id for b in submission.blocks)),
        source=submission.source,
        xmlns=submission.xmlns or default_xmlns(submission.source, app),
        name=submission.name or (app.name if app else None),
        meta=submission.meta,
        xml=submission.xml,
    )
    db.session.add(form)
    # Insert the form first: a racing duplicate form_id fails here, before any case work.
    db.session.flush()
    return form


# What CommCare calls a form's identity (its XML root's xmlns), for forms that arrived without one.
IMPORT_XMLNS = "http://commcarehq.org/case"  # CommCare's own, for case blocks it writes itself


def default_xmlns(source: str, app: Application | None) -> str:
    """The xmlns of a form that came without one: by application, else by where it came from."""
    if app is not None:
        return f"urn:messaging:application:{app.id}"
    return IMPORT_XMLNS if source == "import" else f"urn:messaging:{source}"


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


def _apply_block(run: _Applying, block: Block) -> Case:
    """Apply one block to its (locked) case, creating the case for a ``create``."""
    case = run.cases.get(block.case_id)
    if case is None:
        case = _create_case(run, block)
    elif block.create is not None:
        # CommCare: a create for an existing case applies as an update.
        case.case_type = block.create["case_type"]
        if block.create["case_name"]:
            case.name = block.create["case_name"]
        if block.create["owner_id"]:
            check_owner_allowed(run.user, block.create["owner_id"])
            case.owner_id = block.create["owner_id"]
    if "owner_id" in block.update:
        check_owner_allowed(run.user, block.update["owner_id"])
    apply_update(case, block.update, run.region)
    if block.index:
        case.indices = _indices_after(case.indices, block.index)
    if block.close and not case.closed:
        case.closed = True
        case.closed_on = run.now
    if run.user is not None:
        case.user_id = run.user.id
    case.modified_on = run.now
    return case


def _indices_after(current: dict | None, changes: dict) -> dict | None:
    """A case's indices after a block's index: set each named one, drop those with no case id."""
    indices = dict(current or {})
    for identifier, index in changes.items():
        if index.get("case_id"):
            indices[identifier] = index
        else:
            indices.pop(identifier, None)
    return indices or None


def _create_case(run: _Applying, block: Block) -> Case:
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
        owner_id=resolve_new_owner(run.app, run.user, block.create["owner_id"]),
        opened_on=run.now,
        properties={},
    )
    db.session.add(case)
    run.cases[block.case_id] = case
    run.created.append(block.case_id)
    return case


def _record(form: Form, transactions: list[tuple[Case, Block]], now: datetime) -> None:
    """The history rows of the form's blocks, and the outbox rows for data forwarding."""
    for case, block in transactions:
        db.session.add(
            CaseTransaction(
                case_pk=case.id, form_pk=form.id, kind=block.kind, actions=block_json(block), server_date=now
            )
        )
    # Data forwarding: an outbox row per location, in this transaction, so a
    # forwarded form or case is never lost nor sent for a rolled-back form.
    capture_form(form, [block_json(block) for _, block in transactions])
    for case in dict.fromkeys(c for c, _ in transactions):
        capture_case(case)
    # Conditional alerts: the cases' schedules follow them, in this transaction.
    cases_changed(tenancy.current_project_id(), [c for c, _ in transactions])
