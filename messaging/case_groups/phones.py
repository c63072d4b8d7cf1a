"""Phone numbers as identifiers, fast: the common spellings without the full normaliser.

- An identifier that looks like a phone number (:func:`messaging.lib.phones.looks_like_phone`:
  digits with ``+``, spaces, dashes, brackets, ``00``, Excel's ``254712345678.0``
  or ``2.54712345678E+11``) is normalised to E.164 with the project's default
  country for national spellings (``0712 345 678`` in a Kenyan project).
- ``phone_e164`` gives exactly ``normalize_phone``'s answers, faster for plain
  digit strings; ``quick_e164`` finds a candidate without ``phonenumbers`` that
  equals a stored (canonical E.164) number only when it *is* the normalised
  identifier. ``tests/unit/test_case_group_phones.py`` checks both against the normaliser.
"""

import re

import phonenumbers

from messaging.lib.phones import looks_like_phone, normalize_phone


def phone_e164(text: str, region: str | None) -> str | None:
    """``normalize_phone(text, region)`` if ``text`` looks like a phone number, else ``None``.

    The same answers, faster for plain digit strings (the seed's
    ``254712345678``, national ``0712345678``, Excel's numeric cells): the
    normaliser parses such a number both as international and as national and
    then picks one by its country code; here the reading that would win is
    tried first and the other only when it is not valid (about twice as fast;
    ``tests/unit/test_case_group_phones.py`` checks the two agree).
    """
    if not (text.isascii() and text.isdigit()):
        return normalize_phone(text, region) if looks_like_phone(text) else None
    if not 7 <= len(text) <= 18:
        return None
    if text.startswith("00") or text.startswith("011") or region not in _COUNTRY_CODES:
        return normalize_phone(text, region)
    if len(text) >= 10 and text.startswith(_COUNTRY_CODES[region]):
        return _valid_phone("+" + text, None) or _valid_phone(text, region)
    return _valid_phone(text, region) or (_valid_phone("+" + text, None) if len(text) >= 10 else None)


_COUNTRY_CODES = {r: str(phonenumbers.country_code_for_region(r)) for r in phonenumbers.SUPPORTED_REGIONS}


def _valid_phone(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_PLUS_DIGITS = re.compile(r"\+\d[\d \-]*")
_NATIONAL_DIGITS = re.compile(r"0\d[\d \-]*")


def _simple_national_prefixes() -> dict[str, tuple[str, re.Pattern]]:
    """Regions whose national prefix is a plain ``0`` (Kenya's ``0712 345 678``):
    region -> (country code, international dialling prefix as a pattern)."""
    out = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if meta and meta.national_prefix_for_parsing == "0" and meta.national_prefix_transform_rule is None:
            out[region] = (str(meta.country_code), re.compile(meta.international_prefix or "(?!)"))
    return out


_SIMPLE_NATIONAL = _simple_national_prefixes()


def quick_e164(text: str, region: str | None) -> str | None:
    """A phone candidate found without phonenumbers, for the common spellings.

    ``+254 712 345 678``, in a project whose country code they start with
    ``254712345678`` (text or a numeric cell), and in a project whose
    national prefix is a plain ``0`` the national ``0712 345 678``, normalise
    to ``+`` and their digits (the national prefix replaced by the country
    code) whenever that is a valid number. Phone numbers in the database are
    stored normalised (canonical E.164), so when the candidate equals a stored
    number it *is* the normalised identifier; only candidates that match no
    case go through the full normaliser
    (``tests/unit/test_case_group_phones.py`` checks the two agree).
    """
    if text[0] == "+":
        if not _PLUS_DIGITS.fullmatch(text):
            return None
        digits = text[1:].replace(" ", "").replace("-", "")
    elif text[0] == "0":
        simple = _SIMPLE_NATIONAL.get(region)
        if simple is None or not _NATIONAL_DIGITS.fullmatch(text):
            return None
        national = text.replace(" ", "").replace("-", "")
        if simple[1].match(national):  # starts with the international prefix (KE: 000)
            return None
        digits = simple[0] + national[1:]
    elif text.isascii() and text.isdigit() and region in _COUNTRY_CODES:
        if len(text) < 10 or not text.startswith(_COUNTRY_CODES[region]):
            return None
        digits = text
    else:
        return None
    return "+" + digits if 8 <= len(digits) <= 15 else None
