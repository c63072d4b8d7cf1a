"""A manager writes a reminder rule, watches the live preview count the matching cases,
saves it, and finds the reminder on the case's page."""

import re
from datetime import timedelta

from messaging.lib import clock


def _mothers(project):
    api = project.api()
    app_id = api.post("/api/v1/applications", json={"name": "ANC"}).get_json()["id"]
    user = api.post("/api/v1/users", json={"username": "nurse"}).get_json()["id"]
    soon = (clock.now() + timedelta(days=10)).date().isoformat()
    for n, risk in enumerate(["high", "high", "high", "low"]):
        block = {
            "case_id": f"mama-{n}",
            "create": {"case_type": "mother", "case_name": f"Mama {n}"},
            "update": {"risk": risk, "next_visit": soon, "phone_number": f"+2547120005{n:02d}"},
        }
        r = api.post("/api/v1/forms", json={"app_id": app_id, "user_id": user, "cases": [block]})
        assert r.status_code == 201, r.get_json()


def test_write_a_rule_with_its_live_preview_and_see_the_reminder_on_the_case(page, project, worker_process):
    from tests.browser.conftest import log_in

    _mothers(project)
    log_in(page, project.admin_email, project.password)
    page.click("nav >> text=Alerts")
    page.click("#new-alert")
    page.fill("input[name=name]", "ANC visit reminder")
    page.fill("input[name=case_type]", "mother")
    page.wait_for_selector("#preview-matching:text-is('4')")  # every open mother, before the conditions
    page.fill("input[name='criteria-0-property']", "risk")
    page.fill("input[name='criteria-0-value']", "high")
    page.wait_for_selector("#preview-matching:text-is('3')")
    page.check("input[name=when][value=date]")
    page.fill("input[name=offset_days]", "-2")
    page.fill("input[name=start_property]", "next_visit")
    page.fill("#alert-text", "Hello {case.name}, your visit is on {case.next_visit}.")
    page.wait_for_selector("#preview-next >> text=Hello Mama 0, your visit is on")
    page.fill("input[name=start_time]", "")  # cleared: the default, 09:00
    page.fill("input[name=offset_days]", "-900")
    page.wait_for_selector("#preview-status >> text=start.offset_days")  # the refusal, in place
    page.fill("input[name=offset_days]", "-2")
    page.wait_for_selector("#preview-next >> text=Hello Mama 0")
    page.click("#save-rule")
    page.wait_for_url(re.compile(r"/alerts/[^/]+$"))
    # the worker applies the rule to the existing cases; the page counts what it scheduled
    for _ in range(60):
        if page.locator("#count-pending .num").inner_text() == "3":
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("#count-pending .num").inner_text() == "3"
    page.click("#history >> text=Mama 0")
    assert page.locator("#upcoming >> text=Hello Mama 0, your visit is on").is_visible()
