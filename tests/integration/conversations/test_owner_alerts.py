"""Telling the owner: a keyword with notify_owner and a flagged survey answer text the case's
mobile worker, or every member of the owning group, quoting the participant's message."""

from sqlalchemy import update

from messaging.extensions import db
from messaging.models import Case
from tests.factories import make_contact, make_keyword, make_survey, rows
from tests.integration.inbound.inbound_helpers import inbound_rows, say

PHONE = "+254712000041"


def add_worker(project, username, phone=None):
    body = {"username": username, "password": "pw-123456789"}
    if phone:
        body["phone_number"] = phone
    answer = project.api().post("/api/v1/users", json=body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def add_group(project, name, members):
    answer = project.api().post(
        "/api/v1/groups", json={"name": name, "case_sharing": True, "members": members}
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def own(project, case_pk, owner_id):
    with project.scope():
        db.session.execute(update(Case).where(Case.id == case_pk).values(owner_id=owner_id))
        db.session.commit()


def alerts(project, phone):
    return [r["body"] for r in rows(project, phone=phone, direction="outbound")]


def test_a_keyword_tells_the_worker_who_owns_the_case(project, run_jobs):
    pk, _ = make_contact(project, PHONE, name="Amina")
    own(project, pk, add_worker(project, "nurse.wanjiku", "+254722000001"))
    make_keyword(project, keyword="HELP-ME", reply_text="A nurse will call you.", notify_owner=True)
    assert say(project, run_jobs, PHONE, "help-me   I have bleeding") == ["A nurse will call you."]
    [alert] = alerts(project, "+254722000001")
    assert alert == f'Amina ({PHONE}) wrote: "help-me I have bleeding" (keyword HELP-ME)'
    assert "owner notified (1)" in inbound_rows(project)[-1]["detail"]
    [row] = rows(project, phone="+254722000001")
    assert row["case_id"] is None and row["auto_reply"] is False  # not part of Amina's own thread


def test_a_group_owned_case_tells_every_member_with_a_phone_once(project, run_jobs):
    pk, _ = make_contact(project, PHONE, name="Juma")
    members = [
        add_worker(project, "chw.one", "+254722000011"),
        add_worker(project, "chw.two", "+254722000012"),
        add_worker(project, "chw.nophone"),
    ]
    own(project, pk, add_group(project, "Village 2", members))
    make_keyword(project, keyword="CALLME", notify_owner=True)
    assert say(project, run_jobs, PHONE, "callme please") == []  # no reply text: only the owners hear
    assert len(alerts(project, "+254722000011")) == len(alerts(project, "+254722000012")) == 1
    assert "Juma" in alerts(project, "+254722000011")[0]


def test_no_owner_or_nobody_to_text_sends_nothing_and_says_so(project, run_jobs):
    make_contact(project, PHONE)
    make_keyword(project, keyword="CALLME", notify_owner=True)
    say(project, run_jobs, PHONE, "callme")
    assert "owner not notified: nobody to text" in inbound_rows(project)[-1]["detail"]
    assert [r["phone"] for r in rows(project, direction="outbound")] == []


def test_a_flagged_survey_answer_opens_the_inbox_and_tells_the_owner(project, run_jobs):
    pk, _ = make_contact(project, PHONE, name="Amina")
    own(project, pk, add_worker(project, "nurse.wanjiku", "+254722000001"))
    survey_id = make_survey(
        project,
        name="Danger signs",
        questions=[
            {
                "id": "bleeding",
                "type": "select",
                "text": "Any bleeding?",
                "choices": ["Yes", "No"],
                "flag_if": {"op": "eq", "value": "yes"},
            },
            {"id": "note", "type": "text", "text": "Anything else?"},
        ],
    )
    make_keyword(project, keyword="SIGNS", survey_id=survey_id)
    say(project, run_jobs, PHONE, "signs")
    say(project, run_jobs, PHONE, "2")
    say(project, run_jobs, PHONE, "all fine")
    assert alerts(project, "+254722000001") == []  # "No" is not flagged
    assert project.api().get("/api/v1/inbox?state=open").get_json()["results"] == []

    say(project, run_jobs, PHONE, "signs")
    assert say(project, run_jobs, PHONE, "1") == ["Anything else?"]
    [alert] = alerts(project, "+254722000001")
    assert alert.startswith("Amina") and '"1"' in alert and "survey answer to bleeding" in alert
    [item] = project.api().get("/api/v1/inbox?state=open").get_json()["results"]
    assert item["body"] == "1"


def test_a_bad_flag_is_refused_with_the_question_named(project):
    answer = project.api().post(
        "/api/v1/surveys",
        json={
            "name": "Bad",
            "questions": [
                {
                    "id": "q",
                    "type": "select",
                    "text": "?",
                    "choices": ["A", "B"],
                    "flag_if": {"op": "eq", "value": "C"},
                }
            ],
        },
    )
    assert answer.status_code == 400
    assert "flag_if" in answer.get_json()["error"]["message"]


def test_the_keywords_page_adds_a_keyword_that_texts_the_owner(project, web):
    page = web.get("/settings/keywords").get_data(as_text=True)
    assert 'name="notify_owner"' in page
    web.post("/settings/keywords", {"keyword": "urgent", "notify_owner": "on"}, follow_redirects=True)
    [keyword] = project.api().get("/api/v1/keywords").get_json()["results"]
    assert keyword["keyword"] == "URGENT" and keyword["notify_owner"] is True
    assert "texted" in web.get("/settings/keywords").get_data(as_text=True)
