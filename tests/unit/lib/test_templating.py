"""SMS placeholders, escapes, missing values, template checks and translation choice."""

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from messaging.lib.templating import RenderResult, choose_text, placeholders, render, validate_template

CASE = {
    "name": "Amina Otieno",
    "external_id": "KE-001",
    "phone_number": "+254712345678",
    "properties": {"village": "Kisumu", "dob": "2001-04-02", "visits": 3, "name": "property loses"},
}
CTX = {"case": CASE, "user": {"username": "nurse.jane"}}

RENDER = [
    ("Hello {case.name}", "Hello Amina Otieno", set()),
    ("ID {case.external_id} / {case.phone_number}", "ID KE-001 / +254712345678", set()),
    ("From {case.village}, born {case.dob}", "From Kisumu, born 2001-04-02", set()),
    ("Visits: {case.visits}", "Visits: 3", set()),
    ("Hi {user.username}", "Hi nurse.jane", set()),
    ("{ case.name } and {case.name  }", "Amina Otieno and Amina Otieno", set()),
    # Missing values render empty and are reported.
    ("Hi {case.nickname}!", "Hi !", {"case.nickname"}),
    ("{case.a}{case.b}{case.a}", "", {"case.a", "case.b"}),
    ("Hello {foo.bar}", "Hello ", {"foo.bar"}),
    # Escapes.
    ("{{case.name}}", "{case.name}", set()),
    ("Use {{ and }} for {case.name}", "Use { and } for Amina Otieno", set()),
    ("{{{case.name}}}", "{Amina Otieno}", set()),
    # Unknown syntax is left as written.
    ("{name}", "{name}", set()),
    ("Price {5} or {case}", "Price {5} or {case}", set()),
    ("{case.name", "{case.name", set()),
    ("a } b { c", "a } b { c", set()),
    ("{case.name.first}", "{case.name.first}", set()),
    ("{case.}", "{case.}", set()),
    ("no placeholders at all", "no placeholders at all", set()),
    ("", "", set()),
    ("Unicode ok: {case.name} 👋 ñ", "Unicode ok: Amina Otieno 👋 ñ", set()),
]


@pytest.mark.parametrize(("template", "text", "missing"), RENDER)
def test_render(template, text, missing):
    assert render(template, CTX) == RenderResult(text, missing)


def test_top_level_case_field_wins_over_property():
    assert render("{case.name}", CTX).text == "Amina Otieno"


def test_user_placeholder_for_a_case_recipient_is_missing():
    result = render("Hi {user.username}, {case.name}", {"case": CASE})
    assert result == RenderResult("Hi , Amina Otieno", {"user.username"})


@pytest.mark.parametrize(
    ("value", "text", "missing"),
    [
        (None, "", True),
        ("", "", True),
        ("0", "0", False),
        (0, "0", False),
        (12.0, "12", False),
        (2.5, "2.5", False),
        (Decimal("7.00"), "7", False),
        (Decimal("7.25"), "7.25", False),
        (True, "yes", False),
        (False, "no", False),
        (date(2026, 11, 22), "2026-11-22", False),
        (["a", None, "b"], "a, b", False),
        (float("nan"), "nan", False),
    ],
)
def test_value_formatting(value, text, missing):
    result = render("{case.x}", {"case": {"properties": {"x": value}}})
    assert result.text == text
    assert result.missing == ({"case.x"} if missing else set())


class Unprintable:
    def __str__(self):
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"case": None},
        {"case": {"properties": None}},
        {"case": {"properties": "not a dict"}},
        {"case": "a string"},
        {"case": {"name": Unprintable()}},
    ],
)
def test_render_never_raises(context):
    result = render("Hi {case.name}", context)
    assert result.text == "Hi "
    assert result.missing == {"case.name"}


def test_objects_with_attributes_work_but_private_ones_are_hidden():
    case = SimpleNamespace(name="Baraka", properties={"village": "Gulu"}, _secret="x")
    result = render("{case.name} {case.village} {case._secret}", {"case": case})
    assert result == RenderResult("Baraka Gulu ", {"case._secret"})


@pytest.mark.parametrize(
    ("template", "names"),
    [
        (
            "Hi {case.name}, from {case.village} ({user.username})",
            {"case.name", "case.village", "user.username"},
        ),
        ("{{case.name}} {name} {case.name", set()),
        ("{ case.dob }{case.dob}", {"case.dob"}),
        ("{foo.bar}", {"foo.bar"}),
        ("{case.first-visit}", {"case.first-visit"}),
        ("", set()),
    ],
)
def test_placeholders(template, names):
    assert placeholders(template) == names


@pytest.mark.parametrize(
    "template",
    [
        "Hello {case.name}",
        "{user.username}: {case.external_id} {case.any_property}",
        "Literal {{braces}} are fine",
        "",
        "no braces",
    ],
)
def test_valid_templates_have_no_problems(template):
    assert validate_template(template) == []


@pytest.mark.parametrize(
    ("template", "fragments"),
    [
        ("Hi {case.name", ["Unclosed brace at '{case.name'"]),
        ("Hi {case.name, see {case.village}", ["Unclosed brace at '{case.name, see "]),
        ("Hi {patient.name}", ["Unknown placeholder {patient.name}"]),
        ("Hi {name}", ["'{name}' is not a placeholder"]),
        ("Cost {5}", ["'{5}' is not a placeholder"]),
        ("a } b", ["Stray '}'"]),
        ("{x} and {y.z} and }", ["'{x}' is not a placeholder", "Unknown placeholder {y.z}", "Stray '}'"]),
    ],
)
def test_template_problems(template, fragments):
    problems = validate_template(template)
    assert len(problems) == len(fragments)
    for problem, fragment in zip(problems, fragments, strict=True):
        assert fragment in problem


TRANSLATIONS = {"en": "Hello", "pt": "Olá", "fr-CA": "Bonjour (QC)", "sw": "  "}


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("pt", ("pt", "Olá")),
        ("pt-BR", ("pt", "Olá")),  # base language
        ("pt_br", ("pt", "Olá")),
        ("PT-br", ("pt", "Olá")),
        ("fr-CA", ("fr-CA", "Bonjour (QC)")),
        ("fr_ca", ("fr-CA", "Bonjour (QC)")),
        ("fr", ("en", "Hello")),  # no "fr" key: a regional text is not used for the base language
        ("fr-FR", ("en", "Hello")),
        ("sw", ("en", "Hello")),  # a blank translation does not count
        ("de", ("en", "Hello")),
        (None, ("en", "Hello")),
        ("", ("en", "Hello")),
        ("  ", ("en", "Hello")),
    ],
)
def test_choose_text(recipient, expected):
    assert choose_text(TRANSLATIONS, "en", recipient) == expected


def test_choose_text_default_key_compared_loosely():
    assert choose_text({"pt-BR": "Oi", "en": "Hi"}, "PT_br", "de") == ("pt-BR", "Oi")


@pytest.mark.parametrize("translations", [{}, {"pt": "Olá"}, {"en": ""}])
def test_choose_text_without_default_text_raises(translations):
    with pytest.raises(ValueError, match="default language 'en'"):
        choose_text(translations, "en", "de")
