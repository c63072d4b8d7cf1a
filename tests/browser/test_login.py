from tests.browser.conftest import log_in


def test_log_in_reaches_dashboard_and_log_out(page, project):
    log_in(page, project.admin_email, project.password)
    assert page.locator("h1").inner_text() == "Alpha"
    assert page.locator("nav a", has_text="Settings").is_visible()
    page.click("text=Log out")
    page.wait_for_url("**/login")
    assert "logged out" in page.content()


def test_wrong_password_shows_error(page, project):
    page.goto("/login")
    page.fill("input[name=email]", project.admin_email)
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.locator(".flash-error").inner_text() == "Wrong email or password."
