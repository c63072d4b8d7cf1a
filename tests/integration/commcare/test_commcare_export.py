"""The real commcare-export (PyPI, in its own virtualenv: it pins SQLAlchemy 2.0) against a live
server: forms and cases exported to PostgreSQL, a second run asking only for what changed since
its checkpoint, and page boundaries that fall inside rows one transaction wrote."""

import subprocess
from pathlib import Path

import openpyxl
import psycopg2
import pytest

from tests.conftest import ROOT
from tests.integration.commcare.commcare_helpers import submit, worker_and_app

EXPORT = ROOT / ".venv-cce" / "bin" / "commcare-export"
OUTPUT_DB = "cce_export"
SERVER_PG = "postgresql://postgres@127.0.0.1:5432/"


@pytest.fixture
def output_db():
    """An empty PostgreSQL database for the export to write into."""
    admin = psycopg2.connect(SERVER_PG + "postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {OUTPUT_DB}")
        cur.execute(f"CREATE DATABASE {OUTPUT_DB}")
    admin.close()
    connection = psycopg2.connect(SERVER_PG + OUTPUT_DB)
    connection.autocommit = True
    yield connection
    connection.close()


def _query(path: Path) -> Path:
    book = openpyxl.Workbook()
    cases = book.active
    cases.title = "mothers"
    cases.append(["Data Source", "Filter Name", "Filter Value", "Field", "Source Field"])
    rows = [
        ("id", "id"),
        ("name", "properties.case_name"),
        ("village", "properties.village"),
        ("owner", "properties.owner_id"),
    ]
    for index, (name, source) in enumerate(rows):
        cases.append(
            [
                "case" if index == 0 else None,
                "type" if index == 0 else None,
                "mother" if index == 0 else None,
                name,
                source,
            ]
        )
    forms = book.create_sheet("forms")
    forms.append(["Data Source", "Field", "Source Field"])
    forms.append(["form", "id", "id"])
    forms.append([None, "xmlns", "form.@xmlns"])
    forms.append([None, "form_name", "form.@name"])
    book.save(path)
    return path


def _export(live_server, project, query: Path, tmp_path: Path) -> str:
    """Run the export; returns what this run logged (its requests, with --verbose)."""
    assert EXPORT.exists(), "make install creates .venv-cce with commcare-export"
    log_file = tmp_path / "commcare_export.log"
    logged_before = log_file.stat().st_size if log_file.exists() else 0
    completed = subprocess.run(
        [
            str(EXPORT),
            "--commcare-hq",
            live_server.url,
            "--project",
            project.slug,
            "--username",
            project.admin_email,
            "--password",
            project.key,
            "--auth-mode",
            "apikey",
            "--query",
            str(query),
            "--output-format",
            "sql",
            "--output",
            f"postgresql+psycopg2://postgres@127.0.0.1:5432/{OUTPUT_DB}",
            "--batch-size",
            "10",
            "--log-dir",
            str(tmp_path),
            "--verbose",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    assert "Traceback" not in output and "Client Error" not in output, output[-3000:]
    with open(log_file, encoding="utf-8") as log:
        log.seek(logged_before)
        return log.read()


def _rows(connection, table):
    with connection.cursor() as cur:
        cur.execute(f'SELECT * FROM "{table}" ORDER BY id')
        return cur.fetchall()


def test_commcare_export_to_postgresql_then_only_what_changed(live_server, project, output_db, tmp_path):
    api = project.api()
    app_id, worker = worker_and_app(api)
    # 25 mothers in ONE form (one transaction): pages of 10 split them.
    blocks = [
        {
            "case_id": f"m-{i:02d}",
            "create": {"case_type": "mother", "case_name": f"Mama {i}", "owner_id": worker},
            "update": {"village": "Siaya"},
        }
        for i in range(25)
    ]
    submit(api, app_id, worker, blocks, xmlns="http://openrosa.org/formdesigner/REG", name="Registration")
    submit(
        api, app_id, worker, [{"case_id": "child-1", "create": {"case_type": "child", "case_name": "Baby"}}]
    )
    query = _query(tmp_path / "query.xlsx")

    first = _export(live_server, project, query, tmp_path)
    mothers = _rows(output_db, "mothers")
    assert len(mothers) == 25 and {row[2] for row in mothers} == {"Siaya"}
    assert mothers[0][:2] == ("m-00", "Mama 0")
    forms = _rows(output_db, "forms")
    assert sorted(row[1:] for row in forms) == [
        ("http://openrosa.org/formdesigner/REG", "Registration"),
        (f"urn:messaging:application:{app_id}", "ANC"),
    ]
    assert "10 times with same parameters" not in first
    assert sum("Fetching 'case' batch" in line for line in first.splitlines()) == 3  # 10 + 10 + 5

    # A change and a new case; the second run starts from its checkpoint.
    submit(api, app_id, worker, [{"case_id": "m-03", "update": {"village": "Kisumu"}}])
    submit(api, app_id, worker, [{"case_id": "m-99", "create": {"case_type": "mother", "case_name": "Late"}}])
    second = _export(live_server, project, query, tmp_path)
    requests = [line for line in second.splitlines() if "Fetching 'case' batch" in line]
    assert requests and all("'indexed_on_start'" in line for line in requests)  # from the checkpoint
    mothers = {row[0]: row for row in _rows(output_db, "mothers")}
    assert len(mothers) == 26 and mothers["m-03"][2] == "Kisumu" and mothers["m-99"][1] == "Late"
    assert len(_rows(output_db, "forms")) == 4
