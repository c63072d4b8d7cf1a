"""The identifier box's fast phone path gives exactly the normaliser's answers."""

import random

import pytest

from messaging.case_groups.phones import phone_e164, quick_e164
from messaging.lib.phones import looks_like_phone, normalize_phone

REGIONS = ["KE", "UG", "US", "GB", "IN", "NG", "ZA", "BR", "FR", "SG", "DE", "ke", None, "XX"]
FIXED = [
    "254712345678",
    "0712345678",
    "712345678",
    "6562345678",  # a US number and also Singapore's +65 6234 5678
    "16502530000",
    "6502530000",
    "00254712345678",
    "011442079460958",
    "256772123456",
    "0772123456",
    "442079460958",
    "02079460958",
    "919876543210",
    "1234567",
    "123456",
    "1234567890123456789",
    "000000000000",
    "+254712345678",
    "+254 712 345 678",
    "0712-345-678",
    "254712345678.0",
    "2.54712345678E+11",
    "PT-0042",
    "a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d",
]


def _expected(text, region):
    return normalize_phone(text, region) if looks_like_phone(text) else None


@pytest.mark.parametrize("region", REGIONS)
def test_fixed_spellings_agree(region):
    for text in FIXED:
        assert phone_e164(text, region) == _expected(text, region), (text, region)


@pytest.mark.parametrize("region", REGIONS)
def test_random_digit_strings_agree(region):
    rng = random.Random(f"phones-{region}")
    prefixes = ["", "0", "00", "011", "1", "254", "256", "44", "65", "91", "7", "9"]
    for _ in range(400):
        text = rng.choice(prefixes) + "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 13)))
        assert phone_e164(text, region) == _expected(text, region), (text, region)


def _spellings(region):
    rng = random.Random(f"quick-{region}")
    prefixes = ["", "0", "00", "000", "011", "1", "254", "256", "44", "65", "91", "+", "+254", "0 ", "0-"]
    yield from FIXED
    for _ in range(600):
        body = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 13)))
        if rng.random() < 0.3:
            cut = rng.randint(1, len(body) - 1)
            body = body[:cut] + rng.choice(" -") + body[cut:]
        yield rng.choice(prefixes) + body


@pytest.mark.parametrize("region", REGIONS)
def test_a_quick_candidate_that_could_be_stored_is_the_normalised_number(region):
    """Stored numbers are valid canonical E.164: a quick candidate that is one must be
    what the normaliser makes of the text; any other candidate matches no case."""
    checked = 0
    for text in _spellings(region):
        candidate = quick_e164(text.strip(), region) if text.strip() else None
        if candidate is not None and normalize_phone(candidate) == candidate:
            assert candidate == _expected(text.strip(), region), (text, region)
            checked += 1
    assert checked > 0 or region in ("XX", "ke", None)


def test_the_national_spelling_has_a_quick_candidate_in_a_zero_prefix_country():
    assert quick_e164("0712 345 678", "KE") == "+254712345678"
    assert quick_e164("0772-123-456", "UG") == "+256772123456"
    assert quick_e164("000254712345678", "KE") is None  # KE's international prefix
    assert quick_e164("0712345678", "US") is None  # no plain 0 prefix there
