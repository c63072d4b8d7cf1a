"""CommCare's surface under load: commcare-export over /a/<slug>/api/v0.5/case/, and the XForm receiver.

    .venv/bin/python bench/bench_commcare.py                 # PostgreSQL (the bench DB)
    .venv/bin/python bench/bench_commcare.py --cases 5000 --database-url sqlite:////tmp/cc.sqlite3

It WIPES the database given by ``--database-url`` and FLUSHES the Redis DB of ``--redis-url``.
The app runs in gunicorn (2 processes, as ``make run``); the clients run here.

1. **Export** (target: ratio <= 1.5). N mother cases; the time of Dimagi's ``commcare-export``
   (``.venv-cce``, default batch size 200, CSV output) exporting them through
   ``/a/<slug>/api/v0.5/case/``, against fetching the same rows page by page from
   ``/api/v1/cases`` (limit 250, following ``next``) with one HTTP session.
2. **Receiver** (target: ratio >= 0.7). 1,000 XForm submissions, each creating a case with
   three properties, one at a time: forms per second and p99; then the same content through
   ``POST /api/v1/forms``; the ratio of the two rates.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import free_port, fresh_app, seed_mothers, wait_up, worker_env_base  # noqa: E402

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/bench"
EXPORT = ROOT / ".venv-cce" / "bin" / "commcare-export"
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
XFORM = """<?xml version="1.0"?>
<data xmlns="http://openrosa.org/formdesigner/bench" name="Bench visit">
  <q1>yes</q1>
  <case xmlns="http://commcarehq.org/case/transaction/v2" case_id="{case_id}" user_id="{user}">
    <create><case_type>visit</case_type><case_name>V {n}</case_name><owner_id>{user}</owner_id></create>
    <update><village>Siaya</village><risk>high</risk><weeks>{n}</weeks></update>
  </case>
  <meta xmlns="http://openrosa.org/jr/xforms"><userID>{user}</userID><instanceID>{form_id}</instanceID></meta>
</data>"""


def query_file(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "mothers"
    sheet.append(["Data Source", "Filter Name", "Filter Value", "Field", "Source Field"])
    sheet.append(["case", "type", "mother", "id", "id"])
    sheet.append([None, None, None, "name", "properties.case_name"])
    sheet.append([None, None, None, "village", "properties.village"])
    book.save(path)
    return path


def native_fetch(url: str, key: str) -> tuple[float, int]:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {key}"
    started, rows, next_url = time.perf_counter(), 0, f"{url}/api/v1/cases?case_type=mother&limit=250"
    while next_url:
        page = session.get(next_url, timeout=60).json()
        rows += len(page["results"])
        next_url = page["next"]
    return time.perf_counter() - started, rows


def commcare_export(url: str, key: str, tmp: Path) -> tuple[float, int]:
    out = tmp / "export.zip"
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(EXPORT),
            "--commcare-hq", url, "--project", "bench", "--username", "bench@example.org",
            "--password", key, "--auth-mode", "apikey", "--query", str(query_file(tmp / "query.xlsx")),
            "--output-format", "csv", "--output", str(out), "--log-dir", str(tmp),
        ],
        capture_output=True, text=True, cwd=tmp, timeout=3600,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(done.stdout + done.stderr)
    import zipfile

    with zipfile.ZipFile(out) as archive:
        rows = sum(archive.read(name).decode().count("\n") - 1 for name in archive.namelist())
    return elapsed, rows


def submissions(url: str, key: str, user: str, app_id: str, n: int) -> tuple[list[float], list[float]]:
    """Per-request seconds: n XForms to the receiver, then n JSON forms of the same content."""
    auth = {"Authorization": f"ApiKey bench@example.org:{key}", "Content-Type": "text/xml"}
    session = requests.Session()
    xform_times = []
    for i in range(n):
        body = XFORM.format(case_id=uuid.uuid4().hex, user=user, n=i, form_id=uuid.uuid4().hex)
        started = time.perf_counter()
        answer = session.post(
            f"{url}/a/bench/receiver/{app_id}/", data=body.encode(), headers=auth, timeout=30
        )
        xform_times.append(time.perf_counter() - started)
        if answer.status_code != 201 or "submit_success" not in answer.text:
            sys.exit(f"receiver: {answer.status_code} {answer.text[:300]}")
    json_times = []
    session.headers["Authorization"] = f"Token {key}"
    for i in range(n):
        form = {
            "form_id": uuid.uuid4().hex,
            "app_id": app_id,
            "user_id": user,
            "answers": {"q1": "yes"},
            "cases": [
                {
                    "case_id": uuid.uuid4().hex,
                    "create": {"case_type": "visit", "case_name": f"V {i}", "owner_id": user},
                    "update": {"village": "Siaya", "risk": "high", "weeks": str(i)},
                }
            ],
        }
        started = time.perf_counter()
        answer = session.post(f"{url}/api/v1/forms", json=form, timeout=30)
        json_times.append(time.perf_counter() - started)
        if answer.status_code != 201:
            sys.exit(f"api: {answer.status_code} {answer.text[:300]}")
    return xform_times, json_times


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--forms", type=int, default=1000)
    parser.add_argument("--database-url", default=PG_DEFAULT)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    if not EXPORT.exists():
        sys.exit("commcare-export is missing: run make install (it builds .venv-cce)")

    env = worker_env_base(args.database_url, args.redis_url)
    _app, project, key = fresh_app(env)
    from messaging.extensions import db
    from messaging.models import Application, MobileWorker

    seed_mothers(project.id, args.cases, lambda i: {"village": f"Village {i % 40}"}, indexed=True)
    app_row = Application(project_id=project.id, name="Bench", case_sharing=False)
    worker = MobileWorker(project_id=project.id, username="bench.worker")
    db.session.add_all([app_row, worker])
    db.session.commit()
    app_id, user = app_row.id, worker.id
    db.session.remove()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-commcare-"))
    server_env = {**__import__("os").environ, **env, "APP_ENV": "production", "SESSION_COOKIE_SECURE": "0"}
    with open(tmp / "gunicorn.log", "wb") as log:
        server = subprocess.Popen(
            [GUNICORN, "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_up(port)
        database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
        print(f"database: {database}; cases: {args.cases:,}; gunicorn 2 x 4 threads")
        native_seconds, native_rows = native_fetch(url, key)
        export_seconds, export_rows = commcare_export(url, key, tmp)
        print(f"/api/v1/cases page by page (250): {native_rows:,} rows in {native_seconds:.1f} s")
        print(f"commcare-export (batch 200, csv):  {export_rows:,} rows in {export_seconds:.1f} s")
        print(f"export ratio: {export_seconds / native_seconds:.2f} (target <= 1.5)")
        xform, api = submissions(url, key, user, app_id, args.forms)
        xform_rate, api_rate = len(xform) / sum(xform), len(api) / sum(api)
        print(
            f"receiver: {xform_rate:.0f} forms/s, p99 {p99(xform) * 1000:.0f} ms "
            f"({len(xform)} XForms, one at a time)"
        )
        print(
            f"/api/v1/forms: {api_rate:.0f} forms/s, p99 {p99(api) * 1000:.0f} ms (the same content as JSON)"
        )
        print(f"receiver ratio: {xform_rate / api_rate:.2f} (target >= 0.7)")
    finally:
        server.terminate()
        server.wait(20)


if __name__ == "__main__":
    main()
