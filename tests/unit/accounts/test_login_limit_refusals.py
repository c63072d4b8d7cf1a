"""The refusal a limited login shows: whose limit, and whole minutes to wait, rounded up."""

import pytest

from messaging.accounts.login_limits import TooManyWrongPasswords, account_key


@pytest.mark.parametrize(
    ("scope", "seconds", "sentence"),
    [
        ("account", 900, "Too many wrong passwords for this account; try again in 15 minutes."),
        ("account", 61, "Too many wrong passwords for this account; try again in 2 minutes."),
        ("account", 5, "Too many wrong passwords for this account; try again in 1 minute."),
        ("address", 840, "Too many wrong passwords from your address; try again in 14 minutes."),
    ],
)
def test_the_refusal_says_whose_limit_and_how_long(scope, seconds, sentence):
    refusal = TooManyWrongPasswords(scope, seconds)
    assert refusal.message == sentence
    assert (refusal.code, refusal.retry_after, refusal.details["scope"]) == (
        "too_many_wrong_passwords",
        seconds,
        scope,
    )


def test_an_account_is_counted_by_a_digest_of_its_normalized_email():
    key = account_key("  Admin@Alpha.Example.org ")
    assert key == account_key("admin@alpha.example.org")
    assert "admin" not in key and len(key) == 64
