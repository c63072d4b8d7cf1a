"""Cases and forms API: phone numbers, filters, pagination, reads, and forms racing."""

import threading
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Case, CaseTransaction, Form
from tests.conftest import recorded_queries


def _setup(api, case_sharing=False):
    app_id = api.post("/api/v1/applications", json={"name": "A", "case_sharing": case_sharing}).get_json()[
        "id"
    ]
    user_id = api.post("/api/v1/users", json={"username": f"u{uuid.uuid4().hex[:6]}"}).get_json()["id"]
    return app_id, user_id


def _create(api, app_id, user_id, case_id=None, case_type="person", name="N", **update):
    block = {"create": {"case_type": case_type, "case_name": name}}
    if case_id:
        block["case_id"] = case_id
    if update:
        block["update"] = update
    r = api.post("/api/v1/forms", json={"app_id": app_id, "user_id": user_id, "cases": [block]})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["case_ids"][0]


def test_phone_numbers_are_stored_e164_beside_the_raw_value(api):
    app_id, user_id = _setup(api)  # project alpha: default country KE
    national = _create(api, app_id, user_id, phone_number="0712 345 678")
    intl = _create(api, app_id, user_id, phone_number="+256 772 123456")
    excel = _create(api, app_id, user_id, phone_number=254712345679)
    bad = _create(api, app_id, user_id, phone_number="call me maybe")
    c = api.get(f"/api/v1/cases/{national}").get_json()
    assert (c["phone_number"], c["phone_raw"], c["phone_invalid"]) == ("+254712345678", "0712 345 678", False)
    assert api.get(f"/api/v1/cases/{intl}").get_json()["phone_number"] == "+256772123456"
    assert api.get(f"/api/v1/cases/{excel}").get_json()["phone_number"] == "+254712345679"
    c = api.get(f"/api/v1/cases/{bad}").get_json()
    # an invalid number is kept raw and flagged, never dropped
    assert (c["phone_number"], c["phone_raw"], c["phone_invalid"]) == (None, "call me maybe", True)
    # the phone filter normalises what it is given
    for query in ("+254712345678", "254712345678", "0712-345-678"):
        found = api.get("/api/v1/cases", query_string={"phone_number": query}).get_json()["results"]
        assert [x["case_id"] for x in found] == [national], query
    found = api.get("/api/v1/cases", query_string={"phone_number": "call me maybe"}).get_json()["results"]
    assert [x["case_id"] for x in found] == [bad]
    # clearing the number
    api.post(
        "/api/v1/forms",
        json={
            "app_id": app_id,
            "user_id": user_id,
            "cases": [{"case_id": bad, "update": {"phone_number": ""}}],
        },
    )
    c = api.get(f"/api/v1/cases/{bad}").get_json()
    assert (c["phone_number"], c["phone_raw"], c["phone_invalid"]) == (None, None, False)


def test_national_numbers_use_the_projects_country(project, other_project):
    for handle, expected in ((project, "+254712345678"), (other_project, "+256712345678")):
        api = handle.api()  # alpha is KE, beta is UG
        app_id, user_id = _setup(api)
        case_id = _create(api, app_id, user_id, phone_number="0712345678")
        assert api.get(f"/api/v1/cases/{case_id}").get_json()["phone_number"] == expected


def test_update_fields_and_properties(api):
    app_id, user_id = _setup(api)
    case_id = _create(
        api, app_id, user_id, external_id="EXT-1", language="sw", age=31, pregnant=True, note="x"
    )
    c = api.get(f"/api/v1/cases/{case_id}").get_json()
    assert c["external_id"] == "EXT-1" and c["language"] == "sw"
    assert c["properties"] == {"age": 31, "pregnant": True, "note": "x"}
    r = api.post(
        "/api/v1/forms",
        json={
            "app_id": app_id,
            "user_id": user_id,
            "cases": [{"case_id": case_id, "update": {"note": None, "case_name": "Renamed", "age": 32}}],
        },
    )
    assert r.status_code == 201
    c = api.get(f"/api/v1/cases/{case_id}").get_json()
    assert c["name"] == "Renamed"
    assert c["properties"] == {"age": 32, "pregnant": True}


def test_list_filters_and_cursor_pagination(api):
    app_id, user_id = _setup(api)
    start = clock.now().replace(microsecond=0)
    ids = []
    for i in range(7):
        clock.set_now(start + timedelta(minutes=i))
        ids.append(
            _create(api, app_id, user_id, case_type="mother" if i % 2 else "child", external_id=f"E{i}")
        )
    # newest first, 3 a page, following next links
    seen, url = [], "/api/v1/cases?limit=3"
    while url:
        body = api.get(url).get_json()
        assert len(body["results"]) <= 3
        seen += [c["case_id"] for c in body["results"]]
        url = body["next"]
    assert seen == list(reversed(ids))
    mothers = api.get("/api/v1/cases?case_type=mother").get_json()["results"]
    assert {c["case_id"] for c in mothers} == {ids[1], ids[3], ids[5]}
    since = clock.isoformat(start + timedelta(minutes=5))
    recent = api.get("/api/v1/cases", query_string={"modified_since": since}).get_json()["results"]
    assert [c["case_id"] for c in recent] == [ids[6], ids[5]]
    assert [c["case_id"] for c in api.get("/api/v1/cases?external_id=E4").get_json()["results"]] == [ids[4]]
    assert api.get(f"/api/v1/cases?owner_id={user_id}&limit=250").get_json()["results"].__len__() == 7
    assert api.get("/api/v1/cases?owner_id=someone-else").get_json()["results"] == []
    assert api.get("/api/v1/cases?modified_since=yesterday").status_code == 400
    assert api.get("/api/v1/cases?closed=maybe").status_code == 400
    assert api.get("/api/v1/cases?closed=true").get_json()["results"] == []


def test_get_form_returns_its_case_blocks(api):
    app_id, user_id = _setup(api)
    body = {
        "form_id": "f-1",
        "app_id": app_id,
        "user_id": user_id,
        "answers": {"q1": "yes"},
        "cases": [
            {"case_id": "c-1", "create": {"case_type": "person", "case_name": "A"}, "update": {"p": "1"}},
            {"case_id": "c-1", "close": True},
        ],
    }
    r = api.post("/api/v1/forms", json=body)
    assert r.status_code == 201
    assert set(r.get_json()) == {"form_id", "received_on", "case_ids"}
    assert r.get_json()["form_id"] == "f-1" and r.get_json()["received_on"].endswith("Z")
    form = api.get("/api/v1/forms/f-1").get_json()
    assert form["answers"] == {"q1": "yes"} and form["source"] == "api"
    assert form["case_ids"] == ["c-1"]
    assert form["cases"] == [
        {
            "case_id": "c-1",
            "create": {"case_type": "person", "case_name": "A", "owner_id": None},
            "update": {"p": "1"},
        },
        {"case_id": "c-1", "close": True},
    ]
    assert api.get("/api/v1/forms/nope").status_code == 404
    assert [f["form_id"] for f in api.get(f"/api/v1/forms?user_id={user_id}").get_json()["results"]] == [
        "f-1"
    ]


def test_the_form_list_shows_each_forms_blocks_read_in_one_query_per_page(app, api):
    app_id, user_id = _setup(api)
    for n in range(4):
        blocks = [{"case_id": f"c-{n}", "create": {"case_type": "person", "case_name": f"N{n}"}}]
        blocks += [{"case_id": f"c-{n}", "update": {"visit": str(v)}} for v in range(n)]
        body = {"form_id": f"f-{n}", "app_id": app_id, "user_id": user_id, "cases": blocks}
        assert api.post("/api/v1/forms", json=body).status_code == 201

    with recorded_queries(app) as statements:
        listed = api.get(f"/api/v1/forms?user_id={user_id}").get_json()["results"]

    assert {f["form_id"]: [b.get("update") for b in f["cases"]] for f in listed} == {
        f"f-{n}": [None] + [{"visit": str(v)} for v in range(n)] for n in range(4)
    }
    assert sum("case_transactions" in statement for statement in statements) == 1


def test_server_makes_a_case_id_when_create_has_none(api):
    app_id, user_id = _setup(api)
    case_id = _create(api, app_id, user_id)
    assert len(case_id) == 32
    assert api.get(f"/api/v1/cases/{case_id}").status_code == 200


def test_openapi_documents_the_case_endpoints(api):
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/forms", "/api/v1/forms/{form_id}", "/api/v1/cases", "/api/v1/cases/{case_id}"):
        assert path in paths
    assert "/api/v1/users/{user_id}/cases" in paths


def _race(project, bodies):
    """Post the bodies at once from threads (each its own client and session)."""
    barrier = threading.Barrier(len(bodies))
    results = [None] * len(bodies)

    def run(i):
        client = project.api()
        barrier.wait()
        r = client.post("/api/v1/forms", json=bodies[i])
        results[i] = (r.status_code, r.get_json())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_forms_racing_on_one_case_lose_no_update(project, api):
    app_id, user_id = _setup(api)
    case_id = _create(api, app_id, user_id, case_id="shared-case")
    n = 8
    bodies = [
        {"app_id": app_id, "user_id": user_id, "cases": [{"case_id": case_id, "update": {f"p{i}": i}}]}
        for i in range(n)
    ]
    results = _race(project, bodies)
    assert [s for s, _ in results] == [201] * n, results
    props = api.get(f"/api/v1/cases/{case_id}").get_json()["properties"]
    assert props == {f"p{i}": i for i in range(n)}
    with project.scope():
        assert db.session.execute(select(func.count()).select_from(CaseTransaction)).scalar_one() == n + 1


def test_same_new_case_created_by_racing_forms_is_one_case(project, api):
    app_id, user_id = _setup(api)
    bodies = [
        {
            "app_id": app_id,
            "user_id": user_id,
            "cases": [
                {
                    "case_id": "twin",
                    "create": {"case_type": "person", "case_name": f"v{i}"},
                    "update": {f"p{i}": 1},
                }
            ],
        }
        for i in range(4)
    ]
    results = _race(project, bodies)
    assert [s for s, _ in results] == [201] * 4, results
    props = api.get("/api/v1/cases/twin").get_json()["properties"]
    assert props == {f"p{i}": 1 for i in range(4)}
    with project.scope():
        assert db.session.execute(select(func.count()).select_from(Case)).scalar_one() == 1


def test_same_form_id_racing_is_applied_once(project, api):
    app_id, user_id = _setup(api)
    body = {
        "form_id": "resent",
        "app_id": app_id,
        "user_id": user_id,
        "cases": [{"case_id": "once", "create": {"case_type": "person", "case_name": "x"}}],
    }
    results = _race(project, [body] * 6)
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * 5 + [201], results
    assert len({str(b) for _, b in results}) == 1
    with project.scope():
        assert db.session.execute(select(func.count()).select_from(Form)).scalar_one() == 1
        assert db.session.execute(select(func.count()).select_from(CaseTransaction)).scalar_one() == 1


def test_apply_form_service_for_other_callers(project, api):
    """SMS surveys and others call messaging.cases.forms.apply_form directly."""
    import pytest

    from messaging.cases.forms import apply_form
    from messaging.errors import Conflict

    app_id, user_id = _setup(api)
    seen = []
    with project.scope():
        body = {
            "app_id": app_id,
            "user_id": user_id,
            "cases": [{"case_id": "s1", "create": {"case_type": "p"}}],
        }
        result = apply_form(body, source="sms_survey", on_applied=lambda r: seen.append(r.form.form_id))
        assert result.created_case_ids == ["s1"] and not result.duplicate
        assert seen == [result.form.form_id]

        def fail(_result):
            raise Conflict("session_changed", "The survey session changed.")

        body2 = {
            "app_id": app_id,
            "user_id": user_id,
            "cases": [{"case_id": "s2", "create": {"case_type": "p"}}],
        }
        with pytest.raises(Conflict):
            apply_form(body2, source="sms_survey", on_applied=fail)
    assert api.get("/api/v1/forms/" + seen[0]).get_json()["source"] == "sms_survey"
    assert api.get("/api/v1/cases/s2").status_code == 404  # the callback's refusal rolled it all back
