"""Canned replies through the API: create, list, delete; titles are unique whatever their letter
case; bad input is 400 naming the field; another project's canned reply is 404."""


def test_create_list_and_delete(api):
    first = api.post(
        "/api/v1/canned-replies", json={"title": "  Visit   moved ", "body": "Your visit moved.\r\nSee you"}
    )
    assert first.status_code == 201, first.get_json()
    created = first.get_json()
    assert created["title"] == "Visit moved" and created["body"] == "Your visit moved.\nSee you"
    second = api.post(
        "/api/v1/canned-replies", json={"title": "Address", "body": "Clinic, Main Road"}
    ).get_json()
    listed = api.get("/api/v1/canned-replies").get_json()
    assert [r["id"] for r in listed["results"]] == [second["id"], created["id"]]  # newest first
    assert listed["next"] is None
    assert api.delete(f"/api/v1/canned-replies/{created['id']}").status_code == 204
    assert [r["title"] for r in api.get("/api/v1/canned-replies").get_json()["results"]] == ["Address"]
    assert api.delete(f"/api/v1/canned-replies/{created['id']}").status_code == 404


def test_bad_input_is_400_and_a_title_taken_in_any_letter_case_is_409(api):
    assert (
        api.post("/api/v1/canned-replies", json={"title": "Émile's address", "body": "x"}).status_code == 201
    )
    for body, status, field in [
        ({"title": "ÉMILE'S ADDRESS", "body": "y"}, 409, "title"),
        ({"title": "émile's address", "body": "y"}, 409, "title"),
        ({"title": "", "body": "y"}, 400, "title"),
        ({"body": "y"}, 400, "title"),
        ({"title": "t" * 81, "body": "y"}, 400, "title"),
        ({"title": ["t"], "body": "y"}, 400, "title"),
        ({"title": "New", "body": "  "}, 400, "body"),
        ({"title": "New"}, 400, "body"),
        ({"title": "New", "body": "b" * 1601}, 400, "body"),
    ]:
        response = api.post("/api/v1/canned-replies", json=body)
        assert response.status_code == status, body
        assert response.get_json()["error"]["details"]["field"] == field, body
    assert [r["title"] for r in api.get("/api/v1/canned-replies").get_json()["results"]] == [
        "Émile's address"
    ]
    assert api.post("/api/v1/canned-replies", json={"title": "t" * 80, "body": "b" * 1600}).status_code == 201


def test_another_projects_canned_reply_is_404_and_not_listed(project, other_project, api):
    theirs = (
        other_project.api().post("/api/v1/canned-replies", json={"title": "Theirs", "body": "x"}).get_json()
    )
    assert api.delete(f"/api/v1/canned-replies/{theirs['id']}").status_code == 404
    assert api.get("/api/v1/canned-replies").get_json()["results"] == []
    assert len(other_project.api().get("/api/v1/canned-replies").get_json()["results"]) == 1
