"""The opt-outs and consent API: list and search, staff opt-out and undo, import, export, history."""

import io
from datetime import datetime

import pytest
from sqlalchemy import select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import ConsentEvent, WebUser
from messaging.sms import optouts
from tests.factories import read_xlsx, xlsx
from tests.integration.inbound.inbound_helpers import text_in

PHONE = "+254712000801"


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(datetime(2026, 3, 2, 9, 0, 0))


def all_pages(api, url):
    results = []
    while url:
        page = api.get(url.replace("http://localhost", ""))
        assert page.status_code == 200, page.get_json()
        results += page.get_json()["results"]
        url = page.get_json()["next"]
    return results


def events(project):
    with project.scope():
        return db.session.execute(select(ConsentEvent).order_by(ConsentEvent.id)).scalars().all()


def opted_out(project, phone):
    with project.scope():
        return optouts.is_opted_out(project.id, phone)


def upload(api, data, filename="opt-outs.xlsx", **form):
    return api.post(
        "/api/v1/opt-outs/imports",
        data={"file": (io.BytesIO(data), filename), **form},
        content_type="multipart/form-data",
    )


def error_of(response):
    body = response.get_json()["error"]
    return body["code"], body.get("details", {}).get("field")


# --- list and search ---------------------------------------------------------------


def test_the_list_shows_when_how_and_the_proving_message_newest_first(project, api, run_jobs):
    stop_id, _ = text_in(project, PHONE, "STOP")
    run_jobs()
    clock.advance(seconds=60)
    api.post("/api/v1/opt-outs", json={"phone": "+254712000802", "reason": "Asked by phone"})
    [by_api, by_sms] = all_pages(api, "/api/v1/opt-outs")
    assert by_api["phone"] == "+254712000802" and by_api["method"] == by_api["source"] == "api"
    assert by_api["reason"] == "Asked by phone" and by_api["opted_out_at"] == "2026-03-02T09:01:00Z"
    assert by_sms == {
        "phone": PHONE,
        "opted_out_at": "2026-03-02T09:00:00Z",
        "method": "keyword",
        "source": "keyword",
        "word": "STOP",
        "language": "en",
        "reason": None,
        "message_id": stop_id,
        "web_user_id": None,
        "import_id": None,
    }


def test_search_by_a_number_however_spelled_or_by_digits_and_pages(api):
    for n in range(5):
        api.post("/api/v1/opt-outs", json={"phone": f"+25471200090{n}"})
    api.post("/api/v1/opt-outs", json={"phone": "+256772000900"})
    assert [r["phone"] for r in all_pages(api, "/api/v1/opt-outs?phone=0712 000 903")] == ["+254712000903"]
    found = all_pages(api, "/api/v1/opt-outs?phone=%2B2547&limit=2")
    assert sorted(r["phone"] for r in found) == [f"+25471200090{n}" for n in range(5)]
    assert len(all_pages(api, "/api/v1/opt-outs?phone=000900")) == 2
    assert all_pages(api, "/api/v1/opt-outs?phone=999") == []


def test_a_search_that_is_not_digits_is_400_on_phone(api):
    response = api.get("/api/v1/opt-outs?phone=abc")
    assert response.status_code == 400 and error_of(response) == ("validation_error", "phone")


def test_another_projects_opt_outs_are_not_listed(api, other_project):
    other_project.api().post("/api/v1/opt-outs", json={"phone": PHONE})
    assert all_pages(api, "/api/v1/opt-outs") == []
    assert all_pages(api, f"/api/v1/opt-outs?phone={PHONE.replace('+', '%2B')}") == []


# --- staff opt-out and undo ----------------------------------------------------------


def test_post_reads_a_national_number_in_the_projects_country(project, api):
    response = api.post("/api/v1/opt-outs", json={"phone": "0712 000 801", "reason": "by phone"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["phone"] == PHONE and body["opted_out"] is True and body["reason"] == "by phone"
    assert opted_out(project, PHONE)


@pytest.mark.parametrize("phone", ["123", "call me", "+254 7"])
def test_post_with_a_bad_phone_is_400_naming_the_field_and_changes_nothing(project, api, phone):
    response = api.post("/api/v1/opt-outs", json={"phone": phone})
    assert response.status_code == 400 and error_of(response)[1] == "phone"
    assert events(project) == []


def test_undo_without_a_reason_is_400_naming_reason_and_changes_nothing(project, api):
    api.post("/api/v1/opt-outs", json={"phone": PHONE})
    for body in ({}, {"reason": "  "}, None):
        response = api.delete(f"/api/v1/opt-outs/{PHONE}", **({"json": body} if body is not None else {}))
        assert response.status_code == 400, response.get_json()
        assert error_of(response) == ("reason_required", "reason")
    response = api.delete(f"/api/v1/opt-outs/{PHONE}", json={"reason": 5})
    assert response.status_code == 400 and error_of(response)[1] == "reason"
    assert opted_out(project, PHONE) and len(events(project)) == 1


def test_undo_of_a_number_that_has_not_opted_out_is_404(api):
    response = api.delete(f"/api/v1/opt-outs/{PHONE}", json={"reason": "mistake"})
    assert response.status_code == 404 and error_of(response) == ("not_found", "phone")


def test_undo_of_another_projects_number_is_404_and_it_stays_opted_out_there(api, other_project):
    other_project.api().post("/api/v1/opt-outs", json={"phone": PHONE})
    response = api.delete(f"/api/v1/opt-outs/{PHONE}", json={"reason": "not ours"})
    assert response.status_code == 404
    assert opted_out(other_project, PHONE)


def test_undo_with_a_bad_phone_is_400_on_phone(api):
    response = api.delete("/api/v1/opt-outs/12ab", json={"reason": "x"})
    assert response.status_code == 400 and error_of(response)[1] == "phone"


def test_undo_accepts_the_number_url_encoded(project, api):
    api.post("/api/v1/opt-outs", json={"phone": PHONE})
    response = api.delete("/api/v1/opt-outs/%2B254712000801", json={"reason": "called in"})
    assert response.status_code == 200
    assert not opted_out(project, PHONE)


# --- history ----------------------------------------------------------------------------


def test_history_is_oldest_first_and_pages(project, api, run_jobs):
    stop_id, _ = text_in(project, PHONE, "STOP")
    run_jobs()
    api.delete(f"/api/v1/opt-outs/{PHONE}", json={"reason": "called in"})
    api.post("/api/v1/opt-outs", json={"phone": PHONE, "reason": "asked again"})
    response = api.get(f"/api/v1/consent/{PHONE}?limit=2")
    body = response.get_json()
    assert response.status_code == 200 and body["phone"] == PHONE and body["opted_out"] is True
    history = all_pages(api, f"/api/v1/consent/{PHONE}?limit=2")
    assert [(e["change"], e["method"], e["word"], e["reason"]) for e in history] == [
        ("opt_out", "keyword", "STOP", None),
        ("opt_in", "api", None, "called in"),
        ("opt_out", "api", None, "asked again"),
    ]
    assert history[0]["message_id"] == stop_id


def test_history_of_a_number_this_project_never_recorded_is_404(api, other_project):
    other_project.api().post("/api/v1/opt-outs", json={"phone": PHONE})
    response = api.get(f"/api/v1/consent/{PHONE}")
    assert response.status_code == 404 and error_of(response)[0] == "not_found"
    assert other_project.api().get(f"/api/v1/consent/{PHONE}").status_code == 200


def test_history_of_a_bad_number_is_400_on_phone(api):
    response = api.get("/api/v1/consent/not-a-number")
    assert response.status_code == 400 and error_of(response)[1] == "phone"


# --- import -------------------------------------------------------------------------------


def test_import_opts_out_good_rows_reports_bad_ones_and_counts_the_already_opted_out(project, api, run_jobs):
    api.post("/api/v1/opt-outs", json={"phone": "+254712000803"})
    sheet = [
        ["+254712000801", "new"],  # row 2: opted out
        [254712000802, "a numeric cell"],  # 3: opted out
        ["0712 000 803", "national"],  # 4: already opted out (by the API)
        ["not a number", "bad"],  # 5: invalid
        ["+254 712 000 801", "again"],  # 6: repeats row 2
        [None, "no number"],  # 7: invalid
    ]
    response = upload(api, xlsx(sheet, header=("phone_number", "note")))
    assert response.status_code == 202, response.get_json()
    import_id = response.get_json()["id"]
    run_jobs()
    status = api.get(f"/api/v1/imports/{import_id}").get_json()
    assert status["status"] == "done" and status["kind"] == "opt_out"
    assert status["counts"] == {"opted_out": 2, "already_opted_out": 2, "invalid": 2}
    results = all_pages(api, f"/api/v1/imports/{import_id}/rows")
    assert [(r["row"], r["result"]) for r in results] == [
        (2, "opted_out"),
        (3, "opted_out"),
        (4, "already_opted_out"),
        (5, "invalid"),
        (6, "already_opted_out"),
        (7, "invalid"),
    ]
    assert results[3]["identifier"] == "not a number" and "phone number" in results[3]["message"]
    assert "row 2" in results[4]["message"]
    listed = {r["phone"]: r for r in all_pages(api, "/api/v1/opt-outs")}
    assert set(listed) == {"+254712000801", "+254712000802", "+254712000803"}
    assert listed["+254712000801"]["method"] == "import"
    assert listed["+254712000801"]["import_id"] == import_id
    with project.scope():
        admin = db.session.execute(select(WebUser.id).where(WebUser.email == project.admin_email)).scalar()
    imported = [e for e in events(project) if e.method == "import"]
    assert sorted(e.phone for e in imported) == ["+254712000801", "+254712000802"]
    assert {(e.import_id, e.web_user_id, e.change) for e in imported} == {(import_id, admin, "opt_out")}


def test_an_import_dry_run_changes_nothing(project, api, run_jobs):
    response = upload(api, xlsx([[PHONE], ["bad"]], header=("phone_number",)), dry_run="true")
    import_id = response.get_json()["id"]
    run_jobs()
    assert api.get(f"/api/v1/imports/{import_id}").get_json()["counts"] == {"would_opt_out": 1, "invalid": 1}
    assert not opted_out(project, PHONE) and events(project) == []


def test_an_import_without_the_phone_number_column_fails_and_changes_nothing(project, api, run_jobs):
    import_id = upload(api, xlsx([[PHONE]], header=("number",))).get_json()["id"]
    run_jobs()
    status = api.get(f"/api/v1/imports/{import_id}").get_json()
    assert status["status"] == "failed" and "phone_number" in status["error"]["message"]
    assert events(project) == []


def test_an_import_without_a_file_is_400_on_file(api):
    response = api.post("/api/v1/opt-outs/imports", data={}, content_type="multipart/form-data")
    assert response.status_code == 400 and error_of(response) == ("file_required", "file")


# --- export and the document ----------------------------------------------------------------


def test_export_is_an_xlsx_of_every_opt_out_read_back_with_openpyxl(project, api, run_jobs, other_project):
    stop_id, _ = text_in(project, PHONE, "STOP")
    run_jobs()
    api.post("/api/v1/opt-outs", json={"phone": "+254712000802", "reason": '=HYPERLINK("x")'})
    other_project.api().post("/api/v1/opt-outs", json={"phone": "+256772000900"})
    response = api.get("/api/v1/opt-outs/export.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = read_xlsx(response.data)
    assert sheet == [
        ["phone", "opted_out_at", "method", "word", "language", "reason", "message_id"],
        [PHONE, "2026-03-02T09:00:00Z", "keyword", "STOP", "en", None, stop_id],
        ["+254712000802", "2026-03-02T09:00:00Z", "api", None, None, '=HYPERLINK("x")', None],
    ]


def test_the_openapi_document_lists_the_opt_out_operations(api):
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    assert set(paths["/api/v1/opt-outs"]) == {"get", "post"}
    assert set(paths["/api/v1/opt-outs/{phone}"]) == {"delete"}
    assert "post" in paths["/api/v1/opt-outs/imports"] and "get" in paths["/api/v1/opt-outs/export.xlsx"]
    assert "get" in paths["/api/v1/consent/{phone}"]
