"""Branching as pure functions: which question comes next, and the editor's spelling of conditions."""

import pytest

from messaging.surveys.answers import Question
from messaging.surveys.branching import check_flow, condition_text, next_question, parse_condition_text

QUESTIONS = [
    Question.from_dict({"id": "a", "type": "select", "text": "A?", "choices": ["Yes", "No"]}),
    Question.from_dict(
        {
            "id": "b",
            "type": "integer",
            "text": "B?",
            "show_if": [{"question": "a", "op": "eq", "value": "Yes"}],
        }
    ),
    Question.from_dict(
        {"id": "c", "type": "text", "text": "C?", "show_if": [{"question": "b", "op": "gt", "value": 5}]}
    ),
    Question.from_dict({"id": "d", "type": "text", "text": "D?"}),
]


@pytest.mark.parametrize(
    ("answers", "after", "expected"),
    [
        ({"a": "Yes"}, 0, (1, [])),
        ({"a": "No"}, 0, (3, ["b", "c"])),  # c looks at b, which was skipped: no answer, so no
        ({"a": "Yes", "b": 9}, 1, (2, [])),
        ({"a": "Yes", "b": 2}, 1, (3, ["c"])),
        ({"a": "Yes", "b": 9, "c": "x"}, 2, (3, [])),
        ({"a": "Yes", "b": 9, "c": "x", "d": "y"}, 3, (None, [])),
    ],
)
def test_the_next_question_skips_those_whose_conditions_fail(answers, after, expected):
    assert next_question(QUESTIONS, answers, after) == expected


def test_check_flow_gives_each_question_its_canonical_branching():
    flows = check_flow(QUESTIONS)
    assert flows[0] == {} and flows[3] == {}
    assert flows[1] == {"show_if": [{"question": "a", "op": "eq", "value": "Yes"}]}


@pytest.mark.parametrize(
    ("text", "conditions"),
    [
        ("pregnant = Yes", [{"question": "pregnant", "op": "eq", "value": "Yes"}]),
        (
            "weeks > 20 and bleeding = No",
            [
                {"question": "weeks", "op": "gt", "value": 20},
                {"question": "bleeding", "op": "eq", "value": "No"},
            ],
        ),
        ("temp >= 37.5", [{"question": "temp", "op": "gte", "value": 37.5}]),
        ("village in 1, 2, Kisumu", [{"question": "village", "op": "in", "value": [1, 2, "Kisumu"]}]),
        ("village NOT IN 3", [{"question": "village", "op": "not_in", "value": [3]}]),
        ("symptoms contains rash", [{"question": "symptoms", "op": "contains", "value": "rash"}]),
        ("answer != no way", [{"question": "answer", "op": "ne", "value": "no way"}]),
        ("   ", None),
    ],
)
def test_the_editors_spelling_reads_and_writes_back(text, conditions):
    assert parse_condition_text(text) == conditions
    if conditions:
        assert parse_condition_text(condition_text(conditions)) == conditions


@pytest.mark.parametrize("text", ["pregnant", "pregnant is Yes", "= Yes", "weeks >", "a = 1 and"])
def test_a_condition_that_cannot_be_read_says_how_to_write_one(text):
    with pytest.raises(ValueError, match="question = value"):
        parse_condition_text(text)
