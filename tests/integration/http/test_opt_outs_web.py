"""The Opt-outs page: list and search, staff opt-out and undo with a reason, import, export, history."""

import io
import re
from datetime import datetime

import pytest
from sqlalchemy import select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import ConsentEvent, WebUser
from messaging.sms import optouts
from tests.conftest import login
from tests.factories import read_xlsx, xlsx
from tests.integration.inbound.inbound_helpers import text_in

PHONE = "+254712000901"


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(datetime(2026, 3, 2, 9, 0, 0))


def events(project):
    with project.scope():
        return db.session.execute(select(ConsentEvent).order_by(ConsentEvent.id)).scalars().all()


def opted_out(project, phone):
    with project.scope():
        return optouts.is_opted_out(project.id, phone)


def admin_id(project):
    with project.scope():
        return db.session.execute(select(WebUser.id).where(WebUser.email == project.admin_email)).scalar_one()


def page(web, path="/opt-outs", **kw):
    response = web.get(path, **kw)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_page_is_in_the_navigation_and_lists_how_each_number_opted_out(project, web, run_jobs, api):
    stop_id, _ = text_in(project, PHONE, "STOP")
    run_jobs()
    api.post("/api/v1/opt-outs", json={"phone": "+254712000902", "reason": "Asked at the clinic"})
    html = page(web, "/")
    assert 'href="/opt-outs"' in html
    html = page(web)
    assert 'data-phone="+254712000901"' in html and 'data-phone="+254712000902"' in html
    assert "Asked at the clinic" in html and f"<td>{stop_id}</td>" in html and "<td>STOP</td>" in html


def test_the_page_needs_a_login(app, project):
    response = app.test_client().get("/opt-outs")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_search_finds_a_number_however_spelled_and_refuses_words(web, api):
    api.post("/api/v1/opt-outs", json={"phone": PHONE})
    api.post("/api/v1/opt-outs", json={"phone": "+254712000902"})
    html = page(web, query_string={"phone": "0712 000 902"})
    assert 'data-phone="+254712000902"' in html and 'data-phone="+254712000901"' not in html
    html = page(web, query_string={"phone": "hello"})
    assert "search by digits" in html


def test_staff_opt_out_records_the_reason_and_the_user(project, web):
    response = web.post("/opt-outs", data={"phone": "0712 000 901", "reason": "Asked by phone"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/opt-outs")
    assert opted_out(project, PHONE)
    [event] = events(project)
    assert (event.change, event.method, event.reason) == ("opt_out", "staff", "Asked by phone")
    assert event.web_user_id == admin_id(project)
    assert f"{PHONE} is opted out." in page(web)


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"phone": PHONE, "reason": "  "}, "say why"),
        ({"phone": "not a phone", "reason": "Asked"}, "must be a phone number"),
    ],
)
def test_staff_opt_out_without_a_reason_or_a_number_is_refused_and_changes_nothing(project, web, form, says):
    response = web.post("/opt-outs", data=form, follow_redirects=True)
    assert says in response.get_data(as_text=True)
    assert not opted_out(project, PHONE) and events(project) == []


def test_undo_needs_a_reason_and_records_it(project, web, api):
    api.post("/api/v1/opt-outs", json={"phone": PHONE})
    html = web.post("/opt-outs/undo", data={"phone": PHONE, "reason": ""}, follow_redirects=True).get_data(
        as_text=True
    )
    assert "say why" in html and opted_out(project, PHONE)
    response = web.post("/opt-outs/undo", data={"phone": PHONE, "reason": "Called in, STOP was a mistake"})
    assert response.status_code == 302 and not opted_out(project, PHONE)
    undo = events(project)[-1]
    assert (undo.change, undo.method, undo.reason) == ("opt_in", "staff", "Called in, STOP was a mistake")
    assert undo.web_user_id == admin_id(project)


def test_undo_of_another_projects_number_is_refused_and_changes_nothing_there(web, other_project):
    other_project.api().post("/api/v1/opt-outs", json={"phone": PHONE})
    response = web.post("/opt-outs/undo", data={"phone": PHONE, "reason": "not ours"}, follow_redirects=True)
    assert "has not opted out" in response.get_data(as_text=True)
    assert opted_out(other_project, PHONE)
    assert 'data-phone="+254712000901"' not in page(web)


def test_each_row_has_an_undo_form_asking_for_a_reason_and_the_page_has_no_inline_script(web, api):
    api.post("/api/v1/opt-outs", json={"phone": PHONE})
    html = page(web)
    undo = re.search(r'<form method="post" action="/opt-outs/undo".*?</form>', html, re.S).group(0)
    assert f'name="phone" value="{PHONE}"' in undo and re.search(r'name="reason" required', undo)
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


def test_a_viewer_sees_the_list_but_cannot_change_it(app, project, api):
    api.post("/api/v1/opt-outs", json={"phone": PHONE})
    with app.app_context():
        viewer = WebUser(project_id=project.id, email="viewer@alpha.org", role="viewer")
        viewer.set_password("a long enough password")
        db.session.add(viewer)
        db.session.commit()
        db.session.remove()
    web = login(app, "viewer@alpha.org", "a long enough password")
    html = page(web)
    assert 'data-phone="+254712000901"' in html and "/opt-outs/undo" not in html
    assert web.post("/opt-outs/undo", data={"phone": PHONE, "reason": "x"}).status_code == 403
    assert web.post("/opt-outs", data={"phone": "+254712000902", "reason": "x"}).status_code == 403
    assert opted_out(project, PHONE)


def test_import_from_the_page_shows_its_progress_and_reports_bad_rows(project, web, run_jobs):
    data = xlsx([[PHONE], ["0712000902"], ["nonsense"]], header=("phone_number",))
    response = web.post("/opt-outs/imports", data={"file": (io.BytesIO(data), "list.xlsx")})
    assert response.status_code == 302 and "/imports/" in response.headers["Location"]
    run_jobs()
    html = page(web, response.headers["Location"])
    assert "Import opted-out numbers" in html and 'href="/opt-outs"' in html
    assert "Not a phone number" in html and "nonsense" in html
    assert opted_out(project, PHONE) and opted_out(project, "+254712000902")
    assert {e.method for e in events(project)} == {"import"}


def test_an_upload_without_a_file_goes_back_saying_so(web):
    response = web.post("/opt-outs/imports", data={}, follow_redirects=True)
    assert "Choose an .xlsx file" in response.get_data(as_text=True)


def test_the_export_and_the_example_download_as_xlsx(web, api):
    api.post("/api/v1/opt-outs", json={"phone": PHONE, "reason": "asked"})
    sheet = read_xlsx(web.get("/opt-outs/export.xlsx").data)
    assert sheet[0][:3] == ["phone", "opted_out_at", "method"]
    assert sheet[1][0] == PHONE and sheet[1][2] == "api" and sheet[1][5] == "asked"
    assert read_xlsx(web.get("/opt-outs/example.xlsx").data)[0] == ["phone_number"]


def test_the_history_page_shows_every_change_oldest_first(project, web, run_jobs):
    stop_id, _ = text_in(project, PHONE, "STOP")
    run_jobs()
    web.post("/opt-outs/undo", data={"phone": PHONE, "reason": "Called in"})
    html = page(web, "/opt-outs/history", query_string={"phone": PHONE})
    assert "not opted out" in html
    table = html[html.index('id="consent-events"') :]
    assert table.index("opt_out") < table.index("opt_in") < table.index("Called in")
    assert f"<td>{stop_id}</td>" in table and project.admin_email in table


def test_the_history_of_another_projects_number_shows_nothing(web, other_project):
    other_project.api().post("/api/v1/opt-outs", json={"phone": PHONE, "reason": "theirs"})
    html = page(web, "/opt-outs/history", query_string={"phone": PHONE})
    assert "No consent change is recorded" in html and "theirs" not in html


def test_the_history_of_a_bad_number_goes_back_to_the_list(web):
    response = web.get("/opt-outs/history", query_string={"phone": "abc"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/opt-outs")
