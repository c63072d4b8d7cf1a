"""One rule for e-mail addresses, the same at project creation, for new web users and at login."""

import pytest

from messaging.lib.emails import InvalidEmail, is_valid_email, normalize_email


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("nurse@example.org", "nurse@example.org"),
        ("  Nurse@Example.ORG ", "nurse@example.org"),
        ("admin@clinic.test", "admin@clinic.test"),
        ("admin@clinic.local", "admin@clinic.local"),
        ("admin@moh.internal", "admin@moh.internal"),
        ("admin@localhost", "admin@localhost"),
        ("admin@server", "admin@server"),
    ],
)
def test_addresses_self_hosted_teams_use_are_accepted(text, stored):
    assert normalize_email(text) == stored
    assert is_valid_email(text)


@pytest.mark.parametrize(
    "text", ["", "   ", None, "nurse", "@example.org", "nurse@", "a b@example.org", "a@b..org"]
)
def test_what_is_not_an_address_is_refused_with_a_reason(text):
    with pytest.raises(InvalidEmail) as info:
        normalize_email(text)
    assert str(info.value)
    assert not is_valid_email(text)


def test_an_address_over_254_characters_is_refused():
    with pytest.raises(InvalidEmail, match="254"):
        normalize_email("a" * 250 + "@example.org")
