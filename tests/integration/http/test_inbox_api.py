"""The inbox over the API: which inbound messages need a person, their states, assignment, filters,
and another project's items out of reach."""

from datetime import datetime

import pytest
from sqlalchemy import update

from messaging.lib import clock
from tests.conftest import ApiClient
from tests.factories import make_contact, make_keyword
from tests.integration.inbound.inbound_helpers import inbound_rows, text_in

PHONE = "+254712000061"
STRANGER = "+254799000061"
T0 = datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(T0)


def _add_user(project, email, role="manager", name="", active=True):
    """A web user of ``project`` (through the accounts domain); returns its id and an API key."""
    from messaging.accounts.api_tokens import issue
    from messaging.accounts.web_users import add_web_user
    from messaging.extensions import db

    with project.scope():
        user = add_web_user(project.id, email, name, "long enough password", role)
        _token, key = issue(user, "tests")
        user.is_active_user = active
        db.session.commit()
        return user.id, key


def _admin_id(project):
    from sqlalchemy import select

    from messaging.extensions import db
    from messaging.models import WebUser

    with project.scope():
        return db.session.execute(select(WebUser.id).where(WebUser.email == project.admin_email)).scalar_one()


def _items(api, **query):
    response = api.get("/api/v1/inbox", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


@pytest.fixture
def messages(project, run_jobs):
    """Three inbound messages: unhandled (a known case), a keyword (not an item), an unknown number."""
    make_contact(project, PHONE, name="Amina")
    make_keyword(project, keyword="clinic", reply_text="The clinic opens at 8.")
    text_in(project, PHONE, "I cannot come on Monday")
    clock.advance(seconds=5)
    text_in(project, PHONE, "clinic hours")
    clock.advance(seconds=5)
    text_in(project, STRANGER, "who is this?")
    run_jobs()
    unhandled, keyword, unknown = (r["message_id"] for r in inbound_rows(project))
    return {"unhandled": unhandled, "keyword": keyword, "unknown": unknown}


def test_messages_that_need_a_person_are_open_items_newest_first(api, project, messages):
    items = _items(api)
    assert [i["id"] for i in items] == [messages["unknown"], messages["unhandled"]]
    unknown, unhandled = items
    assert unhandled["phone"] == PHONE and unhandled["body"] == "I cannot come on Monday"
    assert unhandled["case"]["name"] == "Amina" and len(unhandled["case"]["case_id"]) > 8
    assert unhandled["outcome"] == "unhandled" and unhandled["state"] == "open"
    assert unhandled["received_at"] == "2026-03-02T09:00:00Z"
    assert unhandled["assignee"] is None
    assert unknown["case"] is None and unknown["outcome"] == "unknown_number"
    assert unknown["received_at"] == "2026-03-02T09:00:10Z"
    assert set(unhandled) == {
        "id",
        "phone",
        "body",
        "received_at",
        "case",
        "outcome",
        "state",
        "assignee",
        "changed_at",
    }
    assert [i["id"] for i in _items(api, state="open")] == [messages["unknown"], messages["unhandled"]]
    assert _items(api, state="handled") == [] and _items(api, state="archived") == []


def test_states_move_open_to_handled_or_archived_and_back(api, messages):
    clock.advance(minutes=3)
    response = api.patch(f"/api/v1/inbox/{messages['unhandled']}", json={"state": "handled"})
    assert response.status_code == 200, response.get_json()
    item = response.get_json()
    assert item["state"] == "handled" and item["changed_at"] == "2026-03-02T09:03:10Z"
    assert [i["id"] for i in _items(api, state="open")] == [messages["unknown"]]
    assert [i["id"] for i in _items(api, state="handled")] == [messages["unhandled"]]

    api.patch(f"/api/v1/inbox/{messages['unknown']}", json={"state": "archived"})
    assert _items(api, state="open") == []
    assert [i["id"] for i in _items(api, state="archived")] == [messages["unknown"]]
    assert [i["id"] for i in _items(api)] == [messages["unknown"], messages["unhandled"]]  # every state

    clock.advance(minutes=1)
    reopened = api.patch(f"/api/v1/inbox/{messages['unhandled']}", json={"state": "open"}).get_json()
    assert reopened["state"] == "open" and reopened["changed_at"] == "2026-03-02T09:04:10Z"
    assert [i["id"] for i in _items(api, state="open")] == [messages["unhandled"]]


def test_assignment_to_a_user_of_the_project_and_the_assignee_filter(api, project, messages):
    nurse_id, _ = _add_user(project, "nurse@alpha.example.org", name="Nurse Joy")
    admin_id = _admin_id(project)
    item = api.patch(f"/api/v1/inbox/{messages['unhandled']}", json={"assignee": nurse_id}).get_json()
    assert item["assignee"] == {"id": nurse_id, "name": "Nurse Joy", "email": "nurse@alpha.example.org"}
    assert item["state"] == "open" and item["changed_at"] == "2026-03-02T09:00:10Z"
    mine = api.patch(f"/api/v1/inbox/{messages['unknown']}", json={"assignee": "me"}).get_json()
    assert mine["assignee"]["id"] == admin_id

    assert [i["id"] for i in _items(api, assignee=str(nurse_id))] == [messages["unhandled"]]
    assert [i["id"] for i in _items(api, assignee="me")] == [messages["unknown"]]
    assert _items(api, assignee="none") == []
    assert [i["id"] for i in _items(api, assignee="me", state="open")] == [messages["unknown"]]
    assert _items(api, assignee="me", state="handled") == []

    # Marking it handled keeps the assignee; null unassigns.
    handled = api.patch(f"/api/v1/inbox/{messages['unhandled']}", json={"state": "handled"}).get_json()
    assert handled["assignee"]["id"] == nurse_id
    unassigned = api.patch(f"/api/v1/inbox/{messages['unhandled']}", json={"assignee": None}).get_json()
    assert unassigned["assignee"] is None and unassigned["state"] == "handled"
    assert [i["id"] for i in _items(api, assignee="none")] == [messages["unhandled"]]


def test_an_assignee_must_be_an_active_user_of_the_project(api, project, other_project, messages):
    outsider_id, _ = _add_user(other_project, "someone@beta.example.org")
    gone_id, _ = _add_user(project, "gone@alpha.example.org", active=False)
    for assignee in (outsider_id, gone_id, 999_999, 2**40, "nobody", True, -1):
        response = api.patch(f"/api/v1/inbox/{messages['unhandled']}", json={"assignee": assignee})
        assert response.status_code == 400, (assignee, response.get_json())
        assert response.get_json()["error"]["details"]["field"] == "assignee"
    assert _items(api)[-1]["assignee"] is None


def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, messages):
    for body, field in (
        ({"state": "done"}, "state"),
        ({"state": 3}, "state"),
        ({"state": "handled", "assignee": "someone"}, "assignee"),
    ):
        response = api.patch(f"/api/v1/inbox/{messages['unhandled']}", json=body)
        assert response.status_code == 400, response.get_json()
        assert response.get_json()["error"]["details"]["field"] == field
    for query, field in (({"state": "closed"}, "state"), ({"assignee": "somebody"}, "assignee")):
        response = api.get("/api/v1/inbox", query_string=query)
        assert response.status_code == 400
        assert response.get_json()["error"]["details"]["field"] == field
    assert {i["state"] for i in _items(api)} == {"open"}
    assert api.patch(f"/api/v1/inbox/{messages['unhandled']}", data="state=handled").status_code == 415


def test_another_projects_item_and_a_message_that_is_no_item_are_404(api, other_project, messages):
    theirs = other_project.api()
    assert _items(theirs) == []
    for message_id in (messages["unhandled"], messages["unknown"]):
        response = theirs.patch(f"/api/v1/inbox/{message_id}", json={"state": "handled"})
        assert response.status_code == 404
    for path in (f"/api/v1/inbox/{messages['keyword']}", "/api/v1/inbox/abc", f"/api/v1/inbox/{10**30}"):
        assert api.patch(path, json={"state": "handled"}).status_code == 404
    assert {i["state"] for i in _items(api)} == {"open"}


def test_a_viewer_reads_the_inbox_but_cannot_change_it(app, project, messages):
    _, key = _add_user(project, "viewer@alpha.example.org", role="viewer")
    viewer = ApiClient(app.test_client(), key)
    assert len(_items(viewer)) == 2
    response = viewer.patch(f"/api/v1/inbox/{messages['unhandled']}", json={"state": "handled"})
    assert response.status_code == 403


def test_rows_without_an_inbox_state_are_not_items(api, project, messages):
    """Messages handled before migration 0011 have no inbox state: no person is asked to look."""
    from messaging.extensions import db
    from messaging.models import InboundMessage

    with project.scope():
        db.session.execute(
            update(InboundMessage)
            .where(InboundMessage.message_id == messages["unhandled"])
            .values(inbox_state=None, inbox_changed_at=None)
        )
        db.session.commit()
    assert [i["id"] for i in _items(api)] == [messages["unknown"]]
    response = api.patch(f"/api/v1/inbox/{messages['unhandled']}", json={"state": "handled"})
    assert response.status_code == 404


def test_other_code_can_open_any_inbound_message_for_a_person(api, project, messages):
    """A flagged survey answer (or any other reason) puts an inbound message in the inbox."""
    from messaging.conversations.inbox import open_item
    from messaging.extensions import db

    with project.scope():
        open_item(messages["keyword"], reason="survey_flag")
        db.session.commit()
    items = _items(api, state="open")
    assert [i["id"] for i in items] == [messages["unknown"], messages["keyword"], messages["unhandled"]]
    assert items[1]["outcome"] == "keyword"
    api.patch(f"/api/v1/inbox/{messages['keyword']}", json={"state": "handled"})
    with project.scope():
        open_item(messages["keyword"], reason="survey_flag")  # flagged again: open again
        db.session.commit()
    assert messages["keyword"] in [i["id"] for i in _items(api, state="open")]


def test_the_list_is_paginated(api, project, run_jobs):
    for n in range(5):
        text_in(project, STRANGER, f"message {n}")
    run_jobs()
    first = api.get("/api/v1/inbox", query_string={"state": "open", "limit": 2}).get_json()
    assert [i["body"] for i in first["results"]] == ["message 4", "message 3"]
    second = api.get(first["next"]).get_json()
    third = api.get(second["next"]).get_json()
    assert [i["body"] for i in second["results"] + third["results"]] == [
        "message 2",
        "message 1",
        "message 0",
    ]
    assert third["next"] is None
