"""Conditions on survey answers: every operator, skipped answers, and checking against the question."""

import pytest

from messaging.surveys.answers import Question
from messaging.surveys.conditions import Condition, holds

CHOICES = ["Yes", "No", "Not sure"]


def cond(op, value, question_type="text", choices=None):
    return Condition.from_dict({"op": op, "value": value}, question_type, choices)


@pytest.mark.parametrize(
    ("op", "value", "answer", "expected"),
    [
        ("eq", "yes", "Yes", True),
        ("eq", "Yes", "No", False),
        ("ne", "Yes", "No", True),
        ("ne", "Yes", None, True),
        ("eq", "Yes", None, False),
        ("in", ["Yes", "not sure"], "Not sure", True),
        ("in", ["Yes"], "No", False),
        ("not_in", ["Yes"], "No", True),
        ("not_in", ["Yes"], None, True),
    ],
)
def test_choices(op, value, answer, expected):
    assert holds(cond(op, value, "select", CHOICES), answer) is expected


@pytest.mark.parametrize(
    ("op", "value", "answer", "expected"),
    [
        ("gt", 38, 38.5, True),
        ("gt", 38, 38, False),
        ("gte", 38, 38, True),
        ("lt", 5, 4, True),
        ("lte", 5, 6, False),
    ],
)
def test_numbers(op, value, answer, expected):
    assert holds(cond(op, value, "decimal"), answer) is expected
    assert holds(cond(op, value, "decimal"), None) is False


def test_dates_compare_as_dates():
    assert holds(cond("lt", "2026-03-10", "date"), "2026-02-28") is True
    assert holds(cond("gte", "2026-03-10", "date"), "2026-03-09") is False


def test_contains_a_choice_of_a_multiselect_or_a_word_of_a_text():
    assert holds(cond("contains", "rash", "multiselect", ["cough", "rash"]), ["cough", "rash"]) is True
    assert holds(cond("contains", "rash", "multiselect", ["cough", "rash"]), ["cough"]) is False
    assert holds(cond("contains", "bleed", "text"), "I have Bleeding since monday") is True


def test_a_choice_value_is_saved_as_the_choice_text():
    assert cond("eq", "not SURE", "select", CHOICES).value == "Not sure"
    assert cond("in", ["yes", "no"], "select", CHOICES).value == ["Yes", "No"]


@pytest.mark.parametrize(
    ("data", "question_type", "choices", "problem"),
    [
        ({"op": "like", "value": "x"}, "text", None, "unknown operator"),
        ({"value": "x"}, "text", None, "a condition is"),
        ("eq", "text", None, "a condition is"),
        ({"op": "eq", "value": "Maybe"}, "select", CHOICES, "not one of the question's choices"),
        ({"op": "gt", "value": "38"}, "integer", None, "needs a number"),
        ({"op": "gt", "value": 3}, "text", None, "compares numbers or dates"),
        ({"op": "lt", "value": "10/03/2026"}, "date", None, "YYYY-MM-DD"),
        ({"op": "in", "value": []}, "select", CHOICES, "non-empty list"),
        ({"op": "contains", "value": "x"}, "integer", None, "multiselect and text"),
        ({"op": "eq", "value": True}, "text", None, "a text or a number"),
    ],
)
def test_bad_conditions_are_refused_naming_the_problem(data, question_type, choices, problem):
    with pytest.raises(ValueError, match=problem):
        Condition.from_dict(data, question_type, choices)


def test_a_question_reads_and_writes_its_flag():
    question = Question.from_dict(
        {
            "id": "bleeding",
            "type": "select",
            "text": "Any bleeding?",
            "choices": CHOICES,
            "flag_if": {"op": "eq", "value": "yes"},
        }
    )
    assert question.flag_if == Condition("eq", "Yes")
    assert Question.from_dict(question.to_dict()) == question
    with pytest.raises(ValueError, match="flag_if: .*not one of the question's choices"):
        Question.from_dict({**question.to_dict(), "flag_if": {"op": "eq", "value": "Maybe"}})
