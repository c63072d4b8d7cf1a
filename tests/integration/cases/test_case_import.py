"""Bulk case upload: good and bad rows, matching, refusals, dry run, report, history."""

import io
from datetime import date

import openpyxl
from sqlalchemy import func, select

from messaging.extensions import db
from messaging.models import Case, CaseTransaction, Form


def xlsx(header, rows):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def upload(api, data, filename="cases.xlsx", **form):
    return api.post(
        "/api/v1/cases/imports",
        data={"file": (io.BytesIO(data), filename), **form},
        content_type="multipart/form-data",
    )


def _setup(api):
    app_id = api.post("/api/v1/applications", json={"name": "A"}).get_json()["id"]
    worker = api.post("/api/v1/users", json={"username": "david"}).get_json()["id"]
    group = api.post("/api/v1/groups", json={"name": "Village 1", "case_sharing": True, "members": [worker]})
    return app_id, worker, group.get_json()["id"]


def _rows(api, import_id):
    return {r["row"]: r for r in api.get(f"/api/v1/imports/{import_id}/rows?limit=250").get_json()["results"]}


def test_upload_creates_and_updates_good_rows_and_reports_bad_ones(api, project, run_jobs):
    app_id, worker, group = _setup(api)
    existing = api.post(
        "/api/v1/forms",
        json={
            "app_id": app_id,
            "user_id": worker,
            "cases": [{"case_id": "known-1", "create": {"case_type": "mother", "case_name": "Old"}}],
        },
    )
    assert existing.status_code == 201
    header = [
        "case_id",
        "external_id",
        "case_type",
        "name",
        "phone_number",
        "owner_id",
        "Village",
        "EDD",
        "close",
    ]
    rows = [
        ["", "M-1", "mother", "Monica", "0712 345 678", worker, "Kisumu", date(2025, 3, 1), ""],  # 2 created
        ["known-1", "", "", "New name", 254722000111, "", "Siaya", None, ""],  # 3 updated by case_id
        ["", "M-1", "", "", "", "Village 1", "Homa Bay", None, ""],  # 4 same ext id: updated
        ["", "M-2", "", "No type", "", "", "", None, ""],  # 5 error: no case_type
        ["ghost", "", "mother", "x", "", "", "", None, ""],  # 6 error: unknown case_id
        ["", "M-3", "mother", "Bad phone", "not a phone", "", "", None, ""],  # 7 created, flagged
        ["", "M-4", "mother", "Bad owner", "", "nobody", "", None, ""],  # 8 error: owner
        ["known-1", "", "child", "", "", "", "", None, ""],  # 9 error: type mismatch
        ["", "M-5", "mother", "Closed", "", group, "", None, "yes"],  # 10 created closed
    ]
    r = upload(api, xlsx(header, rows))
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["status"] == "queued" and body["status_url"]
    assert run_jobs() >= 1
    status = api.get(f"/api/v1/imports/{body['id']}").get_json()
    assert status["status"] == "done", status
    assert status["counts"] == {"created": 3, "updated": 2, "error": 4}
    assert status["total"] == status["processed"] == 9
    results = _rows(api, body["id"])
    assert [results[n]["result"] for n in range(2, 11)] == [
        "created",
        "updated",
        "updated",
        "error",
        "error",
        "created",
        "error",
        "error",
        "created",
    ]
    assert "case_type is required" in results[5]["message"]
    assert "ghost" in results[6]["message"]
    assert "nobody" in results[8]["message"]
    assert "type 'mother'" in results[9]["message"]
    assert "not valid" in results[7]["message"]

    m1 = api.get("/api/v1/cases?external_id=M-1").get_json()["results"]
    assert len(m1) == 1
    m1 = m1[0]
    assert m1["case_id"] == results[2]["case_id"] == results[4]["case_id"]
    assert m1["name"] == "Monica" and m1["phone_number"] == "+254712345678"
    assert m1["owner_id"] == group  # row 4 set the owner by group name
    assert m1["properties"] == {"village": "Homa Bay", "edd": "2025-03-01"}
    known = api.get("/api/v1/cases/known-1").get_json()
    assert known["name"] == "New name" and known["phone_number"] == "+254722000111"
    assert known["properties"] == {"village": "Siaya"}
    bad_phone = api.get(f"/api/v1/cases/{results[7]['case_id']}").get_json()
    assert (bad_phone["phone_number"], bad_phone["phone_raw"], bad_phone["phone_invalid"]) == (
        None,
        "not a phone",
        True,
    )
    closed = api.get(f"/api/v1/cases/{results[10]['case_id']}").get_json()
    assert closed["closed"] is True and closed["owner_id"] == group
    # the worker's case list now holds the open cases owned by him or his group
    listed = {c["case_id"] for c in api.get(f"/api/v1/users/{worker}/cases").get_json()["results"]}
    assert m1["case_id"] in listed and closed["case_id"] not in listed

    # history: the upload is one form (per batch) touching each row's case
    with project.scope():
        forms = db.session.execute(select(Form).where(Form.source == "import")).scalars().all()
        assert len(forms) == 1
        assert (
            db.session.execute(
                select(func.count())
                .select_from(CaseTransaction)
                .where(CaseTransaction.form_pk == forms[0].id)
            ).scalar_one()
            == 5
        )
    form = api.get(f"/api/v1/forms/{forms[0].form_id}").get_json()
    assert form["answers"]["import_id"] == body["id"]

    # the report is an .xlsx with one result per row
    report = api.get(f"/api/v1/imports/{body['id']}/report.xlsx")
    assert report.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(report.data)).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 10
    assert values[5][2] == "error"


def test_dry_run_changes_nothing(api, project, run_jobs):
    _setup(api)
    r = upload(
        api, xlsx(["external_id", "case_type", "name"], [["E1", "mother", "A"], ["E1", "", "B"]]), dry_run="1"
    )
    assert r.status_code == 202
    run_jobs()
    status = api.get(f"/api/v1/imports/{r.get_json()['id']}").get_json()
    assert status["counts"] == {"would_create": 1, "would_update": 1}
    with project.scope():
        assert db.session.execute(select(func.count()).select_from(Case)).scalar_one() == 0
        assert db.session.execute(select(func.count()).select_from(Form)).scalar_one() == 0


def test_files_refused_whole(api, project, run_jobs, app):
    # not an .xlsx at all: refused in the request
    r = upload(api, b"name,phone\nA,1\n", filename="cases.csv")
    assert r.status_code in (400, 415) and r.get_json()["error"]["message"]
    # an empty upload
    r = upload(api, b"")
    assert r.status_code == 400
    # no file field
    r = api.post("/api/v1/cases/imports", data={}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["error"]["details"]["field"] == "file"
    # no usable header: the job fails the import whole with a clear message
    r = upload(api, xlsx(["name", "phone_number"], [["A", "0712345678"]]))
    assert r.status_code == 202
    run_jobs()
    status = api.get(f"/api/v1/imports/{r.get_json()['id']}").get_json()
    assert status["status"] == "failed"
    assert status["error"]["code"] == "missing_header"
    assert "case_type" in status["error"]["message"]
    # over the size limit
    app.config["MAX_CONTENT_LENGTH"], before = 2000, app.config["MAX_CONTENT_LENGTH"]
    try:
        r = upload(api, xlsx(["case_type", "name"], [["mother", "x" * 50]] * 400))
        assert r.status_code == 413
    finally:
        app.config["MAX_CONTENT_LENGTH"] = before
    with project.scope():
        assert db.session.execute(select(func.count()).select_from(Case)).scalar_one() == 0


def test_a_row_that_breaks_the_batch_does_not_stop_the_others(api, project, run_jobs, monkeypatch):
    from messaging.cases import bulk_upload as case_import

    real = case_import.apply_row

    def flaky(batch, record):
        if record.get("name") == "boom":
            raise RuntimeError("a bug")
        return real(batch, record)

    monkeypatch.setattr(case_import, "apply_row", flaky)
    r = upload(api, xlsx(["case_type", "name"], [["mother", "a"], ["mother", "boom"], ["mother", "c"]]))
    run_jobs()
    status = api.get(f"/api/v1/imports/{r.get_json()['id']}").get_json()
    assert status["counts"] == {"created": 2, "error": 1}
    with project.scope():
        names = db.session.execute(select(Case.name).order_by(Case.name)).scalars().all()
    assert names == ["a", "c"]


def test_example_file(api):
    r = api.get("/api/v1/cases/imports/example.xlsx")
    assert r.status_code == 200
    header = next(openpyxl.load_workbook(io.BytesIO(r.data)).active.iter_rows(values_only=True))
    assert {"external_id", "case_type", "name", "phone_number", "owner_id"} <= set(header)
