import pytest


def test_no_token_is_401_in_the_error_shape(app, project):
    response = app.test_client().get("/api/v1/users")
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "unauthorized" and error["message"] and "details" in error


def test_bad_token_is_401(app, project):
    response = app.test_client().get("/api/v1/users", headers={"Authorization": "Token msk_wrong"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_token"


def test_malformed_json_is_400_and_changes_nothing(api):
    response = api.post("/api/v1/users", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"
    assert api.get("/api/v1/users").get_json()["results"] == []


def test_json_array_body_is_400(api):
    response = api.post("/api/v1/users", json=["david"])
    assert response.status_code == 400


def test_form_encoded_body_is_415(api):
    response = api.post("/api/v1/users", data={"username": "x"})
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_unknown_api_route_is_json_404(api):
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_validation_error_names_the_field(api):
    response = api.post("/api/v1/users", json={"username": 5})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"] == {"field": "username"}


def test_duplicate_username_is_409(api):
    assert api.post("/api/v1/users", json={"username": "david"}).status_code == 201
    response = api.post("/api/v1/users", json={"username": "David"})
    assert response.status_code == 409


def test_a_non_ascii_name_given_twice_is_refused_as_a_duplicate_on_both_databases(api):
    for path, field in (("/api/v1/users", "username"), ("/api/v1/groups", "name")):
        assert api.post(path, json={field: "Émile"}).status_code == 201
        again = api.post(path, json={field: "Émile"})
        assert again.status_code == 409
        assert again.get_json()["error"]["code"].startswith("duplicate_")


def test_cursor_pagination_is_stable_under_inserts(api):
    for i in range(7):
        api.post("/api/v1/users", json={"username": f"u{i}"})
    first = api.get("/api/v1/users?limit=3").get_json()
    assert [u["username"] for u in first["results"]] == ["u6", "u5", "u4"]
    assert first["next"]
    api.post("/api/v1/users", json={"username": "late"})  # must not shift the next page
    second = api.get(first["next"].replace("http://localhost", "")).get_json()
    assert [u["username"] for u in second["results"]] == ["u3", "u2", "u1"]
    third = api.get(second["next"].replace("http://localhost", "")).get_json()
    assert [u["username"] for u in third["results"]] == ["u0"]
    assert third["next"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "cursor=%%%", "cursor=WzFd"])
def test_bad_pagination_arguments_are_400(api, query):
    assert api.get(f"/api/v1/users?{query}").status_code == 400


def test_limit_is_capped_at_250(api):
    api.post("/api/v1/users", json={"username": "only"})
    assert api.get("/api/v1/users?limit=100000").status_code == 200


def test_openapi_document_lists_the_routes(app, api):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/api/v1/groups"]
    assert "patch" in doc["paths"]["/api/v1/groups/{group_id}"]
    api_rules = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")}
    documented = {p.replace("{", "<").replace("}", ">") for p in doc["paths"]}
    assert {r for r in api_rules} == documented


def test_viewer_token_cannot_write(app, project):
    from messaging.extensions import db
    from messaging.models import ApiToken, WebUser
    from tests.conftest import ApiClient

    with app.app_context():
        viewer = WebUser(project_id=project.id, email="v@alpha.org", role="viewer")
        viewer.set_password("whatever123")
        db.session.add(viewer)
        db.session.flush()
        _token, key = ApiToken.issue(viewer)
        db.session.commit()
        db.session.remove()
    client = ApiClient(app.test_client(), key)
    assert client.get("/api/v1/users").status_code == 200
    response = client.post("/api/v1/users", json={"username": "x"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
