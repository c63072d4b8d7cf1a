"""The case conversation page as a chat (issue 21 "Reply from the web"), through the test client:
the thread (both directions, statuses, failures with their reason, the survey session, the
author), the reply form (CSRF, refusals keep the text, the opted-out confirm box), the live
update's JSON, the latest page and older ones, canned replies, and who may reply."""

import re

from sqlalchemy import select

from messaging.extensions import db
from messaging.lib.segments import count_segments
from messaging.models import ConsentEvent, WebUser
from tests.conftest import login
from tests.factories import make_case, make_contact, make_keyword, make_survey, rows, send
from tests.integration.inbound.inbound_helpers import say, text_in

PHONE = "+254712000401"


def page_of(web, case_id, **query):
    response = web.get(f"/cases/{case_id}/conversation", query_string=query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def thread_ids(html) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="msg [^"]*" id="message-(\d+)"', html)]


def make_viewer(app, project):
    with project.scope():
        viewer = WebUser(project_id=project.id, email="viewer@alpha.example.org", role="viewer")
        viewer.set_password("viewer password")
        db.session.add(viewer)
        db.session.commit()
    return login(app, "viewer@alpha.example.org", "viewer password")


def test_the_thread_shows_both_directions_statuses_failures_sessions_and_authors(
    app, twilio_project, fake, run_jobs, web
):
    p = twilio_project
    _, case_id = make_contact(p, PHONE, name="Amina")
    survey_id = make_survey(
        p, name="Check-up", questions=[{"id": "q", "type": "text", "text": "How are you?"}]
    )
    make_keyword(p, keyword="CHECK", survey_id=survey_id)
    assert say(p, run_jobs, PHONE, "check") == ["How are you?"]
    fake.fail_numbers = {PHONE: 21614}
    assert (
        web.post(f"/cases/{case_id}/conversation/reply", {"text": "Can you come Tuesday?"}).status_code == 302
    )
    run_jobs()

    html = page_of(web, case_id)
    check, question, answer = rows(p)
    assert thread_ids(html) == [check["id"], question["id"], answer["id"]]
    assert f'<tr class="msg inbound" id="message-{check["id"]}"' in html
    assert f'href="/surveys/{survey_id}">Check-up</a>' in html  # the session the messages belong to
    assert html.count('class="survey-session"') == 2  # the keyword and the question
    assert '<span class="muted author">by Admin</span>' in html  # the reply's author (the admin's name)
    assert answer["status"] == "failed"
    assert f'<tr class="msg outbound failed" id="message-{answer["id"]}"' in html
    assert "is not a valid mobile number" in html  # the failure's reason
    assert (
        '<span class="badge sent">sent</span>' in html
        and '<span class="badge received">received</span>' in html
    )


def test_a_reply_from_the_form_is_queued_with_its_author(app, project, web):
    case_pk, case_id = make_contact(project, PHONE)
    response = web.post(f"/cases/{case_id}/conversation/reply", {"text": "See you\r\nat 9"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cases/{case_id}/conversation#reply")
    [row] = rows(project)
    assert row["body"] == "See you\nat 9" and row["case_id"] == case_pk and row["status"] == "queued"
    with project.scope():
        admin = db.session.execute(select(WebUser).where(WebUser.email == project.admin_email)).scalar_one()
    assert row["author_id"] == admin.id
    assert thread_ids(page_of(web, case_id)) == [row["id"]]


def test_a_refused_reply_keeps_the_text_and_says_why(app, project, web):
    _, case_id = make_contact(project, PHONE)
    empty = web.post(f"/cases/{case_id}/conversation/reply", {"text": "   "})
    assert empty.status_code == 400 and "the reply first; it is empty" in empty.get_data(as_text=True)
    long_text = "a" * 1601
    too_long = web.post(f"/cases/{case_id}/conversation/reply", {"text": long_text})
    html = too_long.get_data(as_text=True)
    assert too_long.status_code == 400 and "at most 1,600 characters" in html
    assert f">{long_text}</textarea>" in html  # kept, to shorten it
    assert '<span id="reply-segments">11</span>' in html and count_segments(long_text).segments == 11
    assert rows(project) == []
    # Without the CSRF token nothing is sent.
    assert web.client.post(f"/cases/{case_id}/conversation/reply", data={"text": "hi"}).status_code == 400
    assert rows(project) == []


def test_an_opted_out_number_shows_a_warning_and_needs_the_confirm_box(app, project, web):
    from messaging.sms.optouts import opt_out

    _, case_id = make_contact(project, PHONE)
    with project.scope():
        opt_out(project.id, PHONE, "keyword")
        db.session.commit()
    html = page_of(web, case_id)
    assert 'id="opted-out-warning"' in html and "by text message" in html
    assert 'name="confirm_opted_out"' in html

    refused = web.post(f"/cases/{case_id}/conversation/reply", {"text": "Your results are ready"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "This number opted out on" in html
    assert ">Your results are ready</textarea>" in html and 'id="opted-out-warning"' in html
    assert rows(project) == []

    sent = web.post(
        f"/cases/{case_id}/conversation/reply", {"text": "Your results are ready", "confirm_opted_out": "on"}
    )
    assert sent.status_code == 302
    [row] = rows(project)
    assert row["bypass_opt_out"] is True and row["status"] == "queued"
    with project.scope():
        [event] = db.session.execute(select(ConsentEvent).where(ConsentEvent.change == "exception")).scalars()
        assert event.message_id == row["id"] and event.phone == PHONE


def test_a_viewer_reads_the_conversation_but_cannot_reply(app, project):
    _, case_id = make_contact(project, PHONE)
    viewer = make_viewer(app, project)
    html = page_of(viewer, case_id)
    assert 'id="thread"' in html and 'id="reply-form"' not in html
    assert viewer.post(f"/cases/{case_id}/conversation/reply", {"text": "hi"}).status_code == 403
    assert rows(project) == []


def test_a_case_without_a_phone_or_deleted_has_no_reply_box(app, project, web):
    case_id = make_case(project, name="No phone")
    html = page_of(web, case_id)
    assert 'id="no-phone"' in html and 'id="reply-form"' not in html
    refused = web.post(f"/cases/{case_id}/conversation/reply", {"text": "hi"})
    assert refused.status_code == 422 and "no valid phone number" in refused.get_data(as_text=True)
    deleted = make_case(project, name="Gone", phone="+254712000402", deleted=True)
    assert 'id="reply-form"' not in page_of(web, deleted)  # its history can be read, not answered
    assert web.post(f"/cases/{deleted}/conversation/reply", {"text": "hi"}).status_code == 404
    assert rows(project) == []


def test_the_live_update_sends_newer_messages_and_the_watched_ones_with_their_rows(app, project, web):
    case_pk, case_id = make_contact(project, PHONE)
    first = send(project, PHONE, "Reminder", case_id=case_pk)
    html = page_of(web, case_id)
    assert f'data-last-id="{first}"' in html
    assert f'data-messages-url="/cases/{case_id}/conversation/messages"' in html
    url = f"/cases/{case_id}/conversation/messages"
    assert web.get(url, query_string={"after": first}).get_json() == {"rows": [], "last_id": first}

    inbound_id, _ = text_in(project, PHONE, "I can't <b>come</b> Monday")
    send(project, "+254712000499", "another number")
    with project.scope():
        from messaging.models import Message

        db.session.get(Message, first).status = "delivered"
        db.session.commit()
    data = web.get(url, query_string={"after": first, "watch": f"{first},{inbound_id},x,99999"}).get_json()
    assert data["last_id"] == inbound_id
    assert [(r["message"]["id"], r["message"]["status"]) for r in data["rows"]] == [
        (first, "delivered"),
        (inbound_id, "received"),
    ]
    row_html = data["rows"][1]["html"]
    assert row_html.startswith(f'<tr class="msg inbound" id="message-{inbound_id}"')
    assert "I can&#39;t &lt;b&gt;come&lt;/b&gt; Monday" in row_html  # escaped, as on the page
    assert data["rows"][0]["html"].count('<span class="badge delivered">delivered</span>') == 1

    for bad in ("-1", "x", "\u0663"):
        assert web.get(url, query_string={"after": bad}).status_code == 400


def test_the_page_shows_the_latest_messages_and_links_to_older_ones(app, project, web):
    case_pk, case_id = make_contact(project, PHONE)
    with project.scope():
        from messaging.sms.outbox import send_sms

        ids = [send_sms(project.id, PHONE, f"message {n}", case_pk) for n in range(120)]
        db.session.commit()
    latest = page_of(web, case_id)
    assert thread_ids(latest) == ids[-50:]
    assert f'href="/cases/{case_id}/conversation?before={ids[70]}"' in latest
    older = page_of(web, case_id, before=ids[70])
    assert thread_ids(older) == ids[20:70] and "data-messages-url" not in older  # not live
    oldest = page_of(web, case_id, before=ids[20])
    assert thread_ids(oldest) == ids[:20] and "Older messages" not in oldest
    assert web.get(f"/cases/{case_id}/conversation", query_string={"before": "x"}).status_code == 400
    # The case page's section shows the last 20 and links to the chat.
    case_page = web.get(f"/cases/{case_id}").get_data(as_text=True)
    assert thread_ids(case_page) == ids[-20:]
    assert f'href="/cases/{case_id}/conversation">Whole conversation and reply</a>' in case_page


def test_canned_replies_page_and_the_picker(app, project, web):
    _, case_id = make_contact(project, PHONE)
    assert (
        web.post("/settings/canned-replies", {"title": "Directions", "body": "Main Road, gate 2"}).status_code
        == 302
    )
    duplicate = web.post(
        "/settings/canned-replies", {"title": "DIRECTIONS", "body": "x"}, follow_redirects=True
    )
    assert "already exists" in duplicate.get_data(as_text=True)
    listing = web.get("/settings/canned-replies").get_data(as_text=True)
    assert "Main Road, gate 2" in listing
    reply_id = re.search(r'<tr data-id="([^"]+)">', listing).group(1)
    html = page_of(web, case_id)
    assert f'<option value="{reply_id}" data-body="Main Road, gate 2">Directions</option>' in html
    assert web.post(f"/settings/canned-replies/{reply_id}/delete").status_code == 302
    assert 'id="canned-picker"' not in page_of(web, case_id)
    assert web.post(f"/settings/canned-replies/{reply_id}/delete").status_code == 404
