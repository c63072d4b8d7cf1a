"""SMS survey questions: definitions, answers people really send, error texts and prompts."""

import json

import pytest

from messaging.lib.segments import GSM7, count_segments
from messaging.surveys.answers import Answer, Question, parse_answer, question_prompt

AGE = Question("age", "integer", "How old are you?", min=0, max=120)
COUNT = Question("count", "integer", "How many?")
TEMP = Question("temp", "decimal", "Temperature?", min=34, max=43.5)
WEIGHT = Question("weight", "decimal", "Weight in kg?")
NAME = Question("name", "text", "Your name?")
SMOKE = Question("smoke", "select", "Do you smoke?", choices=["Yes", "No", "Not sure"])
SYMPTOMS = Question("symptoms", "multiselect", "Symptoms?", choices=["Fever", "Cough", "Not sure", "Rash"])
VISIT = Question("visit", "date", "Visit date?")
NOTES = Question("notes", "text", "Anything else?", required=False)
OPT_AGE = Question("age2", "integer", "Age?", min=0, max=120, required=False)
OPT_SMOKE = Question("smoke2", "select", "Smoke?", choices=["Yes", "No"], required=False)


def ok(value):
    return ("ok", value)


BAD = ("bad", None)

CASES = [
    # text
    (NAME, "Amina", ok("Amina")),
    (NAME, "  Amina   Otieno \u00a0", ok("Amina Otieno")),
    (NAME, "SKIP", ok("SKIP")),  # a required text question: "skip" is an answer
    (NAME, "", BAD),
    (NAME, "   \u200b ", BAD),
    (NAME, None, BAD),
    # integer
    (AGE, "12", ok(12)),
    (AGE, " 12 ", ok(12)),
    (AGE, "+12", ok(12)),
    (AGE, "012", ok(12)),
    (AGE, "0", ok(0)),
    (AGE, "120", ok(120)),
    (AGE, "121", BAD),
    (AGE, "-1", BAD),
    (AGE, "12.5", BAD),
    (AGE, "12.0", BAD),
    (AGE, "12 years", BAD),
    (AGE, "twelve", BAD),
    (AGE, "1 2", BAD),
    (AGE, "١٢", ok(12)),  # Arabic-Indic digits
    (AGE, "१२", ok(12)),  # Devanagari digits
    (COUNT, "1,200", ok(1200)),
    (COUNT, "12,345,678", ok(12345678)),
    (COUNT, "1,2", BAD),
    (COUNT, "1,2000", BAD),
    (COUNT, "1.200", BAD),
    (COUNT, "-5", ok(-5)),
    (COUNT, "\u22125", ok(-5)),  # a typographic minus sign
    (COUNT, "9" * 40, BAD),
    (COUNT, "+", BAD),
    # decimal
    (TEMP, "37.5", ok(37.5)),
    (TEMP, "37,5", ok(37.5)),
    (TEMP, " 37 ", ok(37.0)),
    (TEMP, "43.5", ok(43.5)),
    (TEMP, "43.51", BAD),
    (TEMP, "34", ok(34.0)),
    (TEMP, "33.99", BAD),
    (TEMP, "37.5.1", BAD),
    (TEMP, "37,5C", BAD),
    (TEMP, "nan", BAD),
    (TEMP, "inf", BAD),
    (TEMP, "1e1", BAD),
    (WEIGHT, ".5", ok(0.5)),
    (WEIGHT, ",5", ok(0.5)),
    (WEIGHT, "5.", ok(5.0)),
    (WEIGHT, "-2.25", ok(-2.25)),
    (WEIGHT, "1,200", ok(1.2)),  # documented: one comma is a decimal mark
    (WEIGHT, "١٢.٥", ok(12.5)),
    (WEIGHT, ".", BAD),
    (WEIGHT, "1.2.3", BAD),
    # select
    (SMOKE, "1", ok("Yes")),
    (SMOKE, " 2 ", ok("No")),
    (SMOKE, "3.", ok("Not sure")),
    (SMOKE, "3)", ok("Not sure")),
    (SMOKE, "yes", ok("Yes")),
    (SMOKE, "NO", ok("No")),
    (SMOKE, "  not   SURE ", ok("Not sure")),
    (SMOKE, "Yes!", ok("Yes")),
    (SMOKE, "no.", ok("No")),
    (SMOKE, "0", BAD),
    (SMOKE, "4", BAD),
    (SMOKE, "Y", BAD),  # no prefixes
    (SMOKE, "Ye", BAD),
    (SMOKE, "yes please", BAD),
    (SMOKE, "1 2", BAD),
    (SMOKE, "", BAD),
    # multiselect
    (SYMPTOMS, "1", ok(["Fever"])),
    (SYMPTOMS, "1 2", ok(["Fever", "Cough"])),
    (SYMPTOMS, "2 1", ok(["Fever", "Cough"])),  # saved in the question's order
    (SYMPTOMS, "1,2", ok(["Fever", "Cough"])),
    (SYMPTOMS, "1, 4;2", ok(["Fever", "Cough", "Rash"])),
    (SYMPTOMS, "1 1 2 1", ok(["Fever", "Cough"])),  # no duplicates
    (SYMPTOMS, "fever cough", ok(["Fever", "Cough"])),
    (SYMPTOMS, "RASH, not sure", ok(["Not sure", "Rash"])),
    (SYMPTOMS, "not sure 1", ok(["Fever", "Not sure"])),  # multi-word choice matched first
    (SYMPTOMS, "1 fever", ok(["Fever"])),
    (SYMPTOMS, "1.", ok(["Fever"])),
    (SYMPTOMS, "1 5", BAD),
    (SYMPTOMS, "0", BAD),
    (SYMPTOMS, "not", BAD),
    (SYMPTOMS, "fever and cough", BAD),
    (SYMPTOMS, "12", BAD),
    (SYMPTOMS, ", ,", BAD),
    (SYMPTOMS, "", BAD),
    # date
    (VISIT, "2026-11-22", ok("2026-11-22")),
    (VISIT, "22/11/2026", ok("2026-11-22")),
    (VISIT, "22-11-2026", ok("2026-11-22")),
    (VISIT, "22.11.2026", ok("2026-11-22")),
    (VISIT, "22 Nov 2026", ok("2026-11-22")),
    (VISIT, "Nov 22 2026", ok("2026-11-22")),
    (VISIT, "Nov 22, 2026", ok("2026-11-22")),
    (VISIT, "22nd November 2026", ok("2026-11-22")),
    (VISIT, "22-nov-2026", ok("2026-11-22")),
    (VISIT, "3 sept 2026", ok("2026-09-03")),
    (VISIT, "2026/1/5", ok("2026-01-05")),
    (VISIT, "5/1/2026", ok("2026-01-05")),  # day first
    (VISIT, "01/02/2026", ok("2026-02-01")),
    (VISIT, "29/02/2028", ok("2028-02-29")),
    (VISIT, "29/02/2026", BAD),
    (VISIT, "31/04/2026", BAD),
    (VISIT, "11/22/2026", BAD),  # month 22: day-first reading refuses US order
    (VISIT, "22/11/26", BAD),  # two-digit years are refused
    (VISIT, "22/11-2026", BAD),  # mixed separators
    (VISIT, "22 Novembre 2026", ok("2026-11-22")),  # French
    (VISIT, "1 février 2027", ok("2027-02-01")),  # accents or not
    (VISIT, "1 fevrier 2027", ok("2027-02-01")),
    (VISIT, "22 de março de 2026", ok("2026-03-22")),  # Portuguese
    (VISIT, "5 de agosto de 2026", ok("2026-08-05")),  # Spanish
    (VISIT, "12 Desemba 2026", ok("2026-12-12")),  # Swahili
    (VISIT, "Julai 4 2026", ok("2026-07-04")),
    (VISIT, "22 Brumaire 2026", BAD),  # not a month in any of them
    (VISIT, "22/11/1850", BAD),
    (VISIT, "22/11/2200", BAD),
    (VISIT, "tomorrow", BAD),
    (VISIT, "20261122", BAD),
    # optional questions: SKIP or empty -> None
    (NOTES, "", ok(None)),
    (NOTES, "skip", ok(None)),
    (NOTES, " Skip. ", ok(None)),
    (NOTES, "skipping", ok("skipping")),
    (OPT_AGE, "SKIP", ok(None)),
    (OPT_AGE, "", ok(None)),
    (OPT_AGE, "40", ok(40)),
    (OPT_AGE, "200", BAD),
    (OPT_SMOKE, "skip", ok(None)),
    (OPT_SMOKE, "2", ok("No")),
]


@pytest.mark.parametrize(("question", "raw", "expected"), CASES)
def test_parse_answer(question, raw, expected):
    answer = parse_answer(question, raw)
    status, value = expected
    if status == "ok":
        assert answer == Answer(True, value, None)
        assert type(answer.value) is type(value)
        json.dumps(answer.value)  # storable as JSON
    else:
        assert answer.ok is False and answer.value is None
        assert answer.error


@pytest.mark.parametrize(
    ("question", "message"),
    [
        (AGE, "Please reply with a whole number between 0 and 120."),
        (COUNT, "Please reply with a whole number."),
        (Question("q", "integer", "?", min=1), "Please reply with a whole number of 1 or more."),
        (Question("q", "integer", "?", max=10), "Please reply with a whole number of 10 or less."),
        (TEMP, "Please reply with a number between 34 and 43.5."),
        (WEIGHT, "Please reply with a number."),
        (
            Question("q", "decimal", "?", min=0.25, max=1e6),
            "Please reply with a number between 0.25 and 1000000.",
        ),
        (SMOKE, "Please reply with a number from 1 to 3."),
        (SYMPTOMS, "Please reply with numbers from 1 to 4, separated by spaces."),
        (VISIT, "Please reply with a date like 22/11/2026 (day/month/year)."),
        (NAME, "Please reply with an answer."),
        (OPT_AGE, "Please reply with a whole number between 0 and 120. Or reply SKIP."),
    ],
)
def test_error_messages(question, message):
    raw = "" if question.type == "text" else "???"
    assert parse_answer(question, raw).error == message


EXTREMES = [
    Question("q", "integer", "?", min=-(10**15), max=10**15, required=False),
    Question("q", "decimal", "?", min=-123456789.123456, max=987654321.987654, required=False),
    Question("q", "decimal", "?", min=1e-7, max=1e20, required=False),
    Question("q", "multiselect", "?", choices=[f"c{i}" for i in range(200)], required=False),
]


@pytest.mark.parametrize("question", [AGE, TEMP, SMOKE, SYMPTOMS, VISIT, NAME, OPT_AGE, NOTES, *EXTREMES])
def test_error_messages_fit_one_gsm_sms(question):
    error = parse_answer(question, "\U0001f600 not an answer" if question.type != "text" else "").error
    if question.type == "text" and not question.required:
        assert error is None  # nothing can be wrong with an optional text
        return
    info = count_segments(error)
    assert info.encoding == GSM7
    assert info.units < 160
    assert "\U0001f600" not in error  # the reply is never echoed


# --- definitions ----------------------------------------------------------------

GOOD_DEFS = [
    {"id": "q1", "type": "text", "text": "Name?"},
    {"id": "q2", "type": "integer", "text": "Age?", "min": 0, "max": 120, "case_property": "age"},
    {"id": "q3", "type": "decimal", "text": "Temp?", "min": 34.5, "max": 43},
    {"id": "q4", "type": "select", "text": "Smoke?", "choices": ["Yes", "No"], "required": False},
    {"id": "q5", "type": "multiselect", "text": "Which?", "choices": ["1", "2", "Other"]},
    {"id": "q6", "type": "date", "text": "When?"},
    {"id": "q7", "type": "integer", "text": "Count?", "min": 5, "max": 5.0},
]


@pytest.mark.parametrize("data", GOOD_DEFS)
def test_from_dict_round_trip(data):
    question = Question.from_dict(data)
    assert Question.from_dict(question.to_dict()) == question
    assert question.required is data.get("required", True)
    json.dumps(question.to_dict())


BAD_DEFS = [
    ({"id": "q", "type": "rating", "text": "?"}, "unknown question type 'rating'"),
    ({"id": "q", "type": "select", "text": "?", "choices": ["Only"]}, "at least 2 choices"),
    ({"id": "q", "type": "select", "text": "?"}, "at least 2 choices"),
    ({"id": "q", "type": "multiselect", "text": "?", "choices": "Yes No"}, "list of texts"),
    ({"id": "q", "type": "select", "text": "?", "choices": ["Yes", " "]}, "choice 2 is empty"),
    ({"id": "q", "type": "select", "text": "?", "choices": ["Yes", 2]}, "choice 2 is empty"),
    ({"id": "q", "type": "select", "text": "?", "choices": ["Yes", "yes "]}, "appears twice"),
    ({"id": "q", "type": "select", "text": "?", "choices": ["3", "2", "1"]}, "choice 1 is the number '3'"),
    ({"id": "q", "type": "text", "text": "?", "choices": ["a", "b"]}, "only select and multiselect"),
    ({"id": "q", "type": "integer", "text": "?", "min": 10, "max": 1}, "max: must not be less than min"),
    ({"id": "q", "type": "decimal", "text": "?", "min": 1.5, "max": 1.4}, "max: must not be less than min"),
    ({"id": "q", "type": "integer", "text": "?", "min": 0.5}, "whole number"),
    ({"id": "q", "type": "integer", "text": "?", "min": "0"}, "min: must be a number"),
    ({"id": "q", "type": "integer", "text": "?", "max": True}, "max: must be a number"),
    ({"id": "q", "type": "decimal", "text": "?", "max": float("nan")}, "max: must be a number"),
    ({"id": "q", "type": "text", "text": "?", "min": 1}, "only integer and decimal"),
    ({"id": "q", "type": "date", "text": "?", "max": 1}, "only integer and decimal"),
    ({"id": "", "type": "text", "text": "?"}, "id:"),
    ({"id": "my q", "type": "text", "text": "?"}, "id:"),
    ({"type": "text", "text": "?"}, "id: is required"),
    ({"id": "q", "text": "?"}, "type: is required"),
    ({"id": "q", "type": "text", "text": "  "}, "text:"),
    ({"id": "q", "type": "text", "text": "?", "required": "yes"}, "required:"),
    ({"id": "q", "type": "text", "text": "?", "case_property": ""}, "case_property:"),
    ({"id": "q", "type": "text", "text": "?", "hint": "x"}, "hint: unknown field"),
]


@pytest.mark.parametrize(("data", "message"), BAD_DEFS)
def test_from_dict_rejects(data, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Question.from_dict(data)


def test_from_dict_rejects_non_object():
    with pytest.raises(ValueError, match="JSON object"):
        Question.from_dict(["id"])


# --- prompts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "prompt"),
    [
        (NAME, "Your name?"),
        (AGE, "How old are you?"),
        (SMOKE, "Do you smoke?\n1. Yes\n2. No\n3. Not sure"),
        (SYMPTOMS, "Symptoms?\n1. Fever\n2. Cough\n3. Not sure\n4. Rash\nSend all that apply, e.g. 1 3"),
        (VISIT, "Visit date? (DD/MM/YYYY)"),
        (NOTES, "Anything else?\nReply SKIP to skip"),
        (OPT_SMOKE, "Smoke?\n1. Yes\n2. No\nReply SKIP to skip"),
        (Question("q", "text", "  Padded?  "), "Padded?"),
    ],
)
def test_question_prompt(question, prompt):
    assert question_prompt(question) == prompt


def test_prompt_of_a_short_select_fits_one_sms():
    assert count_segments(question_prompt(SMOKE)).segments == 1
