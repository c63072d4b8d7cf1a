"""The templates and scripts hold nothing the Content-Security-Policy would refuse.

Rules checked (the CSP is ``script-src 'self'; style-src 'self'``, no 'unsafe-inline'):
- no inline ``<script>`` (one without ``src``), except JSON data blocks
  (``type="application/json"``), which browsers never execute;
- no ``on...=`` event handler attribute and no ``javascript:`` URL;
- no ``style=`` attribute and no ``<style>`` element;
- the static scripts neither evaluate strings (``eval``, ``new Function``) nor
  write a ``style`` attribute (the CSSOM, ``el.style.width = ...``, is allowed).
"""

import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "messaging" / "static"

JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
HANDLER = re.compile(r"on[a-z]+")
DATA_BLOCK_TYPES = {"application/json", "application/ld+json"}


class InlineCodeFinder(HTMLParser):
    """Collects, per start tag, what the CSP would refuse."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        where = f"line {self.getpos()[0]} <{tag}>"
        named = dict(attrs)
        for name, value in attrs:
            if HANDLER.fullmatch(name):
                self.found.append(f"{where}: handler attribute {name}=")
            if name == "style":
                self.found.append(f"{where}: style= attribute")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"{where}: javascript: URL in {name}=")
        script_type = (named.get("type") or "").strip().lower()
        if tag == "script" and "src" not in named and script_type not in DATA_BLOCK_TYPES:
            self.found.append(f"{where}: inline script")
        if tag == "style":
            self.found.append(f"{where}: <style> element")


def inline_code_in(html: str) -> list[str]:
    """What in ``html`` (a template or a rendered page) the CSP would refuse, one line each."""
    # Jinja tags become a neutral word (keeping their line breaks) so the HTML parses.
    text = JINJA.sub(lambda m: "jinja" + "\n" * m.group(0).count("\n"), html)
    finder = InlineCodeFinder()
    finder.feed(text)
    finder.close()
    return finder.found


def test_no_template_holds_code_the_csp_refuses():
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 30  # the scan really covers the templates folder
    findings = {
        str(path.relative_to(ROOT)): found
        for path in templates
        if (found := inline_code_in(path.read_text()))
    }
    assert findings == {}


def test_the_finder_sees_each_kind_of_inline_code():
    html = """
      <script>alert(1)</script>
      <script type="text/javascript">alert(2)</script>
      <form onsubmit="return confirm('Sure?')"><input ONCHANGE="this.form.submit()"></form>
      <div style="width: {{ percent }}%"></div>
      <style>p { color: red }</style>
      <a href="javascript:alert(3)">x</a>
    """
    found = inline_code_in(html)
    assert [line.split(": ", 1)[1] for line in found] == [
        "inline script",
        "inline script",
        "handler attribute onsubmit=",
        "handler attribute onchange=",
        "style= attribute",
        "<style> element",
        "javascript: URL in href=",
    ]


def test_the_finder_allows_what_the_csp_allows():
    html = """
      <script src="{{ url_for('static', filename='app.js') }}"></script>
      <script type="application/json" id="labels">{{ labels|tojson }}</script>
      <form data-confirm="Delete this?" class="inline"><input data-autosubmit {{ 'checked' if on }}></form>
      <div class="progress"><div data-percent="{{ percent }}"></div></div>
      <p {% if not error %}hidden{% endif %}>{{ error }}</p>
    """
    assert inline_code_in(html) == []


def test_static_scripts_neither_evaluate_strings_nor_write_style_attributes():
    forbidden = re.compile(
        r"\beval\s*\(|new\s+Function\s*\(|setAttribute\(\s*['\"]style['\"]|\bsetTimeout\(\s*['\"]"
    )
    scripts = sorted(STATIC.rglob("*.js"))
    assert scripts
    findings = {
        str(path.relative_to(ROOT)): forbidden.findall(path.read_text())
        for path in scripts
        if forbidden.search(path.read_text())
    }
    assert findings == {}
