"""Project scoping by construction.

The current project lives in ``db.session.info["project_id"]``. While it is
set, a session event adds ``project_id = <current>`` to every ORM SELECT,
UPDATE and DELETE of a ``TenantScoped`` model, and stamps new rows with it.
Views and services therefore never write the filter themselves, and another
project's id simply finds nothing (a 404).

Web requests set it from the logged-in user or the API token; jobs and CLI
commands use ``project_scope(project_id)``. ``messaging.http.lookup.get_or_404``
loads one row of the current project for a view.
"""

from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session, with_loader_criteria

from messaging.extensions import db
from messaging.models.base import TenantScoped

_KEY = "project_id"


def current_project_id() -> int | None:
    return db.session.info.get(_KEY)


def set_current_project(project_id: int | None) -> None:
    if project_id is None:
        db.session.info.pop(_KEY, None)
    else:
        db.session.info[_KEY] = project_id


@contextmanager
def project_scope(project_id: int):
    """Run a block (a job, a CLI command) scoped to one project."""
    previous = current_project_id()
    set_current_project(project_id)
    try:
        yield
    finally:
        set_current_project(previous)


def install(session_class=Session) -> None:
    """Register the session events (idempotent)."""
    if event.contains(session_class, "do_orm_execute", _scope_queries):
        return
    event.listen(session_class, "do_orm_execute", _scope_queries)
    event.listen(session_class, "before_flush", _stamp_new_rows)


def _scope_queries(execute_state) -> None:
    project_id = execute_state.session.info.get(_KEY)
    if project_id is None or execute_state.is_column_load or execute_state.is_relationship_load:
        return
    if not (execute_state.is_select or execute_state.is_update or execute_state.is_delete):
        return
    # Explicit escape hatch for the few cross-project look-ups (unique e-mails,
    # finding a project by its Twilio number); grep for it when reviewing.
    if execute_state.execution_options.get("all_projects"):
        return
    execute_state.statement = execute_state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.project_id == project_id,
            include_aliases=True,
        )
    )


def _stamp_new_rows(session, flush_context, instances) -> None:
    project_id = session.info.get(_KEY)
    for obj in session.new:
        if isinstance(obj, TenantScoped):
            if obj.project_id is None and project_id is not None:
                obj.project_id = project_id
            elif project_id is not None and obj.project_id != project_id:
                raise PermissionError("refusing to write a row of another project")
