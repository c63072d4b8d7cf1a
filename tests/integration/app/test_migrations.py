"""Migrations that move data: nothing recorded before an upgrade is lost by it.

Each test builds its own database on the suite's engine (a temporary SQLite
file, or a scratch PostgreSQL database beside the test one), because it walks
the schema back to an old revision.
"""

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import ROOT, app_test_config

MIGRATIONS = str(ROOT / "migrations")


@pytest.fixture
def scratch_app(tmp_path):
    from messaging import create_app
    from messaging.extensions import db

    config = app_test_config()
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    admin = None
    if url.get_backend_name() == "postgresql":
        scratch = url.set(database=f"{url.database}_migrations")
        admin = create_engine(url.set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}"'))
            conn.execute(text(f'CREATE DATABASE "{scratch.database}"'))
        config["SQLALCHEMY_DATABASE_URI"] = scratch.render_as_string(hide_password=False)
    else:
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    application = create_app(config)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}_migrations"'))
        admin.dispose()


def test_import_results_survive_the_move_to_batches_and_back(scratch_app):
    from messaging.extensions import db
    from messaging.imports import outcomes as imports_outcomes

    with scratch_app.app_context():
        upgrade(directory=MIGRATIONS, revision="0008_broadcasts")
        sizes = {"a" * 32: 4500, "b" * 32: 3}
        with db.engine.begin() as conn:
            # The project as the schema of 0008 holds it (today's model has later columns).
            conn.execute(
                text(
                    "INSERT INTO projects (slug, name, default_country, timezone, help_text, created_at) "
                    "VALUES ('mig', 'Mig', 'KE', 'UTC', 'Help.', CURRENT_TIMESTAMP)"
                )
            )
            project_id = conn.execute(text("SELECT id FROM projects WHERE slug = 'mig'")).scalar_one()
            for import_id, size in sizes.items():
                conn.execute(
                    text(
                        "INSERT INTO imports (id, kind, filename, status, dry_run, options, processed, "
                        "counts, created_at, project_id) VALUES (:id, 'case_group', 'f.xlsx', 'done', "
                        "false, '{}', :n, '{}', CURRENT_TIMESTAMP, :project)"
                    ),
                    {"id": import_id, "n": size, "project": project_id},
                )
                conn.execute(
                    text(
                        "INSERT INTO import_rows (import_id, row_number, identifier, result, case_id, "
                        "message) VALUES (:id, :row, :identifier, 'added', :case_id, 'Added.')"
                    ),
                    [
                        {"id": import_id, "row": n + 2, "identifier": f"x{n}", "case_id": f"c{n}"}
                        for n in range(size)
                    ],
                )

        upgrade(directory=MIGRATIONS)
        for import_id, size in sizes.items():
            outcomes = list(imports_outcomes.iter_outcomes(import_id))
            assert [o[0] for o in outcomes] == list(range(2, size + 2))
            assert outcomes[-1] == [size + 1, f"x{size - 1}", "added", f"c{size - 1}", "Added."]
        page = imports_outcomes.outcome_page("a" * 32, after_row=2001, limit=3)
        assert [o.row_number for o in page] == [2002, 2003, 2004]
        db.session.commit()

        downgrade(directory=MIGRATIONS, revision="0008_broadcasts")
        with db.engine.connect() as conn:
            counts = conn.execute(
                text("SELECT import_id, count(*), max(row_number) FROM import_rows GROUP BY import_id")
            ).all()
        assert {i: (n, top) for i, n, top in counts} == {i: (n, n + 1) for i, n in sizes.items()}


def test_migration_files_follow_the_revision_chain():
    """Each file is numbered by its place in the chain, and its revision id is its file name."""
    import re
    from pathlib import Path

    chain = {}
    for path in sorted(Path(MIGRATIONS, "versions").glob("*.py")):
        source = path.read_text()
        revision = re.search(r"^revision = ['\"](.+?)['\"]", source, re.M).group(1)
        down = re.search(r"^down_revision = (?:['\"](.+?)['\"]|None)", source, re.M).group(1)
        assert revision == path.stem
        chain[down] = revision
    walked, current = [], None
    while current in chain:
        current = chain[current]
        walked.append(current)
    assert len(walked) == len(chain)
    assert [int(name[:4]) for name in walked] == list(range(1, len(walked) + 1))


def test_a_database_stamped_with_an_old_revision_id_still_upgrades(scratch_app):
    from messaging.extensions import db

    with scratch_app.app_context():
        upgrade(directory=MIGRATIONS, revision="0008_broadcasts")
        with db.engine.begin() as conn:  # as a database migrated before the files were renamed
            conn.execute(text("UPDATE alembic_version SET version_num = '0009_broadcasts'"))
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == (
                ScriptDirectory(MIGRATIONS).get_current_head()
            )
            assert inspect(conn).has_table("import_batches")
