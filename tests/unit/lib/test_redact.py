"""Participants' numbers in logs: the last four digits only."""

import logging

import pytest

from messaging.lib.redact import MaskPhonesInLogs, install_on_handlers, mask_phone, mask_phones_in


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+254712345678", "+***5678"),
        ("254712345678", "***5678"),
        ("0712 345 678", "***5678"),
        ("+1 (500) 555-0006", "+***0006"),
        ("12345", "***"),  # a short code: its last four digits would be most of it
        ("+1234567", "***"),
        ("not a number", "***"),
        ("", "-"),
        ("   ", "-"),
        (None, "-"),
    ],
)
def test_mask_phone_shows_the_last_four_digits_only(value, masked):
    assert mask_phone(value) == masked


def test_mask_phones_in_masks_every_phone_like_run():
    text = "to=+254712345678 from 0712000111 args=(1, '+15005550006') and 254700000009."
    assert mask_phones_in(text) == "to=+***5678 from ***0111 args=(1, '+***0006') and ***0009."


@pytest.mark.parametrize(
    "text",
    [
        "message_id=12345678 bytes=20971520",  # ids and counts under ten digits
        "job_id=periodic-sms-sweep-1772442000",  # a periodic slot, glued to its name
        "job 4f3a2b1c-12345678-aaaa took 0:00:00.1234567890s",
        "sid=SM1234567890123456 code=21610",
        "a run of sixteen digits 1234567890123456 is no phone",
    ],
)
def test_mask_phones_in_leaves_ids_durations_and_sids_alone(text):
    assert mask_phones_in(text) == text


def _record(name, level, msg, *args):
    return logging.LogRecord(name, level, __file__, 1, msg, args or None, None)


def test_the_log_filter_masks_info_and_warning_lines_of_our_loggers_and_rqs():
    masking = MaskPhonesInLogs()
    for name in ("messaging.inbound.receive", "workers.jobs", "rq.worker"):
        for level in (logging.INFO, logging.WARNING):
            record = _record(name, level, "handle_number(1, %r) phone=%s", "+254712345678", "+254712345678")
            assert masking.filter(record)
            assert record.getMessage() == "handle_number(1, '+***5678') phone=+***5678"


def test_the_log_filter_keeps_debug_error_and_other_loggers_as_they_are():
    masking = MaskPhonesInLogs()
    kept = [
        _record("messaging.inbound.receive", logging.DEBUG, "phone=%s", "+254712345678"),
        _record("messaging.inbound.receive", logging.ERROR, "phone=%s", "+254712345678"),
        _record("messagingx", logging.INFO, "phone=%s", "+254712345678"),
        _record("gunicorn.error", logging.INFO, "phone=%s", "+254712345678"),
    ]
    for record in kept:
        assert masking.filter(record)
        assert record.getMessage() == "phone=+254712345678"


def test_a_bad_format_string_passes_through_the_filter_untouched():
    record = _record("messaging.x", logging.INFO, "two %s %s", "one")
    assert MaskPhonesInLogs().filter(record)
    assert record.msg == "two %s %s"


def test_installed_once_on_each_handler_it_masks_what_the_handler_writes():
    import io

    logger = logging.getLogger("tests.redact.install")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        assert install_on_handlers(logger) == 1
        assert install_on_handlers(logger) == 0  # idempotent
        masking = next(f for f in handler.filters if isinstance(f, MaskPhonesInLogs))
        masking.prefixes = ("tests.redact",)
        logger.warning("opt-out phone=%s", "+254712345678")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "opt-out phone=+***5678\n"
