"""Phone numbers as people and Excel write them, from several countries."""

from decimal import Decimal

import pytest

from messaging.lib.phones import (
    PhoneResult,
    looks_like_phone,
    normalize_phone,
    parse_phone,
    phone_region,
    phone_timezone,
)

KE = "+254712345678"
UG = "+256772123456"
NG = "+2348031234567"
IN_MOBILE = "+919876543210"
US = "+14155552671"
CA = "+14165550199"
UK_MOBILE = "+447400123456"
UK_LONDON = "+442079460958"
ZA = "+27821234567"
BR = "+5511987654321"
BD = "+8801712345678"

VALID = [
    # Kenya (254): CommCare's "digits with country code, no +" and everything Excel does to it.
    ("254712345678", None, KE),
    ("+254 712 345 678", None, KE),
    ("+254-712-345-678", None, KE),
    ("254.712.345.678", None, KE),
    ("(0712) 345-678", "KE", KE),
    ("0712 345678", "KE", KE),
    ("0712345678", "ke", KE),
    ("712345678", "KE", KE),
    ("00254712345678", None, KE),
    ("00 254 712 345 678", None, KE),
    (254712345678, None, KE),
    (254712345678.0, None, KE),
    (Decimal("254712345678"), None, KE),
    ("254712345678.0", None, KE),
    ("2.54712345678E+11", None, KE),
    ("2.54712345678e11", None, KE),
    ("  254712345678  ", None, KE),
    ("'254712345678", None, KE),
    ("'+254 712 345 678", None, KE),
    ("\t+254712345678\n", None, KE),
    ("+254 (0) 712 345 678", None, KE),
    ("2540712345678", None, KE),
    ("\u202a+254 712 345 678\u202c", None, KE),
    ("+254\u00a0712\u00a0345\u00a0678", None, KE),
    ("(+254) 712 345 678", None, KE),
    # Uganda (256)
    ("256772123456", None, UG),
    ("+256 772 123456", None, UG),
    ("0772 123 456", "UG", UG),
    (256772123456.0, None, UG),
    ("2.56772123456E+11", None, UG),
    # Nigeria (234)
    ("2348031234567", None, NG),
    ("+234 803 123 4567", None, NG),
    ("0803 123 4567", "NG", NG),
    ("2.348031234567E+12", None, NG),
    (2348031234567, None, NG),
    # India (91)
    ("919876543210", None, IN_MOBILE),
    ("+91 98765 43210", None, IN_MOBILE),
    ("098765 43210", "IN", IN_MOBILE),
    ("9876543210", "IN", IN_MOBILE),
    ("011 2345 6789", "IN", "+911123456789"),  # Delhi landline: 011 is a trunk + area code here
    # US / Canada (1)
    ("+1 (415) 555-2671", None, US),
    ("1-415-555-2671", None, US),
    ("14155552671", None, US),
    ("(415) 555-2671", "US", US),
    ("415.555.2671", "US", US),
    ("011 1 415 555 2671", None, US),
    ("+1 415 555 2671 ext. 22", None, US),
    ("415-555-2671 x22", "US", US),
    ("14165550199", None, CA),
    ("(416) 555-0199", "CA", CA),
    # UK (44)
    ("447400123456", None, UK_MOBILE),
    ("+44 7400 123456", None, UK_MOBILE),
    ("07400 123456", "GB", UK_MOBILE),
    ("011 44 7400 123456", None, UK_MOBILE),
    ("+44 (0)20 7946 0958", None, UK_LONDON),
    ("0044 20 7946 0958", None, UK_LONDON),
    ("020 7946 0958", "GB", UK_LONDON),
    # South Africa (27)
    ("27821234567", None, ZA),
    ("+27 82 123 4567", None, ZA),
    ("082 123 4567", "ZA", ZA),
    # Brazil (55)
    ("5511987654321", None, BR),
    ("+55 (11) 98765-4321", None, BR),
    ("(11) 98765-4321", "BR", BR),
    (5511987654321.0, None, BR),
    # Bangladesh (880)
    ("8801712345678", None, BD),
    ("+880 1712-345678", None, BD),
    ("01712-345678", "BD", BD),
    (8801712345678, None, BD),
    ("8.801712345678E+12", None, BD),
    # A region the project does not know does not stop an international number.
    ("+254712345678", "XX", KE),
]


@pytest.mark.parametrize(("raw", "region", "expected"), VALID)
def test_real_world_spellings(raw, region, expected):
    assert normalize_phone(raw, region) == expected


def test_table_is_big_and_covers_many_countries():
    assert len(VALID) >= 40
    prefixes = {"+254", "+256", "+234", "+91", "+1", "+44", "+27", "+55", "+880"}
    assert prefixes <= {p for p in prefixes for _, _, e in VALID if e.startswith(p)}


INVALID = [
    (None, None),
    ("", None),
    ("   ", None),
    ("abc", None),
    ("not-a-number", None),
    ("Call 0712345678", "KE"),
    ("254712345678abc", None),
    (12.5, None),
    (254712345678.5, None),
    (-254712345678, None),
    (0, None),
    (True, None),
    (False, None),
    (float("nan"), None),
    (float("inf"), None),
    (Decimal("NaN"), None),
    (b"254712345678", None),
    ([], None),
    ({}, None),
    (object(), None),
    ("x" * 10_000, None),
    ("9" * 40, None),
    ("+", None),
    ("++254712345678", None),
    ("+254 712 345 67", None),  # one digit short
    ("+999 123 456 789", None),  # no such country code
    ("0712345678", None),  # national format without a default region
    ("712345678", None),
    ("12345", "KE"),
    ("254712345678 / 256772123456", None),  # two numbers in one cell: do not guess
    ("2.54712E+11", None),  # Excel display rounding: digits lost, never guess them
    ("9e99", None),
    ("1e400", None),
    ("0712345678", "XX"),
]


@pytest.mark.parametrize(("raw", "region"), INVALID)
def test_invalid_spellings_give_none(raw, region):
    assert normalize_phone(raw, region) is None


def test_ambiguous_ten_digits_prefer_the_projects_national_format():
    # 656 is a US area code; +65 6234 5678 is also a valid Singapore number.
    assert normalize_phone("6562345678", "US") == "+16562345678"
    assert normalize_phone("6562345678") == "+6562345678"
    # Digits that start with the project's own country code are international.
    assert normalize_phone("254712345678", "KE") == KE


def test_parse_phone_keeps_the_raw_text():
    assert parse_phone("+254 712 345 678") == PhoneResult(
        e164=KE, raw="+254 712 345 678", valid=True, region="KE"
    )
    assert parse_phone(254712345678.0) == PhoneResult(e164=KE, raw="254712345678.0", valid=True, region="KE")
    assert parse_phone("0712 345678", "KE").region == "KE"
    assert parse_phone("abc") == PhoneResult(e164=None, raw="abc", valid=False, region=None)
    assert parse_phone(None) == PhoneResult(e164=None, raw="", valid=False, region=None)


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        (KE, "KE"),
        (UG, "UG"),
        (NG, "NG"),
        (IN_MOBILE, "IN"),
        (US, "US"),
        (CA, "CA"),
        (UK_LONDON, "GB"),
        (ZA, "ZA"),
        (BR, "BR"),
        (BD, "BD"),
        ("254712345678", None),
        ("+254 712 345 67", None),
        ("", None),
        (None, None),
        (12, None),
    ],
)
def test_phone_region(e164, region):
    assert phone_region(e164) == region


@pytest.mark.parametrize(
    ("e164", "zone"),
    [
        (KE, "Africa/Nairobi"),
        (NG, "Africa/Lagos"),
        (BD, "Asia/Dhaka"),
        (BR, "America/Sao_Paulo"),
        (US, "America/Los_Angeles"),
        (CA, "America/Toronto"),
        (UK_LONDON, "Europe/London"),
        # An Australian mobile can be in any of several offsets: unknown, not a guess.
        ("+61412345678", None),
        ("not a number", None),
        (None, None),
    ],
)
def test_phone_timezone(e164, zone):
    assert phone_timezone(e164) == zone


def test_phone_timezone_with_several_zones_of_one_offset_takes_the_first():
    assert phone_timezone(UK_MOBILE) in {
        "Europe/Guernsey",
        "Europe/Isle_of_Man",
        "Europe/Jersey",
        "Europe/London",
    }


@pytest.mark.parametrize(
    "identifier",
    [
        "254712345678",
        "+254 712 345 678",
        "(0712) 345-678",
        "0712345678",
        "'254712345678",
        254712345678,
        254712345678.0,
        "254712345678.0",
        "2.54712345678E+11",
        "+1 415 555 2671 ext 22",
    ],
)
def test_looks_like_phone(identifier):
    assert looks_like_phone(identifier) is True


@pytest.mark.parametrize(
    "identifier",
    [
        "3f2a9c1e8b7d4a6f9e0c1b2a3d4e5f60",  # a case ID (uuid hex)
        "12345678901234567890123456789012",  # 32 digits: not a phone
        "EXT-0042",
        "P-12345678",
        "abc",
        "",
        None,
        "12345",
        True,
        12.5,
        "2.54712E+11",
    ],
)
def test_does_not_look_like_phone(identifier):
    assert looks_like_phone(identifier) is False


def test_a_number_prefix_names_its_country_for_usage():
    from messaging.lib.phones import country_of_prefix

    assert country_of_prefix("+25471") == "KE"
    assert country_of_prefix("+18095") == "DO"  # +1 shared: the Dominican Republic's area code
    assert country_of_prefix("+12125") == "US"  # +1 shared: the main region otherwise
    assert country_of_prefix("+77012") == "KZ" and country_of_prefix("+79161") == "RU"
    assert country_of_prefix("+44791") == "GB"
    for unknown in ("+2", "+", "", "+999", "abc"):
        assert country_of_prefix(unknown) is None
