"""Bulk case upload speed: rows per second on SQLite and PostgreSQL, against openpyxl's bare parse.

    .venv/bin/python bench/bench_case_import.py                      # 50,000 rows, SQLite
    .venv/bin/python bench/bench_case_import.py --pg postgresql://postgres@127.0.0.1/bench
    .venv/bin/python bench/bench_case_import.py --rows 100000 --pg ... --no-sqlite

It writes one .xlsx (external_id, case_type, name, phone_number, village, age),
times openpyxl's own read-only parse of it (the reference), then runs the real
import job (``messaging.imports.runner.run_import`` with the ``cases`` handler:
file checks, row count, header check, batched writes, per-row results and the
.xlsx report) twice: a create pass (every row a new case) and an update pass
(the same file again: every row matched by external_id and updated). It
samples the process RSS during the job to show memory stays flat.

The database named by ``--pg`` is WIPED (schema dropped and rebuilt).
Target: whole import within 3x of the bare parse; memory flat.
"""

import argparse
import io
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("APP_ENV", "development")


def make_workbook(rows: int) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["external_id", "case_type", "name", "phone_number", "village", "age"])
    villages = ["Kisumu", "Siaya", "Homa Bay", "Migori", "Busia"]
    for i in range(rows):
        ws.append(
            [
                f"EXT-{i:07d}",
                "mother",
                f"Mother {i}",
                f"07{i % 100_000_000:08d}",
                villages[i % 5],
                18 + i % 30,
            ]
        )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def bare_parse(data: bytes) -> tuple[float, int]:
    import openpyxl

    start = time.perf_counter()
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    n = 0
    for _row in wb.active.iter_rows(values_only=True):
        n += 1
    wb.close()
    return time.perf_counter() - start, n - 1


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(rss_mb())
            time.sleep(0.1)


def build_app(url: str):
    from sqlalchemy import text

    from messaging import create_app
    from messaging.extensions import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"),
            "IMPORT_MAX_ROWS": 1_000_000,
            "MAX_CONTENT_LENGTH": 200 * 1024 * 1024,
        }
    )
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        db.session.remove()
    return app


def run_import(app, project_id: int, data: bytes) -> tuple[float, dict, list[float]]:
    from messaging.db import tenancy
    from messaging.extensions import db
    from messaging.imports import runner as imports
    from messaging.imports import start as imports_start

    with app.app_context():
        imports_start.enqueue_import = lambda import_id: None  # run in this process, not through Redis
        with tenancy.project_scope(project_id):
            imp = imports_start.start_import("cases", data, "bench.xlsx")
            import_id = imp.id
        db.session.remove()
        sampler = RssSampler()
        sampler.start()
        start = time.perf_counter()
        imports.run_import(import_id)
        elapsed = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
        from messaging.models import Import

        with tenancy.project_scope(project_id):
            imp = db.session.get(Import, import_id)
            status = {"status": imp.status, "counts": dict(imp.counts or {}), "error": imp.error_message}
        db.session.remove()
    return elapsed, status, sampler.samples


def bench_database(label: str, url: str, data: bytes, rows: int, parse_s: float) -> None:
    from messaging.extensions import db
    from messaging.projects.setup import create_project

    app = build_app(url)
    with app.app_context():
        project, _, _ = create_project("bench", "bench@example.org", "bench password 1", None, "KE", "UTC")
        db.session.commit()
        project_id = project.id
        db.session.remove()
    for pass_name in ("create", "update"):
        before = rss_mb()
        elapsed, status, samples = run_import(app, project_id, data)
        peak = max(samples) if samples else before
        quarter = samples[len(samples) // 4] if samples else before
        print(
            f"{label:<10} {pass_name:<7} {rows:>7,} rows  {elapsed:6.2f} s  {rows / elapsed:8,.0f} rows/s  "
            f"{elapsed / parse_s:4.2f}x bare parse  RSS {before:.0f} MB -> at 25% {quarter:.0f} MB, "
            f"peak {peak:.0f} MB  {status['status']} {status['counts']}"
        )
        if status["status"] != "done":
            print("  import failed:", status["error"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--pg", help="PostgreSQL URL of a database to WIPE and use")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    t = time.perf_counter()
    data = make_workbook(args.rows)
    made = time.perf_counter() - t
    print(f"workbook: {args.rows:,} rows x 6 columns, {len(data) / 2**20:.1f} MB (made in {made:.1f} s)")
    parse_s, parsed = bare_parse(data)
    assert parsed == args.rows, parsed
    print(
        f"openpyxl read-only bare parse: {parse_s:.2f} s ({args.rows / parse_s:,.0f} rows/s) -- the reference"
    )
    logging.getLogger("messaging").setLevel(logging.WARNING)
    if not args.no_sqlite:
        tmp = tempfile.mkdtemp(prefix="bench-cases-")
        bench_database("sqlite", f"sqlite:///{tmp}/bench.sqlite3", data, args.rows, parse_s)
    if args.pg:
        bench_database("postgresql", args.pg, data, args.rows, parse_s)
    print(f"max RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
