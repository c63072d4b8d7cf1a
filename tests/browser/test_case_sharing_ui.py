"""In a real browser: make a case-sharing group of two workers; a case one of them
creates shows in the other's case list."""

from tests.browser.conftest import log_in


def test_group_of_two_workers_share_a_case(page, project):
    log_in(page, project.admin_email, project.password)

    # two mobile workers
    page.goto("/people/workers")
    for name in ("david", "maria"):
        page.fill("#new-worker input[name=username]", name)
        page.click("#new-worker button[type=submit]")
        page.wait_for_url("**/people/workers/*")
        page.goto("/people/workers")
    assert page.locator("#workers").inner_text().count("\n") >= 2

    # an application with case sharing on
    page.goto("/people/applications")
    page.fill("#new-application input[name=name]", "Community app")
    page.check("#new-application input[name=case_sharing]")
    page.click("#new-application button[type=submit]")
    assert "Community app" in page.locator("#applications").inner_text()

    # a case-sharing group with both workers
    page.goto("/people/groups")
    page.fill("#new-group input[name=name]", "Village 1")
    page.check("#new-group input[name=case_sharing]")
    page.click("#new-group button[type=submit]")
    page.wait_for_url("**/people/groups/*")
    assert page.is_checked("#case_sharing")
    page.check("label:has-text('david') input")
    page.check("label:has-text('maria') input")
    page.click("#group-form button[type=submit]")
    assert "saved" in page.locator(".flash-success").inner_text()
    assert page.is_checked("label:has-text('david') input") and page.is_checked(
        "label:has-text('maria') input"
    )

    # David's phone submits a registration form (no owner: the group gets it)
    api = project.api()
    users = {u["username"]: u["id"] for u in api.get("/api/v1/users").get_json()["results"]}
    app_id = api.get("/api/v1/applications").get_json()["results"][0]["id"]
    r = api.post(
        "/api/v1/forms",
        json={
            "app_id": app_id,
            "user_id": users["david"],
            "cases": [{"case_id": "monica", "create": {"case_type": "mother", "case_name": "Monica"}}],
        },
    )
    assert r.status_code == 201, r.get_json()

    # Maria's case list shows it
    page.goto("/people/workers")
    page.click("#workers a:has-text('maria')")
    page.wait_for_url(f"**/people/workers/{users['maria']}")
    case_list = page.locator("#worker-cases")
    assert "Monica" in case_list.inner_text()
    assert "Village 1 (group)" in case_list.inner_text()

    # and the case page shows the owner and the form in its history
    case_list.locator("a:has-text('Monica')").click()
    page.wait_for_url("**/cases/monica")
    assert "Village 1 (group)" in page.locator("#case-owner").inner_text()
    assert "david" in page.locator("#case-history").inner_text()

    # the search box finds the case by its id
    page.goto("/cases")
    page.fill(".topsearch input[name=q]", "monica")
    page.press(".topsearch input[name=q]", "Enter")
    page.wait_for_url("**/cases/monica")
