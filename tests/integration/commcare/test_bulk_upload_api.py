"""CommCare's Bulk Case Upload API: .xlsx by case_id and .xls (as OpenFn's submitXls sends) by
external_id, create_new_cases, the lookup within the case type, '---' clearing a property, HQ's
answers and soil status, refusals that change nothing, tenancy."""

import io
from pathlib import Path

from tests.factories import xlsx
from tests.integration.commcare.commcare_helpers import apikey, submit, worker_and_app

XLS = (
    Path(__file__).resolve().parents[2] / "fixtures" / "openfn_output.xls"
)  # made with xlwt: see its rows below


def _upload(project, data: bytes, filename: str, **fields):
    body = {"file": (io.BytesIO(data), filename), **fields}
    return project.api().client.post(
        f"/a/{project.slug}/importer/excel/bulk_upload_api/",
        data=body,
        headers=apikey(project),
        content_type="multipart/form-data",
    )


def _status(project, response, run_jobs):
    answer = response.get_json()
    assert response.status_code == 200 and answer["code"] == 200 and answer["message"] == "success", answer
    assert answer["status_url"].startswith("http://")
    path = answer["status_url"].split("://", 1)[1].split("/", 1)[1]
    queued = project.api().client.get("/" + path, headers=apikey(project)).get_json()
    assert queued["state"] == 0 and queued["result"] is None
    run_jobs()
    return project.api().client.get("/" + path, headers=apikey(project)).get_json()


def test_xls_by_external_id_creates_and_clears_like_commcare(project, run_jobs):
    api = project.api()
    app_id, worker = worker_and_app(api)
    submit(
        api,
        app_id,
        worker,
        [
            {
                "case_id": "z-1",
                "create": {"case_type": "mother", "case_name": "Z"},
                "update": {"external_id": "MOTHER-002", "risk": "low"},
            },
            {
                "case_id": "other-type",
                "create": {"case_type": "child", "case_name": "C"},
                "update": {"external_id": "MOTHER-001"},
            },
        ],
    )
    # rows: external_id, name, village, risk: MOTHER-001 Monica Kisumu high / MOTHER-002 Zawadi Siaya ---
    status = _status(
        project,
        _upload(
            project,
            XLS.read_bytes(),
            "output.xls",
            case_type="mother",
            search_field="external_id",
            create_new_cases="on",
        ),
        run_jobs,
    )
    assert status["state"] == 2 and status["progress"]["percent"] == 100
    assert (
        status["result"]["created_count"],
        status["result"]["match_count"],
        status["result"]["failed_count"],
    ) == (1, 1, 0)
    mothers = {c["external_id"]: c for c in api.get("/api/v1/cases?case_type=mother").get_json()["results"]}
    assert mothers["MOTHER-001"]["name"] == "Monica" and mothers["MOTHER-001"]["properties"] == {
        "village": "Kisumu",
        "risk": "high",
    }
    assert mothers["MOTHER-002"]["case_id"] == "z-1" and mothers["MOTHER-002"]["name"] == "Zawadi"
    assert mothers["MOTHER-002"]["properties"] == {"village": "Siaya"}  # '---' cleared risk
    assert api.get("/api/v1/cases/other-type").get_json()["name"] == "C"  # another type: untouched


def test_xlsx_by_case_id_without_create_skips_the_unknown(project, run_jobs):
    api = project.api()
    app_id, worker = worker_and_app(api)
    submit(api, app_id, worker, [{"case_id": "m-1", "create": {"case_type": "mother", "case_name": "A"}}])
    data = xlsx(
        [["m-1", "Amina", "yes", "Siaya"], ["nobody", "X", "", "Y"]],
        header=("case_id", "full_name", "close", "village"),
    )
    status = _status(
        project, _upload(project, data, "data.xlsx", case_type="mother", name_column="full_name"), run_jobs
    )
    assert (
        status["result"]["created_count"],
        status["result"]["match_count"],
        status["result"]["skipped_count"],
    ) == (0, 1, 1)
    case = api.get("/api/v1/cases/m-1").get_json()
    assert (case["name"], case["closed"], case["properties"]) == ("Amina", True, {"village": "Siaya"})
    assert [c["case_id"] for c in api.get("/api/v1/cases").get_json()["results"]] == ["m-1"]


def test_refused_requests_are_hqs_500_and_change_nothing(project, other_project):
    data = xlsx([["a"]], header=("case_id",))
    cases = {
        "missing case_type": _upload(project, data, "d.xlsx"),
        "bad search_field": _upload(project, data, "d.xlsx", case_type="m", search_field="name"),
        "bad extension": _upload(project, data, "d.csv", case_type="m"),
        "not a workbook": _upload(project, b"a,b\n1,2\n", "d.xlsx", case_type="m"),
    }
    for why, response in cases.items():
        answer = response.get_json()
        assert response.status_code == 500 and answer["code"] == 500 and answer["message"], why
    assert "Both 'file' and 'case_type' are required" in cases["missing case_type"].get_json()["message"]
    assert "Illegal value for search_field" in cases["bad search_field"].get_json()["message"]
    assert project.api().get("/api/v1/cases").get_json()["results"] == []
    other = project.api().client.post(
        f"/a/{other_project.slug}/importer/excel/bulk_upload_api/",
        data={"file": (io.BytesIO(data), "d.xlsx"), "case_type": "m"},
        headers=apikey(project),
        content_type="multipart/form-data",
    )
    assert other.status_code == 404
