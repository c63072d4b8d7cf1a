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


FACTORIES = {
    "app_id": _application,
    "user_id": _user,
    "group_id": _group,
    "token_id": _token,
}


def _import(api):
    import io

    import openpyxl

    from messaging import imports

    if "echo" not in imports.HANDLERS:
        imports.register(imports.ImportHandler("echo", "Echo", None, lambda imp, rows: []))
    wb = openpyxl.Workbook()
    wb.active.append(["case_identifier"])
    buf = io.BytesIO()
    wb.save(buf)
    return imports.start_import("echo", buf.getvalue(), "x.xlsx").id


FACTORIES["import_id"] = _import


def _forwarding(api):
    return api.post(
        "/api/v1/forwarding", json={"url": "http://127.0.0.1:9/inbox", "kind": "cases"}
    ).get_json()["id"]


def _forward_record(api):
    from sqlalchemy import select

    from messaging import forwarding
    from messaging.extensions import db
    from messaging.models import Case, ForwardRecord

    _forwarding(api)
    case = Case(case_type="person", name="Walker")
    db.session.add(case)
    db.session.flush()
    forwarding.capture_case(case)
    db.session.commit()
    return db.session.execute(select(ForwardRecord.id).order_by(ForwardRecord.id)).scalars().first()


FACTORIES["forwarding_id"] = _forwarding
FACTORIES["forward_record_id"] = _forward_record
