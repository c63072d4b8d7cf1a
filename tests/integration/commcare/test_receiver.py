"""CommCare's XForm receiver: Dimagi's sample submission (create, update, index, a close of
another case, meta), OpenFn's (no meta block), multipart, resubmission, OpenRosa answers for
refusals, hostile XML refused with nothing changed, mobile workers' Basic auth, tenancy."""

from sqlalchemy import func, select

from messaging.extensions import db
from messaging.models import Case, Form
from tests.integration.commcare.commcare_helpers import apikey, basic, submit, worker_and_app

SAMPLE = """<?xml version="1.0" ?>
<data xmlns="http://openrosa.org/formdesigner/9baceb4c25a5" name="Register mother" uiVersion="1" version="41">
  <mother_name>Monica</mother_name>
  <n0:case xmlns:n0="http://commcarehq.org/case/transaction/v2"
           case_id="47035f62-c91d-4811-adfd-9d925bc61b99"
           date_modified="2024-05-01T08:00:00.000Z" user_id="{worker}">
    <n0:create>
      <n0:case_type>mother</n0:case_type>
      <n0:case_name>Monica</n0:case_name>
      <n0:owner_id>{worker}</n0:owner_id>
    </n0:create>
    <n0:update>
      <n0:external_id>MOTHER-001</n0:external_id>
      <n0:contact_phone_number>+254712345678</n0:contact_phone_number>
      <n0:village>Kisumu</n0:village>
    </n0:update>
    <n0:index><n0:parent case_type="household" relationship="child">8f1c-household</n0:parent></n0:index>
  </n0:case>
  <followup>
    <case xmlns="http://commcarehq.org/case/transaction/v2" case_id="old-case"
          date_modified="2024-05-01T08:00:00.000Z" user_id="{worker}"><close/></case>
  </followup>
  <n1:meta xmlns:n1="http://openrosa.org/jr/xforms">
    <n1:deviceID>integration</n1:deviceID>
    <n1:timeStart>2024-05-01T07:59:40.000Z</n1:timeStart>
    <n1:timeEnd>2024-05-01T08:00:00.000Z</n1:timeEnd>
    <n1:username>nurse</n1:username>
    <n1:userID>{worker}</n1:userID>
    <n1:instanceID>dca03509-4446-41dc-8352-2bb6f8516c7b</n1:instanceID>
  </n1:meta>
</data>"""

OPENFN = """<data xmlns="http://openrosa.org/formdesigner/openfn-visit"><visit_note>ok</visit_note>
<case xmlns="http://commcarehq.org/case/transaction/v2" case_id="{case_id}">
<update><visit>2</visit></update></case>
</data>"""


def _post(project, path, body, headers=None, content_type="text/xml"):
    return project.api().client.post(
        path,
        data=body,
        headers=headers if headers is not None else apikey(project),
        content_type=content_type,
    )


def _counts(project):
    with project.scope():
        return (
            db.session.execute(select(func.count()).select_from(Form)).scalar_one(),
            db.session.execute(select(func.count()).select_from(Case)).scalar_one(),
        )


def _nature(response):
    text = response.get_data(as_text=True)
    assert "http://openrosa.org/http/response" in text
    return text.split('nature="')[1].split('"')[0]


def test_dimagis_sample_submission_then_openfns_without_meta(project):
    api = project.api()
    app_id, worker = worker_and_app(api)
    submit(
        api, app_id, worker, [{"case_id": "old-case", "create": {"case_type": "mother", "case_name": "Old"}}]
    )
    xml = SAMPLE.replace("{worker}", worker)
    response = _post(project, f"/a/{project.slug}/receiver/{app_id}/", xml.encode())
    assert response.status_code == 201 and _nature(response) == "submit_success"
    slug = project.slug
    case = api.client.get(
        f"/a/{slug}/api/v0.5/case/47035f62-c91d-4811-adfd-9d925bc61b99/", headers=apikey(project)
    ).get_json()
    assert case["properties"]["external_id"] == "MOTHER-001" and case["properties"]["village"] == "Kisumu"
    assert case["properties"]["contact_phone_number"] == "+254712345678"
    assert case["indices"] == {
        "parent": {"case_type": "household", "case_id": "8f1c-household", "relationship": "child"}
    }
    assert case["xform_ids"] == ["dca03509-4446-41dc-8352-2bb6f8516c7b"]
    assert api.get("/api/v1/cases/old-case").get_json()["closed"] is True
    form = api.client.get(
        f"/a/{slug}/api/v0.5/form/dca03509-4446-41dc-8352-2bb6f8516c7b/", headers=apikey(project)
    ).get_json()
    assert form["form"]["@xmlns"] == "http://openrosa.org/formdesigner/9baceb4c25a5"
    assert form["form"]["@name"] == "Register mother" and form["form"]["mother_name"] == "Monica"
    assert form["form"]["case"]["@case_id"] == "47035f62-c91d-4811-adfd-9d925bc61b99"
    assert form["form"]["followup"]["case"]["close"] == ""
    assert form["metadata"]["deviceID"] == "integration" and form["is_phone_submission"] is True

    before = _counts(project)
    again = _post(project, f"/a/{slug}/receiver/{app_id}/", xml.encode())  # resubmitted instanceID
    assert again.status_code == 201 and _nature(again) == "submit_success" and _counts(project) == before

    # OpenFn: a web user's key, no meta block, receiver/<appId>/
    openfn = OPENFN.replace("{case_id}", "47035f62-c91d-4811-adfd-9d925bc61b99")
    response = _post(project, f"/a/{slug}/receiver/{app_id}/", openfn.encode())
    assert response.status_code == 201 and _nature(response) == "submit_success"
    assert (
        api.get("/api/v1/cases/47035f62-c91d-4811-adfd-9d925bc61b99").get_json()["properties"]["visit"] == "2"
    )
    assert _counts(project) == (before[0] + 1, before[1])


def test_multipart_and_a_mobile_workers_basic_login(project):
    api = project.api()
    app_id, worker = worker_and_app(api, username="field1", password="s3cret-pass")
    xml = OPENFN.replace("{case_id}", "new-one").replace(
        "<update>", "<create><case_type>visit</case_type><case_name>V</case_name></create><update>"
    )
    response = project.api().client.post(
        f"/a/{project.slug}/receiver/api/",
        data={"xml_submission_file": (__import__("io").BytesIO(xml.encode()), "form.xml")},
        headers=basic(f"field1@{project.slug}.commcarehq.org", "s3cret-pass"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201 and _nature(response) == "submit_success"
    case = api.get("/api/v1/cases/new-one").get_json()
    assert case["owner_id"] == worker and case["user_id"] == worker  # the worker who logged in
    refused = _post(project, f"/a/{project.slug}/receiver/", xml.encode(), basic("field1", "wrong"))
    assert refused.status_code == 401


def test_refusals_answer_openrosa_and_change_nothing(project, other_project):
    api = project.api()
    app_id, worker = worker_and_app(api)
    before = _counts(project)
    unknown_case = OPENFN.replace("{case_id}", "nobody")
    v2 = _post(project, f"/a/{project.slug}/receiver/{app_id}/", unknown_case.encode())
    assert v2.status_code == 201 and _nature(v2) == "submit_error" and "nobody" in v2.get_data(as_text=True)
    v3 = project.api().client.post(
        f"/a/{project.slug}/receiver/{app_id}/",
        data=unknown_case.encode(),
        headers={**apikey(project), "X-OpenRosa-Version": "3.0"},
    )
    assert v3.status_code == 422 and _nature(v3) == "processing_failure"
    broken = _post(project, f"/a/{project.slug}/receiver/", b"<data><unclosed></data>")
    assert broken.status_code == 500 and _nature(broken) == "submit_error"
    wrong_ns = (
        b'<data><case xmlns="http://commcarehq.org/case/transaction/v1" case_id="x"><close/></case></data>'
    )
    assert _nature(_post(project, f"/a/{project.slug}/receiver/", wrong_ns)) == "submit_error"
    # another project's slug with this project's key
    assert _post(project, f"/a/{other_project.slug}/receiver/", unknown_case.encode()).status_code == 404
    assert _counts(project) == before


def test_hostile_xml_is_refused_with_nothing_changed(project):
    before = _counts(project)
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><data>&lol2;</data>'
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><data>&xxe;</data>'
    )
    for body in (laughs, external):
        response = _post(project, f"/a/{project.slug}/receiver/", body)
        assert response.status_code == 500 and _nature(response) == "submit_error"
        assert "root:" not in response.get_data(as_text=True)
    huge = b"<data>" + b"x" * (6 * 1024 * 1024) + b"</data>"
    assert _post(project, f"/a/{project.slug}/receiver/", huge).status_code == 413
    assert _counts(project) == before
