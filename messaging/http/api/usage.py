"""Usage and cost, and the price table behind the estimates. The rules live in
:mod:`messaging.sms.usage` and :mod:`messaging.sms.prices`."""

from flask import jsonify, request

from messaging.db import tenancy
from messaging.extensions import db
from messaging.http.api import json_body, route
from messaging.http.api.openapi import schema
from messaging.http.downloads import xlsx_download
from messaging.lib import clock
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.sms import prices
from messaging.sms.usage import parse_range, usage, write_usage

RANGE = [
    {"name": "from", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
]
USAGE = schema(
    "Usage",
    {
        "type": "object",
        "properties": {
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "day (UTC), direction, gateway, country, messages, segments, "
                    "priced_messages, reported_cost and reported_currency (the gateway's prices), "
                    "estimated_cost and estimated_currency (the price table, for unpriced segments)",
                },
            },
            "totals": {"type": "array", "items": {"type": "object"}},
        },
    },
)
PRICES = schema(
    "PriceTable",
    {
        "type": "object",
        "properties": {
            "prices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["country", "price"],
                    "properties": {
                        "country": {"type": "string", "example": "KE"},
                        "price": {"type": "number", "minimum": 0, "description": "per outbound segment"},
                        "currency": {"type": "string", "default": "USD"},
                    },
                },
            }
        },
    },
)


def _report() -> dict:
    start, end = parse_range(request.args.get("from"), request.args.get("to"), clock.now().date())
    return usage(tenancy.current_project_id(), start, end)


@route(
    "/usage",
    summary="Messages and segments by day (UTC), direction, gateway and country, with their cost "
    "(the gateway's price, else an estimate from the price table); default the last 30 days",
    tag="usage",
    params=RANGE,
    responses={200: {"description": "OK", "schema": USAGE}},
    errors=(400, 401),
)
def get_usage():
    return jsonify(_report())


@route(
    "/usage.xlsx",
    summary="The usage report as .xlsx",
    tag="usage",
    params=RANGE,
    responses={200: {"description": "The report", "media": XLSX_MIMETYPE, "schema": {"type": "string"}}},
    errors=(400, 401),
)
def get_usage_xlsx():
    report = _report()
    return xlsx_download(lambda out: write_usage(report, out), "usage")


@route(
    "/prices",
    summary="The price table: what one outbound segment to each country costs",
    tag="usage",
    responses={200: {"description": "OK", "schema": PRICES}},
    errors=(401,),
)
def get_prices():
    return jsonify({"prices": prices.prices_json(tenancy.current_project_id())})


@route(
    "/prices",
    ["PUT"],
    summary="Replace the price table (a country phone numbers do not know is refused, naming the row)",
    tag="usage",
    request_schema=PRICES,
    responses={200: {"description": "OK", "schema": PRICES}},
    errors=(400, 401, 403, 415),
    role="admin",
)
def put_prices():
    project_id = tenancy.current_project_id()
    prices.set_price_table(project_id, json_body().get("prices"))
    db.session.commit()
    return jsonify({"prices": prices.prices_json(project_id)})
