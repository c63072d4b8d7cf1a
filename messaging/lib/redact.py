"""Participants' phone numbers kept out of the logs: only their last four digits show.

Rules:

- ``mask_phone`` shows the last four digits of a number and hides the rest
  (``+254712345678`` → ``+***5678``). A value with fewer than eight digits
  (a typo, a short code) is hidden whole (``***``), since its last four digits
  would be most of it; ``None`` or an empty value is ``-``.
- ``mask_phones_in`` masks every phone-like run of digits in a text: a ``+``
  and 8 to 15 digits (E.164, what we store), or 10 to 15 bare digits (a local
  number, E.164 without its ``+``). Runs glued to letters, dashes or a
  decimal point are left alone (job ids, durations, periodic slots), and so
  are runs of fewer than ten bare digits (row ids, byte counts).
- :class:`MaskPhonesInLogs` is the safety net under the explicit masking of
  each log line: a handler filter that masks phone-like runs in the INFO and
  WARNING records of our loggers and RQ's (a line that forgot to mask, RQ's
  own job lines). DEBUG records keep the full text (debugging a number needs
  it); ERROR records keep theirs (a traceback must stay exact).
- Message texts are never logged at INFO; nothing here can find a text in a
  line, so each line must leave it out (log its length or its id instead).
"""

from __future__ import annotations

import logging
import re

__all__ = ["MASK", "MaskPhonesInLogs", "install_on_handlers", "mask_phone", "mask_phones_in"]

MASK = "***"
SHOWN_DIGITS = 4
# Fewer digits than this and the last four would give most of the value away.
MIN_DIGITS_TO_SHOW = 8

# Not glued to a word, a dash or a decimal point (ids, slots, durations); a full stop after it is fine.
_PHONE_LIKE = re.compile(r"(?<![\w.+\-])(?:\+\d{8,15}|\d{10,15})(?![\w\-]|\.\d)")

# The loggers whose INFO and WARNING lines the safety net masks: ours and RQ's.
LOGGER_PREFIXES = ("messaging", "workers", "rq")


def mask_phone(value: str | None) -> str:
    """``value`` with only its last four digits shown: ``+***5678``; ``***`` when short, ``-`` when empty."""
    if value is None:
        return "-"
    text = str(value).strip()
    if not text:
        return "-"
    digits = re.sub(r"\D", "", text)
    if len(digits) < MIN_DIGITS_TO_SHOW:
        return MASK
    prefix = "+" if text.startswith("+") else ""
    return f"{prefix}{MASK}{digits[-SHOWN_DIGITS:]}"


def mask_phones_in(text: str) -> str:
    """``text`` with every phone-like run of digits masked by :func:`mask_phone`."""
    return _PHONE_LIKE.sub(lambda match: mask_phone(match.group()), text)


class MaskPhonesInLogs(logging.Filter):
    """A handler filter masking phone-like runs in INFO and WARNING lines of our loggers and RQ's.

    The record is rewritten in place (its message formatted once, its args
    dropped), so every handler after this one sees the masked line too.
    """

    def __init__(self, prefixes: tuple[str, ...] = LOGGER_PREFIXES):
        super().__init__()
        self.prefixes = prefixes

    def applies_to(self, record: logging.LogRecord) -> bool:
        if not logging.INFO <= record.levelno < logging.ERROR:
            return False
        return any(record.name == p or record.name.startswith(p + ".") for p in self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.applies_to(record):
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string is the handler's to report, not ours
                return True
            masked = mask_phones_in(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


def install_on_handlers(logger: logging.Logger | None = None) -> int:
    """Add :class:`MaskPhonesInLogs` to each handler of ``logger`` (the root logger by default)
    that has none yet; returns how many got one."""
    target = logger or logging.getLogger()
    added = 0
    for handler in target.handlers:
        if not any(isinstance(f, MaskPhonesInLogs) for f in handler.filters):
            handler.addFilter(MaskPhonesInLogs())
            added += 1
    return added
