"""The gateway and message endpoints, the messages page and its export, the gateway settings page."""

import io

from openpyxl import load_workbook
from sqlalchemy import select

from messaging.lib import clock
from tests.conftest import login
from tests.factories import T0, rows, send
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

TWILIO = {
    "kind": "twilio",
    "account_sid": DEFAULT_ACCOUNT_SID,
    "auth_token": DEFAULT_AUTH_TOKEN,
    "from_numbers": ["+15005550006", "+1 500 555 0007"],
    "mps": 10,
}


def test_gateway_defaults_to_console_and_never_returns_the_token(app, api, project):
    from messaging.extensions import db
    from messaging.models import GatewayConfig

    assert api.get("/api/v1/gateway").get_json()["kind"] == "console"
    response = api.put("/api/v1/gateway", json=TWILIO)
    assert response.status_code == 200
    body = response.get_json()
    assert body["kind"] == "twilio" and body["auth_token_set"] is True
    assert body["from_numbers"] == ["+15005550006", "+15005550007"]
    assert DEFAULT_AUTH_TOKEN not in response.get_data(as_text=True)
    assert DEFAULT_AUTH_TOKEN not in api.get("/api/v1/gateway").get_data(as_text=True)
    with project.scope():
        stored = db.session.execute(select(GatewayConfig)).scalar_one()
        assert DEFAULT_AUTH_TOKEN not in stored.auth_token_encrypted  # encrypted at rest
    # Saving again without the token keeps it.
    again = api.put(
        "/api/v1/gateway", json={k: v for k, v in TWILIO.items() if k != "auth_token"} | {"mps": 1}
    )
    assert again.status_code == 200 and again.get_json()["auth_token_set"] and again.get_json()["mps"] == 1


def test_gateway_validation_changes_nothing(app, api):
    api.put("/api/v1/gateway", json=TWILIO)
    cases = [
        ({"kind": "carrier-pigeon"}, "kind"),
        (TWILIO | {"account_sid": "nope"}, "account_sid"),
        (TWILIO | {"from_numbers": ["0712345678"]}, "from_numbers"),
        (TWILIO | {"from_numbers": []}, "from_numbers"),
        (TWILIO | {"mps": 0}, "mps"),
        (TWILIO | {"messaging_service_sid": "MGbad"}, "messaging_service_sid"),
        (
            {k: v for k, v in TWILIO.items() if k != "auth_token"} | {"account_sid": "AC" + "f" * 32},
            "auth_token",
        ),
    ]
    for body, field in cases:
        response = api.put("/api/v1/gateway", json=body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["details"]["field"] == field
    assert api.get("/api/v1/gateway").get_json()["mps"] == 10


def test_messaging_service_without_numbers(app, api):
    body = TWILIO | {"from_numbers": [], "messaging_service_sid": "MG" + "1" * 32}
    response = api.put("/api/v1/gateway", json=body)
    assert response.status_code == 200 and response.get_json()["messaging_service_sid"] == "MG" + "1" * 32


def test_only_admins_change_the_gateway(app, project):
    from messaging.extensions import db
    from messaging.models import ApiToken, WebUser

    with project.scope():
        user = WebUser(email="m@alpha.example.org", role="manager")
        user.set_password("long enough pw")
        db.session.add(user)
        db.session.flush()
        _, key = ApiToken.issue(user)
        db.session.commit()
    from tests.conftest import ApiClient

    manager = ApiClient(app.test_client(), key)
    assert manager.put("/api/v1/gateway", json=TWILIO).status_code == 403
    assert manager.get("/api/v1/gateway").status_code == 200


def _case(project, phone="+254712000301"):
    from messaging.extensions import db
    from messaging.models import Case

    with project.scope():
        case = Case(case_type="person", name="Amina", phone_number=phone)
        db.session.add(case)
        db.session.commit()
        return case.id, case.case_id


def test_list_messages_filters_and_pages(app, api, project, run_jobs):
    clock.set_now(T0)
    internal, public = _case(project)
    send(project, "+254712000301", "for the case", case_id=internal)
    with project.scope():
        from messaging.sms.outbox import queue_messages

        queue_messages(
            project.id,
            [{"phone": f"+25471500{i:04d}", "body": f"b{i}", "broadcast_id": "bb"} for i in range(5)],
        )
    send(project, "+254712000302", "x" * 200)
    body = api.get("/api/v1/messages").get_json()
    assert len(body["results"]) == 7 and body["next"] is None
    newest = body["results"][0]
    assert newest["body"] == "x" * 200 and newest["segments"] == 2 and newest["encoding"] == "GSM-7"
    assert newest["created_at"] == "2026-03-02T09:00:00Z" and newest["phone"] == "+254712000302"
    by_case = api.get(f"/api/v1/messages?case_id={public}").get_json()["results"]
    assert [m["body"] for m in by_case] == ["for the case"] and by_case[0]["case_id"] == public
    assert len(api.get("/api/v1/messages?broadcast=bb").get_json()["results"]) == 5
    assert api.get("/api/v1/messages?case_id=nosuchcase").get_json()["results"] == []
    page = api.get("/api/v1/messages?limit=3").get_json()
    seen = [m["id"] for m in page["results"]]
    while page["next"]:
        page = api.get(page["next"].replace("http://localhost", "")).get_json()
        seen += [m["id"] for m in page["results"]]
    assert seen == sorted(seen, reverse=True) and len(seen) == 7
    run_jobs()
    assert len(api.get("/api/v1/messages?status=sent&direction=outbound").get_json()["results"]) == 7
    assert api.get("/api/v1/messages?status=bogus").status_code == 400
    assert api.get("/api/v1/messages?direction=sideways").status_code == 400


def test_messages_of_another_project_are_invisible(app, api, other_project):
    send(other_project, "+254712000303", "theirs")
    assert api.get("/api/v1/messages").get_json()["results"] == []


def test_post_message_to_a_number_or_a_case(app, api, project, run_jobs):
    _, public = _case(project, "+254712000304")
    first = api.post("/api/v1/messages", json={"phone": "+254712000305", "text": "hello"})
    assert first.status_code == 201 and first.get_json()["status"] == "queued"
    second = api.post("/api/v1/messages", json={"case_id": public, "text": "hi Amina"})
    assert second.status_code == 201 and second.get_json()["phone"] == "+254712000304"
    assert second.get_json()["case_id"] == public
    assert api.post("/api/v1/messages", json={"phone": "0712", "text": "x"}).status_code == 400
    assert api.post("/api/v1/messages", json={"phone": "+254712000305"}).status_code == 400
    assert api.post("/api/v1/messages", json={"case_id": "missing", "text": "x"}).status_code == 404
    run_jobs()
    got = api.get(f"/api/v1/messages/{first.get_json()['id']}").get_json()
    assert got["status"] == "sent"
    assert api.get("/api/v1/messages/abc").status_code == 404


def test_segments_endpoint(api):
    body = api.post("/api/v1/messages/segments", json={"text": "Jambo 👋"}).get_json()
    assert body == {"encoding": "UCS-2", "segments": 1, "characters": 7, "units": 8}


def test_api_opt_out(app, api, project, run_jobs):
    assert api.post("/api/v1/opt-outs", json={"phone": "+254712000306"}).status_code == 201
    assert api.post("/api/v1/opt-outs", json={"phone": "+254712000306"}).status_code == 200
    assert api.post("/api/v1/opt-outs", json={"phone": "123"}).status_code == 400
    created = api.post("/api/v1/messages", json={"phone": "+254712000306", "text": "x"}).get_json()
    assert created["status"] == "failed" and created["skip_reason"] == "opted_out"


def test_messages_page_filters_and_sends(app, web, project, run_jobs):
    send(project, "+254712000307", "page one")
    send(project, "+254712000308", '=HYPERLINK("http://evil")')
    run_jobs()
    html = web.get("/messages").get_data(as_text=True)
    assert "page one" in html and "+254712000307" in html
    assert "page one" not in web.get("/messages?status=failed").get_data(as_text=True)
    response = web.post("/messages/send", {"phone": "+254712000309", "text": "from the page"})
    assert response.status_code == 302
    assert rows(project, phone="+254712000309")[0]["body"] == "from the page"
    response = web.post("/messages/send", {"phone": "0712", "text": "bad"})
    assert rows(project, phone="0712") == []


def test_export_xlsx_keeps_text_as_text(app, web, project, run_jobs):
    send(project, "+254712000310", "=1+1")
    send(project, "+254712000311", "plain")
    response = web.get("/messages/export.xlsx?status=queued")
    assert response.status_code == 200
    wb = load_workbook(io.BytesIO(response.data))
    ws = wb.active
    values = [[c.value for c in row] for row in ws.iter_rows()]
    header = values[0]
    body_col = header.index("body")
    assert {r[body_col] for r in values[1:]} == {"=1+1", "plain"}
    formula_cell = [row for row in ws.iter_rows(min_row=2) if row[body_col].value == "=1+1"][0][body_col]
    assert formula_cell.data_type == "s"


def test_gateway_settings_page(app, web, project):
    html = web.get("/settings").get_data(as_text=True)
    assert "/settings/gateway" in html
    response = web.post(
        "/settings/gateway",
        {
            "kind": "twilio",
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": DEFAULT_AUTH_TOKEN,
            "from_numbers": "+15005550006\n+15005550007",
            "mps": "5",
            "project_mps": "",
        },
    )
    assert response.status_code == 302
    page = web.get("/settings/gateway").get_data(as_text=True)
    assert "saved (hidden)" in page and DEFAULT_AUTH_TOKEN not in page
    assert "+15005550007" in page
    web.post("/settings/gateway", {"kind": "twilio", "account_sid": "bad", "mps": "5"})
    page = web.get("/settings/gateway").get_data(as_text=True)
    assert "Account SID is AC" in page  # the error, flashed
    assert project.api().get("/api/v1/gateway").get_json()["account_sid"] == DEFAULT_ACCOUNT_SID


def test_viewer_cannot_change_the_gateway_or_send(app, project):
    from messaging.extensions import db
    from messaging.models import WebUser

    with project.scope():
        user = WebUser(email="v@alpha.example.org", role="viewer")
        user.set_password("long enough pw")
        db.session.add(user)
        db.session.commit()
    viewer = login(app, "v@alpha.example.org", "long enough pw")
    assert viewer.get("/messages").status_code == 200
    assert viewer.post("/settings/gateway", {"kind": "console"}).status_code == 403
    assert viewer.post("/messages/send", {"phone": "+254712000312", "text": "x"}).status_code == 403
    assert rows(project) == []
