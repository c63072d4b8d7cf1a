"""Usage and cost: messages and segments by day, direction, gateway and destination country.

Rules:
- A range of UTC days, ``start`` to ``end`` included (as the dashboard's chart), at
  most ``MAX_DAYS``; by the day a message was written (``created_at``).
- Counted: outbound messages handed to a gateway (``sent``, ``delivered``,
  ``undelivered``; not those still queued, nor those the system never sent:
  opted out, invalid number, cancelled) and inbound messages (``received``).
- The country is the destination's for outbound and the sender's for inbound,
  read from the number's first digits (``messaging.lib.phones.country_of_prefix``);
  the gateway is the one that carried it (``console`` in development), by kind and by the
  name the project gave it (``gateway_name``; the kind for a message of no saved gateway).
- Cost: the gateway's own price where it reported one (``price_micros``, e.g. from
  a Twilio callback); otherwise, for outbound segments, an estimate from the
  project's price table (``messaging.sms.prices``) for that country. A row says how
  many of its messages were priced by the gateway, and both amounts with their
  currencies; a country with no table row has no estimate (``null``).
- One GROUP BY over the project's messages of the range (``ix_messages_project_created``),
  grouped by the first six characters of the number; countries are merged after.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import IO

from sqlalchemy import BigInteger, case, cast, func, or_, select

from messaging.db import dialect
from messaging.errors import field_error
from messaging.extensions import db
from messaging.lib.phones import country_of_prefix
from messaging.lib.xlsx.write import write_report
from messaging.models import GatewayConfig, Message
from messaging.sms.prices import price_table
from messaging.sms.serialize import price_of

MAX_DAYS = 366
COUNTED_OUTBOUND = ("sent", "delivered", "undelivered")
PREFIX_CHARS = 6


def number_prefix(phone_column):
    """SQL: a number's first characters, enough to know its country (``+2547...``, ``+1809...``)."""
    return func.substr(phone_column, 1, PREFIX_CHARS)


def country_of(prefix: str | None) -> str:
    """The country of a :func:`number_prefix`, ``unknown`` when none."""
    return country_of_prefix(prefix or "") or "unknown"


def parse_range(raw_from: str | None, raw_to: str | None, today: date) -> tuple[date, date]:
    """The report's days from ``?from=&to=`` (``YYYY-MM-DD``; default the last 30 days)."""

    def day(raw, field, default):
        if not raw:
            return default
        try:
            return date.fromisoformat(raw.strip()[:10])
        except ValueError:
            raise field_error(field, f"{raw!r} is not a date such as 2026-03-01.") from None

    end = day(raw_to, "to", today)
    start = day(raw_from, "from", end - timedelta(days=29))
    if start > end:
        raise field_error("from", "must not be after to.")
    if (end - start).days >= MAX_DAYS:
        raise field_error("from", f"at most {MAX_DAYS} days at once.")
    return start, end


def gateway_names(project_id: int) -> dict[int, str]:
    """{saved gateway id: its name} of the project (messages name the gateway that took them)."""
    return dict(
        db.session.execute(
            select(GatewayConfig.id, GatewayConfig.name).where(GatewayConfig.project_id == project_id)
        ).all()
    )


def whole_sum(expr):
    """SUM as a whole number (PostgreSQL would answer a numeric for a sum of integers)."""
    return cast(func.sum(expr), BigInteger)


def usage(project_id: int, start: date, end: date) -> dict:
    """``{from, to, rows: [...], totals: [...]}``: the usage of the days ``start``..``end``."""
    since = datetime.combine(start, time(0))
    until = datetime.combine(end + timedelta(days=1), time(0))
    m = Message.__table__.c
    day = dialect.day_of(m.created_at)
    prefix = number_prefix(m.phone)
    unpriced_segments = case((m.price_micros.is_(None), m.segments), else_=0)
    rows = db.session.execute(
        select(
            day,
            m.direction,
            func.coalesce(m.gateway, "none"),
            m.gateway_id,
            prefix,
            func.count(),
            whole_sum(m.segments),
            func.count(m.price_micros),
            func.coalesce(whole_sum(m.price_micros), 0),
            func.max(m.price_unit),
            whole_sum(unpriced_segments),
        )
        .where(
            m.project_id == project_id,
            m.created_at >= since,
            m.created_at < until,
            or_(
                (m.direction == "outbound") & m.status.in_(COUNTED_OUTBOUND),
                (m.direction == "inbound") & (m.status == "received"),
            ),
        )
        .group_by(day, m.direction, func.coalesce(m.gateway, "none"), m.gateway_id, prefix)
    ).all()
    names = gateway_names(project_id)
    merged: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, 0, None, 0])
    for (
        raw_day,
        direction,
        gateway,
        gateway_id,
        pre,
        messages,
        segments,
        priced,
        micros,
        unit,
        unpriced,
    ) in rows:
        name = names.get(gateway_id) or gateway
        key = (dialect.as_date(raw_day), direction, gateway, name, country_of(pre))
        into = merged[key]
        into[0] += messages
        into[1] += segments or 0
        into[2] += priced
        into[3] += micros or 0
        into[4] = into[4] or unit
        into[5] += unpriced or 0
    table = price_table(project_id)
    out = [_row(key, values, table) for key, values in sorted(merged.items())]
    return {"from": start.isoformat(), "to": end.isoformat(), "rows": out, "totals": _totals(out)}


def _row(key: tuple, values: list, table: dict) -> dict:
    day, direction, gateway, name, country = key
    messages, segments, priced, micros, unit, unpriced = values
    estimate, estimate_currency = None, None
    if direction == "outbound" and country in table and unpriced:
        per_segment, estimate_currency = table[country]
        estimate = price_of(per_segment * unpriced)
    return {
        "day": day.isoformat(),
        "direction": direction,
        "gateway": gateway,
        "gateway_name": name,
        "country": country,
        "messages": messages,
        "segments": segments,
        "priced_messages": priced,
        "reported_cost": price_of(micros) if priced else None,
        "reported_currency": unit if priced else None,
        "estimated_cost": estimate,
        "estimated_currency": estimate_currency,
    }


def _totals(rows: list[dict]) -> list[dict]:
    """Per direction: messages, segments, and cost by currency (reported and estimated together)."""
    totals: dict[str, dict] = {}
    for r in rows:
        t = totals.setdefault(
            r["direction"], {"direction": r["direction"], "messages": 0, "segments": 0, "cost": {}}
        )
        t["messages"] += r["messages"]
        t["segments"] += r["segments"]
        for amount, currency in (
            (r["reported_cost"], r["reported_currency"]),
            (r["estimated_cost"], r["estimated_currency"]),
        ):
            if amount is not None:
                t["cost"][currency] = round(t["cost"].get(currency, 0) + amount, 6)
    return [totals[d] for d in sorted(totals)]


USAGE_COLUMNS = (
    ("day", "Day (UTC)"),
    ("direction", "Direction"),
    ("gateway", "Gateway"),
    ("gateway_name", "Gateway name"),
    ("country", "Country"),
    ("messages", "Messages"),
    ("segments", "Segments"),
    ("priced_messages", "Priced by the gateway"),
    ("reported_cost", "Reported cost"),
    ("reported_currency", "Reported currency"),
    ("estimated_cost", "Estimated cost"),
    ("estimated_currency", "Estimated currency"),
)


def write_usage(report: dict, out: IO[bytes]) -> None:
    """The report's rows as one .xlsx sheet, a column per field."""
    write_report(
        out,
        [label for _key, label in USAGE_COLUMNS],
        ([row[key] for key, _label in USAGE_COLUMNS] for row in report["rows"]),
        sheet_title="Usage",
    )
