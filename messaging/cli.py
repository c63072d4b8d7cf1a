"""Flask CLI commands: create-project, seed-demo, worker."""

import sys

import click
from flask import current_app

from messaging.errors import DomainError
from messaging.extensions import db


def init_app(app) -> None:
    app.cli.add_command(create_project_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(demo_token_command)


@click.command("create-project")
@click.argument("slug")
@click.option("--admin-email", required=True)
@click.option("--admin-password", required=True)
@click.option("--name", default=None, help="Display name (default: from the slug).")
@click.option(
    "--country", default="KE", show_default=True, help="Default country for national phone numbers."
)
@click.option("--timezone", default="UTC", show_default=True)
def create_project_command(slug, admin_email, admin_password, name, country, timezone):
    """Create a project and its admin; prints the admin's API token on the last line."""
    from messaging.projects.setup import create_project

    try:
        project, admin, key = create_project(slug, admin_email, admin_password, name, country, timezone)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"Created project '{project.slug}' (id {project.id}) with admin {admin.email}.")
    click.echo("API token (shown once):")
    click.echo(key)


@click.command("seed-demo")
@click.option("--cases", default=300, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when the demo project exists.")
def seed_demo_command(cases, if_empty):
    """Create the demo project: workers, case-sharing groups and cases."""
    from messaging.projects.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_exists, seed_demo

    if if_empty and demo_exists():
        click.echo("Demo project already there.")
        return
    key = seed_demo(cases)
    click.echo(f"Demo project ready. Log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
    click.echo("API token (shown once):")
    click.echo(key)


@click.command("demo-token")
def demo_token_command():
    """Issue a fresh API token for the demo admin (revoking the previous one)."""
    from messaging.projects.demo import issue_demo_token

    click.echo(issue_demo_token())


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--fork", is_flag=True, help="Run each job in a forked work horse (slower, isolates leaks).")
@click.option("--no-scheduler", is_flag=True, help="Do not run RQ's scheduler and our periodic ticks here.")
@click.option("--queues", default=None, help="Comma-separated queue names (default: all, by priority).")
def worker_command(burst, fork, no_scheduler, queues):
    """Start an RQ worker (with the scheduler) inside the app context."""
    from workers.worker import run_worker

    names = [q.strip() for q in queues.split(",")] if queues else None
    run_worker(
        current_app._get_current_object(),
        burst=burst,
        fork=fork,
        with_scheduler=not no_scheduler,
        queue_names=names,
    )
