"""A manager previews a broadcast to a case group, sends it, and watches the progress bar fill."""

import re

from tests.browser.conftest import log_in
from tests.factories import make_case


def test_preview_send_and_watch_progress(page, project, worker_process):
    api = project.api()
    group_id = api.post("/api/v1/case-groups", json={"name": "Clinic A mothers"}).get_json()["id"]
    for i in range(30):
        case_id = make_case(project, name=f"Mama {i}", phone=f"+2547120004{i:02d}")
        api.post(f"/api/v1/case-groups/{group_id}/cases", json={"identifier": case_id})
    make_case(project, name="No phone")  # not in the group: never counted
    log_in(page, project.admin_email, project.password)

    page.click("nav >> text=Broadcasts")
    page.click("#new-broadcast")
    page.fill("input[name=name]", "Clinic day")
    page.select_option("#case-groups", group_id)
    page.fill("#broadcast-text", "Hello {case.name}, the clinic is open on Monday.")
    page.click("#preview-button")
    assert page.locator("#preview-recipients .num").inner_text() == "30"
    assert page.locator("#preview-will-send .num").inner_text() == "30"
    assert "Hello Mama 0, the clinic" in page.locator("#preview-samples").inner_text()
    assert page.input_value("input[name=name]") == "Clinic day"  # the form survives the preview

    page.click("#save-button")
    page.wait_for_url(re.compile(r"/broadcasts/[^/]+$"))
    # (a selector, not wait_for_function: a string predicate is eval'd, which the CSP refuses)
    page.wait_for_selector("#progress-percent:text-is('100%')", timeout=60_000)
    assert page.locator("#broadcast-status").inner_text() == "sent"
    assert page.locator("#status-counts [data-status=sent] .num").inner_text() == "30"
    assert page.get_attribute(".progress", "aria-valuenow") == "100"
    page.click("text=Broadcasts")
    page.click("#tab-sent")
    assert page.locator("#broadcasts >> text=Clinic day").is_visible()


def test_the_composer_counts_a_filters_cases_as_it_is_written(page, project):
    from tests.factories import make_cases

    make_cases(
        project,
        [
            {"case_type": "mother", "properties": {"risk": r, "weeks": w}}
            for r, w in [("high", "24"), ("high", "12"), ("low", "30"), ("high", "33")]
        ],
    )
    log_in(page, project.admin_email, project.password)
    page.click("nav >> text=Broadcasts")
    page.click("#new-broadcast")
    page.fill("input[name=filter_case_type]", "mother")
    page.wait_for_selector("#filter-count:text-is('4 open cases match now.')")
    page.fill("input[name='filter-criteria-0-property']", "risk")
    page.fill("input[name='filter-criteria-0-value']", "high")
    page.wait_for_selector("#filter-count:text-is('3 open cases match now.')")
    page.fill("input[name='filter-criteria-1-property']", "weeks")
    page.select_option("select[name='filter-criteria-1-op']", "gt")
    page.fill("input[name='filter-criteria-1-value']", "20")
    page.wait_for_selector("#filter-count:text-is('2 open cases match now.')")
    page.select_option("select[name='filter-criteria-1-op']", "in")
    page.fill("input[name='filter-criteria-1-value']", "")
    page.wait_for_selector("#filter-count.field-error")
    assert "recipients.filter.criteria.1.value" in page.locator("#filter-count").inner_text()


def test_the_composer_shows_the_cost_per_country_and_what_the_guards_will_hold(page, project):
    from datetime import datetime

    from messaging.lib import clock

    clock.set_now(datetime(2026, 3, 7, 9))  # a Saturday: the window below is closed
    api = project.api()
    api.put("/api/v1/prices", json={"prices": [{"country": "KE", "price": 0.008}]})
    api.patch(
        "/api/v1/project",
        json={
            "daily_sms_limit": 2,
            "sending_windows": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}
            ],
        },
    )
    group_id = api.post("/api/v1/case-groups", json={"name": "Mixed"}).get_json()["id"]
    for i, phone in enumerate(["+254712006001", "+254712006002", "+254712006003", "+256712006004"]):
        case_id = make_case(project, name=f"P{i}", phone=phone)
        api.post(f"/api/v1/case-groups/{group_id}/cases", json={"identifier": case_id})
    log_in(page, project.admin_email, project.password)
    page.click("nav >> text=Broadcasts")
    page.click("#new-broadcast")
    page.fill("input[name=name]", "Clinic day")
    page.select_option("#case-groups", group_id)
    page.fill("#broadcast-text", "Clinic is open on Monday")
    page.click("#preview-button")
    window = page.locator("[data-warning=outside_sending_window]")
    assert "Mon 09 Mar 08:00" in window.inner_text()
    assert "2 will wait for the next day" in page.locator("[data-warning=daily_limit]").inner_text()
    assert page.locator("#preview-cost [data-country=KE]").inner_text().split() == [
        "KE",
        "3",
        "3",
        "0.0240",
        "USD",
    ]
    assert "no price" in page.locator("#preview-cost [data-country=UG]").inner_text()
    assert page.locator(".preview-cost-total").inner_text() == "Total: 0.0240 USD"
