"""Broadcasts end to end: spec, preview, fan-out through a real RQ worker to the fake Twilio server."""

from tests.case_group_helpers import make_case
from tests.integration import sms_fixtures
from tests.integration.sms_fixtures import rows

fake = sms_fixtures.fake
twilio_project = sms_fixtures.twilio_project


def _group(project, name, case_ids):
    api = project.api()
    response = api.post("/api/v1/case-groups", json={"name": name})
    assert response.status_code == 201, response.get_json()
    group_id = response.get_json()["id"]
    for case_id in case_ids:
        r = api.post(f"/api/v1/case-groups/{group_id}/cases", json={"identifier": case_id})
        assert r.status_code in (200, 201), r.get_json()
    return group_id


def test_case_group_broadcast_reaches_fake_twilio(app, twilio_project, fake, run_jobs):
    cases = [make_case(twilio_project, name=f"P{i}", phone=f"+2547120002{i:02d}") for i in range(5)]
    group_id = _group(twilio_project, "Mothers", cases)
    api = twilio_project.api()
    body = {"name": "Clinic day", "recipients": {"case_groups": [group_id]}, "text": "Hi {case.name}"}
    preview = api.post("/api/v1/broadcasts/preview", json=body)
    assert preview.status_code == 200, preview.get_json()
    assert preview.get_json()["will_send"] == 5
    created = api.post("/api/v1/broadcasts", json=body)
    assert created.status_code == 201, created.get_json()
    broadcast_id = created.get_json()["id"]
    run_jobs(scheduled=True)
    assert sorted(m["body"] for m in fake.messages) == sorted(f"Hi P{i}" for i in range(5))
    assert all(r["status"] == "sent" for r in rows(twilio_project, broadcast_id=broadcast_id))
    shown = api.get(f"/api/v1/broadcasts/{broadcast_id}").get_json()
    assert shown["status"] == "sent", shown
