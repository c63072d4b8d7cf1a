"""The criteria rows of the web forms (an alert rule's cases, a broadcast's filter): read from
a form into the API body's ``criteria``, and the words each condition is shown with.

Rules:
- ``CRITERIA_ROWS`` rows of property / condition / value, named ``<prefix>-<n>-property``,
  ``-op`` and ``-value``; a row without a property is left out. ``in`` takes its values
  comma-separated; ``exists`` and ``missing`` none. What the API would refuse is refused
  the same way (the API body is what the form makes).
"""

from flask_babel import lazy_gettext as _l

from messaging.alerts.rules import OPS

CRITERIA_ROWS = 4
OP_LABELS = {
    "eq": _l("is"),
    "ne": _l("is not"),
    "in": _l("is one of (comma-separated)"),
    "exists": _l("has a value"),
    "missing": _l("has no value"),
    "gt": _l("is more than / after"),
    "lt": _l("is less than / before"),
}


def op_choices() -> list[tuple[str, str]]:
    return [(op, OP_LABELS[op]) for op in OPS]


def criteria_from_form(form, prefix: str = "criteria") -> list[dict]:
    """The ``criteria`` of the API body the rows describe."""
    criteria = []
    for n in range(CRITERIA_ROWS):
        prop = (form.get(f"{prefix}-{n}-property") or "").strip()
        if not prop:
            continue
        op = form.get(f"{prefix}-{n}-op") or "eq"
        criterion = {"property": prop, "op": op}
        raw = form.get(f"{prefix}-{n}-value") or ""
        if op == "in":
            criterion["value"] = [v.strip() for v in raw.split(",") if v.strip()]
        elif op not in ("exists", "missing"):
            criterion["value"] = raw.strip()
        criteria.append(criterion)
    return criteria
