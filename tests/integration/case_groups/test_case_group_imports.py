"""Adding cases to a group from Excel: the job, per-row results, dry run, refusals."""

import io
import time
import zipfile

import openpyxl
import pytest
from sqlalchemy import func, select

from messaging.extensions import db
from messaging.imports import runner as imports
from messaging.models import CaseGroupMember, Import
from tests.factories import make_case, read_xlsx, xlsx
from tests.unit.lib.test_xlsx import add_cached_values


def _group(api, name="Control group"):
    return api.post("/api/v1/case-groups", json={"name": name}).get_json()["id"]


def _upload(api, group_id, data, filename="cases.xlsx", dry_run=None):
    form = {"file": (io.BytesIO(data), filename)}
    if dry_run is not None:
        form["dry_run"] = dry_run
    return api.post(f"/api/v1/case-groups/{group_id}/imports", data=form, content_type="multipart/form-data")


def _start(api, group_id, data, **kw):
    response = _upload(api, group_id, data, **kw)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "queued" and body["status_url"].endswith(f"/api/v1/imports/{body['id']}")
    return body["id"]


def _status(api, import_id):
    return api.get(f"/api/v1/imports/{import_id}").get_json()


def _rows(api, import_id):
    rows, url = [], f"/api/v1/imports/{import_id}/rows?limit=250"
    while url:
        page = api.get(url.replace("http://localhost", "")).get_json()
        rows += page["results"]
        url = page["next"]
    return rows


def _members(project):
    with project.scope():
        return db.session.execute(select(func.count()).select_from(CaseGroupMember)).scalar_one()


@pytest.fixture
def cases(project):
    return {
        "amina": make_case(project, name="Amina", phone="254712345678"),
        "baraka": make_case(project, name="Baraka", external_id="PT-0042"),
        "chausiku": make_case(project, name="Chausiku", phone="254733111222"),
        "closed": make_case(project, name="Closed", phone="254700111222", closed=True),
        "deleted": make_case(project, name="Gone", external_id="PT-GONE", deleted=True),
        "mum": make_case(project, name="Mum", phone="254722000111"),
        "kid": make_case(project, name="Kid", phone="254722000111"),
        "member": make_case(project, name="Member", external_id="PT-IN"),
    }


SHEET = [
    [254712345678, "numeric cell (int)"],  # row 2: added (amina)
    ["PT-0042", "external ID"],  # 3: added (baraka)
    ["  +254 733 111 222  ", "spaces trimmed"],  # 4: added (chausiku)
    ["254700999999", "nobody"],  # 5: not_found
    ["0722 000 111", "family phone"],  # 6: ambiguous
    ["254700111222", "closed"],  # 7: closed
    ["PT-GONE", "deleted"],  # 8: deleted
    ["PT-IN", "already a member"],  # 9: already_member
    ["+254712345678", "same case as row 2"],  # 10: duplicate_in_file
    ["PT-0042", "same text as row 3"],  # 11: duplicate_in_file
    [None, "no identifier"],  # 12: invalid
    [None, None],  # 13: blank row, skipped
    ["254700999999", "repeats row 5"],  # 14: duplicate_in_file
    ["2.54733111222E+11", "Excel scientific, same as row 4"],  # 15: duplicate_in_file
]
EXPECTED = {
    2: "added",
    3: "added",
    4: "added",
    5: "not_found",
    6: "ambiguous",
    7: "closed",
    8: "deleted",
    9: "already_member",
    10: "duplicate_in_file",
    11: "duplicate_in_file",
    12: "invalid",
    14: "duplicate_in_file",
    15: "duplicate_in_file",
}


def _with_member(api, project, cases):
    group_id = _group(api)
    assert (
        api.post(f"/api/v1/case-groups/{group_id}/cases", json={"case_id": cases["member"]}).status_code
        == 201
    )
    return group_id


@pytest.mark.parametrize("batch_size", [500, 2])
def test_upload_adds_cases_with_a_result_per_row(api, project, cases, run_jobs, monkeypatch, batch_size):
    monkeypatch.setattr(imports, "BATCH_SIZE", batch_size)  # 2: duplicates across batches
    group_id = _with_member(api, project, cases)
    import_id = _start(api, group_id, xlsx(SHEET, header=("case_identifier", "note")))
    assert run_jobs() == 1
    status = _status(api, import_id)
    assert status["status"] == "done" and status["percent"] == 100
    assert status["total"] == 13 and status["processed"] == 13
    assert status["counts"] == {
        "added": 3,
        "not_found": 1,
        "ambiguous": 1,
        "closed": 1,
        "deleted": 1,
        "already_member": 1,
        "duplicate_in_file": 4,
        "invalid": 1,
    }
    rows = _rows(api, import_id)
    assert {r["row"]: r["result"] for r in rows} == EXPECTED
    by_row = {r["row"]: r for r in rows}
    assert by_row[2]["identifier"] == "254712345678" and by_row[2]["case_id"] == cases["amina"]
    assert by_row[4]["identifier"] == "+254 733 111 222"
    assert "row 2" in by_row[10]["message"] and by_row[10]["case_id"] == cases["amina"]
    assert "row 3" in by_row[11]["message"]
    assert "row 5" in by_row[14]["message"] and "row 4" in by_row[15]["message"]
    assert cases["mum"] in by_row[6]["message"] and cases["kid"] in by_row[6]["message"]
    assert by_row[7]["case_id"] == cases["closed"] and "closed" in by_row[7]["message"]

    members = api.get(f"/api/v1/case-groups/{group_id}/cases").get_json()["results"]
    assert {m["case_id"] for m in members} == {cases[k] for k in ("amina", "baraka", "chausiku", "member")}

    report = api.get(status["report_url"].replace("http://localhost", ""))
    assert report.status_code == 200
    sheet = read_xlsx(report.data)
    assert sheet[0] == ["row", "identifier", "result", "case_id", "message"]
    assert [r[2] for r in sheet[1:]] == [EXPECTED[n] for n in sorted(EXPECTED)]
    assert sheet[1][:4] == [2, "254712345678", "added", cases["amina"]]


class _WorkerDied(BaseException):
    """Stands for the worker being killed: not an Exception, so nothing catches it."""


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_resumed_import_still_reports_repeats_of_rows_from_before_the_crash(
    app, api, project, cases, monkeypatch, dry_run
):
    from messaging.lib import clock

    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    group_id = _with_member(api, project, cases)
    import_id = _start(api, group_id, xlsx(SHEET, header=("case_identifier", "note")), dry_run=str(dry_run))
    record, recorded = imports.record_outcomes, []

    def dies_after_four_batches(import_id, outcomes):
        if len(recorded) == 4:  # rows 2-9 are recorded; 10-15 repeat some of them
            raise _WorkerDied
        recorded.append(outcomes)
        return record(import_id, outcomes)

    monkeypatch.setattr(imports, "record_outcomes", dies_after_four_batches)
    clock.set_now(clock.now())
    with app.app_context(), pytest.raises(_WorkerDied):
        imports.run_import(import_id)
    monkeypatch.setattr(imports, "record_outcomes", record)
    assert _status(api, import_id)["processed"] == 8
    clock.advance(minutes=11)  # the sweep's STALE_AFTER: the next run takes it over
    with app.app_context():
        imports.run_import(import_id)
    status = _status(api, import_id)
    assert status["status"] == "done" and status["processed"] == 13
    expected = {n: ("would_add" if dry_run and r == "added" else r) for n, r in EXPECTED.items()}
    by_row = {r["row"]: r for r in _rows(api, import_id)}
    assert {n: r["result"] for n, r in by_row.items()} == expected
    assert "row 2" in by_row[10]["message"] and "row 5" in by_row[14]["message"]
    assert "row 4" in by_row[15]["message"]
    assert _members(project) == (1 if dry_run else 4)
    # The report holds the rows of both runs, in order.
    sheet = read_xlsx(api.get(status["report_url"].replace("http://localhost", "")).data)
    assert [(r[0], r[2]) for r in sheet[1:]] == sorted(expected.items())


@pytest.mark.parametrize("batch_size", [500, 3])
def test_a_batch_whose_insert_fails_is_applied_again_row_by_row(
    api, project, cases, run_jobs, monkeypatch, batch_size
):
    """The batch's plan has already noted its rows as seen: applying it again row by row
    must give each row the result it would have had, never 'repeated in the file'."""
    from messaging.case_groups import adding
    from messaging.models import Case

    monkeypatch.setattr(imports, "BATCH_SIZE", batch_size)
    group_id = _with_member(api, project, cases)
    with project.scope():
        chausiku_pk = db.session.execute(
            select(Case.id).where(Case.case_id == cases["chausiku"])
        ).scalar_one()
    insert = adding.insert_members

    def fails_for_chausiku(group_id, pks, user_id):
        if chausiku_pk in pks:
            raise RuntimeError("the database refused this insert")
        return insert(group_id, pks, user_id)

    monkeypatch.setattr(adding, "insert_members", fails_for_chausiku)
    import_id = _start(api, group_id, xlsx(SHEET, header=("case_identifier", "note")))
    run_jobs()
    status = _status(api, import_id)
    assert status["status"] == "done" and status["processed"] == 13
    by_row = {r["row"]: r for r in _rows(api, import_id)}
    assert {n: r["result"] for n, r in by_row.items()} == {**EXPECTED, 4: "error"}
    assert by_row[4]["message"] == "This row could not be processed."
    assert "row 4" in by_row[15]["message"]  # still the same case as row 4
    members = api.get(f"/api/v1/case-groups/{group_id}/cases").get_json()["results"]
    assert {m["case_id"] for m in members} == {cases[k] for k in ("amina", "baraka", "member")}


def test_on_postgresql_batches_are_written_beside_the_reading_in_order(app, api, project, cases, monkeypatch):
    """PostgreSQL: a writer thread applies and records each batch while the job's thread
    plans the next one; SQLite: the job's thread does both. Either way, in row order."""
    import threading

    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    group_id = _with_member(api, project, cases)
    import_id = _start(api, group_id, xlsx(SHEET, header=("case_identifier", "note")))
    record, recorded = imports.record_outcomes, []

    def noting_the_thread(import_id, outcomes):
        recorded.append((threading.current_thread().name, outcomes[0].row_number))
        return record(import_id, outcomes)

    monkeypatch.setattr(imports, "record_outcomes", noting_the_thread)
    with app.app_context():
        imports.run_import(import_id)
        postgres = db.engine.dialect.name == "postgresql"
    assert [row for _, row in recorded] == [2, 4, 6, 8, 10, 12, 15]
    threads = {name for name, _ in recorded}
    if postgres:
        assert threads == {f"import-writer-{import_id}"}
    else:
        assert threads == {threading.current_thread().name}
    assert {r["row"]: r["result"] for r in _rows(api, import_id)} == EXPECTED


def test_an_error_in_the_writer_stops_the_job_and_a_rerun_resumes(app, api, project, cases, monkeypatch):
    from messaging.lib import clock

    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    group_id = _with_member(api, project, cases)
    import_id = _start(api, group_id, xlsx(SHEET, header=("case_identifier", "note")))
    record, calls = imports.record_outcomes, []

    def database_gone_at_the_third_batch(import_id, outcomes):
        calls.append(outcomes[0].row_number)
        if len(calls) == 3:
            raise ConnectionError("server closed the connection unexpectedly")
        return record(import_id, outcomes)

    monkeypatch.setattr(imports, "record_outcomes", database_gone_at_the_third_batch)
    clock.set_now(clock.now())
    with app.app_context(), pytest.raises(ConnectionError):
        imports.run_import(import_id)
    assert calls == [2, 4, 6]  # nothing recorded after the failed batch
    status = _status(api, import_id)
    assert status["status"] == "running" and status["processed"] == 4
    monkeypatch.setattr(imports, "record_outcomes", record)
    clock.advance(minutes=11)
    with app.app_context():
        imports.run_import(import_id)
    assert _status(api, import_id)["status"] == "done"
    assert {r["row"]: r["result"] for r in _rows(api, import_id)} == EXPECTED
    assert _members(project) == 4


def test_dry_run_reports_the_same_and_changes_nothing(api, project, cases, run_jobs):
    group_id = _with_member(api, project, cases)
    data = xlsx(SHEET, header=("case_identifier", "note"))
    dry_id = _start(api, group_id, data, dry_run="true")
    run_jobs()
    dry = _status(api, dry_id)
    assert dry["dry_run"] is True and dry["status"] == "done"
    assert dry["counts"]["would_add"] == 3 and "added" not in dry["counts"]
    assert _members(project) == 1  # only the member added before
    real_id = _start(api, group_id, data)
    run_jobs()
    dry_rows = {r["row"]: r["result"] for r in _rows(api, dry_id)}
    real_rows = {r["row"]: r["result"] for r in _rows(api, real_id)}
    assert {n: ("added" if r == "would_add" else r) for n, r in dry_rows.items()} == real_rows
    assert _members(project) == 4


def test_numbers_stored_as_numeric_cells_and_formulas(api, project, run_jobs, tmp_path):
    a = make_case(project, name="A", phone="254712345678")
    b = make_case(project, name="B", phone="256772123456")
    c = make_case(project, name="C", phone="254733111222")
    d = make_case(project, name="D", external_id="12345")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Case_Identifier "])  # header spelling is forgiven
    sheet.append([254712345678.0])  # a float cell
    sheet.append([256772123456])  # an int cell
    sheet["A4"] = '="2547"&"33111222"'  # a formula: its cached value is used
    sheet.append([12345])  # a numeric external ID
    path = tmp_path / "numbers.xlsx"
    workbook.save(path)
    add_cached_values(path, {"A4": ("str", "254733111222")})
    group_id = _group(api)
    import_id = _start(api, group_id, path.read_bytes())
    run_jobs()
    rows = _rows(api, import_id)
    assert [(r["row"], r["result"], r["case_id"]) for r in rows] == [
        (2, "added", a),
        (3, "added", b),
        (4, "added", c),
        (5, "added", d),
    ]
    assert rows[0]["identifier"] == "254712345678"


@pytest.mark.parametrize(
    ("data", "status", "code", "words"),
    [
        (b"case_identifier,name\n254712345678,Amina\n", 415, "not_xlsx", "CSV"),
        (b"%PDF-1.7\n1 0 obj\n", 415, "not_xlsx", "PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, 415, "not_xlsx", ".xls"),
        (b"", 400, "empty_file", "empty"),
    ],
)
def test_refused_files_get_a_clear_message_and_change_nothing(api, project, data, status, code, words):
    group_id = _group(api)
    response = _upload(api, group_id, data)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and words in error["message"]
    with project.scope():
        assert db.session.execute(select(func.count()).select_from(Import)).scalar_one() == 0


def test_missing_file_field_and_bad_dry_run_flag(api):
    group_id = _group(api)
    response = api.post(
        f"/api/v1/case-groups/{group_id}/imports", data={}, content_type="multipart/form-data"
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "file_required"
    assert _upload(api, group_id, xlsx(["x"]), dry_run="maybe").status_code == 400


def test_file_over_the_size_limit_is_413(app, api, project):
    group_id = _group(api)
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 4000
    try:
        response = _upload(api, group_id, xlsx([f"PT-{i:06d}" for i in range(2000)]))
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"
    with project.scope():
        assert db.session.execute(select(func.count()).select_from(Import)).scalar_one() == 0


def test_a_zip_bomb_is_refused_at_upload(api):
    buffer = io.BytesIO()
    # compresslevel 9 keeps it under 500 KB (werkzeug's test client spools bigger bodies to a file)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            for _ in range(200):
                member.write(bytes(1024 * 1024))
    assert len(buffer.getvalue()) < 500 * 1024
    response = _upload(api, _group(api), buffer.getvalue())
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "zip_bomb" and "unpacks to far more data" in error["message"]


def test_a_zip_bomb_that_lies_about_its_size_fails_the_job_before_any_change(api, project, run_jobs):
    make_case(project, phone="254712345678")
    real = b"<row/>" * (2 * 1024 * 1024)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", real)
    data = bytearray(buffer.getvalue())
    name = b"xl/worksheets/sheet1.xml"
    for signature, size_offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (at := data.find(signature, start)) != -1:
            if data[at + name_offset : at + name_offset + len(name)] == name:
                data[at + size_offset : at + size_offset + 4] = (1000).to_bytes(4, "little")
            start = at + 4
    group_id = _group(api)
    import_id = _start(api, group_id, bytes(data))
    run_jobs()
    status = _status(api, import_id)
    assert status["status"] == "failed" and status["error"]["code"] == "zip_bomb"
    assert _members(project) == 0


def test_missing_header_names_the_headers_found(api, project, run_jobs):
    make_case(project, phone="254712345678")
    group_id = _group(api)
    import_id = _start(api, group_id, xlsx([["254712345678", "Amina"]], header=("phone", "name")))
    run_jobs()
    status = _status(api, import_id)
    assert status["status"] == "failed" and status["error"]["code"] == "missing_header"
    assert (
        "'case_identifier'" in status["error"]["message"]
        and "Found: phone, name" in status["error"]["message"]
    )
    assert _members(project) == 0 and _rows(api, import_id) == []


@pytest.mark.parametrize("header", [None, ("case_identifier",)])
def test_an_empty_sheet_is_refused(api, run_jobs, header):
    group_id = _group(api)
    import_id = _start(api, group_id, xlsx([], header=header))
    run_jobs()
    status = _status(api, import_id)
    assert status["status"] == "failed" and status["error"]["code"] == "empty_sheet"


def test_more_rows_than_the_limit_is_refused_before_any_change(app, api, project, run_jobs):
    make_case(project, phone="254712345678")
    group_id = _group(api)
    app.config["IMPORT_MAX_ROWS"], old = 3, app.config["IMPORT_MAX_ROWS"]
    try:
        import_id = _start(api, group_id, xlsx(["254712345678", "a", "b", "c"]))
        run_jobs()
    finally:
        app.config["IMPORT_MAX_ROWS"] = old
    status = _status(api, import_id)
    assert status["status"] == "failed" and status["error"]["code"] == "too_many_rows"
    assert "more than the limit of 3" in status["error"]["message"]
    assert _members(project) == 0


def test_a_group_deleted_during_the_import_gives_error_rows(api, project, run_jobs):
    make_case(project, phone="254712345678")
    group_id = _group(api)
    import_id = _start(api, group_id, xlsx(["254712345678"]))
    assert api.delete(f"/api/v1/case-groups/{group_id}").status_code == 204
    run_jobs()
    status = _status(api, import_id)
    assert status["status"] == "done" and status["counts"] == {"error": 1}
    assert "deleted" in _rows(api, import_id)[0]["message"]


def test_imports_are_404_for_another_projects_group(api, other_project):
    theirs = _group(other_project.api(), "Theirs")
    assert _upload(api, theirs, xlsx(["x"])).status_code == 404


def test_the_job_runs_in_a_real_worker_process(api, project, worker_process):
    case_id = make_case(project, phone="254712345678")
    group_id = _group(api)
    import_id = _start(api, group_id, xlsx(["0712 345 678"]))
    deadline = time.time() + 30
    while time.time() < deadline and _status(api, import_id)["status"] != "done":
        time.sleep(0.2)
    status = _status(api, import_id)
    assert status["status"] == "done", worker_process.log_path.read_text()[-2000:]
    assert status["counts"] == {"added": 1}
    members = api.get(f"/api/v1/case-groups/{group_id}/cases").get_json()["results"]
    assert [m["case_id"] for m in members] == [case_id]
