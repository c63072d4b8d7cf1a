"""The identifier box's fast phone path gives exactly the normaliser's answers."""

import random

import pytest

from messaging.case_groups import phone_e164
from messaging.phones import looks_like_phone, normalize_phone

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
