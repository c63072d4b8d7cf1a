"""Dynamic case groups: a saved filter whose cases are chosen again whenever the group is read
or sent to; nothing is added to or removed from one by hand."""

from messaging.extensions import db
from messaging.models import Case
from tests.factories import make_cases, rows

HIGH_RISK = {"case_type": "mother", "criteria": [{"property": "risk", "op": "eq", "value": "high"}]}


def _dynamic(api, name="High risk", case_filter=HIGH_RISK):
    r = api.post("/api/v1/case-groups", json={"name": name, "filter": case_filter})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_dynamic_group_follows_its_cases_and_a_broadcast_reaches_them_at_send(project, run_jobs):
    api = project.api()
    pks = make_cases(
        project,
        [
            {"case_type": "mother", "name": n, "phone_number": p, "phone_raw": p, "properties": {"risk": r}}
            for n, p, r in [("Amina", "+254712000601", "high"), ("Juma", "+254712000602", "low")]
        ],
    )
    group = _dynamic(api)
    assert (group["member_count"], group["filter"]) == (1, HIGH_RISK)
    listed = api.get(f"/api/v1/case-groups/{group['id']}/cases").get_json()["results"]
    assert [(m["name"], m["added_at"]) for m in listed] == [("Amina", None)]

    with project.scope():  # Juma's risk changes: the group follows
        db.session.get(Case, pks[1]).properties = {"risk": "high"}
        db.session.commit()
    assert api.get(f"/api/v1/case-groups/{group['id']}").get_json()["member_count"] == 2
    assert {
        m["name"] for m in api.get(f"/api/v1/case-groups/{group['id']}/cases?q=jum").get_json()["results"]
    } == {"Juma"}
    r = api.post(
        "/api/v1/broadcasts", json={"name": "x", "recipients": {"case_groups": [group["id"]]}, "text": "Hi"}
    )
    assert r.status_code == 201, r.get_json()
    run_jobs()
    assert sorted(m["phone"] for m in rows(project, broadcast_id=r.get_json()["id"])) == [
        "+254712000601",
        "+254712000602",
    ]


def test_nothing_is_added_to_or_removed_from_a_dynamic_group_by_hand(project):
    api = project.api()
    [pk] = make_cases(project, [{"case_type": "mother", "properties": {"risk": "high"}}])
    with project.scope():
        case_id = db.session.get(Case, pk).case_id
    group = _dynamic(api)
    added = api.post(f"/api/v1/case-groups/{group['id']}/cases", json={"identifier": case_id})
    assert added.status_code == 400 and added.get_json()["error"]["code"] == "dynamic_group"
    removed = api.delete(f"/api/v1/case-groups/{group['id']}/cases/{case_id}")
    assert removed.status_code == 400 and removed.get_json()["error"]["code"] == "dynamic_group"
    bad = api.post(
        "/api/v1/case-groups",
        json={
            "name": "Bad",
            "filter": {"case_type": "mother", "criteria": [{"property": "risk", "op": "near"}]},
        },
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["details"]["field"] == "filter.criteria.0.op"
    assert [g["name"] for g in api.get("/api/v1/case-groups").get_json()["results"]] == ["High risk"]


def test_the_case_list_saves_its_rows_as_a_dynamic_group(project, web):
    make_cases(project, [{"case_type": "mother", "name": "Amina", "properties": {"risk": "high"}}])
    args = "case_type=mother&criteria-0-property=risk&criteria-0-op=eq&criteria-0-value=high"
    page = web.get(f"/cases?{args}").get_data(as_text=True)
    assert 'id="save-dynamic-group"' in page
    r = web.post(
        "/case-groups/dynamic",
        {
            "name": "High risk",
            "case_type": "mother",
            "criteria-0-property": "risk",
            "criteria-0-op": "eq",
            "criteria-0-value": "high",
        },
    )
    assert r.status_code == 302
    group_page = web.get(r.headers["Location"]).get_data(as_text=True)
    assert "mother cases: risk eq high" in group_page and "Amina" in group_page
    assert 'id="add-case"' not in group_page and 'id="upload-cases"' not in group_page
    assert "High risk (1)" in web.get("/broadcasts/new").get_data(as_text=True)
