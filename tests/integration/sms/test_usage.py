"""Usage and cost: the report by day, direction, gateway and country; Twilio's own prices read
from its message resource by the prices job; estimates from the price table; the .xlsx; the page;
bad input refused with nothing changed."""

from datetime import datetime, timedelta

from messaging.extensions import db
from messaging.lib import clock
from tests.factories import make_case, read_xlsx, rows, send
from tests.integration.broadcasts.broadcast_helpers import error_of
from tests.integration.inbound.inbound_helpers import text_in

KE_1, KE_2, UG, US = "+254712004001", "+254712004002", "+256712004003", "+12125550199"
LONG = "x" * 200  # two GSM-7 segments


def _prices(project, status=200, **body):
    response = project.api().put("/api/v1/prices", json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _fetch_prices(app):
    from workers.jobs.sms import prices

    with app.app_context():
        try:
            return prices()
        finally:
            db.session.remove()


def test_usage_by_country_with_twilio_prices_and_estimates(app, twilio_project, fake, run_jobs, live_server):
    p = twilio_project
    app.config["PUBLIC_BASE_URL"] = live_server.url
    fake.price_per_segment = 0.0075
    clock.set_now(datetime(2026, 3, 2, 9, 0))
    _prices(
        p, prices=[{"country": "ke", "price": "0.008"}, {"country": "US", "price": 0.01, "currency": "usd"}]
    )
    make_case(p, name="Opted", phone="+254712004009")
    p.api().post("/api/v1/opt-outs", json={"phone": "+254712004009", "reason": "asked"})
    for phone, body in [(KE_1, "Hello"), (KE_2, LONG), (UG, "Hello"), (US, "Hello"), ("+254712004009", "No")]:
        send(p, phone, body)
    text_in(p, KE_1, "Thanks")
    run_jobs()
    ke_first = next(r for r in rows(p) if r["phone"] == KE_1 and r["direction"] == "outbound")
    assert fake.send_status_callback(ke_first["gateway_sid"], "delivered") == 204

    clock.set_now(datetime(2026, 3, 2, 9, 1))  # too soon: Twilio may not have priced it yet
    assert _fetch_prices(app)["asked"] == 0
    clock.set_now(datetime(2026, 3, 2, 9, 3))
    assert _fetch_prices(app) == {"asked": 4, "priced": 1, "errors": 0}  # the others are still "queued" there
    priced = next(r for r in rows(p) if r["id"] == ke_first["id"])
    assert (priced["price_micros"], priced["price_unit"]) == (7500, "USD")
    assert _fetch_prices(app)["asked"] == 0  # each asked at most once an hour
    shown = p.api().get("/api/v1/messages?direction=outbound&status=delivered").get_json()["results"]
    assert [(m["price"], m["price_unit"]) for m in shown] == [(0.0075, "USD")]

    report = p.api().get("/api/v1/usage?from=2026-03-02&to=2026-03-02").get_json()
    by_key = {(r["direction"], r["country"]): r for r in report["rows"]}
    assert set(by_key) == {("outbound", "KE"), ("outbound", "UG"), ("outbound", "US"), ("inbound", "KE")}
    ke = by_key[("outbound", "KE")]  # the opted-out number was never sent: not counted
    assert (ke["day"], ke["gateway"], ke["messages"], ke["segments"], ke["priced_messages"]) == (
        "2026-03-02",
        "twilio",
        2,
        3,
        1,
    )
    assert (ke["reported_cost"], ke["reported_currency"]) == (0.0075, "USD")
    assert (ke["estimated_cost"], ke["estimated_currency"]) == (0.016, "USD")  # 2 unpriced segments
    assert by_key[("outbound", "UG")]["estimated_cost"] is None  # no row for Uganda
    assert by_key[("outbound", "US")]["estimated_cost"] == 0.01
    assert by_key[("inbound", "KE")]["messages"] == 1 and by_key[("inbound", "KE")]["estimated_cost"] is None
    totals = {t["direction"]: t for t in report["totals"]}
    assert totals["outbound"]["messages"] == 4 and totals["outbound"]["segments"] == 5
    assert totals["outbound"]["cost"] == {"USD": 0.0335}

    assert p.api().get("/api/v1/usage?from=2026-03-03&to=2026-03-04").get_json()["rows"] == []
    sheet = read_xlsx(p.api().get("/api/v1/usage.xlsx?from=2026-03-01&to=2026-03-02").data)
    assert sheet[0][:5] == ["Day (UTC)", "Direction", "Gateway", "Gateway name", "Country"]
    assert (
        len(sheet) == 5 and ["2026-03-02", "outbound", "twilio", "Twilio", "KE", 2, 3, 1] == sheet[1 + 1][:8]
    )


def test_the_default_range_is_the_last_30_days_and_bad_ranges_are_400(app, project):
    clock.set_now(datetime(2026, 3, 31, 12))
    send(project, KE_1, "Hi")
    report = project.api().get("/api/v1/usage").get_json()
    assert (report["from"], report["to"]) == ("2026-03-02", "2026-03-31")
    assert [
        (r["gateway"], r["country"], r["messages"]) for r in report["rows"]
    ] == []  # console: still queued
    for query, field in [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-03-05&to=2026-03-01", "from"),
        ("from=2024-01-01&to=2026-03-01", "from"),
    ]:
        assert error_of(project.api().get(f"/api/v1/usage?{query}"), 400)["details"]["field"] == field


def test_a_bad_price_table_is_refused_naming_the_row_and_changes_nothing(project):
    _prices(project, prices=[{"country": "KE", "price": 0.008}])
    for body, field in [
        (
            {"prices": [{"country": "KE", "price": 0.01}, {"country": "XX", "price": 0.01}]},
            "prices[1].country",
        ),
        ({"prices": [{"country": "KE", "price": -1}]}, "prices[0].price"),
        ({"prices": [{"country": "KE", "price": "0.0000001"}]}, "prices[0].price"),
        ({"prices": [{"country": "KE", "price": 1, "currency": "dollars"}]}, "prices[0].currency"),
        ({"prices": [{"country": "KE", "price": 1}, {"country": "ke", "price": 2}]}, "prices[1].country"),
        ({"prices": "KE 1"}, "prices"),
    ]:
        error = error_of(project.api().put("/api/v1/prices", json=body), 400)
        assert error["details"]["field"] == field, error
    assert project.api().get("/api/v1/prices").get_json() == {
        "prices": [{"country": "KE", "price": 0.008, "currency": "USD"}]
    }


def test_the_usage_page_shows_the_report_and_edits_the_price_table(app, project, web):
    clock.set_now(datetime(2026, 3, 2, 9))
    response = web.post("/usage/prices", data={"prices": "KE 0.0080 USD\nug 0.012"})
    assert response.status_code == 302
    assert project.api().get("/api/v1/prices").get_json()["prices"] == [
        {"country": "KE", "price": 0.008, "currency": "USD"},
        {"country": "UG", "price": 0.012, "currency": "USD"},
    ]
    page = web.get("/usage").get_data(as_text=True)
    assert "KE 0.008 USD\nUG 0.012 USD" in page and 'id="usage-export"' in page
    web.post("/usage/prices", data={"prices": "KE 0.0080 USD\nZZ 1"})
    assert "is not a country" in web.get("/usage").get_data(as_text=True)
    assert len(project.api().get("/api/v1/prices").get_json()["prices"]) == 2
    web.post("/usage/prices", data={"prices": "KE"})
    assert "line 1" in web.get("/usage").get_data(as_text=True)
    assert web.get("/usage.xlsx?from=2026-03-01&to=2026-03-02").status_code == 200
    assert "not a date" in web.get("/usage?from=soon").get_data(as_text=True)


def test_the_prices_job_leaves_other_gateways_and_old_messages_alone(app, twilio_project, fake, run_jobs):
    fake.price_per_segment = 0.0075
    clock.set_now(datetime(2026, 3, 2, 9, 0))
    send(twilio_project, KE_1, "Hello")
    run_jobs()
    clock.set_now(datetime(2026, 3, 2, 9, 0) + timedelta(hours=25))
    assert _fetch_prices(app)["asked"] == 0
