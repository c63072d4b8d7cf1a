"""Helpers for the CommCare-surface tests: credentials, a worker and an application, forms."""

import base64


def apikey(project, scheme="ApiKey"):
    return {"Authorization": f"{scheme} {project.admin_email}:{project.key}"}


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def worker_and_app(api, username="nurse", password=None):
    app_id = api.post("/api/v1/applications", json={"name": "ANC"}).get_json()["id"]
    body = {"username": username, **({"password": password} if password else {})}
    response = api.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.get_json()
    return app_id, response.get_json()["id"]


def submit(api, app_id, worker, blocks, **extra):
    response = api.post("/api/v1/forms", json={"app_id": app_id, "user_id": worker, "cases": blocks, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()
