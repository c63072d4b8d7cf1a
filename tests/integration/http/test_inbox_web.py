"""The inbox page: state tabs, the assignee filter, the per-row actions, and the count of open items
in the navigation."""

import re
from datetime import datetime

import pytest
from sqlalchemy import select

from messaging.lib import clock
from tests.conftest import login, recorded_queries
from tests.factories import make_contact
from tests.integration.inbound.inbound_helpers import inbound_rows, text_in

PHONE = "+254712000071"
STRANGER = "+254799000071"
T0 = datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(T0)


def _add_user(project, email, name, role="manager"):
    from messaging.accounts.web_users import add_web_user
    from messaging.extensions import db

    with project.scope():
        user = add_web_user(project.id, email, name, "long enough password", role)
        db.session.commit()
        return user.id


@pytest.fixture
def items(project, run_jobs):
    make_contact(project, PHONE, name="Amina")
    text_in(project, PHONE, "I cannot come on Monday")
    text_in(project, STRANGER, "who is this?")
    run_jobs()
    return [r["message_id"] for r in inbound_rows(project)]


def _row_ids(page: str) -> list[int]:
    """The message ids of the inbox table's rows, top to bottom."""
    return [int(n) for n in re.findall(r'<tr data-message-id="(\d+)"', page)]


def _badge(page: str) -> str | None:
    found = re.search(r'id="inbox-open-count"[^>]*>([^<]+)<', page)
    return found.group(1) if found else None


def _states(project) -> dict[int, tuple[str | None, int | None]]:
    return {r["message_id"]: (r["inbox_state"], r["assignee_id"]) for r in inbound_rows(project)}


def test_tabs_and_actions_move_items_between_states(web, project, items):
    unhandled, unknown = items
    page = web.get("/inbox").get_data(as_text=True)
    assert _row_ids(page) == [unknown, unhandled]
    assert "Mark handled" in page and "Archive" in page and "Reopen" not in page
    assert "Amina" in page and "unknown number" in page

    response = web.post(f"/inbox/{unhandled}", {"state": "handled", "tab": "open", "filter": ""})
    assert response.status_code == 302 and response.headers["Location"].endswith("/inbox?state=open")
    assert _states(project)[unhandled] == ("handled", None)
    assert _row_ids(web.get("/inbox?state=open").get_data(as_text=True)) == [unknown]
    handled_tab = web.get("/inbox?state=handled").get_data(as_text=True)
    assert _row_ids(handled_tab) == [unhandled] and "Reopen" in handled_tab

    web.post(f"/inbox/{unknown}", {"state": "archived", "tab": "open"})
    assert _row_ids(web.get("/inbox").get_data(as_text=True)) == []
    assert _row_ids(web.get("/inbox?state=archived").get_data(as_text=True)) == [unknown]

    page = web.post(f"/inbox/{unknown}", {"state": "open", "tab": "archived"}, follow_redirects=True)
    assert "Reopened." in page.get_data(as_text=True)
    assert _states(project)[unknown] == ("open", None)
    with project.scope():
        from messaging.extensions import db
        from messaging.models import InboundMessage

        changed = db.session.execute(
            select(InboundMessage.inbox_changed_at).where(InboundMessage.message_id == unknown)
        ).scalar_one()
    assert changed == T0


def test_assigning_and_the_assignee_filter(web, project, items):
    unhandled, unknown = items
    nurse_id = _add_user(project, "nurse@alpha.example.org", "Nurse Joy")
    page = web.get("/inbox").get_data(as_text=True)
    assert f'<option value="{nurse_id}"' in page and "Nurse Joy" in page

    web.post(f"/inbox/{unhandled}", {"assignee": str(nurse_id), "tab": "open"})
    web.post(f"/inbox/{unknown}", {"assignee": "me", "tab": "open"})
    states = _states(project)
    assert states[unhandled] == ("open", nurse_id) and states[unknown][1] not in (None, nurse_id)

    assert _row_ids(web.get(f"/inbox?assignee={nurse_id}").get_data(as_text=True)) == [unhandled]
    assert _row_ids(web.get("/inbox?assignee=me").get_data(as_text=True)) == [unknown]
    assert _row_ids(web.get("/inbox?assignee=none").get_data(as_text=True)) == []

    # The action keeps the tab and the filter the user was looking at.
    response = web.post(f"/inbox/{unhandled}", {"assignee": "", "tab": "open", "filter": str(nurse_id)})
    assert response.headers["Location"].endswith(f"/inbox?state=open&assignee={nurse_id}")
    assert _states(project)[unhandled] == ("open", None)
    assert _row_ids(web.get("/inbox?assignee=none").get_data(as_text=True)) == [unhandled]


def test_refused_changes_are_flashed_and_change_nothing(web, project, other_project, items):
    unhandled, _ = items
    outsider = _add_user(other_project, "someone@beta.example.org", "Outsider")
    for form in ({"assignee": str(outsider)}, {"assignee": "someone"}, {"state": "done"}):
        page = web.post(f"/inbox/{unhandled}", form, follow_redirects=True).get_data(as_text=True)
        assert "flash-error" in page, form
    assert _states(project)[unhandled] == ("open", None)
    page = web.get("/inbox?assignee=somebody").get_data(as_text=True)
    assert "flash-error" in page and len(_row_ids(page)) == 2  # a bad filter shows everyone's


def test_another_projects_item_is_404_and_a_viewer_cannot_act(app, web, project, other_project, items):
    unhandled, _ = items
    theirs = login(app, other_project.admin_email, other_project.password)
    assert theirs.post(f"/inbox/{unhandled}", {"state": "handled"}).status_code == 404
    assert _row_ids(theirs.get("/inbox").get_data(as_text=True)) == []
    assert web.post("/inbox/abc", {"state": "handled"}).status_code == 404

    _add_user(project, "viewer@alpha.example.org", "Viewer", role="viewer")
    viewer = login(app, "viewer@alpha.example.org", "long enough password")
    page = viewer.get("/inbox").get_data(as_text=True)
    assert len(_row_ids(page)) == 2 and "Mark handled" not in page
    assert viewer.post(f"/inbox/{unhandled}", {"state": "handled"}).status_code == 403
    assert _states(project)[unhandled] == ("open", None)


def test_the_navigation_shows_the_open_count(app, web, project, run_jobs, items):
    unhandled, unknown = items
    assert _badge(web.get("/settings").get_data(as_text=True)) == "2"
    web.post(f"/inbox/{unhandled}", {"state": "handled"})
    assert _badge(web.get("/cases").get_data(as_text=True)) == "1"
    web.post(f"/inbox/{unknown}", {"state": "archived"})
    page = web.get("/settings").get_data(as_text=True)
    assert _badge(page) is None and ">Inbox</a>" in page

    for n in range(100):
        text_in(project, STRANGER, f"message {n}")
    run_jobs()
    assert _badge(web.get("/settings").get_data(as_text=True)) == "99+"


def test_the_count_is_one_query_per_page(app, web, items):
    web.get("/settings")  # warm up: the login session is touched once a minute
    with recorded_queries(app) as statements:
        page = web.get("/settings").get_data(as_text=True)
    assert _badge(page) == "2"
    inbox_statements = [s for s in statements if "inbound_messages" in s]
    assert len(inbox_statements) == 1, inbox_statements
    assert "LIMIT" in inbox_statements[0].upper()


def test_another_projects_items_are_not_counted(app, other_project, items):
    theirs = login(app, other_project.admin_email, other_project.password)
    page = theirs.get("/settings").get_data(as_text=True)
    assert _badge(page) is None and ">Inbox</a>" in page
