"""Phone numbers as people and Excel really write them, normalised to E.164.

CommCare asks for "digits with country code and no +" (``254712345678``) and
does not normalise; people also type ``+254 712 345 678``, ``(0712) 345-678``,
``00254...``, ``011 ...``, and Excel turns long numbers into ``254712345678``
(int), ``254712345678.0`` (float or text) or ``2.54712345678E+11``. Every
function here returns ``None`` (or ``False``) for garbage and never raises.

Rules used by :func:`normalize_phone`, in order:

1. Turn Excel numerics into digits exactly (``Decimal``, never float maths).
2. Strip spaces, invisible marks, a leading apostrophe and an extension; refuse
   anything with letters or other symbols (``"Call 0712..."`` is not a number).
3. A leading ``+`` means international: that and nothing else.
4. A leading ``00`` or ``011`` (international call prefixes) is read as ``+``
   when that gives a valid number.
5. Without ``+``, ten digits or more that are valid once ``+`` is put in front
   are taken as "country code + number" (the CommCare convention).
6. Otherwise, with ``default_region``, the digits are read as a national
   number of that region (``0712 345 678`` in Kenya).

When 5 and 6 both give a valid, different number (a US ``6562345678`` is also
Singapore's ``+65 6234 5678``), the international reading wins only when the
digits start with the default region's country code: an ambiguous number in a
project's own national format is read as national.

Only numbers that ``phonenumbers.is_valid_number`` accepts are returned.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat

__all__ = [
    "PhoneResult",
    "looks_like_phone",
    "normalize_phone",
    "parse_phone",
    "phone_region",
    "phone_timezone",
]

# Longer input is not a phone number; also keeps regexes and parsing cheap.
_MAX_INPUT = 64
# E.164 allows 15 digits; "011" + 15 digits is the longest spelling we accept.
_MAX_DIGITS = 18
# Fewer digits than this cannot be "country code + number" without a "+".
_MIN_INTERNATIONAL_DIGITS = 10

# Zero-width and direction marks that copy-paste (WhatsApp, Word, web pages)
# leaves around numbers.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\ufeff"),
    None,
)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u3000"), " ")

# "254712345678.0" (a float rendered as text), with an optional "+".
_FLOAT_TEXT = re.compile(r"(\+?)(\d+)[.,]0*")
# "2.54712345678E+11" (Excel's scientific notation; some locales use a comma).
_SCIENTIFIC_TEXT = re.compile(r"(\+?)(\d)(?:[.,](\d*))?[eE]\+?(\d{1,2})")
# "... ext 12", "... x12", "... #12": an extension cannot receive an SMS; drop it.
_EXTENSION = re.compile(r"(.*?\d[\s\-.)]*)(?:ext\.?|extension|x|#)\s*\d{1,6}", re.IGNORECASE)
# What may remain in a phone number once the above is handled.
_PHONE_TEXT = re.compile(r"[(\s]*\+?[\d\s\-.()/]+")
_NON_DIGITS = re.compile(r"\D")


class PhoneResult(NamedTuple):
    """A parsed phone number to store beside the raw value it came from."""

    e164: str | None
    raw: str
    valid: bool
    region: str | None


def normalize_phone(raw: object, default_region: str | None = None) -> str | None:
    """Return ``raw`` as an E.164 string (``+254712345678``), or ``None``."""
    try:
        return _normalize(raw, _region_or_none(default_region))
    except Exception:  # garbage in must never raise
        return None


def parse_phone(raw: object, default_region: str | None = None) -> PhoneResult:
    """Normalise ``raw`` and keep the text it came from, for storing both."""
    raw_text = "" if raw is None else raw if isinstance(raw, str) else str(raw)
    e164 = normalize_phone(raw, default_region)
    return PhoneResult(
        e164=e164,
        raw=raw_text,
        valid=e164 is not None,
        region=phone_region(e164) if e164 else None,
    )


def phone_region(e164: str | None) -> str | None:
    """The ISO region (``KE``, ``US``, ``CA``...) of a valid E.164 number, else ``None``."""
    number = _parse_valid(e164)
    if number is None:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region and region != "ZZ" else None


@functools.lru_cache(maxsize=4096)
def country_of_prefix(prefix: str) -> str | None:
    """The ISO region of the numbers starting with ``prefix`` (``+2547``, ``+1809``), or None.

    For a calling code several regions share, a region whose numbers have known
    leading digits is picked when the rest of the prefix matches them (``+1809``: DO,
    ``+77``: KZ); otherwise the code's main region (``+1416``: US, as Canada has none).
    Enough for grouping usage by destination; :func:`phone_region` reads a whole number.
    """
    digits = prefix.lstrip("+")
    for length in (1, 2, 3):
        if len(digits) < length or not digits[:length].isdigit():
            break
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length]))
        if not regions:
            continue
        national = digits[length:]
        for region in regions[1:]:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
            leading = metadata.leading_digits if metadata is not None else None
            if leading and national and re.match(leading, national):
                return region
        return regions[0] if regions[0] != "001" else None
    return None


def phone_timezone(e164: str | None) -> str | None:
    """An IANA time zone for a valid E.164 number, or ``None`` when unknown.

    Uses ``phonenumbers.timezone.time_zones_for_number`` and takes the first
    zone. When the number maps to several zones whose UTC offsets differ (a
    Russian or Australian mobile, a US toll-free number), the zone is unknown
    and ``None`` is returned, so callers fall back to the project's zone rather
    than guess a wrong local time for quiet hours.
    """
    number = _parse_valid(e164)
    if number is None:
        return None
    try:
        from phonenumbers import timezone as phone_tz

        zones = [z for z in phone_tz.time_zones_for_number(number) if z and z != "Etc/Unknown"]
    except Exception:  # geodata problems mean "unknown"
        return None
    if not zones:
        return None
    if len(zones) > 1 and not _same_offsets(zones):
        return None
    return zones[0]


def looks_like_phone(identifier: object) -> bool:
    """Cheap test: could ``identifier`` be a phone number rather than an ID?

    True for 7 to 18 digits with the usual separators, an optional leading
    ``+``, and Excel's numeric spellings. It does not check validity (use
    :func:`normalize_phone`); a case ID (32 hex characters) is never a phone.
    """
    try:
        found = _text_and_digits(identifier)
        return found is not None and 7 <= len(found[1]) <= _MAX_DIGITS
    except Exception:  # a cheap test must not raise either
        return False


# --- internals ---------------------------------------------------------------


def _text_and_digits(raw: object) -> tuple[str, str] | None:
    """A cell's text (Excel's numbers read as digits, an extension cut off) and its digits,
    or None when it cannot be a phone number (letters, two plus signs)."""
    text = _excel_text(raw)
    if text is None:
        return None
    text = _strip_extension(text)
    if not _PHONE_TEXT.fullmatch(text) or text.count("+") > 1:
        return None
    return text, _NON_DIGITS.sub("", text)


def _normalize(raw: object, region: str | None) -> str | None:
    if isinstance(raw, PhoneNumber):
        return _format_valid(raw)
    found = _text_and_digits(raw)
    if found is None:
        return None
    text, digits = found
    if not digits or len(digits) > _MAX_DIGITS:
        return None

    if text.lstrip("( ").startswith("+"):
        return _valid_international(digits)

    found = _after_exit_code(digits)
    if found:
        return found
    if digits.startswith("0"):
        # No country code starts with 0: only the national reading can be valid.
        return _valid_national(digits, region) if region else None
    international = _valid_international(digits) if len(digits) >= _MIN_INTERNATIONAL_DIGITS else None
    if not region:
        return international
    country_code = _country_code(region)
    if international and digits.startswith(country_code):
        return international  # the rule below would pick it anyway: skip the second parse
    national = _valid_national(digits, region)
    if international and national and international != national:
        return national
    return international or national


def _after_exit_code(digits: str) -> str | None:
    """A number dialled with an international exit code (011 from North America, 00
    elsewhere), when the rest is a valid international number."""
    for exit_code in ("011", "00"):
        if digits.startswith(exit_code):
            return _valid_international(digits[len(exit_code) :])
    return None


@functools.lru_cache(maxsize=512)
def _country_code(region: str) -> str:
    return str(phonenumbers.country_code_for_region(region))


def _excel_text(raw: object) -> str | None:
    """Text of a cell value with Excel's numeric spellings turned into digits."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw) if raw > 0 else None
    if isinstance(raw, float):
        if not math.isfinite(raw) or raw <= 0 or not raw.is_integer():
            return None
        return str(int(Decimal(raw)))  # exact: Decimal(float) keeps every bit
    if isinstance(raw, Decimal):
        if not raw.is_finite() or raw <= 0 or raw != raw.to_integral_value():
            return None
        return str(int(raw))
    if not isinstance(raw, str) or len(raw) > _MAX_INPUT:
        return None

    text = raw.translate(_INVISIBLE).translate(_SPACES).strip()
    # Excel shows a leading apostrophe for "number stored as text".
    text = text.lstrip("'\u2018\u2019").strip()
    if not text:
        return None

    match = _FLOAT_TEXT.fullmatch(text)
    if match:
        return match.group(1) + match.group(2)

    match = _SCIENTIFIC_TEXT.fullmatch(text)
    if match:
        return _scientific_digits(match)
    return text


def _scientific_digits(match: re.Match[str]) -> str | None:
    """``2.54712345678E+11`` -> ``254712345678``; ``None`` if digits were lost.

    Excel's "General" format shows ``2.54712E+11`` for ``254712345678`` in a
    narrow column, and a CSV saved from it keeps only that text. The missing
    digits come back as zeros: a valid-looking but wrong number. More than two
    zeros made up this way is treated as lost precision.
    """
    sign, lead, fraction, exponent = match.groups()
    fraction = fraction or ""
    try:
        value = Decimal(f"{lead}.{fraction}E{exponent}")
    except InvalidOperation:
        return None
    if value != value.to_integral_value():
        return None
    digits = str(int(value))
    significant = len((lead + fraction).rstrip("0"))
    if len(digits) - significant > 2 and len(fraction) < len(digits) - 1:
        return None
    return sign + digits


def _strip_extension(text: str) -> str:
    match = _EXTENSION.fullmatch(text)
    return match.group(1).strip() if match else text


def _valid_international(digits: str) -> str | None:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except NumberParseException:
        return None
    return _format_valid(number)


def _valid_national(digits: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(digits, region)
    except NumberParseException:
        return None
    return _format_valid(number)


def _format_valid(number: PhoneNumber) -> str | None:
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _parse_valid(e164: object) -> PhoneNumber | None:
    if not isinstance(e164, str) or not e164.startswith("+") or len(e164) > _MAX_INPUT:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except Exception:  # NumberParseException, or anything odd: not a number
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _region_or_none(region: str | None) -> str | None:
    if not isinstance(region, str):
        return None
    region = region.strip().upper()
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _same_offsets(zones: list[str]) -> bool:
    """Whether all zones share their UTC offset in January and in July."""
    try:
        from zoneinfo import ZoneInfo

        year = datetime.now(UTC).year
        instants = (datetime(year, 1, 15, 12, tzinfo=UTC), datetime(year, 7, 15, 12, tzinfo=UTC))
        offsets = {tuple(t.astimezone(ZoneInfo(z)).utcoffset() for t in instants) for z in zones}
    except Exception:  # no tz database: trust phonenumbers
        return True
    return len(offsets) == 1
