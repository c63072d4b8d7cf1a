"""Re-asking those who did not finish: a broadcast to an earlier survey broadcast's non-responders."""

from tests.factories import make_contact, make_group, make_survey, rows
from tests.integration.inbound.inbound_helpers import say

ONE_QUESTION = {
    "name": "Check",
    "questions": [{"id": "ok", "type": "select", "text": "OK?", "choices": ["Yes", "No"]}],
}
PHONES = {"done": "+254712000301", "halfway": "+254712000302", "silent": "+254712000303"}


def _broadcast(api, recipients, survey_id):
    r = api.post(
        "/api/v1/broadcasts", json={"name": "Check", "recipients": recipients, "survey_id": survey_id}
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_only_those_who_did_not_finish_are_asked_again(project, run_jobs):
    from messaging.extensions import db
    from messaging.models import Case

    for name, phone in PHONES.items():
        make_contact(project, phone, name=name)
    with project.scope():
        case_ids = [c.case_id for c in db.session.query(Case).order_by(Case.id)]
    api = project.api()
    survey_id = make_survey(project, **ONE_QUESTION)
    first = _broadcast(api, {"case_groups": [make_group(project, "All", case_ids)]}, survey_id)
    run_jobs()
    say(project, run_jobs, PHONES["done"], "1")  # completes
    say(project, run_jobs, PHONES["halfway"], "maybe")  # an invalid answer: still open

    preview = api.post(
        "/api/v1/broadcasts/preview", json={"recipients": {"non_responders": [first]}, "text": "x"}
    )
    assert preview.get_json()["recipients"] == 2
    again = _broadcast(api, {"non_responders": [first]}, survey_id)
    run_jobs()
    asked_again = {m["phone"] for m in rows(project, broadcast_id=again)}
    assert asked_again == {PHONES["halfway"], PHONES["silent"]}
    detail = api.get(f"/api/v1/broadcasts/{again}").get_json()
    assert detail["name"] == "Check"

    say(project, run_jobs, PHONES["halfway"], "2")  # finishes the second ask
    preview = api.post(
        "/api/v1/broadcasts/preview", json={"recipients": {"non_responders": [first, again]}, "text": "x"}
    )
    assert preview.get_json()["recipients"] == 1  # the silent one only


def test_an_unknown_or_another_projects_broadcast_is_not_found(project, other_project):
    theirs = _broadcast(
        other_project.api(),
        {"cases": [make_contact(other_project, "+256772000001")[1]]},
        make_survey(other_project, **ONE_QUESTION),
    )
    for ids in (["nope"], [theirs]):
        r = project.api().post(
            "/api/v1/broadcasts/preview", json={"recipients": {"non_responders": ids}, "text": "x"}
        )
        assert (
            r.status_code == 404 and r.get_json()["error"]["details"]["field"] == "recipients.non_responders"
        )


def test_the_composer_offers_earlier_survey_broadcasts(project, web):
    survey_id = make_survey(project, **ONE_QUESTION)
    first = _broadcast(project.api(), {"cases": [make_contact(project, "+254712000309")[1]]}, survey_id)
    page = web.get("/broadcasts/new").get_data(as_text=True)
    assert 'id="non-responders"' in page and f'value="{first}"' in page
