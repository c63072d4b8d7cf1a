"""The cases and people pages (server-rendered), through a logged-in test client."""

import io

import openpyxl

from tests.conftest import login


def _form(api, app_id, user_id, blocks, **extra):
    r = api.post("/api/v1/forms", json={"app_id": app_id, "user_id": user_id, "cases": blocks, **extra})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_people_pages_create_worker_group_membership_and_app(web, api):
    r = web.post("/people/workers", {"username": "david", "language": "en"})
    assert r.status_code == 302
    r = web.post("/people/workers", {"username": "maria"})
    users = {u["username"]: u["id"] for u in api.get("/api/v1/users").get_json()["results"]}
    assert set(users) == {"david", "maria"}
    # duplicate username: a clear message, nothing created
    r = web.post("/people/workers", {"username": "David"}, follow_redirects=True)
    assert "already exists" in r.get_data(as_text=True)

    r = web.post("/people/groups", {"name": "Village 1", "case_sharing": "on"})
    assert r.status_code == 302
    group_id = api.get("/api/v1/groups").get_json()["results"][0]["id"]
    r = web.post(
        f"/people/groups/{group_id}",
        {"name": "Village 1", "case_sharing": "on", "members": list(users.values())},
    )
    assert r.status_code == 302
    group = api.get(f"/api/v1/groups/{group_id}").get_json()
    assert group["case_sharing"] is True and set(group["members"]) == set(users.values())
    page = web.get(f"/people/groups/{group_id}").get_data(as_text=True)
    assert "david" in page and "maria" in page

    # a worker's page edits their groups
    web.post(f"/people/workers/{users['maria']}", {})  # no boxes ticked: leaves all groups
    assert api.get(f"/api/v1/groups/{group_id}").get_json()["members"] == [users["david"]]
    web.post(f"/people/workers/{users['maria']}", {"groups": [group_id]})
    assert len(api.get(f"/api/v1/groups/{group_id}").get_json()["members"]) == 2

    r = web.post("/people/applications", {"name": "Community", "case_sharing": "on"})
    app = api.get("/api/v1/applications").get_json()["results"][0]
    assert app["case_sharing"] is True
    web.post(f"/people/applications/{app['id']}", {})  # switch unticked: off
    assert api.get(f"/api/v1/applications/{app['id']}").get_json()["case_sharing"] is False
    assert "Community" in web.get("/people/applications").get_data(as_text=True)


def test_case_list_search_filters_and_case_page(web, api):
    app_id = api.post("/api/v1/applications", json={"name": "A", "case_sharing": True}).get_json()["id"]
    david = api.post("/api/v1/users", json={"username": "david"}).get_json()["id"]
    maria = api.post("/api/v1/users", json={"username": "maria"}).get_json()["id"]
    group = api.post(
        "/api/v1/groups", json={"name": "Village 1", "case_sharing": True, "members": [david, maria]}
    )
    group_id = group.get_json()["id"]
    first = _form(
        api,
        app_id,
        david,
        [
            {
                "case_id": "case-monica",
                "create": {"case_type": "mother", "case_name": "Monica"},
                "update": {"phone_number": "0712345678", "village": "Kisumu", "external_id": "M-1"},
            },
            {"case_id": "case-zed", "create": {"case_type": "child", "case_name": "Zed"}},
        ],
        form_id="form-one",
    )
    _form(api, app_id, maria, [{"case_id": "case-monica", "update": {"visit": "2"}}], form_id="form-two")

    page = web.get("/cases").get_data(as_text=True)
    assert "Monica" in page and "Zed" in page and "Village 1 (group)" in page
    page = web.get("/cases?q=moni").get_data(as_text=True)
    assert "Monica" in page and "Zed" not in page
    page = web.get("/cases?q=%2B254712345678").get_data(as_text=True)
    assert "Monica" in page and "Zed" not in page
    page = web.get("/cases?case_type=child").get_data(as_text=True)
    assert "Zed" in page and "Monica" not in page
    page = web.get(f"/cases?owner={group_id}&status=all").get_data(as_text=True)
    assert "Zed" in page and "Monica" in page

    page = web.get("/cases/case-monica").get_data(as_text=True)
    assert "Kisumu" in page and "+254712345678" in page and "Village 1 (group)" in page
    assert "form-one" in page and "form-two" in page and "maria" in page  # history of forms
    page = web.get("/forms/form-one").get_data(as_text=True)
    assert "case-monica" in page and "case-zed" in page and "david" in page

    # the search box finds a case or a form by its id
    assert web.get("/search?q=case-monica").headers["Location"].endswith("/cases/case-monica")
    assert web.get(f"/search?q={first['form_id']}").headers["Location"].endswith("/forms/form-one")
    assert web.get("/search?q=M-1").headers["Location"].endswith("/cases/case-monica")
    r = web.get("/search?q=nothing-here", follow_redirects=True)
    assert "No case or form has the id" in r.get_data(as_text=True)
    assert web.get("/cases/nope").status_code == 404

    # the worker page shows the worker's case list (shared through the group)
    page = web.get(f"/people/workers/{maria}").get_data(as_text=True)
    assert "Monica" in page and "Zed" in page


def test_case_list_pages(web, api):
    from messaging.http.web import cases as web_cases

    app_id = api.post("/api/v1/applications", json={"name": "A"}).get_json()["id"]
    user = api.post("/api/v1/users", json={"username": "u"}).get_json()["id"]
    blocks = [
        {"case_id": f"c{i:03d}", "create": {"case_type": "t", "case_name": f"Case {i:03d}"}}
        for i in range(55)
    ]
    _form(api, app_id, user, blocks)
    page = web.get("/cases").get_data(as_text=True)
    assert page.count("/cases/c0") == web_cases.PAGE_SIZE
    start = page.index('id="next-page"')
    href = page[page.rindex('href="', 0, start) + 6 : page.index('"', page.rindex('href="', 0, start) + 6)]
    second = web.get(href.replace("&amp;", "&")).get_data(as_text=True)
    assert second.count("/cases/c0") == 5
    assert web.get("/cases?before=garbage").status_code == 400


def test_bulk_upload_page(web, api, run_jobs):
    page = web.get("/cases/import").get_data(as_text=True)
    assert "external_id" in page and 'type="file"' in page
    wb = openpyxl.Workbook()
    wb.active.append(["external_id", "case_type", "name"])
    wb.active.append(["E1", "mother", "Uploaded"])
    buf = io.BytesIO()
    wb.save(buf)
    r = web.post(
        "/cases/import", {"file": (io.BytesIO(buf.getvalue()), "c.xlsx")}, content_type="multipart/form-data"
    )
    assert r.status_code == 302 and "/imports/" in r.headers["Location"]
    run_jobs()
    page = web.get(r.headers["Location"]).get_data(as_text=True)
    assert "Bulk case upload" in page and "created" in page
    # a file that is not an .xlsx is refused with a message
    r = web.post(
        "/cases/import",
        {"file": (io.BytesIO(b"hello"), "c.txt")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "flash-error" in r.get_data(as_text=True)
    ex = web.get("/cases/import/example.xlsx")
    assert ex.status_code == 200 and ex.data[:2] == b"PK"


def test_viewer_cannot_change_people(app, project, api):
    from messaging.extensions import db
    from messaging.models import WebUser

    with project.scope():
        viewer = WebUser(email="viewer@alpha.example.org", role="viewer")
        viewer.set_password("viewer password")
        db.session.add(viewer)
        db.session.commit()
    web = login(app, "viewer@alpha.example.org", "viewer password")
    assert web.get("/people/workers").status_code == 200
    assert web.post("/people/workers", {"username": "nope"}).status_code == 403
    assert web.post("/people/groups", {"name": "nope"}).status_code == 403
    assert web.get("/cases/import").status_code == 403
    assert api.get("/api/v1/users").get_json()["results"] == []


def test_the_case_list_filters_by_any_property_and_keeps_the_filter_across_pages(project, web):
    from tests.factories import make_cases

    make_cases(
        project,
        [
            {"case_type": "mother", "name": f"High {i}", "properties": {"risk": "high", "weeks": str(10 + i)}}
            for i in range(60)
        ]
        + [{"case_type": "mother", "name": "Low one", "properties": {"risk": "low", "weeks": "30"}}],
    )
    args = "criteria-0-property=risk&criteria-0-op=eq&criteria-0-value=high"
    args += "&criteria-1-property=weeks&criteria-1-op=gt&criteria-1-value=40"
    page = web.get(f"/cases?{args}").get_data(as_text=True)
    names = {f"High {i}" for i in range(31, 60)}  # weeks 41..69
    assert (
        all(f">{n}<" in page for n in list(names)[:5]) and ">Low one<" not in page and ">High 30<" not in page
    )
    assert 'name="criteria-1-value" value="40"' in page and "<details" in page and " open>" in page
    first = web.get("/cases?criteria-0-property=risk&criteria-0-op=eq&criteria-0-value=high").get_data(
        as_text=True
    )
    assert ">Low one<" not in first and 'id="next-page"' in first  # 60 high: two pages
    next_url = first[first.index('id="next-page"') - 400 : first.index('id="next-page"')]
    next_url = next_url[next_url.rindex('href="') + 6 : next_url.rindex('"')].replace("&amp;", "&")
    assert "criteria-0-value=high" in next_url
    second = web.get(next_url).get_data(as_text=True)
    assert ">Low one<" not in second and second.count("High ") >= 10
    refused = web.get("/cases?criteria-0-property=risk&criteria-0-op=like&criteria-0-value=x")
    assert refused.status_code == 200
    assert "criteria.0.op" in refused.get_data(as_text=True) and ">Low one<" in refused.get_data(as_text=True)
