"""The forwarding API's contract (status codes, error codes, masking, pagination) and its pages."""

import pytest
from sqlalchemy import func, select

from messaging.extensions import db
from messaging.forwarding.capture import capture_form
from messaging.lib import clock
from messaging.models import Form, ForwardLocation, ForwardRecord
from tests.conftest import ApiClient, login
from tests.fakes.http_receiver import Receiver

SECRET = "Bearer abcdefghijklmnop-1234"


def _count(project):
    with project.scope():
        return db.session.execute(select(func.count()).select_from(ForwardLocation)).scalar_one()


def test_auth_is_required(app):
    assert app.test_client().get("/api/v1/forwarding").status_code == 401
    response = app.test_client().post("/api/v1/forwarding", json={"url": "http://x.org", "kind": "forms"})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "forms"}, "url"),
        ({"url": "ftp://example.org/in", "kind": "forms"}, "url"),
        ({"url": "javascript:alert(1)", "kind": "forms"}, "url"),
        ({"url": "https://", "kind": "forms"}, "url"),
        ({"url": "https://user:pw@example.org/", "kind": "forms"}, "url"),
        ({"url": "https://exa mple.org/", "kind": "forms"}, "url"),
        ({"url": 42, "kind": "forms"}, "url"),
        ({"url": "https://example.org/in"}, "kind"),
        ({"url": "https://example.org/in", "kind": "messages"}, "kind"),
        ({"url": "https://example.org/in", "kind": "forms", "headers": ["a"]}, "headers"),
        ({"url": "https://example.org/in", "kind": "forms", "headers": {"X-A": 1}}, "headers"),
        ({"url": "https://example.org/in", "kind": "forms", "headers": {"Bad Name": "x"}}, "headers"),
        ({"url": "https://example.org/in", "kind": "forms", "headers": {"Host": "evil"}}, "headers"),
        ({"url": "https://example.org/in", "kind": "forms", "headers": {"X-A": "a\r\nX-B: b"}}, "headers"),
        (
            {"url": "https://example.org/in", "kind": "forms", "notify_emails": ["not-an-email"]},
            "notify_emails",
        ),
        ({"url": "https://example.org/in", "kind": "forms", "notify_emails": [1]}, "notify_emails"),
        ({"url": "https://example.org/in", "kind": "forms", "paused": "yes"}, "paused"),
        ({"url": "https://example.org/in", "kind": "forms", "name": 5}, "name"),
    ],
)
def test_bad_input_is_400_with_the_field_and_creates_nothing(project, api, body, field):
    response = api.post("/api/v1/forwarding", json=body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and error["details"]["field"] == field
    assert error["message"].startswith(field)
    assert _count(project) == 0


def test_non_json_is_415(project, api):
    response = api.post("/api/v1/forwarding", data="url=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert _count(project) == 0


def test_create_answers_201_and_never_shows_secret_header_values(project, api):
    response = api.post(
        "/api/v1/forwarding",
        json={
            "url": "https://www.openfn.org/inbox/abc",
            "kind": "forms",
            "name": "OpenFn",
            "headers": {"Authorization": SECRET, "X-Api-Key": "short", "X-Source": "sms"},
            "notify_emails": ["Ops@Example.org", "ops@example.org", "me@example.org"],
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["url"] == "https://www.openfn.org/inbox/abc" and body["kind"] == "forms"
    assert body["headers"] == {"Authorization": "****1234", "X-Api-Key": "****", "X-Source": "sms"}
    assert body["notify_emails"] == ["Ops@example.org", "ops@example.org", "me@example.org"]
    assert body["paused"] is False and body["created_at"].endswith("Z")
    assert body["counts"] == {"pending": 0, "sending": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    text = api.get(f"/api/v1/forwarding/{body['id']}").get_data(as_text=True)
    assert SECRET not in text and "abcdefghijklmnop" not in text
    assert SECRET not in api.get("/api/v1/forwarding").get_data(as_text=True)


def test_patch_keeps_a_secret_sent_back_masked_and_refuses_changing_kind(project, api):
    location = api.post(
        "/api/v1/forwarding",
        json={"url": "https://example.org/a", "kind": "cases", "headers": {"Authorization": SECRET}},
    ).get_json()
    changed = api.patch(
        f"/api/v1/forwarding/{location['id']}",
        json={"url": "https://example.org/b", "headers": {**location["headers"], "X-New": "1"}},
    )
    assert changed.status_code == 200
    assert changed.get_json()["url"] == "https://example.org/b"
    with project.scope():
        stored = db.session.get(ForwardLocation, location["id"])
        assert stored.headers == {"Authorization": SECRET, "X-New": "1"}
    refused = api.patch(f"/api/v1/forwarding/{location['id']}", json={"kind": "forms"})
    assert refused.status_code == 400 and refused.get_json()["error"]["details"]["field"] == "kind"
    bad = api.patch(f"/api/v1/forwarding/{location['id']}", json={"url": "ftp://x"})
    assert bad.status_code == 400
    with project.scope():
        assert db.session.get(ForwardLocation, location["id"]).url == "https://example.org/b"
    assert api.patch("/api/v1/forwarding/nope", json={"paused": True}).status_code == 404


def test_list_is_paginated_newest_first(project, api):
    ids = []
    for n in range(3):
        clock.set_now(clock.now() if n == 0 else clock.advance(minutes=1))
        ids.append(
            api.post("/api/v1/forwarding", json={"url": f"https://e.org/{n}", "kind": "forms"}).get_json()[
                "id"
            ]
        )
    page = api.get("/api/v1/forwarding?limit=2").get_json()
    assert [loc["id"] for loc in page["results"]] == [ids[2], ids[1]]
    rest = api.get(page["next"].replace("http://localhost", "")).get_json()
    assert [loc["id"] for loc in rest["results"]] == [ids[0]] and rest["next"] is None
    assert api.get("/api/v1/forwarding?limit=0").status_code == 400
    assert api.get("/api/v1/forwarding?cursor=garbage").get_json()["error"]["code"] == "invalid_cursor"


def test_records_and_attempts_filters(project, api):
    location_id = api.post("/api/v1/forwarding", json={"url": "https://e.org/", "kind": "forms"}).get_json()[
        "id"
    ]
    with project.scope():
        for _ in range(3):
            form = Form(app_id="a", user_id="u", answers={}, case_ids=[])
            db.session.add(form)
            db.session.flush()
            capture_form(form, [])
        db.session.commit()
    page = api.get(f"/api/v1/forwarding/{location_id}/records?status=pending&limit=2").get_json()
    assert len(page["results"]) == 2 and page["next"]
    assert page["results"][0]["id"] > page["results"][1]["id"]
    one = api.get(f"/api/v1/forwarding/records/{page['results'][0]['id']}").get_json()
    payload_keys = {
        "form_id",
        "received_on",
        "app_id",
        "user_id",
        "answers",
        "case_ids",
        "source",
        "xmlns",
        "name",
        "cases",
    }
    assert set(one["payload"]) == payload_keys
    assert api.get(f"/api/v1/forwarding/{location_id}/records?status=sent").status_code == 400
    assert api.get(f"/api/v1/forwarding/{location_id}/attempts?outcome=maybe").status_code == 400
    assert api.get(f"/api/v1/forwarding/{location_id}/attempts?record_id=x").status_code == 400
    assert api.get(f"/api/v1/forwarding/{location_id}/attempts").get_json() == {"results": [], "next": None}
    assert api.get("/api/v1/forwarding/records/999999").status_code == 404


def test_a_viewer_can_read_but_not_change(app, project, api):
    from messaging.models import ApiToken, WebUser

    location_id = api.post("/api/v1/forwarding", json={"url": "https://e.org/", "kind": "forms"}).get_json()[
        "id"
    ]
    with project.scope():
        viewer = WebUser(email="viewer@alpha.example.org", role="viewer")
        viewer.set_password("correct horse battery")
        db.session.add(viewer)
        db.session.flush()
        _, key = ApiToken.issue(viewer, "read")
        db.session.commit()
    viewer_api = ApiClient(app.test_client(), key)
    assert viewer_api.get(f"/api/v1/forwarding/{location_id}").status_code == 200
    response = viewer_api.patch(f"/api/v1/forwarding/{location_id}", json={"paused": True})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert (
        viewer_api.post("/api/v1/forwarding", json={"url": "https://e.org/", "kind": "forms"}).status_code
        == 403
    )
    web = login(app, "viewer@alpha.example.org", "correct horse battery")
    assert web.get("/settings/forwarding").status_code == 200
    assert web.post(f"/settings/forwarding/{location_id}/pause").status_code == 403


def test_openapi_documents_every_forwarding_endpoint(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    assert set(paths["/api/v1/forwarding"]) == {"get", "post"}
    assert set(paths["/api/v1/forwarding/{forwarding_id}"]) == {"get", "patch", "delete"}
    for path in (
        "/api/v1/forwarding/{forwarding_id}/attempts",
        "/api/v1/forwarding/{forwarding_id}/records",
        "/api/v1/forwarding/records/{forward_record_id}",
    ):
        assert "get" in paths[path]
    for path in ("resend", "cancel"):
        assert "post" in paths[f"/api/v1/forwarding/records/{{forward_record_id}}/{path}"]
    post = paths["/api/v1/forwarding"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["required"] == ["url", "kind"]
    assert "201" in post["responses"] and "400" in post["responses"]
    assert "ForwardingAttempt" in doc["components"]["schemas"]


# --- the pages ---------------------------------------------------------------------------------------


def test_settings_links_to_the_forwarding_page_and_a_location_is_added_there(project, web):
    settings = web.get("/settings").get_data(as_text=True)
    assert 'href="/settings/forwarding"' in settings
    assert "No forwarding locations yet." in web.get("/settings/forwarding").get_data(as_text=True)
    response = web.post(
        "/settings/forwarding",
        {
            "url": "https://www.openfn.org/inbox/x",
            "kind": "cases",
            "headers": f"Authorization: {SECRET}\nX-Source: sms",
            "notify_emails": "ops@example.org, me@example.org",
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Forwarding cases to https://www.openfn.org/inbox/x" in page
    assert "Authorization: ****1234" in page and SECRET not in page
    assert "ops@example.org, me@example.org" in page
    with project.scope():
        (location,) = db.session.execute(select(ForwardLocation)).scalars().all()
        assert location.headers == {"Authorization": SECRET, "X-Source": "sms"}


def test_the_page_refuses_bad_input_with_a_message(project, web):
    response = web.post(
        "/settings/forwarding", {"url": "ftp://x.org", "kind": "forms"}, follow_redirects=True
    )
    assert "must start with http:// or https://" in response.get_data(as_text=True)
    response = web.post(
        "/settings/forwarding",
        {"url": "https://x.org", "kind": "forms", "headers": "no colon here"},
        follow_redirects=True,
    )
    assert "line 1 must look like" in response.get_data(as_text=True)
    assert _count(project) == 0


def test_the_location_page_shows_failures_first_and_the_email_and_its_buttons_work(
    app, project, web, run_jobs
):
    app.config["FORWARDING_RETRY_DELAYS"], saved = [], app.config["FORWARDING_RETRY_DELAYS"]
    clock.set_now(clock.now())
    try:
        with Receiver.start() as rx:
            rx.script = [500]
            location_id = (
                project.api()
                .post(
                    "/api/v1/forwarding",
                    json={"url": rx.url + "/in", "kind": "forms", "notify_emails": ["ops@example.org"]},
                )
                .get_json()["id"]
            )
            form_ids = []
            with project.scope():
                for _ in range(2):
                    form = Form(app_id="a", user_id="u", answers={}, case_ids=[])
                    db.session.add(form)
                    db.session.flush()
                    capture_form(form, [])
                    form_ids.append(form.form_id)
                db.session.commit()
            run_jobs()
            page = web.get(f"/settings/forwarding/{location_id}").get_data(as_text=True)
            records_table = page[page.index('id="forwarding-records"') :]
            # The failed (older) record is listed before the succeeded one.
            assert records_table.index(form_ids[0]) < records_table.index(form_ids[1])
            assert "gave up" in records_table and "e-mailed" in page
            assert "Data forwarding failed: 1 record(s)" in page  # the e-mail, shown on the page
            index = web.get("/settings/forwarding").get_data(as_text=True)
            attempts = index[index.index("forwarding-attempts") :]
            assert attempts.index("attempt-failed") < attempts.index("attempt-ok")

            with project.scope():
                failed_id = db.session.execute(
                    select(ForwardRecord.id).where(ForwardRecord.status == "failed")
                ).scalar_one()
            assert web.post(f"/settings/forwarding/{location_id}/pause").status_code == 302
            assert "Resume" in web.get(f"/settings/forwarding/{location_id}").get_data(as_text=True)
            web.post(f"/settings/forwarding/records/{failed_id}/resend")
            run_jobs()
            assert rx.count == 2  # paused: resend queued it but nothing is sent
            web.post(f"/settings/forwarding/{location_id}/resume")
            run_jobs()
            assert rx.count == 3
            response = web.post(f"/settings/forwarding/records/{failed_id}/cancel", follow_redirects=True)
            assert "Only a pending record can be cancelled" in response.get_data(as_text=True)
            web.post(f"/settings/forwarding/{location_id}/delete")
            assert _count(project) == 0
    finally:
        app.config["FORWARDING_RETRY_DELAYS"] = saved
