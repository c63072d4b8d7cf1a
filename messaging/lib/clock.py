"""The one clock of the application.

Everything asks ``clock.now()`` for the time, so tests can drive time forward
without sleeping (``clock.set_now`` / ``clock.advance``). Times are naive UTC,
which both SQLite and PostgreSQL store the same way.
"""

from datetime import UTC, datetime, timedelta

_frozen: datetime | None = None


def now() -> datetime:
    """The current time, naive UTC."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).replace(tzinfo=None)


def set_now(value: datetime | None) -> None:
    """Freeze the clock at ``value`` (naive UTC), or unfreeze it with None."""
    global _frozen
    _frozen = (
        value.replace(tzinfo=None)
        if value is not None and value.tzinfo is None
        else (value.astimezone(UTC).replace(tzinfo=None) if value is not None else None)
    )


def advance(**delta) -> datetime:
    """Move a frozen clock forward (freezing it first if needed)."""
    set_now(now() + timedelta(**delta))
    return now()


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``Z``, as the API promises."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 string to naive UTC; raises ValueError."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
