"""The alert pages through the test client: the form (and its refusals), the live preview,
a rule's page, pause, resume, delete, the dry run and the case page's upcoming section."""

from datetime import datetime

from sqlalchemy import func, select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import AlertRule
from tests.conftest import login, make_project

NOW = datetime(2026, 3, 2, 9, 0)


def _form(**overrides):
    form = {
        "name": "ANC visit reminder",
        "active": "on",
        "case_type": "mother",
        "criteria-0-property": "risk",
        "criteria-0-op": "eq",
        "criteria-0-value": "high",
        "when": "date",
        "offset_days": "-2",
        "start_property": "next_visit",
        "start_time": "09:00",
        "recipient": "case",
        "content": "text",
        "text": "Hello {case.name}, your visit is on {case.next_visit}.",
    }
    form.update(overrides)
    return form


def _mother(project, **update):
    api = project.api()
    app_id = api.post("/api/v1/applications", json={"name": "ANC"}).get_json()["id"]
    user = api.post("/api/v1/users", json={"username": "nurse"}).get_json()["id"]
    r = api.post(
        "/api/v1/forms",
        json={
            "app_id": app_id,
            "user_id": user,
            "cases": [
                {
                    "case_id": "mama-1",
                    "create": {"case_type": "mother", "case_name": "Amina"},
                    "update": update,
                }
            ],
        },
    )
    assert r.status_code == 201, r.get_json()
    return "mama-1"


def _rules(app, project):
    with project.scope():
        return db.session.execute(select(func.count()).select_from(AlertRule)).scalar()


def test_a_manager_creates_a_rule_and_the_case_page_shows_its_upcoming_message(app, project, web, run_jobs):
    clock.set_now(NOW)
    case_id = _mother(project, risk="high", next_visit="2026-03-12", phone_number="+254712000001")
    r = web.post("/alerts/new", data=_form())
    assert r.status_code == 302
    rule_page = r.headers["Location"]
    run_jobs()
    page = web.get(rule_page).get_data(as_text=True)
    assert "ANC visit reminder" in page and "-2 days from <code>next_visit</code>, at 09:00" in page
    assert 'id="count-pending"><span class="num">1<' in page
    assert "Amina" in page
    case_page = web.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Upcoming messages" in case_page
    assert "Hello Amina, your visit is on 2026-03-12." in case_page
    assert "2026-03-10T06:00:00Z" in case_page
    assert "ANC visit reminder" in web.get("/alerts").get_data(as_text=True)


def test_a_refused_form_keeps_what_was_typed_names_the_problem_and_saves_nothing(app, project, web):
    r = web.post("/alerts/new", data=_form(start_time="25:00"))
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "start.time: must be a time between 00:00 and 23:59." in page
    assert 'value="ANC visit reminder"' in page
    assert _rules(app, project) == 0


def test_the_live_preview_answers_json_and_a_clear_refusal(app, project, web):
    clock.set_now(NOW)
    _mother(project, risk="high", next_visit="2026-03-12")
    ok = web.post("/alerts/preview", data=_form())
    assert ok.status_code == 200
    assert ok.get_json()["matching"] == 1 and ok.get_json()["next"][0]["due_at"] == "2026-03-10T06:00:00Z"
    bad = web.post("/alerts/preview", data=_form(**{"criteria-0-op": "like"}))
    assert bad.status_code == 400 and bad.get_json()["field"] == "criteria.0.op"
    assert _rules(app, project) == 0


def test_pause_resume_edit_and_delete_from_the_rule_page(app, project, web, run_jobs):
    clock.set_now(NOW)
    _mother(project, risk="high", next_visit="2026-03-12")
    rule_page = web.post("/alerts/new", data=_form()).headers["Location"]
    run_jobs()
    alert_id = rule_page.rsplit("/", 1)[1]
    web.post(f"/alerts/{alert_id}/active", data={"active": "0"})
    page = web.get(rule_page).get_data(as_text=True)
    assert "paused" in page and "The rule was paused" in page
    web.post(f"/alerts/{alert_id}/active", data={"active": "1"})
    run_jobs()
    assert 'id="count-pending"><span class="num">1<' in web.get(rule_page).get_data(as_text=True)
    edit = web.get(f"/alerts/{alert_id}/edit").get_data(as_text=True)
    assert 'value="next_visit"' in edit and 'value="high"' in edit
    assert (
        web.post(f"/alerts/{alert_id}/edit", data=_form(name="Renamed", offset_days="-1")).status_code == 302
    )
    run_jobs()
    assert "Renamed" in web.get(rule_page).get_data(as_text=True)
    assert web.post(f"/alerts/{alert_id}/delete").status_code == 302
    assert web.get(rule_page).status_code == 404


def test_the_dry_run_page(app, project, web, run_jobs):
    clock.set_now(NOW)
    _mother(project, risk="high", next_visit="2026-03-12", phone_number="+254712000001")
    web.post("/alerts/new", data=_form())
    run_jobs()
    page = web.get("/alerts/dry-run?days=14").get_data(as_text=True)
    assert "2026-03-10" in page and "Hello Amina" in page
    assert web.get("/alerts/dry-run?days=500").status_code == 200  # refused days: flashed, 30 shown


def test_viewers_cannot_change_rules_and_other_projects_see_nothing(app, project, web, run_jobs):
    rule_page = web.post("/alerts/new", data=_form()).headers["Location"]
    alert_id = rule_page.rsplit("/", 1)[1]
    other = make_project(app, "gamma")
    stranger = login(app, other.admin_email, other.password)
    assert stranger.get(rule_page).status_code == 404
    assert stranger.post(f"/alerts/{alert_id}/delete").status_code == 404
    with project.scope():
        from messaging.models import WebUser

        viewer = WebUser(email="viewer@alpha.example.org", name="V", role="viewer")
        viewer.set_password("viewer password")
        db.session.add(viewer)
        db.session.commit()
    viewer = login(app, "viewer@alpha.example.org", "viewer password")
    assert viewer.get(rule_page).status_code == 200
    assert viewer.post("/alerts/new", data=_form()).status_code == 403
    assert viewer.post(f"/alerts/{alert_id}/active", data={"active": "0"}).status_code == 403
    assert _rules(app, project) == 1


def test_the_form_sets_a_survey_repeat_until_completed(project, web):
    from tests.factories import make_survey

    survey = make_survey(project)
    form = _form(
        content="survey",
        survey_id=survey,
        repeat_times="2",
        repeat_every_days="3",
        repeat_until_completed="on",
    )
    r = web.post("/alerts/new", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)
    rule_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert project.api().get(f"/api/v1/alerts/{rule_id}").get_json()["repeat"] == {
        "every_days": 3,
        "times": 2,
        "until_completed": True,
    }
    assert 'name="repeat_until_completed" checked' in web.get(f"/alerts/{rule_id}/edit").get_data(
        as_text=True
    )
