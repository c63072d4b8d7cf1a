"""A case manager's afternoon: create a group, add a case by phone, upload a list, get the report."""

from pathlib import Path

from tests.browser.conftest import log_in
from tests.factories import make_case, read_xlsx, xlsx


def test_create_group_add_by_phone_upload_and_download_report(page, project, worker_process, tmp_path):
    amina = make_case(project, name="Amina Wanjiru", phone="254712345678")
    others = [make_case(project, name=f"Person {i}", external_id=f"PT-{i:04d}") for i in range(300)]
    log_in(page, project.admin_email, project.password)

    page.click("nav >> text=Case groups")
    page.fill("#create-group input[name=name]", "Control group")
    page.click("#create-group button")
    page.wait_for_selector("h1#group-name:has-text('Control group')")

    page.fill("#add-case input[name=identifier]", "+254 712 345 678")
    page.click("#add-case button")
    assert (
        "Added 'Amina Wanjiru' (+254712345678) to the group." in page.locator(".flash-success").inner_text()
    )
    assert page.locator(f"#members tr[data-case-id='{amina}']").is_visible()

    with page.expect_download() as example:
        page.click("#example-download")
    assert example.value.suggested_filename == "cases_bulk_example.xlsx"

    sheet = tmp_path / "patients.xlsx"
    sheet.write_bytes(xlsx([f"PT-{i:04d}" for i in range(300)] + ["254712345678", "nobody"]))
    page.set_input_files("#upload-cases input[type=file]", str(sheet))
    page.click("#upload-cases button[type=submit]")
    page.wait_for_url("**/imports/*")
    page.wait_for_selector("#import-percent:has-text('100%')", timeout=60_000)
    page.wait_for_selector("#import-state:has-text('done')")
    assert "width: 100%" in page.locator("#import-bar").get_attribute("style")
    assert page.locator("#import-counts [data-result=added] .num").inner_text() == "300"
    assert page.locator("#import-counts [data-result=already_member] .num").inner_text() == "1"
    assert page.locator("#import-counts [data-result=not_found] .num").inner_text() == "1"
    page.wait_for_selector("#import-rows tbody tr:nth-child(302)")  # the page reloads with the rows
    assert page.locator("#import-rows tbody tr").count() == 302

    with page.expect_download() as report:
        page.click("#import-report")
    rows = read_xlsx(Path(report.value.path()).read_bytes())
    assert rows[0] == ["row", "identifier", "result", "case_id", "message"]
    assert rows[1][:4] == [2, "PT-0000", "added", others[0]]
    assert rows[-1][2] == "not_found"

    page.click("#import-back")
    assert page.locator("#member-count").inner_text() == "301"
