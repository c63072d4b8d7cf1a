"""Broadcast recipients chosen by a filter (a case type and criteria): chosen at each send,
counted live in the composer, refused with the field named when malformed."""

from datetime import datetime, timedelta

from messaging.lib import clock
from tests.factories import make_cases, rows
from tests.integration.broadcasts.broadcast_helpers import create, show, tick

T0 = datetime(2026, 3, 2, 9, 0)
FILTER = {
    "case_type": "mother",
    "criteria": [
        {"property": "risk", "op": "eq", "value": "high"},
        {"property": "village", "op": "in", "value": ["Village 2", "Village 3"]},
        {"property": "weeks", "op": "gt", "value": 20},
    ],
}


def _mothers(project):
    people = [
        ("+254712000401", "mother", {"risk": "high", "village": "Village 2", "weeks": "24"}),  # yes
        ("+254712000402", "mother", {"risk": " high ", "village": "Village 3", "weeks": 31}),  # yes
        ("+254712000403", "mother", {"risk": "high", "village": "Village 2", "weeks": "12"}),  # too early
        ("+254712000404", "mother", {"risk": "low", "village": "Village 2", "weeks": "30"}),  # low risk
        ("+254712000405", "child", {"risk": "high", "village": "Village 2", "weeks": "30"}),  # a child
        ("+254712000406", "mother", {"risk": "high", "village": "Village 9", "weeks": "30"}),  # elsewhere
    ]
    pks = make_cases(
        project,
        [
            {"case_type": kind, "phone_number": phone, "phone_raw": phone, "properties": props}
            for phone, kind, props in people
        ],
    )
    make_cases(
        project,
        [
            {
                "case_type": "mother",
                "phone_number": "+254712000407",
                "phone_raw": "+254712000407",
                "closed": True,
                "properties": {"risk": "high", "village": "Village 2", "weeks": "30"},
            }
        ],
    )
    return pks


def test_a_filter_reaches_the_open_cases_meeting_every_criterion(twilio_project, fake, run_jobs):
    p = twilio_project
    _mothers(p)
    preview = p.api().post(
        "/api/v1/broadcasts/preview", json={"recipients": {"filter": FILTER}, "text": "Hi"}
    )
    assert preview.status_code == 200 and preview.get_json()["will_send"] == 2
    created = create(p, recipients={"filter": FILTER}, text="Clinic on Friday")
    assert created["recipients"] == {
        "case_groups": [],
        "cases": [],
        "users": [],
        "groups": [],
        "filter": FILTER,
    }
    run_jobs()
    assert sorted(m["to"] for m in fake.messages) == ["+254712000401", "+254712000402"]


def test_the_filter_is_applied_at_each_send_not_when_the_broadcast_is_made(
    app, twilio_project, fake, run_jobs
):
    from messaging.extensions import db
    from messaging.models import Case

    p = twilio_project
    clock.set_now(T0)
    pks = _mothers(p)
    at = T0 + timedelta(hours=1)
    created = create(p, recipients={"filter": FILTER}, text="Clinic", send_at=at.isoformat() + "Z")
    with p.scope():  # after the broadcast was made: one more case matches, one no longer
        db.session.get(Case, pks[2]).properties = {"risk": "high", "village": "Village 2", "weeks": "22"}
        db.session.get(Case, pks[0]).closed = True
        db.session.commit()
    clock.set_now(at)
    assert tick(app) == {"fired": 1}
    run_jobs()
    assert sorted(m["phone"] for m in rows(p, broadcast_id=created["id"])) == [
        "+254712000402",
        "+254712000403",
    ]
    assert show(p, created["id"])["status"] == "sent"


def test_a_property_no_case_has_counts_zero_and_a_malformed_filter_names_its_field(project):
    api = project.api()
    _mothers(project)
    nobody = {
        "case_type": "mother",
        "criteria": [{"property": "favourite_colour", "op": "eq", "value": "red"}],
    }
    r = api.post("/api/v1/broadcasts/preview", json={"recipients": {"filter": nobody}, "text": "x"})
    assert r.status_code == 200 and r.get_json()["recipients"] == 0
    for bad, field in [
        (
            {"case_type": "mother", "criteria": [{"property": "risk", "op": "like", "value": "h"}]},
            "recipients.filter.criteria.0.op",
        ),
        (
            {"case_type": "mother", "criteria": [{"property": "risk", "op": "in", "value": "high"}]},
            "recipients.filter.criteria.0.value",
        ),
        ({"criteria": []}, "recipients.filter.case_type"),
        ({"case_type": "mother", "where": "x"}, "recipients.filter"),
        ("mother", "recipients.filter"),
    ]:
        r = api.post("/api/v1/broadcasts", json={"name": "x", "recipients": {"filter": bad}, "text": "x"})
        assert r.status_code == 400, bad
        assert r.get_json()["error"]["details"]["field"] == field
    assert api.get("/api/v1/broadcasts").get_json()["results"] == []


def test_the_composer_counts_the_filter_live_and_saves_it(project, web):
    _mothers(project)
    form = {
        "filter_case_type": "mother",
        "filter-criteria-0-property": "risk",
        "filter-criteria-0-op": "eq",
        "filter-criteria-0-value": "high",
        "filter-criteria-1-property": "weeks",
        "filter-criteria-1-op": "gt",
        "filter-criteria-1-value": "20",
    }
    counted = web.post("/broadcasts/filter-count", form).get_json()
    assert counted == {"count": 3, "text": "3 open cases match now."}
    bad = web.post("/broadcasts/filter-count", {**form, "filter-criteria-0-op": "like"}).get_json()
    assert bad["field"] == "recipients.filter.criteria.0.op" and "like" in bad["error"]
    assert web.post("/broadcasts/filter-count", {}).get_json() == {"count": None, "text": ""}

    r = web.post(
        "/broadcasts/new",
        {
            **form,
            "name": "High risk",
            "content": "text",
            "text": "Hi",
            "when": "once",
            "send_date": "2030-01-01",
            "send_time": "09:00",
            "action": "save",
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    page = web.get(r.headers["Location"]).get_data(as_text=True)
    assert "Cases matching a filter: mother cases: risk eq high; weeks gt 20" in page
    edit = web.get(r.headers["Location"] + "/edit").get_data(as_text=True)
    assert 'name="filter_case_type" maxlength="100" value="mother"' in edit
    assert 'name="filter-criteria-1-value" value="20"' in edit
