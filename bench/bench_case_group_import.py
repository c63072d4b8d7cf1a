"""Speed of the case group Excel import, against a bare parse of the same file.

For each database: N cases, then an .xlsx of N rows (one identifier per case:
phone numbers in several spellings, numbers stored as numeric cells,
external IDs, case IDs) uploaded to a group, run through the real import job
body (``messaging.imports.runner.run_import``: checks, row count, set-based batches,
per-row results, the .xlsx report). Prints rows per second, the ratio to
openpyxl's bare read-only parse of the file (target: within 2x) and to
python-calamine's, and the peak RSS growth during the import (memory flat:
compare the two sizes). The cases are seeded once; each of ``--rounds`` imports
(into a new group) follows a bare parse, and the median of the paired ratios is
the figure: this VM's speed drifts by up to 2x between runs.

    .venv/bin/python bench/bench_case_group_import.py            # 20,000 rows, both databases
    .venv/bin/python bench/bench_case_group_import.py --full     # 100,000 rows
    .venv/bin/python bench/bench_case_group_import.py --rows 5000 --db sqlite
    .venv/bin/python bench/bench_case_group_import.py --columns 5  # a case-export-like sheet

The PostgreSQL database given by --pg-url (or BENCH_PG_URL, or TEST_DATABASE_URL
when it is PostgreSQL) is wiped (schema dropped) first, as the tests do.
Both databases are ANALYZEd after the cases are loaded, as a live one would be.
"""

import argparse
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("APP_ENV", "test")

DEFAULT_ROWS = 20_000
FULL_ROWS = 100_000


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


class PeakRss:
    """Sample this process's RSS every 20 ms in a thread; keep the peak."""

    def __enter__(self):
        gc.collect()
        self.start = rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.start


def phone(i: int) -> str:
    return f"+254712{i:06d}" if i < 1_000_000 else f"+254722{i - 1_000_000:06d}"


def spelled(i: int, kind: int, case_id: str):
    """The identifier of case ``i`` as a person or Excel would write it."""
    e164 = phone(i)
    digits = e164[1:]
    if kind == 0:
        return digits  # the seed's format, as text
    if kind == 1:
        return f"+254 {digits[3:6]} {digits[6:9]} {digits[9:]}"
    if kind == 2:
        return "0" + digits[3:]  # national
    if kind == 3:
        return int(digits)  # a numeric cell
    if kind == 4:
        return f"EXT-{i:07d}"
    return case_id


EXTRA_COLUMNS = ["name", "village", "visit date", "notes"]


def make_workbook(path: Path, case_ids: list[str], columns: int = 1) -> None:
    """One ``case_identifier`` column, or (``columns`` > 1) a case-export-like sheet."""
    from openpyxl import Workbook

    extra = EXTRA_COLUMNS[: max(columns - 1, 0)]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Sheet1")
    sheet.append(["case_identifier", *extra])
    for i, case_id in enumerate(case_ids):
        values = [f"Person {i}", f"Village {i % 300}", f"2026-0{1 + i % 9}-1{i % 10}", "follow up"]
        sheet.append([spelled(i, i % 6, case_id), *values[: len(extra)]])
    workbook.save(path)


def bare_openpyxl(path: Path) -> float:
    from openpyxl import load_workbook

    start = time.perf_counter()
    workbook = load_workbook(path, read_only=True, data_only=True)
    sheet = workbook.worksheets[0]
    sheet.reset_dimensions()
    count = sum(1 for _ in sheet.iter_rows(values_only=True))
    workbook.close()
    elapsed = time.perf_counter() - start
    assert count > 1
    return elapsed


def bare_calamine(path: Path) -> float:
    from python_calamine import CalamineWorkbook

    start = time.perf_counter()
    workbook = CalamineWorkbook.from_path(str(path))
    sheet = workbook.get_sheet_by_index(0)
    count = sum(1 for _ in sheet.iter_rows())
    workbook.close()
    elapsed = time.perf_counter() - start
    assert count > 1
    return elapsed


def build_app(database_url: str):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from messaging import create_app
    from messaging.extensions import db

    app = create_app(
        {
            "APP_ENV": "test",
            "TESTING": True,
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
            "IMPORT_MAX_ROWS": FULL_ROWS,
            "MAX_CONTENT_LENGTH": 50 * 1024 * 1024,
        }
    )
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade(directory=str(ROOT / "migrations"))
        db.session.remove()
    return app


def seed_cases(app, project_id: int, rows: int) -> list[str]:
    from sqlalchemy import insert

    from messaging.extensions import db
    from messaging.models import Case

    case_ids = [uuid.uuid4().hex for _ in range(rows)]
    with app.app_context():
        chunk = 5000
        for start in range(0, rows, chunk):
            db.session.execute(
                insert(Case),
                [
                    {
                        "project_id": project_id,
                        "case_id": case_ids[i],
                        "case_type": "person",
                        "name": f"Person {i}",
                        "external_id": f"EXT-{i:07d}",
                        "phone_raw": phone(i),
                        "phone_number": phone(i),
                        "properties": {},
                    }
                    for i in range(start, min(start + chunk, rows))
                ],
            )
            db.session.commit()
        # A live database has statistics (autovacuum); a freshly loaded one must be analysed.
        from sqlalchemy import text

        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        else:
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        db.session.remove()
    return case_ids


def run_one(label: str, database_url: str, rows: int, path: Path, columns: int = 1, rounds: int = 3) -> dict:
    """Seed once, then ``rounds`` imports into fresh groups, each right after a bare
    openpyxl parse of the same file (a shared VM's speed drifts by up to 2x between
    runs: the ratio is taken per pair, and the median is the figure)."""
    from messaging.extensions import db
    from messaging.projects.setup import create_project

    app = build_app(database_url)
    with app.app_context():
        project, *_ = create_project("bench", "bench@example.org", "bench password 1", None, "KE", "UTC")
        db.session.commit()
        project_id = project.id
        db.session.remove()
    t0 = time.perf_counter()
    case_ids = seed_cases(app, project_id, rows)
    seed_seconds = time.perf_counter() - t0
    make_workbook(path, case_ids, columns)
    pairs = []
    for number in range(rounds):
        parse = bare_openpyxl(path)
        seconds, growth = import_once(app, project_id, path, rows, f"Bench {number}")
        pairs.append((seconds, parse, growth))
        print(
            f"    {label} round {number + 1}: import {seconds:5.2f} s, bare parse {parse:5.2f} s, "
            f"ratio {seconds / parse:4.2f}x, peak RSS growth {growth:5.1f} MB",
            flush=True,
        )
    with app.app_context():
        db.engine.dispose()
    ratio = statistics.median(seconds / parse for seconds, parse, _ in pairs)
    return {
        "label": label,
        "rows": rows,
        "seconds": statistics.median(seconds for seconds, _, _ in pairs),
        "openpyxl": statistics.median(parse for _, parse, _ in pairs),
        "ratio": ratio,
        "rss_growth": max(growth for _, _, growth in pairs),
        "seed_seconds": seed_seconds,
        "size_mb": path.stat().st_size / 1024 / 1024,
    }


def import_once(app, project_id: int, path: Path, rows: int, group_name: str) -> tuple[float, float]:
    """One import of the file into a new group, through the job body; (seconds, peak RSS growth)."""
    from sqlalchemy import func, select

    from messaging.case_groups.groups import create_group
    from messaging.case_groups.upload import IMPORT_KIND
    from messaging.db import tenancy
    from messaging.extensions import db
    from messaging.imports import runner as imports
    from messaging.models import CaseGroupMember, Import, ImportFile

    with app.app_context(), tenancy.project_scope(project_id):
        group = create_group(group_name)
        imp = Import(kind=IMPORT_KIND, target_id=group.id, filename=path.name)
        imp.counts, imp.options = {}, {}
        db.session.add(imp)
        db.session.flush()
        db.session.add(ImportFile(import_id=imp.id, purpose="upload", data=path.read_bytes()))
        db.session.commit()
        import_id, group_id = imp.id, group.id
        db.session.remove()

    with app.app_context(), PeakRss() as memory:
        start = time.perf_counter()
        imports.run_import(import_id)  # the job body, as the worker runs it
        seconds = time.perf_counter() - start
        db.session.remove()

    with app.app_context(), tenancy.project_scope(project_id):
        imp = db.session.get(Import, import_id)
        members = db.session.execute(
            select(func.count()).select_from(CaseGroupMember).where(CaseGroupMember.group_id == group_id)
        ).scalar_one()
        status, counts = imp.status, dict(imp.counts)
        db.session.remove()
    assert status == "done", (status, counts)
    assert counts == {"added": rows} and members == rows, (counts, members)
    return seconds, memory.growth


PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres(url: str | None) -> str | None:
    return url if url and url.startswith("postgres") else None


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--full", action="store_true", help=f"{FULL_ROWS:,} rows")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL")
        or _postgres(os.environ.get("TEST_DATABASE_URL"))
        or PG_DEFAULT,
        help=f"a PostgreSQL database to wipe and use (BENCH_PG_URL; default {PG_DEFAULT})",
    )
    parser.add_argument("--columns", type=int, default=1, help="columns in the sheet (1 to 5)")
    parser.add_argument("--rounds", type=int, default=3, help="paired parse + import runs (median ratio)")
    args = parser.parse_args()
    rows = FULL_ROWS if args.full else args.rows

    import logging

    logging.disable(logging.INFO)
    tmp = Path(tempfile.mkdtemp(prefix="bench-case-groups-"))
    targets = []
    if args.db in ("sqlite", "both"):
        targets.append(("SQLite", f"sqlite:///{tmp / 'bench.sqlite3'}"))
    if args.db in ("postgres", "both"):
        targets.append(("PostgreSQL", args.pg_url))

    print(f"case group import: {rows:,} rows ({args.columns} column(s)) against {rows:,} cases")
    results = []
    for label, url in targets:
        path = tmp / f"upload-{label}.xlsx"
        result = run_one(label, url, rows, path, args.columns, args.rounds)
        result["calamine"] = min(bare_calamine(path) for _ in range(2))
        results.append(result)
        r = result
        print(
            f"  {label:<10} import {r['seconds']:6.2f} s = {r['rows'] / r['seconds']:8,.0f} rows/s | "
            f"bare parse openpyxl {r['openpyxl']:5.2f} s "
            f"(import/parse = {r['ratio']:4.2f}x, median of {args.rounds} pairs), "
            f"calamine {r['calamine']:5.2f} s ({r['seconds'] / r['calamine']:5.1f}x) | "
            f"peak RSS growth {r['rss_growth']:5.1f} MB | file {r['size_mb']:.1f} MB",
            flush=True,
        )
    print("target: import within 2x of openpyxl's bare read-only parse; memory flat (compare sizes)")


if __name__ == "__main__":
    main()
