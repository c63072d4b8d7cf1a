"""Browser tests: Playwright for Python driving Debian's headless Chromium.

Every page a test opens is watched: a Content-Security-Policy violation
(a ``securitypolicyviolation`` event, or Chromium's "Refused to ..." console
line, which is the only trace of a refused frame) or an uncaught script error
fails the test at teardown. A test that provokes one on purpose reads it from
the ``browser_problems`` fixture and clears it.
"""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Runs in every frame before the page's own scripts; Playwright injects it outside
# the page's CSP, and the binding it calls is Playwright's, so the CSP cannot mute it.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportCspViolation(
    e.effectiveDirective + " refused " + (e.blockedURI || "inline")
      + " at " + e.sourceFile + ":" + e.lineNumber
  );
}, true);
"""


class BrowserProblems:
    """What went wrong in the browser during a test: CSP violations and uncaught script errors."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.errors: list[str] = []

    def on_console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(f"console: {message.text}")

    def on_binding(self, source, text: str) -> None:
        self.violations.append(f"{source['frame'].url}: {text}")

    def on_page_error(self, error) -> None:
        self.errors.append(str(error))

    def watch(self, context) -> None:
        context.expose_binding("reportCspViolation", self.on_binding)
        context.add_init_script(REPORT_VIOLATIONS)
        context.on("console", self.on_console)
        context.on("weberror", lambda web_error: self.on_page_error(web_error.error))

    def clear(self) -> None:
        self.violations.clear()
        self.errors.clear()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run .ci/run or 'apt-get install chromium'.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_problems() -> BrowserProblems:
    return BrowserProblems()


@pytest.fixture
def page(browser, live_server, browser_problems):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    browser_problems.watch(context)
    page = context.new_page()
    yield page
    context.close()
    assert browser_problems.violations == [], "the page broke its Content-Security-Policy"
    assert browser_problems.errors == [], "a script on the page failed"


def log_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
