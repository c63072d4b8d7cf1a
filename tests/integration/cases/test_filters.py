"""Case filters in SQL (messaging.cases.filters) choose exactly the cases the Python rules
(messaging.alerts.rules.matches) choose: generated cases and criteria, on both databases."""

import random

import pytest
from sqlalchemy import select

from messaging.alerts import rules
from messaging.cases import filters
from messaging.extensions import db
from messaging.models import Case
from tests.factories import make_cases

# Values a case property may hold: texts of numbers and dates in their usual spellings and
# with spaces around, words, blanks, near-misses of both, and JSON numbers and booleans.
VALUES = [
    "5",
    " 5 ",
    "5.0",
    "05",
    "-3",
    "+2",
    ".5",
    "5.",
    "1e3",
    "1E-2",
    "12.75",
    "1_000",
    "nan",
    "inf",
    "5\t",
    "\n5",
    "abc",
    "",
    "   ",
    "high",
    "High",
    " high",
    "low",
    "2026-03-02",
    " 2026-03-02 ",
    "2026-03-02T10:00",
    "2026-03-02 10:00:30",
    "2026-03-02T10:00:30.5Z",
    "2026-03-02T10:00+03:00",
    "2026-03-01",
    "2025-12-31T23:59:59",
    "2026-13-45",
    "2026-3-2",
    "2026-03-02t10:00",
    7,
    7.5,
    0,
    -2,
    1000,
    True,
    False,
]
# What a criterion may ask for.
WANTED = [
    "5",
    5,
    5.0,
    "5.00",
    7,
    "7.5",
    "1000",
    0,
    "-3",
    "high",
    " high ",
    "abc",
    "",
    "2026-03-02",
    "2026-03-02T10:00",
    "2026-03-02T10:00:30",
    "2025-12-31",
    "true",
    "false",
    "nan",
    "x",
]
PROPERTIES = ["risk", "age", "visit", "name", "owner_id", "external_id", "closed", "nobody_has_this"]


def _cases(rng, n):
    rows = []
    for _ in range(n):
        props = {p: rng.choice(VALUES) for p in ("risk", "age", "visit") if rng.random() < 0.8}
        rows.append(
            {
                "case_type": rng.choice(["mother", "child"]),
                "name": rng.choice(["Amina", " Amina", "5", "2026-03-02", ""]),
                "owner_id": rng.choice([None, "w1", "w2", "5"]),
                "external_id": rng.choice([None, "X-1", "12", " 12"]),
                "closed": rng.random() < 0.15,
                "deleted": rng.random() < 0.05,
                "properties": props,
            }
        )
    return rows


def _criterion(rng):
    op = rng.choice(rules.OPS)
    criterion = {"property": rng.choice(PROPERTIES), "op": op}
    if op == "in":
        criterion["value"] = rng.sample(WANTED, rng.randint(1, 3))
    elif op not in ("exists", "missing"):
        criterion["value"] = rng.choice(WANTED)
    return criterion


def test_sql_filters_choose_what_the_python_rules_choose(project):
    rng = random.Random(20261207)
    make_cases(project, _cases(rng, 160))
    with project.scope():
        cases = db.session.execute(select(Case)).scalars().all()
        fields = {c.id: (c.case_type, rules.fields_of(c)) for c in cases}
        for _ in range(400):
            case_type = rng.choice([None, "mother"])
            criteria = [_criterion(rng) for _ in range(rng.randint(1, 3))]
            chosen = set(
                db.session.execute(select(Case.id).where(filters.condition(case_type, criteria))).scalars()
            )
            expected = {
                pk
                for pk, (kind, f) in fields.items()
                if (case_type is None or kind == case_type) and rules.matches(criteria, f)
            }
            if chosen != expected:
                pk = next(iter(chosen ^ expected))
                pytest.fail(f"{criteria} on {fields[pk]}: SQL {pk in chosen}, Python {pk in expected}")
            assert filters.count(case_type, criteria) == len(expected)


def test_every_value_spelling_reads_as_the_rules_read_it(project):
    """Each value against each wanted value and op, one case each: the cases SQL finds are
    the ones the rules find (a table the generated test may miss corners of)."""
    pks = make_cases(project, [{"case_type": "t", "properties": {"v": v}} for v in VALUES])
    with project.scope():
        for op in ("eq", "ne", "gt", "lt", "exists", "missing"):
            for wanted in WANTED:
                criterion = {"property": "v", "op": op, "value": wanted}
                chosen = set(
                    db.session.execute(select(Case.id).where(filters.condition("t", [criterion]))).scalars()
                )
                expected = {
                    pk for pk, v in zip(pks, VALUES, strict=True) if rules.criterion_holds(criterion, v)
                }
                assert chosen == expected, (criterion, [VALUES[pks.index(pk)] for pk in chosen ^ expected])


def test_a_property_no_case_has_counts_nothing_and_its_ne_everything_open(project):
    make_cases(project, [{"case_type": "mother", "properties": {"risk": "high"}}, {"case_type": "mother"}])
    make_cases(project, [{"case_type": "mother", "closed": True}])
    with project.scope():
        assert filters.count("mother", [{"property": "village", "op": "eq", "value": "2"}]) == 0
        assert filters.count("mother", [{"property": "village", "op": "ne", "value": "2"}]) == 2
        assert filters.count("mother", [{"property": "risk", "op": "exists"}]) == 1
        assert filters.count(None, []) == 2
