"""Forms from the API and from the bulk case upload reach data forwarding."""

from sqlalchemy import select


def _setup(api):
    app_id = api.post("/api/v1/applications", json={"name": "CHW"}).get_json()["id"]
    user_id = api.post("/api/v1/users", json={"username": "david"}).get_json()["id"]
    forms = api.post("/api/v1/forwarding", json={"url": "http://127.0.0.1:9/forms", "kind": "forms"})
    cases = api.post("/api/v1/forwarding", json={"url": "http://127.0.0.1:9/cases", "kind": "cases"})
    assert forms.status_code == cases.status_code == 201
    return app_id, user_id, forms.get_json()["id"], cases.get_json()["id"]


def _records(project, location_id):
    from messaging.extensions import db
    from messaging.models import ForwardRecord

    with project.scope():
        return [
            r.payload
            for r in db.session.execute(
                select(ForwardRecord)
                .where(ForwardRecord.location_id == location_id)
                .order_by(ForwardRecord.id)
            ).scalars()
        ]


def test_a_form_is_captured_for_forms_and_cases_locations_and_a_sender_is_queued(app, project, api):
    from messaging.jobs import queue

    app_id, user_id, forms_loc, cases_loc = _setup(api)
    body = {
        "form_id": "f-1",
        "app_id": app_id,
        "user_id": user_id,
        "answers": {"q": 1},
        "cases": [
            {
                "case_id": "c-1",
                "create": {"case_type": "mother", "case_name": "Amina"},
                "update": {"edd": "2027-01-01"},
            }
        ],
    }
    assert api.post("/api/v1/forms", json=body).status_code == 201
    assert api.post("/api/v1/forms", json=body).status_code == 200  # resubmission: nothing new
    forms = _records(project, forms_loc)
    cases = _records(project, cases_loc)
    assert [f["form_id"] for f in forms] == ["f-1"] and forms[0]["case_ids"] == ["c-1"]
    assert [c["case_id"] for c in cases] == ["c-1"] and cases[0]["properties"] == {"edd": "2027-01-01"}
    assert any(j.startswith("forward-") for j in queue("default", app).get_job_ids())


def test_a_refused_form_captures_nothing(project, api):
    app_id, _user, forms_loc, cases_loc = _setup(api)
    body = {
        "app_id": app_id,
        "user_id": "nobody",
        "cases": [{"case_id": "c-2", "create": {"case_type": "x"}}],
    }
    assert api.post("/api/v1/forms", json=body).status_code in (400, 422)
    assert _records(project, forms_loc) == [] and _records(project, cases_loc) == []


def test_bulk_case_upload_is_forwarded(project, api, run_jobs):
    import io

    import openpyxl

    _setup(api)
    wb = openpyxl.Workbook()
    wb.active.append(["external_id", "case_type", "name"])
    wb.active.append(["EXT-1", "mother", "Grace"])
    buf = io.BytesIO()
    wb.save(buf)
    response = api.post(
        "/api/v1/cases/imports",
        data={"file": (io.BytesIO(buf.getvalue()), "c.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    from messaging.extensions import db
    from messaging.models import ForwardLocation, ForwardRecord

    assert run_jobs() >= 1  # the import job (and the forwarding senders it queued)
    with project.scope():
        kinds = db.session.execute(
            select(ForwardLocation.kind, ForwardRecord.payload).join(
                ForwardLocation, ForwardLocation.id == ForwardRecord.location_id
            )
        ).all()
    assert any(k == "cases" and p.get("external_id") == "EXT-1" for k, p in kinds)
    assert any(k == "forms" for k, _ in kinds)
