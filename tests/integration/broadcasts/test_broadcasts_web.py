"""The broadcast pages: compose with a preview, send, watch progress, edit, cancel, delete."""

import re

from sqlalchemy import select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Broadcast
from tests.factories import T0, make_case, rows


def _group_with(project, phones):
    api = project.api()
    group_id = api.post("/api/v1/case-groups", json={"name": "Village A"}).get_json()["id"]
    for i, phone in enumerate(phones):
        case_id = make_case(project, name=f"Mama {i}", phone=phone)
        assert (
            api.post(f"/api/v1/case-groups/{group_id}/cases", json={"identifier": case_id}).status_code == 201
        )
    return group_id


def _form(group_id, **extra):
    data = {"name": "Clinic day", "case_groups": group_id, "content": "text", "text": "Hi {case.name}"}
    data.update(extra)
    return data


def _page(web, path):
    response = web.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def _broadcasts(project):
    with project.scope():
        return list(db.session.execute(select(Broadcast)).scalars())


def test_preview_shows_counts_and_creates_nothing(web, project):
    group_id = _group_with(project, ["+254712000301", "+254712000302", None])
    make_case(project, name="Twin", phone="+254712000301")
    response = web.post(
        "/broadcasts/new", _form(group_id, action="preview", text="Hi {case.name}, {case.ward}")
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'id="preview-recipients"><span class="num">3<', page)
    assert re.search(r'id="preview-will-send"><span class="num">2<', page)
    assert 'data-reason="no_phone"' in page and "No phone number" in page
    assert "{case.ward}</code> for 2" in page  # a placeholder nobody has
    assert "Hi Mama 0, " in page  # a rendered example
    assert 'value="Clinic day"' in page  # the form keeps what was typed
    assert _broadcasts(project) == []


def test_send_now_then_progress_reaches_100(web, twilio_project, fake, run_jobs):
    group_id = _group_with(twilio_project, ["+254712000311", "+254712000312"])
    response = web.post("/broadcasts/new", _form(group_id, action="save"))
    assert response.status_code == 302
    broadcast_id = response.headers["Location"].rsplit("/", 1)[-1]
    page = _page(web, f"/broadcasts/{broadcast_id}")
    assert "is sending" in page and 'id="broadcast-status">sending<' in page
    status = web.get(f"/broadcasts/{broadcast_id}/status.json").get_json()
    assert status["status"] == "sending" and status["percent"] == 0
    run_jobs(scheduled=True)
    status = web.get(f"/broadcasts/{broadcast_id}/status.json").get_json()
    assert status["status"] == "sent" and status["percent"] == 100
    assert status["counts"]["statuses"] == {"sent": 2}
    assert sorted(m["body"] for m in fake.messages) == ["Hi Mama 0", "Hi Mama 1"]
    assert 'data-status="sent"><span class="num">2<' in _page(web, f"/broadcasts/{broadcast_id}")
    listing = _page(web, "/broadcasts?tab=sent")
    assert f'data-broadcast-id="{broadcast_id}"' in listing
    assert re.search(r'id="today-messages"><span class="num">2<', listing)
    dashboard = _page(web, "/")
    assert re.search(r'<span class="num">2</span><span>messages sent today', dashboard)


def test_schedule_edit_and_delete_before_it_fires(web, project):
    clock.set_now(T0)  # 2026-03-02 09:00 UTC = 12:00 in Nairobi
    group_id = _group_with(project, ["+254712000321"])
    form = _form(group_id, action="save", when="once", send_date="2026-03-03", send_time="08:30")
    response = web.post("/broadcasts/new", form)
    assert response.status_code == 302
    [b] = _broadcasts(project)
    assert b.send_at.isoformat() == "2026-03-03T05:30:00"  # 08:30 Nairobi (UTC+3)
    listing = _page(web, "/broadcasts")
    assert f'data-broadcast-id="{b.id}"' in listing and "2026-03-03 08:30 EAT" in listing
    edit = _page(web, f"/broadcasts/{b.id}/edit")
    assert 'value="2026-03-03"' in edit and 'value="08:30"' in edit
    response = web.post(
        f"/broadcasts/{b.id}/edit", {**form, "text": "Changed {case.name}", "send_time": "10:00"}
    )
    assert response.status_code == 302
    [b] = _broadcasts(project)
    assert b.text == "Changed {case.name}" and b.send_at.isoformat() == "2026-03-03T07:00:00"
    deleted = web.post(f"/broadcasts/{b.id}/delete", {}, follow_redirects=True)
    assert "deleted" in deleted.get_data(as_text=True)
    assert _broadcasts(project) == []


def test_repeating_weekly_with_quiet_hours_from_the_form(web, project):
    clock.set_now(T0)
    group_id = _group_with(project, ["+254712000331"])
    form = _form(
        group_id,
        action="save",
        when="repeat",
        repeat_kind="weekly",
        repeat_time="07:00",
        start_date="2026-03-02",
        end_date="2026-04-30",
        days_of_week=["0", "3"],
        quiet="on",
        quiet_start="08:00",
        quiet_end="18:00",
    )
    assert web.post("/broadcasts/new", form).status_code == 302
    [b] = _broadcasts(project)
    assert b.schedule["kind"] == "weekly" and b.schedule["days_of_week"] == [0, 3]
    assert b.schedule["timezone"] == "Africa/Nairobi" and b.schedule["end_date"] == "2026-04-30"
    assert b.next_fire_at.isoformat() == "2026-03-05T04:00:00"  # Thursday 07:00 Nairobi
    assert (b.quiet_start, b.quiet_end) == ("08:00", "18:00")
    page = _page(web, f"/broadcasts/{b.id}")
    assert "Repeats weekly at 07:00" in page and "Mon, Thu" in page and "between 08:00 and 18:00" in page


def test_bad_input_is_refused_with_the_reason_and_changes_nothing(web, project):
    group_id = _group_with(project, ["+254712000341"])
    cases = [
        ({"text": "Hi {case.name"}, "text"),  # unbalanced placeholder
        ({"name": ""}, "name"),
        ({"case_groups": ""}, "recipients"),
        ({"cases": "no-such-case"}, "&#39;no-such-case&#39; is not a case"),
        ({"when": "once", "send_date": "2020-01-01", "send_time": "09:00"}, "in the past"),
        ({"when": "once", "send_date": "", "send_time": ""}, "give a date and a time"),
        ({"content": "survey", "survey_id": ""}, "exactly one of"),
    ]
    for change, expected in cases:
        response = web.post("/broadcasts/new", _form(group_id, action="save", **change))
        assert response.status_code == 400, change
        assert expected in response.get_data(as_text=True), change
    assert _broadcasts(project) == []


def test_single_cases_by_phone_or_external_id(web, twilio_project, fake, run_jobs):
    make_case(twilio_project, name="Asha", phone="+254712000351", external_id="PT-1")
    make_case(twilio_project, name="Baraka", phone="+254712000352")
    form = {
        "name": "Two",
        "content": "text",
        "text": "Hello {case.name}",
        "cases": "PT-1\n0712 000 352",
        "action": "save",
    }
    assert web.post("/broadcasts/new", form).status_code == 302
    run_jobs(scheduled=True)
    assert sorted(m["body"] for m in fake.messages) == ["Hello Asha", "Hello Baraka"]


def test_cancel_from_the_page_stops_unsent_messages(web, twilio_project, fake, run_jobs):
    group_id = _group_with(twilio_project, ["+254712000361", "+254712000362"])
    response = web.post("/broadcasts/new", _form(group_id, action="save"))
    broadcast_id = response.headers["Location"].rsplit("/", 1)[-1]
    cancelled = web.post(f"/broadcasts/{broadcast_id}/cancel", {}, follow_redirects=True)
    assert "cancelled" in cancelled.get_data(as_text=True)
    run_jobs(scheduled=True)
    assert fake.messages == []
    assert all(r["status"] != "sent" for r in rows(twilio_project, broadcast_id=broadcast_id))
    status = web.get(f"/broadcasts/{broadcast_id}/status.json").get_json()
    assert status["status"] == "cancelled"
    # A broadcast that has fired cannot be deleted (cancel is the way).
    refused = web.post(f"/broadcasts/{broadcast_id}/delete", {}, follow_redirects=True)
    assert "cancel it instead" in refused.get_data(as_text=True)


def test_viewers_see_but_cannot_send(app, project):
    from messaging.models import WebUser
    from tests.conftest import login

    with project.scope():
        viewer = WebUser(email="viewer@example.org", role="viewer")
        viewer.set_password("viewer-pass-123")
        db.session.add(viewer)
        db.session.commit()
    client = login(app, "viewer@example.org", "viewer-pass-123")
    assert client.get("/broadcasts").status_code == 200
    assert client.get("/broadcasts/new").status_code == 403
    assert client.post("/broadcasts/new", {"name": "x"}).status_code == 403


def test_list_counts_every_tab_and_pages_to_older_broadcasts(web, project, monkeypatch):
    from messaging.http.web import broadcasts as web_broadcasts

    monkeypatch.setattr(web_broadcasts, "WEB_PAGE_SIZE", 2)
    clock.set_now(T0)
    case = make_case(project, name="Amina", phone="+254712000391")
    api = project.api()
    for i in range(5):
        clock.advance(seconds=1)
        body = {
            "name": f"Old {i}",
            "recipients": {"cases": [case]},
            "text": "x",
            "send_at": "2099-01-01T09:00:00Z",
        }
        assert api.post("/api/v1/broadcasts", json=body).status_code == 201
    first = _page(web, "/broadcasts?tab=upcoming")
    assert 'id="tab-upcoming">Upcoming (5)<' in first
    assert re.findall(r">(Old \d)</a>", first) == ["Old 4", "Old 3"]
    older = re.search(r'id="older-broadcasts" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = _page(web, older)
    assert re.findall(r">(Old \d)</a>", second) == ["Old 2", "Old 1"]
    older = re.search(r'id="older-broadcasts" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    last = _page(web, older)
    assert re.findall(r">(Old \d)</a>", last) == ["Old 0"] and 'id="older-broadcasts"' not in last
    assert re.findall(r">(Old \d)</a>", _page(web, "/broadcasts?tab=upcoming&older=garbage")) == [
        "Old 4",
        "Old 3",
    ]
