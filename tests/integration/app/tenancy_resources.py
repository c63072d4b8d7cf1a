"""How to make one resource of each kind in a project, for the tenancy walk.

Each URL parameter name used by an API or web route maps to a function that
creates such a resource through the API of the given project and returns its
id. A route whose parameter is missing here makes the tenancy test fail, so
every new route is checked against another project's ids.
"""


def _application(api):
    return api.post("/api/v1/applications", json={"name": "App"}).get_json()["id"]


def _user(api):
    return api.post("/api/v1/users", json={"username": "walker"}).get_json()["id"]


def _group(api):
    return api.post("/api/v1/groups", json={"name": "Walkers", "case_sharing": True}).get_json()["id"]


def _token(api):
    # API tokens are only listed in the UI; the project's first token has id 1+.
    from sqlalchemy import select

    from messaging.extensions import db
    from messaging.models import ApiToken, hash_token

    return db.session.execute(
        select(ApiToken.id).where(ApiToken.token_hash == hash_token(api.key))
    ).scalar_one()


def _form(api):
    app_id = _application(api)
    import uuid

    user_id = api.post("/api/v1/users", json={"username": f"former-{uuid.uuid4().hex[:8]}"}).get_json()["id"]
    body = {
        "app_id": app_id,
        "user_id": user_id,
        "cases": [{"create": {"case_type": "person", "case_name": "Walked"}}],
    }
    return api.post("/api/v1/forms", json=body).get_json()


def _case(api):
    return _form(api)["case_ids"][0]


def _message(api):
    response = api.post("/api/v1/messages", json={"phone": "+254712000999", "text": "theirs"})
    return response.get_json()["id"]


FACTORIES = {
    "case_id": _case,
    "form_id": lambda api: _form(api)["form_id"],
    "app_id": _application,
    "user_id": _user,
    "group_id": _group,
    "token_id": _token,
    "message_id": _message,
}


def _import(api):
    import io

    import openpyxl

    from messaging.imports import handlers, start

    if "echo" not in handlers.HANDLERS:
        handlers.register(handlers.ImportHandler("echo", "Echo", None, lambda imp, rows: []))
    wb = openpyxl.Workbook()
    wb.active.append(["case_identifier"])
    buf = io.BytesIO()
    wb.save(buf)
    return start.start_import("echo", buf.getvalue(), "x.xlsx").id


FACTORIES["import_id"] = _import


def _direct_case(api):
    # Cases are created directly (the cases API belongs to another area); the
    # factory runs inside the project's scope, so the row is stamped with it.
    from messaging.extensions import db
    from messaging.models import Case

    phone = "+256772123456"
    case = Case(case_type="person", name="Their case", phone_raw=phone, phone_number=phone)
    db.session.add(case)
    db.session.commit()
    return case.case_id


def _case_group(api):
    group_id = api.post("/api/v1/case-groups", json={"name": "Their group"}).get_json()["id"]
    case_id = _direct_case(api)
    assert api.post(f"/api/v1/case-groups/{group_id}/cases", json={"case_id": case_id}).status_code == 201
    return group_id


FACTORIES["case_group_id"] = _case_group


def _forwarding(api):
    return api.post(
        "/api/v1/forwarding", json={"url": "http://127.0.0.1:9/inbox", "kind": "cases"}
    ).get_json()["id"]


def _forward_record(api):
    from sqlalchemy import select

    from messaging.extensions import db
    from messaging.forwarding import capture
    from messaging.models import Case, ForwardRecord

    _forwarding(api)
    case = Case(case_type="person", name="Walker")
    db.session.add(case)
    db.session.flush()
    capture.capture_case(case)
    db.session.commit()
    return db.session.execute(select(ForwardRecord.id).order_by(ForwardRecord.id)).scalars().first()


FACTORIES["forwarding_id"] = _forwarding
FACTORIES["forward_record_id"] = _forward_record


def _survey(api):
    body = {"name": "Their survey", "questions": [{"id": "q", "type": "text", "text": "Theirs?"}]}
    return api.post("/api/v1/surveys", json=body).get_json()["id"]


def _keyword(api):
    return api.post("/api/v1/keywords", json={"keyword": "THEIRS", "reply_text": "theirs"}).get_json()["id"]


FACTORIES["survey_id"] = _survey
FACTORIES["keyword_id"] = _keyword


def _broadcast(api):
    # Scheduled far ahead so it stays editable (and deletable) during the walk.
    case_id = _direct_case(api)
    body = {
        "name": "Theirs",
        "recipients": {"cases": [case_id]},
        "text": "theirs",
        "send_at": "2099-01-01T09:00:00Z",
    }
    return api.post("/api/v1/broadcasts", json=body).get_json()["id"]


FACTORIES["broadcast_id"] = _broadcast


def _opted_out_phone(api):
    phone = "+256772123457"
    assert api.post("/api/v1/opt-outs", json={"phone": phone}).status_code == 201
    return phone


FACTORIES["phone"] = _opted_out_phone


def _canned_reply(api):
    return api.post("/api/v1/canned-replies", json={"title": "Theirs", "body": "theirs"}).get_json()["id"]


FACTORIES["canned_reply_id"] = _canned_reply


def _alert(api):
    body = {"name": "Theirs", "case_type": "person", "text": "theirs"}
    return api.post("/api/v1/alerts", json=body).get_json()["id"]


FACTORIES["alert_id"] = _alert


def _gateway(api):
    response = api.post("/api/v1/gateways", json={"kind": "console", "name": "Other project's console"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


FACTORIES["gateway_id"] = _gateway
