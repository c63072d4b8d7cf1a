"""The Content-Security-Policy in a real browser: what it refuses, and the pages that still work under it.

- An inline script is refused (and the watcher in conftest.py sees it: a page that
  broke the policy fails its test).
- Another site cannot frame a page of the app (frame-ancestors 'none').
- The behaviour that moved from inline handlers to app.js works: confirmations
  (data-confirm), a checkbox that saves its form (data-autosubmit), the broadcast
  composer showing the parts the chosen options need.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser.conftest import log_in
from tests.factories import make_case


def seen(problems, directive: str, timeout: float = 5.0) -> bool:
    """Whether the watcher saw a violation of ``directive`` (events arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(directive in v for v in problems.violations):
            return True
        time.sleep(0.05)
    return False


def test_an_inline_script_is_refused_and_seen(page, project, browser_problems):
    page.goto("/login")
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.injected = true";
          document.body.append(s);
        }"""
    )
    assert seen(browser_problems, "script-src"), browser_problems.violations
    assert page.evaluate("() => window.injected") is None
    browser_problems.clear()


@pytest.fixture
def attacker_site(live_server):
    """Another origin (another port) whose page frames the app's Settings."""
    page_html = (
        f'<!doctype html><h1>Win a prize</h1><iframe id="victim" src="{live_server.url}/settings"></iframe>'
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page_html)))
            self.end_headers()
            self.wfile.write(page_html)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_another_site_cannot_frame_a_page(page, project, attacker_site, browser_problems):
    log_in(page, project.admin_email, project.password)
    page.goto(attacker_site)
    assert seen(browser_problems, "frame-ancestors"), browser_problems.violations
    victim = next(frame for frame in page.frames if frame != page.main_frame)
    assert victim.url.startswith("chrome-error://")  # Chromium shows its error page instead
    assert "project-settings" not in victim.content()
    browser_problems.clear()


def test_a_confirmation_can_be_declined_then_accepted(page, project):
    group_id = project.api().post("/api/v1/case-groups", json={"name": "To delete"}).get_json()["id"]
    log_in(page, project.admin_email, project.password)
    page.goto(f"/case-groups/{group_id}")
    questions = []

    def decline(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.click("#delete-group button[type=submit]")
    page.wait_for_timeout(300)
    assert questions == ["Delete this group? Its cases are not deleted."]
    assert page.url.endswith(f"/case-groups/{group_id}")
    assert project.api().get(f"/api/v1/case-groups/{group_id}").status_code == 200

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-group button[type=submit]")
    page.wait_for_url("**/case-groups")
    assert project.api().get(f"/api/v1/case-groups/{group_id}").status_code == 404


def test_a_checkbox_saves_its_form_when_changed(page, project):
    log_in(page, project.admin_email, project.password)
    page.goto("/people/applications")
    page.fill("#new-application input[name=name]", "Community app")
    page.click("#new-application button[type=submit]")
    box = page.locator("#applications input[name=case_sharing]")
    assert not box.is_checked()
    with page.expect_navigation():
        box.check()
    page.goto("/people/applications")
    assert page.locator("#applications input[name=case_sharing]").is_checked()


def test_the_composer_shows_the_parts_the_options_need(page, project):
    make_case(project, name="Amina", phone="+254712000077")
    log_in(page, project.admin_email, project.password)
    page.goto("/broadcasts/new")
    assert page.locator("[data-content=text]").is_visible()
    assert not page.locator("[data-content=survey]").is_visible()
    assert not page.locator("[data-when=once]").is_visible()
    page.check("input[name=content][value=survey]")
    assert page.locator("[data-content=survey]").is_visible()
    assert not page.locator("[data-content=text]").is_visible()
    page.check("input[name=when][value=once]")
    assert page.locator("[data-when=once]").is_visible()
    assert not page.locator("[data-when=repeat]").is_visible()
