"""CommCare's read API at /a/<slug>/api/v0.5/: auth as commcare-export and OpenFn send it, the
envelope and offset pages, indexed_on (distinct, paging never stuck), filters, the JSON shapes,
tenancy across slugs, and CommCare's errors."""

from datetime import datetime

from messaging.lib import clock
from tests.integration.commcare.commcare_helpers import apikey, basic, submit, worker_and_app


def _get(project, path, headers=None, status=200):
    response = project.api().client.get(path, headers=headers if headers is not None else apikey(project))
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    return response.get_json()


def test_cases_and_forms_in_commcare_shapes(project):
    api = project.api()
    clock.set_now(datetime(2026, 3, 2, 9, 0))
    app_id, worker = worker_and_app(api)
    form = submit(
        api,
        app_id,
        worker,
        [
            {
                "case_id": "mama-1",
                "create": {"case_type": "mother", "case_name": "Amina", "owner_id": worker},
                "update": {"phone_number": "+254712000701", "village": "Siaya", "parity": 2},
            }
        ],
        answers={"q1": "yes", "weight": 3.5},
        xmlns="http://openrosa.org/formdesigner/ANC-REG",
        name="Register mother",
    )
    slug = project.slug
    page = _get(project, f"/a/{slug}/api/v0.5/case/?type=mother&limit=200&order_by=indexed_on")
    assert page["meta"] == {"limit": 200, "offset": 0, "next": None, "previous": None, "total_count": 1}
    [case] = page["objects"]
    assert case["id"] == case["case_id"] == "mama-1" and case["domain"] == slug
    assert case["properties"] == {
        "case_name": "Amina",
        "case_type": "mother",
        "owner_id": worker,
        "external_id": "",
        "date_opened": "2026-03-02T09:00:00.000000Z",
        "village": "Siaya",
        "parity": "2",
        "contact_phone_number": "+254712000701",
    }
    assert case["xform_ids"] == [form["form_id"]] and case["indices"] == {} and case["closed"] is False
    assert case["indexed_on"].endswith("Z") and len(case["indexed_on"]) == len("2026-03-02T09:00:00.000000Z")
    assert case["resource_uri"] == f"/a/{slug}/api/v0.5/case/mama-1/"
    assert _get(project, f"/a/{slug}/api/v0.5/case/mama-1/") == case
    assert _get(project, f"/a/{slug}/api/v0.4/case/mama-1") == case  # v0.4, no trailing slash

    [shown] = _get(project, f"/a/{slug}/api/v0.5/form/?xmlns.exact=http://openrosa.org/formdesigner/ANC-REG")[
        "objects"
    ]
    assert shown["id"] == form["form_id"] and shown["app_id"] == app_id
    body = shown["form"]
    assert (body["#type"], body["@xmlns"], body["@name"]) == (
        "data",
        "http://openrosa.org/formdesigner/ANC-REG",
        "Register mother",
    )
    assert (body["q1"], body["weight"]) == ("yes", "3.5")
    assert body["case"]["@case_id"] == "mama-1" and body["case"]["create"]["case_type"] == "mother"
    assert body["case"]["update"]["parity"] == "2"
    assert body["meta"]["instanceID"] == form["form_id"] and body["meta"]["userID"] == worker
    assert shown["metadata"]["userID"] == worker
    assert _get(project, f"/a/{slug}/api/v0.5/form/?xmlns=other")["objects"] == []
    assert [f["id"] for f in _get(project, f"/a/{slug}/api/v0.5/form/?case_id=mama-1")["objects"]] == [
        form["form_id"]
    ]

    [user] = _get(project, f"/a/{slug}/api/v0.5/user/")["objects"]
    assert (user["id"], user["username"], user["groups"]) == (worker, "nurse", [])
    assert user["user_data"]["commcare_project"] == slug
    assert _get(project, f"/a/{slug}/api/v0.5/location_type/?limit=200")["objects"] == []
    assert _get(project, f"/a/{slug}/api/v0.5/location/")["meta"]["total_count"] == 0


def test_pages_by_offset_and_indexed_on_never_tie(project):
    """One form writes 25 cases in one transaction: every case still has its own indexed_on, so
    asking again from the last row's stamp (as commcare-export does) moves on."""
    api = project.api()
    app_id, worker = worker_and_app(api)
    blocks = [
        {"case_id": f"c-{i:02d}", "create": {"case_type": "person", "case_name": f"P{i}"}} for i in range(25)
    ]
    submit(api, app_id, worker, blocks)
    slug = project.slug
    url = f"/a/{slug}/api/v0.5/case/?limit=10&order_by=indexed_on"
    first = _get(project, url)
    stamps = [c["indexed_on"] for c in first["objects"]]
    assert len(set(stamps)) == 10 and stamps == sorted(stamps)
    assert first["meta"]["total_count"] == 25 and first["meta"]["next"].endswith("limit=10&offset=10")
    # commcare-export: the next request from the last object's stamp (naive, inclusive)
    since = stamps[-1].rstrip("Z")
    again = _get(project, f"{url}&indexed_on_start={since}")
    assert again["objects"][0]["id"] == first["objects"][-1]["id"] and len(again["objects"]) == 10
    seen, next_url = [], url
    while next_url:  # OpenFn: offset paging through meta.next
        page = _get(project, next_url)
        seen += [c["id"] for c in page["objects"]]
        next_url = page["meta"]["next"]
    assert seen == [f"c-{i:02d}" for i in range(25)]
    last = _get(project, f"/a/{slug}/api/v0.5/case/?limit=10&offset=20&order_by=-indexed_on")
    assert [c["id"] for c in last["objects"]] == ["c-04", "c-03", "c-02", "c-01", "c-00"]
    assert last["meta"]["next"] is None and "offset=10" in last["meta"]["previous"]


def test_auth_schemes_and_tenancy(app, project, other_project):
    slug = project.slug
    path = f"/a/{slug}/api/v0.5/case/"
    assert _get(project, path, apikey(project, "apikey"))["objects"] == []  # commcare-export's spelling
    assert _get(project, path, basic(project.admin_email, project.password))["objects"] == []
    unauthorised = project.api().client.get(path)
    assert unauthorised.status_code == 401 and "Basic" in unauthorised.headers["WWW-Authenticate"]
    assert "apikey" in unauthorised.get_json()["error"]
    assert _get(project, path, basic(project.admin_email, "wrong"), status=401)["error"]
    wrong_user = {"Authorization": f"ApiKey someone@else.org:{project.key}"}
    assert _get(project, path, wrong_user, status=401)["error"]
    # another project's slug, with this project's key: 404 and nothing of theirs
    response = project.api().client.get(f"/a/{other_project.slug}/api/v0.5/case/", headers=apikey(project))
    assert response.status_code == 404 and response.get_data() == b""
    assert project.api().client.get("/a/nope/api/v0.5/case/", headers=apikey(project)).status_code == 404
    assert (
        project.api().client.get(f"/a/{slug}/api/v0.5/case/missing/", headers=apikey(project)).status_code
        == 404
    )
    assert project.api().client.get(f"/a/{slug}/api/v9/case/", headers=apikey(project)).status_code == 404


def test_bad_parameters_are_commcare_errors(project):
    slug = project.slug
    for query in ("limit=ten", "offset=-1", "order_by=name", "indexed_on_start=yesterday", "closed=maybe"):
        assert "error" in _get(project, f"/a/{slug}/api/v0.5/case/?{query}", status=400)
    assert "error" in _get(project, f"/a/{slug}/api/v0.5/user/?group=unknown", status=400)
    capped = _get(project, f"/a/{slug}/api/v0.5/case/?limit=100000")
    assert capped["meta"]["limit"] == 5000


def test_messaging_events_filter_by_activity_and_case(project):
    from tests.factories import make_case, send

    clock.set_now(datetime(2026, 3, 2, 9, 0))
    case_id = make_case(project, name="Eve", phone="+254712009901")
    send(project, "+254712009901", "Hello")
    slug = project.slug
    url = f"/a/{slug}/api/v0.5/messaging-event/?order_by=date_last_activity"
    [event] = _get(project, url)["objects"]
    assert event["messages"][0]["direction"] == "outgoing" and event["messages"][0]["content"] == "Hello"
    assert len(_get(project, f"{url}&date_last_activity.gte=2026-03-02T08:59:00")["objects"]) == 1
    assert _get(project, f"{url}&date_last_activity.gte=2026-03-02T09:01:00")["objects"] == []
    assert _get(project, f"{url}&date.lt=2026-03-02T09:00:00")["objects"] == []
    assert _get(project, f"{url}&case_id=nobody")["objects"] == []
    assert "error" in _get(project, f"{url}&date.gt=soon", status=400)
    assert _get(project, f"/a/{slug}/api/v0.5/messaging-event/{event['id']}/")["id"] == event["id"]
    assert case_id
