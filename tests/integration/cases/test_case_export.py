"""Cases to .xlsx and back: the export has the bulk upload's columns, and uploading it again
changes no case."""

import io
import json

from tests.factories import read_xlsx


def _cases(api):
    app_id = api.post("/api/v1/applications", json={"name": "ANC"}).get_json()["id"]
    worker = api.post("/api/v1/users", json={"username": "nurse"}).get_json()["id"]
    blocks = [
        {
            "case_id": "mama-1",
            "create": {"case_type": "mother", "case_name": "Amina", "owner_id": worker},
            "update": {
                "phone_number": "+254712000701",
                "risk": "high",
                "edd": "2027-01-05",
                "village": "Siaya",
            },
        },
        {
            "case_id": "mama-2",
            "create": {"case_type": "mother", "case_name": "Zawadi", "owner_id": worker},
            "update": {"phone_number": "0712 000", "risk": "low", "parity": "2"},  # an invalid number
        },
        {
            "case_id": "child-1",
            "create": {"case_type": "child", "case_name": "Baby"},
            "update": {"weight": "3.2"},
        },
    ]
    r = api.post("/api/v1/forms", json={"app_id": app_id, "user_id": worker, "cases": blocks})
    assert r.status_code == 201, r.get_json()
    r = api.post(
        "/api/v1/forms",
        json={"app_id": app_id, "user_id": worker, "cases": [{"case_id": "child-1", "close": True}]},
    )
    assert r.status_code == 201, r.get_json()
    return worker


def _snapshot(api):
    keep = ("case_id", "case_type", "name", "external_id", "owner_id", "closed", "properties", "phone_number")
    return {
        c["case_id"]: {k: c.get(k) for k in keep}
        for c in api.get("/api/v1/cases?limit=250&closed=false").get_json()["results"]
        + api.get("/api/v1/cases?limit=250&closed=true").get_json()["results"]
    }


def test_the_export_has_the_upload_columns_and_uploading_it_again_changes_nothing(api, project, run_jobs):
    worker = _cases(api)
    before = _snapshot(api)
    r = api.get("/api/v1/cases/export.xlsx")
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith(
        'attachment; filename="cases-'
    )
    rows = read_xlsx(r.data)
    assert rows[0] == [
        "case_id",
        "external_id",
        "case_type",
        "name",
        "phone_number",
        "owner_id",
        "language",
        "close",
        "edd",
        "parity",
        "risk",
        "village",
        "weight",
    ]
    by_id = {row[0]: row for row in rows[1:]}
    assert by_id["mama-1"][:8] == ["mama-1", None, "mother", "Amina", "+254712000701", worker, None, None]
    assert by_id["mama-2"][4] == "0712 000" and by_id["child-1"][7] == "yes"
    assert by_id["mama-1"][8:] == ["2027-01-05", None, "high", "Siaya", None]

    upload = api.post(
        "/api/v1/cases/imports",
        data={"file": (io.BytesIO(r.data), "cases.xlsx")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 202, upload.get_json()
    run_jobs()
    result = api.get(f"/api/v1/imports/{upload.get_json()['id']}").get_json()
    assert result["status"] == "done" and result["counts"] == {"updated": 3}, result
    assert _snapshot(api) == before


def test_the_export_takes_the_lists_filters_and_criteria(api, project):
    _cases(api)
    mothers = read_xlsx(api.get("/api/v1/cases/export.xlsx?case_type=mother").data)
    assert sorted(row[0] for row in mothers[1:]) == ["mama-1", "mama-2"]
    assert mothers[0][8:] == ["edd", "parity", "risk", "village"]  # only their properties
    criteria = json.dumps([{"property": "risk", "op": "eq", "value": "high"}])
    high = read_xlsx(api.get("/api/v1/cases/export.xlsx", query_string={"criteria": criteria}).data)
    assert [row[0] for row in high[1:]] == ["mama-1"]
    bad = api.get(
        "/api/v1/cases/export.xlsx", query_string={"criteria": '[{"property": "risk", "op": "near"}]'}
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["details"]["field"] == "criteria.0.op"
    assert api.get("/api/v1/cases/export.xlsx?criteria=not-json").status_code == 400


def test_a_case_groups_export_has_its_cases_static_or_dynamic(api, project, other_project):
    _cases(api)
    group = api.post("/api/v1/case-groups", json={"name": "Two"}).get_json()["id"]
    for case_id in ("mama-2", "child-1"):
        api.post(f"/api/v1/case-groups/{group}/cases", json={"identifier": case_id})
    dynamic = api.post(
        "/api/v1/case-groups",
        json={
            "name": "High",
            "filter": {
                "case_type": "mother",
                "criteria": [{"property": "risk", "op": "eq", "value": "high"}],
            },
        },
    ).get_json()["id"]
    rows = read_xlsx(api.get(f"/api/v1/case-groups/{group}/export.xlsx").data)
    assert [row[0] for row in rows[1:]] == ["mama-2"]  # a closed case is never added to a group
    rows = read_xlsx(api.get(f"/api/v1/case-groups/{dynamic}/export.xlsx").data)
    assert [row[0] for row in rows[1:]] == ["mama-1"]
    assert other_project.api().get(f"/api/v1/case-groups/{group}/export.xlsx").status_code == 404


def test_the_pages_export_the_listed_cases_and_a_groups_cases(api, project, web):
    _cases(api)
    page = web.get("/cases?case_type=mother").get_data(as_text=True)
    assert 'href="/cases/export.xlsx?case_type=mother&amp;status=open"' in page
    listed = read_xlsx(web.get("/cases/export.xlsx?case_type=mother&status=open").data)
    assert sorted(row[0] for row in listed[1:]) == ["mama-1", "mama-2"]
    high = read_xlsx(
        web.get(
            "/cases/export.xlsx?criteria-0-property=risk&criteria-0-op=eq&criteria-0-value=low&status=all"
        ).data
    )
    assert [row[0] for row in high[1:]] == ["mama-2"]
    group = api.post("/api/v1/case-groups", json={"name": "One"}).get_json()["id"]
    api.post(f"/api/v1/case-groups/{group}/cases", json={"identifier": "mama-1"})
    assert 'id="export-group"' in web.get(f"/case-groups/{group}").get_data(as_text=True)
    rows = read_xlsx(web.get(f"/case-groups/{group}/export.xlsx").data)
    assert [row[0] for row in rows[1:]] == ["mama-1"]
