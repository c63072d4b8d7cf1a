def test_healthz(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_api_creates_group_with_members(api):
    user = api.post("/api/v1/users", json={"username": "david"}).get_json()
    group = api.post(
        "/api/v1/groups", json={"name": "Village 1", "case_sharing": True, "members": [user["id"]]}
    )
    assert group.status_code == 201
    body = group.get_json()
    assert body["members"] == [user["id"]]
    groups = api.get(f"/api/v1/users/{user['id']}/groups").get_json()
    assert [g["name"] for g in groups["results"]] == ["Village 1"]
