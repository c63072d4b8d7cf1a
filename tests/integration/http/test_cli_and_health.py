import subprocess
import sys

from sqlalchemy import func, select

from tests.conftest import ROOT, app_test_config, worker_env


def test_create_project_prints_a_working_token_on_the_last_line(app):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "create-project",
            "clinic-north",
            "--admin-email",
            "boss@clinic.org",
            "--admin-password",
            "s3cret-pass",
        ],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("msk_") and " " not in key
    response = app.test_client().get("/api/v1/users", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200


def test_create_project_refuses_a_duplicate_slug(app, project):
    from click.testing import CliRunner

    from messaging.cli import create_project_command

    with app.app_context():
        result = CliRunner().invoke(
            create_project_command,
            [project.slug, "--admin-email", "x@y.org", "--admin-password", "longenough"],
        )
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_seed_demo_makes_workers_groups_and_international_cases(app):
    from messaging.alerts import applying
    from messaging.alerts import reading as reading_alerts
    from messaging.broadcasts import preview as broadcasts_preview
    from messaging.broadcasts import reading
    from messaging.db import tenancy
    from messaging.extensions import db
    from messaging.models import AlertRule, Broadcast, Case, Project, UserGroup
    from messaging.projects.demo import seed_demo

    with app.app_context():
        key = seed_demo(case_count=120)
        project = db.session.execute(select(Project).where(Project.slug == "demo")).scalar_one()
        tenancy.set_current_project(project.id)
        phones = db.session.execute(select(Case.phone_number)).scalars().all()
        sharing = db.session.execute(
            select(func.count()).select_from(UserGroup).where(UserGroup.case_sharing.is_(True))
        ).scalar_one()
        [demo_broadcast] = db.session.execute(select(Broadcast)).scalars().all()
        preview = broadcasts_preview.preview_broadcast(
            project, {"recipients": demo_broadcast.recipients, "text": "x"}
        )
        status = reading.broadcast_status(demo_broadcast)
        [demo_alert] = db.session.execute(select(AlertRule)).scalars().all()
        mothers_with_a_due_date = db.session.execute(
            select(func.count()).select_from(Case).where(Case.case_type == "mother")
        ).scalar_one()
        applying.apply_rule(project.id, demo_alert.id)
        scheduled = reading_alerts.counts_by_status(demo_alert.id)
        db.session.remove()
    assert status == "scheduled" and preview["will_send"] > 0
    assert sum(scheduled.values()) == mothers_with_a_due_date and scheduled.get("pending", 0) > 0
    assert key.startswith("msk_")
    assert len(phones) == 120 and all(p.startswith("+") for p in phones)
    assert len({p[:4] for p in phones}) >= 5  # several countries
    assert sharing >= 2


def test_healthz_names_redis_when_it_is_down(app):
    from messaging import create_app

    broken = create_app({**app_test_config(), "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "redis": "unavailable"}


def test_healthz_names_the_database_when_it_is_down(app):
    from messaging import create_app

    broken = create_app(
        {**app_test_config(), "SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none"}
    )
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"
