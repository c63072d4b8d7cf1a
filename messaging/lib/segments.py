"""SMS segment counting (GSM 03.38 / 3GPP TS 23.038).

A text that uses only characters of the GSM 7-bit default alphabet (plus its
extension table) is sent as GSM-7: 160 septets in a single SMS, 153 per part
when the message is concatenated (the user data header takes 7). Any other
character switches the whole message to UCS-2: 70 UTF-16 code units in a single
SMS, 67 per part when concatenated.

Extension-table characters (``^ { } \\ [ ~ ] | €`` and form feed) cost two
septets (ESC + code) and are never split across parts; in UCS-2 a character
outside the BMP (an emoji, for instance) costs two code units (a surrogate
pair) and is never split either. Parts are counted by greedy packing, which is
what handsets and carriers do, so a message can need one part more than
``ceil(units / 153)`` suggests.

Empty text is not a sendable SMS (Twilio refuses an empty body with 21602), so
it counts as 0 segments.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = [
    "GSM7",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SINGLE_LIMIT",
    "MULTI_LIMIT",
    "UCS2",
    "SegmentInfo",
    "count_segments",
    "is_gsm7",
    "split_segments",
]

GSM7: Literal["GSM-7"] = "GSM-7"
UCS2: Literal["UCS-2"] = "UCS-2"

# The GSM 03.38 default alphabet in code order 0x00..0x7F; 0x1B is the escape
# to the extension table and is not a character of its own (left out here).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F
    "Δ_ΦΓΛΩΠΨΣΘΞ"  # 0x10-0x1A
    "ÆæßÉ"  # 0x1C-0x1F (0x1B = ESC)
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"  # 0x40-0x5F
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"  # 0x60-0x7F
)

# Extension table (each costs ESC + code = 2 septets).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
MULTI_LIMIT = {GSM7: 153, UCS2: 67}


class SegmentInfo(NamedTuple):
    """Result of :func:`count_segments`.

    ``characters`` counts Unicode code points; ``units`` counts septets for
    GSM-7 and UTF-16 code units for UCS-2.
    """

    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    characters: int
    units: int


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent as GSM-7."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _unit_sizes(text: str) -> tuple[str, list[int]]:
    if is_gsm7(text):
        return GSM7, [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return UCS2, [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _part_starts(sizes: list[int], encoding: str) -> list[int]:
    """Indexes (into the code points) where each part starts, greedy packing."""
    if not sizes:
        return []
    if sum(sizes) <= SINGLE_LIMIT[encoding]:
        return [0]
    limit = MULTI_LIMIT[encoding]
    starts = [0]
    used = 0
    for index, size in enumerate(sizes):
        if used + size > limit:
            starts.append(index)
            used = 0
        used += size
    return starts


def count_segments(text: str) -> SegmentInfo:
    """Encoding and number of SMS parts needed to send ``text``."""
    encoding, sizes = _unit_sizes(text)
    return SegmentInfo(
        encoding=encoding,
        segments=len(_part_starts(sizes, encoding)),
        characters=len(text),
        units=sum(sizes),
    )


def split_segments(text: str) -> list[str]:
    """The parts ``text`` is sent in (same packing as :func:`count_segments`)."""
    encoding, sizes = _unit_sizes(text)
    starts = _part_starts(sizes, encoding)
    ends = [*starts[1:], len(text)]
    return [text[start : ends[i]] for i, start in enumerate(starts)]
