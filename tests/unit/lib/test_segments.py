import pytest

from messaging.lib.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SegmentInfo,
    count_segments,
    is_gsm7,
    split_segments,
)

EMOJI = "\U0001f600"  # 😀, outside the BMP: a surrogate pair in UTF-16
ARABIC = "مرحبا، هذا تذكير بموعدك في العيادة غدا"
DEVANAGARI = "नमस्ते"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SegmentInfo("GSM-7", 0, 0, 0)),
        ("a", SegmentInfo("GSM-7", 1, 1, 1)),
        ("a" * 160, SegmentInfo("GSM-7", 1, 160, 160)),
        ("a" * 161, SegmentInfo("GSM-7", 2, 161, 161)),
        ("a" * 306, SegmentInfo("GSM-7", 2, 306, 306)),
        ("a" * 307, SegmentInfo("GSM-7", 3, 307, 307)),
        ("Hello\r\nWorld @ $5 ¤ § ¡¿", SegmentInfo("GSM-7", 1, 24, 24)),
        # extension table: two septets each
        ("€", SegmentInfo("GSM-7", 1, 1, 2)),
        ("^{}\\[~]|€\f", SegmentInfo("GSM-7", 1, 10, 20)),
        ("€" * 80, SegmentInfo("GSM-7", 1, 80, 160)),
        ("€" * 81, SegmentInfo("GSM-7", 2, 81, 162)),
        ("a" * 159 + "[", SegmentInfo("GSM-7", 2, 160, 161)),
        # an escape pair never straddles two parts: greedy packing needs 3
        # parts where ceil(306 / 153) would say 2
        ("a" * 152 + "€" + "a" * 152, SegmentInfo("GSM-7", 3, 305, 306)),
        # accented letters inside the GSM alphabet
        ("é" * 160, SegmentInfo("GSM-7", 1, 160, 160)),
        ("Ñandú ÜBER Ça", SegmentInfo("UCS-2", 1, 13, 13)),  # ú is not GSM
        ("Ñandu ÜBER Ça", SegmentInfo("GSM-7", 1, 13, 13)),
        ("ñÑüÜöÖäÄåÅæÆøØßéÉèùìòàÇ", SegmentInfo("GSM-7", 1, 23, 23)),
        ("ΔΦΓΛΩΠΨΣΘΞ", SegmentInfo("GSM-7", 1, 10, 10)),
        # outside: lowercase ç (only Ç is in GSM 03.38), á, í, ó, ú, ê...
        ("ç", SegmentInfo("UCS-2", 1, 1, 1)),
        ("á", SegmentInfo("UCS-2", 1, 1, 1)),
        ("ê", SegmentInfo("UCS-2", 1, 1, 1)),
        ("α", SegmentInfo("UCS-2", 1, 1, 1)),  # lowercase Greek is not GSM
        ("`", SegmentInfo("UCS-2", 1, 1, 1)),  # backtick is not GSM
        ("“quoted”", SegmentInfo("UCS-2", 1, 8, 8)),  # curly quotes
        # UCS-2 limits: 70 single, 67 per part
        ("ç" * 70, SegmentInfo("UCS-2", 1, 70, 70)),
        ("ç" * 71, SegmentInfo("UCS-2", 2, 71, 71)),
        ("ç" * 134, SegmentInfo("UCS-2", 2, 134, 134)),
        ("ç" * 135, SegmentInfo("UCS-2", 3, 135, 135)),
        # one emoji switches a GSM text to UCS-2 and counts 2 units
        ("Hi " + EMOJI, SegmentInfo("UCS-2", 1, 4, 5)),
        ("a" * 159 + EMOJI, SegmentInfo("UCS-2", 3, 160, 161)),
        (EMOJI * 35, SegmentInfo("UCS-2", 1, 35, 70)),
        (EMOJI * 36, SegmentInfo("UCS-2", 2, 36, 72)),
        # surrogate pair at a part boundary is carried to the next part
        ("ç" * 66 + EMOJI, SegmentInfo("UCS-2", 1, 67, 68)),
        ("ç" * 66 + EMOJI + "ç" * 66, SegmentInfo("UCS-2", 3, 133, 134)),
        ("ç" * 65 + EMOJI + "ç" * 67, SegmentInfo("UCS-2", 2, 133, 134)),
        # scripts
        (ARABIC, SegmentInfo("UCS-2", 1, len(ARABIC), len(ARABIC))),
        (ARABIC * 2, SegmentInfo("UCS-2", 2, 2 * len(ARABIC), 2 * len(ARABIC))),
        (DEVANAGARI, SegmentInfo("UCS-2", 1, 6, 6)),
        (DEVANAGARI * 12, SegmentInfo("UCS-2", 2, 72, 72)),
    ],
)
def test_count_segments(text, expected):
    assert count_segments(text) == expected


def test_gsm_tables_match_gsm_03_38():
    # 128 codes, 0x1B is the escape: 127 characters; 10 in the extension table
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC
    assert "Ç" in GSM7_BASIC and "ç" not in GSM7_BASIC
    assert is_gsm7("Hello {name}, €5")
    assert not is_gsm7("Hello " + EMOJI)


def test_result_fields():
    info = count_segments("hé")
    assert info.encoding == "GSM-7"
    assert info.segments == 1
    assert info.characters == 2
    assert info.units == 2


@pytest.mark.parametrize(
    "text",
    [
        "a" * 152 + "€" + "a" * 152,
        "€" * 200,
        "ç" * 66 + EMOJI + "ç" * 66,
        EMOJI * 100,
        ("abc" + EMOJI + ARABIC) * 10,
        "x" * 1600,
    ],
)
def test_split_never_breaks_escapes_or_surrogates(text):
    parts = split_segments(text)
    info = count_segments(text)
    assert "".join(parts) == text
    assert len(parts) == info.segments
    for part in parts:
        if info.encoding == "GSM-7":
            septets = sum(2 if ch in GSM7_EXTENSION else 1 for ch in part)
            assert septets <= 153
        else:
            # encodes cleanly (no lone surrogate) within 67 code units
            assert len(part.encode("utf-16-le")) // 2 <= 67


def test_split_single_and_empty():
    assert split_segments("") == []
    assert split_segments("hello") == ["hello"]
    assert split_segments("a" * 152 + "€" + "a") == ["a" * 152 + "€" + "a"]
    assert split_segments("a" * 152 + "€" + "a" * 10) == ["a" * 152, "€" + "a" * 10]
