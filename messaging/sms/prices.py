"""A project's SMS price table: what one outbound segment to a country costs, for estimates.

Rules:
- One row per destination country: ``{country, price, currency}``. The country is an
  ISO code phone numbers know (``KE``; an unknown one is refused, naming the row);
  the price a number from 0 with at most 6 decimals (kept exactly, in millionths);
  the currency three letters (default ``USD``).
- The table is replaced whole (``PUT /api/v1/prices``, the Usage page): countries
  not named are removed; a refused table changes nothing.
- The page edits it one row per line: ``KE 0.0080 USD`` (the currency may be left out).
- Estimates (``messaging.sms.usage``, the broadcast preview) use it where the
  gateway reported no price; a country without a row has no estimate.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import phonenumbers
from sqlalchemy import delete, select

from messaging.errors import Invalid, field_error
from messaging.extensions import db
from messaging.models import SmsPrice
from messaging.sms.serialize import price_of

MICROS = 1_000_000
MAX_ROWS = 300


def price_table(project_id: int) -> dict[str, tuple[int, str]]:
    """``{country: (price in millionths per segment, currency)}`` of the project."""
    return {
        country: (micros, currency)
        for country, micros, currency in db.session.execute(
            select(SmsPrice.country, SmsPrice.price_micros, SmsPrice.currency).where(
                SmsPrice.project_id == project_id
            )
        ).all()
    }


def prices_json(project_id: int) -> list[dict]:
    """The table as the API shows it, by country."""
    table = price_table(project_id)
    return [
        {"country": country, "price": price_of(micros), "currency": currency}
        for country, (micros, currency) in sorted(table.items())
    ]


def as_amount(raw) -> Decimal | None:
    """A number or its text (``"-0.00750"``, ``0.0075``) as an exact finite Decimal, else None."""
    if not isinstance(raw, (int, float, str)) or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _micros(raw, field: str) -> int:
    value = as_amount(raw)
    if value is None or value < 0:
        raise field_error(field, f"{raw!r} is not a price (a number from 0, such as 0.0075).")
    micros = value * MICROS
    if micros != micros.to_integral_value():
        raise field_error(field, "at most 6 decimals.")
    return int(micros)


def clean_rows(rows) -> list[tuple[str, int, str]]:
    """``[(country, micros, currency)]`` from the JSON rows; raises naming the faulty field."""
    if not isinstance(rows, list):
        raise field_error("prices", "must be a list of {country, price, currency}.")
    if len(rows) > MAX_ROWS:
        raise field_error("prices", f"at most {MAX_ROWS} rows.")
    cleaned, seen = [], set()
    for index, row in enumerate(rows):
        where = f"prices[{index}]"
        if not isinstance(row, dict):
            raise field_error(where, "must be an object {country, price, currency}.")
        country = row.get("country").strip().upper() if isinstance(row.get("country"), str) else ""
        if country not in phonenumbers.SUPPORTED_REGIONS:
            raise field_error(
                f"{where}.country", f"{row.get('country')!r} is not a country phone numbers know."
            )
        if country in seen:
            raise field_error(f"{where}.country", f"{country} is in the table twice.")
        seen.add(country)
        currency = row.get("currency", "USD")
        if not isinstance(currency, str) or not currency.strip().isalpha() or len(currency.strip()) != 3:
            raise field_error(f"{where}.currency", "must be a three-letter currency code such as USD.")
        cleaned.append((country, _micros(row.get("price"), f"{where}.price"), currency.strip().upper()))
    return cleaned


def set_price_table(project_id: int, rows) -> None:
    """Replace the project's table with ``rows`` (checked first). The caller commits."""
    cleaned = clean_rows(rows)
    db.session.execute(delete(SmsPrice).where(SmsPrice.project_id == project_id))
    db.session.add_all(
        SmsPrice(project_id=project_id, country=c, price_micros=micros, currency=cur)
        for c, micros, cur in cleaned
    )
    db.session.flush()


def parse_price_lines(text: str) -> list[dict]:
    """The page's lines (``KE 0.0080 USD``) as JSON rows; raises naming the line."""
    rows = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) not in (2, 3):
            raise Invalid(
                "validation_error",
                f"line {number}: {raw.strip()!r} is not a price such as KE 0.0080 USD.",
                field="prices",
            )
        row = {"country": parts[0], "price": parts[1]}
        if len(parts) == 3:
            row["currency"] = parts[2]
        rows.append(row)
    return rows


def price_lines(project_id: int) -> str:
    """The table as the page's lines."""
    table = price_table(project_id)
    return "\n".join(
        f"{country} {Decimal(micros) / MICROS} {currency}"
        for country, (micros, currency) in sorted(table.items())
    )


def estimate_by_country(project_id: int, counts: dict[str, int], segments_per_message: float) -> dict:
    """The estimated cost of ``counts`` (``{country: messages}``) at ``segments_per_message``:
    ``{countries: [{country, messages, segments, price, currency, cost}], totals: {currency: cost}}``;
    a country without a row has ``cost`` null."""
    table = price_table(project_id)
    countries, totals = [], {}
    for country, messages in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        segments = round(messages * segments_per_message)
        micros, currency = table.get(country, (None, None))
        cost = price_of(micros * segments) if micros is not None else None
        if cost is not None:
            totals[currency] = round(totals.get(currency, 0) + cost, 6)
        countries.append(
            {
                "country": country,
                "messages": messages,
                "segments": segments,
                "price": price_of(micros),
                "currency": currency,
                "cost": cost,
            }
        )
    return {"countries": countries, "totals": totals}
