"""Forwarding in CommCare's format: what CommCare HQ's JSON repeaters send, so an OpenFn trigger's
JSON-fragment filter ({"form": {"@xmlns": ...}}) matches, with ?app_id= and CommCare's headers;
a native location beside it still gets the native JSON."""

from tests.fakes.http_receiver import Receiver
from tests.integration.commcare.commcare_helpers import submit, worker_and_app

REG = "http://openrosa.org/formdesigner/REG"


def _fragment_matches(fragment, body) -> bool:
    """OpenFn's message filter: every key of the fragment is in the body with a matching value."""
    if isinstance(fragment, dict):
        return isinstance(body, dict) and all(
            k in body and _fragment_matches(v, body[k]) for k, v in fragment.items()
        )
    return fragment == body


def _location(project, url, kind, **body):
    response = project.api().post("/api/v1/forwarding", json={"url": url, "kind": kind, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_forms_and_cases_forwarded_as_commcare_sends_them(project, run_jobs):
    api = project.api()
    app_id, worker = worker_and_app(api)
    with Receiver.start() as rx:
        shown = _location(project, rx.url + "/openfn/inbox", "forms", format="commcare")
        assert shown["format"] == "commcare"
        _location(project, rx.url + "/native", "forms")
        _location(project, rx.url + "/cases", "cases", format="commcare")
        form = submit(
            api,
            app_id,
            worker,
            [
                {
                    "case_id": "m-1",
                    "create": {"case_type": "mother", "case_name": "Amina"},
                    "update": {"risk": "high"},
                }
            ],
            answers={"patient_ID": "P-7"},
            xmlns=REG,
            name="Registration",
        )
        run_jobs()
        by_path = {r["path"].split("?")[0]: r for r in rx.requests}
    commcare = by_path["/openfn/inbox"]
    assert commcare["path"] == f"/openfn/inbox?app_id={app_id}"
    body = commcare["json"]
    assert _fragment_matches({"form": {"@xmlns": REG}}, body)
    assert not _fragment_matches({"form": {"@xmlns": "http://other"}}, body)
    assert (
        body["id"] == form["form_id"]
        and body["form"]["patient_ID"] == "P-7"
        and body["form"]["@name"] == "Registration"
    )
    assert body["form"]["meta"]["userID"] == worker
    assert commcare["headers"]["received-on"] == body["received_on"] and body["received_on"].endswith("Z")
    assert (
        "form" not in by_path["/native"]["json"] and by_path["/native"]["json"]["form_id"] == form["form_id"]
    )
    case = by_path["/cases"]["json"]
    assert set(case) == {
        "domain",
        "case_id",
        "user_id",
        "closed",
        "xform_ids",
        "date_closed",
        "date_modified",
        "server_date_modified",
        "properties",
        "indices",
        "attachments",
    }
    assert case["properties"]["risk"] == "high" and case["properties"]["case_name"] == "Amina"
    assert case["xform_ids"] == [form["form_id"]] and case["domain"] == project.slug
    assert by_path["/cases"]["headers"]["server-modified-on"] == case["server_date_modified"]


def test_a_bad_format_is_refused(project):
    response = project.api().post(
        "/api/v1/forwarding", json={"url": "http://127.0.0.1:9/x", "kind": "forms", "format": "xml"}
    )
    assert response.status_code == 400 and response.get_json()["error"]["details"]["field"] == "format"
    assert project.api().get("/api/v1/forwarding").get_json()["results"] == []


def test_cases_a_bulk_upload_creates_are_forwarded_in_commcare_format(project, run_jobs):
    import io

    from tests.factories import xlsx

    with Receiver.start() as rx:
        _location(project, rx.url + "/cases", "cases", format="commcare")
        data = xlsx([["Amina", "mother", "Siaya"]], header=("name", "case_type", "village"))
        response = project.api().client.post(
            "/api/v1/cases/imports",
            data={"file": (io.BytesIO(data), "cases.xlsx")},
            headers={"Authorization": f"Token {project.key}"},
            content_type="multipart/form-data",
        )
        assert response.status_code == 202, response.get_json()
        run_jobs()
        [request] = rx.requests
    case = request["json"]
    assert case["properties"]["case_name"] == "Amina" and case["properties"]["village"] == "Siaya"
    assert len(case["xform_ids"]) == 1 and case["indices"] == {}
