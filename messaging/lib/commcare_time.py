"""Times as CommCare's API writes and reads them.

Rules:
- Out: ``%Y-%m-%dT%H:%M:%S.%fZ``, always with microseconds (HQ's ``json_format_datetime``);
  None stays None.
- In (date filters such as ``indexed_on_start``): HQ's four forms ``YYYY-MM-DD``,
  ``YYYY-MM-DDTHH:MM:SS``, ``...SS.ffffff`` and ``YYYY-MM-DDTHH:MMZ``, read as UTC;
  also a trailing ``Z`` or an offset (converted to UTC), which HQ refuses but
  costs nothing to accept. Anything else raises ``ValueError``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["hq_datetime", "parse_hq_datetime"]

_SHORT_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$")


def hq_datetime(value: datetime | None) -> str | None:
    """A naive-UTC (or aware) time as HQ writes it."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_hq_datetime(text: str) -> datetime:
    """A date filter's value as naive UTC; ``ValueError`` when it is none of the accepted forms."""
    raw = text.strip()
    if _SHORT_Z.match(raw):
        return datetime.strptime(raw, "%Y-%m-%dT%H:%MZ")
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    if len(raw) < 10 or raw[4] != "-":
        raise ValueError(f"{text!r} is not a date")
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
