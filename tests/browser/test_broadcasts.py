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
