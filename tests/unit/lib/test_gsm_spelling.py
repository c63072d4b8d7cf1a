"""The characters that force UCS-2 and the GSM-7 spelling the composer offers (messaging.lib.gsm_spelling)."""

import pytest

from messaging.lib.gsm_spelling import gsm7_spelling, ucs2_characters
from messaging.lib.segments import count_segments


@pytest.mark.parametrize(
    ("text", "spelled"),
    [
        ("Don’t miss “clinic day” – Monday…", 'Don\'t miss "clinic day" - Monday...'),
        ("Rendez-vous à l’hôpital", "Rendez-vous à l'hopital"),  # à is GSM-7, ô is not
        ("Cita médica: mañana, señora", "Cita médica: mañana, señora"),  # all GSM-7 already
        ("Consulta amanhã às 9h", "Consulta amanha às 9h"),  # à is GSM-7, ã is not
        ("Ağustos • 10\u00a0kg", "Agustos - 10 kg"),
        ("Hello 😀", "Hello 😀"),  # no GSM-7 spelling: stays
    ],
)
def test_the_gsm7_spelling_replaces_look_alikes_and_keeps_what_gsm7_has(text, spelled):
    assert gsm7_spelling(text) == spelled


def test_the_characters_forcing_ucs2_are_listed_once_in_order():
    text = "Don’t – don’t 😀 é"
    assert ucs2_characters(text) == ["’", "–", "😀"]
    assert ucs2_characters(gsm7_spelling(text)) == ["😀"]
    assert ucs2_characters("Plain text, é è à") == []


def test_a_long_message_needs_fewer_segments_once_spelled_in_gsm7():
    text = "Karibu kliniki – tafadhali njoo na kadi yako ya “ANC”. " * 3
    assert count_segments(text).encoding == "UCS-2" and count_segments(text).segments == 3
    assert count_segments(gsm7_spelling(text)).encoding == "GSM-7"
    assert count_segments(gsm7_spelling(text)).segments == 2
