"""Reading cases and forms: a case's history, a form's blocks, the search box, phone look-ups.

- Deleted cases are never found by a search.
- A search text matches a case's name (contains, any letter case), or exactly
  its case id, external id or raw phone text, or its phone number once the text
  is normalised with the project's country (text that is not a number searches
  the other fields only).
- A phone filter matches however the number was typed: normalised to E.164 with
  the project's country; a value that is not a valid number matches the raw text.
- A case's history lists the forms that touched it, oldest first; a form's
  blocks are listed as applied, in order.
"""

from sqlalchemy import func, or_, select

from messaging.cases.updates import project_country
from messaging.extensions import db
from messaging.lib.phones import normalize_phone
from messaging.models import Case, CaseTransaction, Form


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


def blocks_of_forms(form_pks: list[int]) -> dict[int, list[dict]]:
    """Each form's case blocks as applied, in order, for many forms in one query."""
    blocks: dict[int, list[dict]] = {pk: [] for pk in form_pks}
    if form_pks:
        rows = db.session.execute(
            select(CaseTransaction.form_pk, CaseTransaction.actions)
            .where(CaseTransaction.form_pk.in_(form_pks))
            .order_by(CaseTransaction.id)
        )
        for form_pk, actions in rows:
            blocks[form_pk].append(actions)
    return blocks


def search_cases_stmt(q: str | None = None):
    """Cases (not deleted) matching a search text on name, ids, external id or phone."""
    stmt = select(Case).where(Case.deleted.is_(False))
    q = (q or "").strip()
    if q:
        like = f"%{q.lower()}%"
        conditions = [
            func.lower(Case.name).like(like),
            Case.case_id == q,
            Case.external_id == q,
            Case.phone_raw == q,
        ]
        try:
            e164 = normalize_phone(q, project_country())
        except Exception:  # not a number: search the other fields only
            e164 = None
        if e164:
            conditions.append(Case.phone_number == e164)
        stmt = stmt.where(or_(*conditions))
    return stmt


def phone_condition(raw: str):
    """Match a phone number however it was typed: normalised to E.164 with the
    project's country; a value that is not a valid number matches the raw text."""
    e164 = None
    try:
        e164 = normalize_phone(raw, project_country())
    except ValueError:
        e164 = None
    if e164:
        return Case.phone_number == e164
    return Case.phone_raw == raw.strip()
