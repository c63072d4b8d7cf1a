"""Another project's id is a 404 everywhere, in the API and in the UI, and changes nothing."""

import re

from sqlalchemy import func, select

from tests.conftest import login
from tests.integration.app.tenancy_resources import FACTORIES

PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def _other_project_ids(app, other_project):
    api = other_project.api()
    ids = {}
    with other_project.scope():
        for name, factory in FACTORIES.items():
            ids[name] = factory(api)
    return ids


def _row_counts(app, project_id):
    from messaging.extensions import db
    from messaging.models.base import TenantScoped

    counts = {}
    with app.app_context():
        for mapper in db.Model.registry.mappers:
            cls = mapper.class_
            if issubclass(cls, TenantScoped):
                counts[cls.__name__] = db.session.execute(
                    select(func.count()).select_from(cls).where(cls.project_id == project_id)
                ).scalar_one()
        db.session.remove()
    return counts


def _rules(app, prefix):
    for rule in app.url_map.iter_rules():
        params = PARAM.findall(rule.rule)
        if rule.endpoint.startswith(prefix) and params:
            yield rule, params


def _fill(rule, params, ids):
    path = rule.rule
    for name in params:
        assert name in ids, f"tests/tenancy_resources.py has no factory for <{name}> ({rule.rule})"
        path = PARAM.sub(lambda m, n=name: str(ids[n]) if m.group(1) == n else m.group(0), path, count=1)
    return path


def test_every_api_route_is_404_for_another_projects_ids(app, project, other_project):
    ids = _other_project_ids(app, other_project)
    before = _row_counts(app, other_project.id)
    api = project.api()
    checked = 0
    for rule, params in _rules(app, "api."):
        path = _fill(rule, params, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = getattr(api, method.lower())(path, json={})
            assert response.status_code == 404, f"{method} {path} -> {response.status_code}"
            assert response.get_json()["error"]["code"] == "not_found"
            checked += 1
    assert checked >= 5
    assert _row_counts(app, other_project.id) == before


def test_every_web_route_is_404_for_another_projects_ids(app, project, other_project):
    ids = _other_project_ids(app, other_project)
    before = _row_counts(app, other_project.id)
    web = login(app, project.admin_email, project.password)
    checked = 0
    for rule, params in _rules(app, "web."):
        path = _fill(rule, params, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method == "GET":
                response = web.get(path)
            else:
                response = web.post(path, data={})
            assert response.status_code == 404, f"{method} {path} -> {response.status_code}"
            checked += 1
    assert checked >= 1
    assert _row_counts(app, other_project.id) == before


def test_tenancy_helper_filters_queries_and_refuses_foreign_writes(app, project, other_project):
    import pytest

    from messaging.db import tenancy
    from messaging.extensions import db
    from messaging.models import MobileWorker

    other_project.api().post("/api/v1/users", json={"username": "theirs"})
    project.api().post("/api/v1/users", json={"username": "ours"})
    with app.app_context():
        tenancy.set_current_project(project.id)
        names = db.session.execute(select(MobileWorker.username)).scalars().all()
        assert names == ["ours"]
        db.session.add(MobileWorker(project_id=other_project.id, username="sneaky"))
        with pytest.raises(PermissionError):
            db.session.flush()
        db.session.rollback()
        db.session.remove()
