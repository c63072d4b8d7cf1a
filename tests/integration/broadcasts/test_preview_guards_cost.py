"""The broadcast preview before sending: the cost per destination country from the price table,
and what the project's guards will do (the daily limit crossed, a closed or closing window)."""

from datetime import datetime

from messaging.lib import clock
from tests.factories import make_case

WEEKDAYS_8_TO_18 = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}]


def _preview(project, **body):
    body.setdefault("name", "Clinic day")
    response = project.api().post("/api/v1/broadcasts/preview", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _recipients(project):
    phones = ["+254712005001", "+254712005002", "+254712005003", "+256712005004"]
    return {"cases": [make_case(project, name=f"P{i}", phone=p) for i, p in enumerate(phones)]}


def test_the_preview_estimates_the_cost_per_country(project):
    clock.set_now(datetime(2026, 3, 2, 9))
    assert (
        project.api()
        .put(
            "/api/v1/prices",
            json={"prices": [{"country": "KE", "price": 0.008}, {"country": "TZ", "price": 1}]},
        )
        .status_code
        == 200
    )
    recipients = _recipients(project)
    cost = _preview(project, recipients=recipients, text="Hello")["cost"]
    assert cost["countries"] == [
        {"country": "KE", "messages": 3, "segments": 3, "price": 0.008, "currency": "USD", "cost": 0.024},
        {"country": "UG", "messages": 1, "segments": 1, "price": None, "currency": None, "cost": None},
    ]
    assert cost["totals"] == {"USD": 0.024}
    # A text that takes two segments costs twice as much.
    assert _preview(project, recipients=recipients, text="x" * 200)["cost"]["totals"] == {"USD": 0.048}


def test_the_preview_warns_of_the_daily_limit_and_the_sending_window(project):
    recipients = _recipients(project)
    clock.set_now(datetime(2026, 3, 2, 9))  # Monday 12:00 in Nairobi: inside the window
    assert _preview(project, recipients=recipients, text="Hello")["warnings"] == []

    project.api().patch("/api/v1/project", json={"daily_sms_limit": 3, "sending_windows": WEEKDAYS_8_TO_18})
    [limit] = _preview(project, recipients=recipients, text="Hello")["warnings"]
    assert (limit["code"], limit["over"], limit["left"], limit["limit"]) == ("daily_limit", 1, 3, 3)

    clock.set_now(datetime(2026, 3, 7, 9))  # Saturday: no window until Monday 08:00
    codes = {w["code"]: w for w in _preview(project, recipients=recipients, text="Hello")["warnings"]}
    assert set(codes) == {"outside_sending_window", "daily_limit"}
    assert codes["outside_sending_window"]["until"] == "2026-03-09T05:00:00Z"
    assert codes["outside_sending_window"]["until_local"] == "Mon 09 Mar 08:00 (Africa/Nairobi)"

    # Scheduled inside Monday's window: only the limit is left to say.
    at_monday = {"send_at": "2026-03-09T06:00:00Z"}
    assert [
        w["code"] for w in _preview(project, recipients=recipients, text="Hi", **at_monday)["warnings"]
    ] == ["daily_limit"]
    # A window that closes before a slow gateway is done.
    project.api().patch(
        "/api/v1/project",
        json={"daily_sms_limit": None, "sending_windows": [{"start": "08:00", "end": "09:00"}]},
    )
    project.api().put("/api/v1/gateway", json={"kind": "console", "mps": 1})
    late = {"send_at": "2026-03-09T05:59:58Z"}  # 08:59:58: four messages at one a second
    assert [w["code"] for w in _preview(project, recipients=recipients, text="Hi", **late)["warnings"]] == [
        "window_closes"
    ]
