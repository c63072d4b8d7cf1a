"""Case groups: the service (identifier resolution, adds, removes) and the JSON API."""

import pytest
from sqlalchemy import event, func, select

from messaging.case_groups import adding, members
from messaging.case_groups.groups import create_group, flush_unique_name
from messaging.case_groups.resolve import resolve_identifiers
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.errors import status_of
from messaging.models import Case, CaseGroup, CaseGroupMember, Project
from tests.factories import make_case, read_xlsx


def _group(api, name="Control group"):
    response = api.post("/api/v1/case-groups", json={"name": name})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _add(api, group_id, identifier):
    return api.post(f"/api/v1/case-groups/{group_id}/cases", json={"identifier": identifier})


def _member_ids(api, group_id, **params):
    response = api.get(f"/api/v1/case-groups/{group_id}/cases", query_string=params)
    assert response.status_code == 200, response.get_json()
    return [c["case_id"] for c in response.get_json()["results"]]


def _resolve(project, identifiers):
    with project.scope():
        return resolve_identifiers(db.session.get(Project, project.id), identifiers)


# --- groups ----------------------------------------------------------------------------


def test_create_list_get_rename_delete_with_member_counts(api, project):
    group_id = _group(api, "Control group")
    other_id = _group(api, "Arm B")
    case_id = make_case(project, phone="254712345678")
    assert _add(api, group_id, case_id).status_code == 201

    listed = api.get("/api/v1/case-groups").get_json()
    assert {g["name"]: g["member_count"] for g in listed["results"]} == {"Control group": 1, "Arm B": 0}
    assert listed["next"] is None
    got = api.get(f"/api/v1/case-groups/{group_id}").get_json()
    assert got["name"] == "Control group" and got["member_count"] == 1 and got["created_at"].endswith("Z")

    renamed = api.patch(f"/api/v1/case-groups/{group_id}", json={"name": "  Patients   2026 "})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Patients 2026"

    assert api.delete(f"/api/v1/case-groups/{group_id}").status_code == 204
    assert api.get(f"/api/v1/case-groups/{group_id}").status_code == 404
    assert [g["id"] for g in api.get("/api/v1/case-groups").get_json()["results"]] == [other_id]
    with project.scope():  # the case stays; only the link went
        assert db.session.execute(select(Case).where(Case.case_id == case_id)).scalar_one()
        assert db.session.execute(select(func.count()).select_from(CaseGroupMember)).scalar_one() == 0


def test_duplicate_name_is_409_in_any_case_and_on_rename(api):
    _group(api, "Control group")
    other = _group(api, "Arm B")
    response = api.post("/api/v1/case-groups", json={"name": "CONTROL group"})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "duplicate_name" and "already exists" in error["message"]
    rename = api.patch(f"/api/v1/case-groups/{other}", json={"name": "control GROUP"})
    assert rename.status_code == 409
    assert api.get(f"/api/v1/case-groups/{other}").get_json()["name"] == "Arm B"
    # renaming a group to its own name in another case is fine
    assert api.patch(f"/api/v1/case-groups/{other}", json={"name": "ARM B"}).status_code == 200


def test_the_database_refuses_a_duplicate_name_that_slipped_past_the_check(project):
    """Two requests racing: both pass the SELECT, the unique index stops the second."""
    with project.scope():
        create_group("Village A")
        db.session.commit()
        db.session.add(CaseGroup(name="village a"))
        with pytest.raises(DomainError) as info:
            flush_unique_name("village a")
        assert status_of(info.value) == 409
        db.session.rollback()
        assert db.session.execute(select(func.count()).select_from(CaseGroup)).scalar_one() == 1


def test_the_same_name_is_fine_in_another_project(api, other_project):
    _group(api, "Control group")
    assert other_project.api().post("/api/v1/case-groups", json={"name": "Control group"}).status_code == 201


@pytest.mark.parametrize("body", [{}, {"name": "   "}, {"name": "x" * 201}, {"name": 5}])
def test_bad_names_are_400(api, body):
    response = api.post("/api/v1/case-groups", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "validation_error"


# --- resolving identifiers ---------------------------------------------------------------

PHONE_SPELLINGS = [
    "254712345678",  # what the seed asks for
    "+254712345678",
    "+254 712 345 678",
    "254-712-345-678",
    "(+254) 712 345678",
    "00254712345678",
    "0712 345 678",  # national, the project's default country (KE)
    "0712-345-678",
    "(0712) 345678",
    "254712345678.0",  # Excel float rendered as text
    "2.54712345678E+11",  # Excel scientific
    " 254712345678 ",
    "\u200e+254 712 345 678\u200f",  # copy-pasted with direction marks
    "'254712345678",  # Excel's "number stored as text" apostrophe
]


@pytest.mark.parametrize("spelling", PHONE_SPELLINGS)
def test_each_phone_spelling_finds_the_case(project, spelling):
    case_id = make_case(project, phone="+254712345678")
    res = _resolve(project, [spelling])[spelling]
    assert res.result == "match" and res.case.case_id == case_id
    assert res.phone == "+254712345678"


# Real-world spellings from several countries, in a Kenyan project: international
# spellings work for every country; national ones only for the default country.
WORLD_PHONES = [
    ("+256 772 123456", "+256772123456"),  # Uganda
    ("256772123456", "+256772123456"),
    ("00256-772-123-456", "+256772123456"),
    ("+1 (650) 253-0000", "+16502530000"),  # United States
    ("16502530000", "+16502530000"),
    ("011 44 20 7946 0958", None),  # US exit code + UK: only valid when read as +44
    ("+44 20 7946 0958", "+442079460958"),  # United Kingdom
    ("0044 7911 123456", "+447911123456"),
    ("+91 98765 43210", "+919876543210"),  # India
    ("919876543210", "+919876543210"),
    ("+234 803 123 4567", "+2348031234567"),  # Nigeria
    ("2348031234567.0", "+2348031234567"),
    ("+27 82 123 4567", "+27821234567"),  # South Africa
    ("+55 (11) 91234-5678", "+5511912345678"),  # Brazil
    ("+33 6 12 34 56 78", "+33612345678"),  # France
]


@pytest.mark.parametrize(("spelling", "e164"), WORLD_PHONES)
def test_phone_spellings_from_several_countries(project, spelling, e164):
    expected = e164 or "+442079460958"
    case_id = make_case(project, phone=expected)
    res = _resolve(project, [spelling])[spelling]
    assert res.result == "match", (spelling, res)
    assert res.case.case_id == case_id and res.phone == expected


def test_national_spelling_uses_the_project_default_country(app, project, other_project):
    # other_project's default country is Uganda: "0772 123456" is +256772123456 there
    ug = make_case(other_project, phone="+256772123456")
    make_case(project, phone="+256772123456")
    assert _resolve(other_project, ["0772 123456"])["0772 123456"].case.case_id == ug
    assert _resolve(project, ["0772 123456"])["0772 123456"].result == "not_found"


def test_external_id_and_case_id_in_any_case_of_hex(project):
    by_ext = make_case(project, name="Baraka", external_id="PT-0042")
    res = _resolve(project, ["PT-0042", " PT-0042 ", "pt-0042", by_ext, by_ext.upper()])
    assert res["PT-0042"].case.case_id == by_ext and res[" PT-0042 "].case.case_id == by_ext
    assert res["pt-0042"].result == "not_found"  # external IDs match exactly
    assert res[by_ext].case.case_id == by_ext and res[by_ext].case.case_id == by_ext
    assert res[by_ext.upper()].case.case_id == by_ext


def test_a_numeric_external_id_is_still_found(project):
    case_id = make_case(project, external_id="20230001")
    assert _resolve(project, ["20230001"])["20230001"].case.case_id == case_id


def test_results_not_found_deleted_and_invalid(project):
    gone = make_case(project, phone="254712345678", deleted=True)
    res = _resolve(project, ["254700000001", "254712345678", "", "   ", "x" * 256])
    assert res["254700000001"].result == "not_found"
    assert res["254712345678"].result == "deleted" and res["254712345678"].case.case_id == gone
    assert res[""].result == "invalid" and res["   "].result == "invalid"
    assert res["x" * 256].result == "invalid" and "Too long" in res["x" * 256].message


def test_a_deleted_case_does_not_make_a_live_one_ambiguous(project):
    make_case(project, name="Old", phone="254712345678", deleted=True)
    live = make_case(project, name="New", phone="254712345678")
    res = _resolve(project, ["0712345678"])["0712345678"]
    assert res.result == "match" and res.case.case_id == live


def test_family_phone_is_ambiguous_with_candidates(project):
    mum = make_case(project, name="Mum", phone="254712345678")
    kid = make_case(project, name="Kid", phone="+254 712 345 678", closed=True)
    res = _resolve(project, ["254712345678"])["254712345678"]
    assert res.result == "ambiguous"
    assert [c.case_id for c, _ in res.candidates] == [mum, kid]  # open cases first
    assert all(how == ("phone_number",) for _, how in res.candidates)
    assert "2 cases match" in res.message and "case ID" in res.message


def test_phone_on_one_case_and_external_id_on_another_is_ambiguous(project):
    a = make_case(project, name="A", phone="254712345678")
    b = make_case(project, name="B", external_id="254712345678")
    res = _resolve(project, ["254712345678"])["254712345678"]
    assert res.result == "ambiguous"
    assert {(c.case_id, how) for c, how in res.candidates} == {(a, ("phone_number",)), (b, ("external_id",))}


def test_one_case_matched_twice_is_not_ambiguous(project):
    same = make_case(project, phone="254712345678", external_id="254712345678")
    res = _resolve(project, ["254712345678"])["254712345678"]
    assert res.result == "match" and res.case.case_id == same


def test_reused_external_id_is_ambiguous(project):
    make_case(project, name="One", external_id="HH-7")
    make_case(project, name="Two", external_id="HH-7")
    assert _resolve(project, ["HH-7"])["HH-7"].candidate_count == 2


def test_another_projects_cases_are_never_found(project, other_project):
    theirs = make_case(other_project, phone="+254712345678", external_id="PT-1")
    res = _resolve(project, ["254712345678", "PT-1", theirs])
    assert {r.result for r in res.values()} == {"not_found"}


def test_resolution_is_set_based(app, project):
    """500 identifiers: the same handful of queries as 1, not one per row."""
    with project.scope():
        rows = [
            Case(
                case_type="person",
                name=f"C{i}",
                phone_number=f"+2547123{i:05d}",
                external_id=f"EXT-{i}",
            )
            for i in range(500)
        ]
        db.session.add_all(rows)
        db.session.commit()
        group = create_group("Big")
        db.session.commit()
        identifiers = [(n, f"07123{i:05d}" if i % 2 else f"EXT-{i}") for n, i in enumerate(range(500), 2)]

        def run(rows):
            statements = []

            def count(conn, cursor, statement, *args):
                statements.append(statement)

            db.session.expire_all()
            event.listen(db.engine, "before_cursor_execute", count)
            try:
                outcomes = adding.add_identifiers(group, rows)
            finally:
                event.remove(db.engine, "before_cursor_execute", count)
            db.session.commit()
            assert [o.result for o in outcomes] == ["added"] * len(rows)
            return statements

        few = run(identifiers[:2])
        many = run(identifiers[2:])
        # reload the group and the project; cases by phone, external ID and case ID;
        # their memberships; one insert. The same for 2 rows as for 498.
        assert len(many) == len(few) <= 8, many


@pytest.mark.parametrize(
    "external_id",
    ['PT "7"', "PT\\7", "PT,7", "{PT-7}", "PT 7", "NULL", "Ñandú-7", 'PT\\\\"7\\'],
)
def test_identifiers_with_array_syntax_are_matched_exactly(project, external_id):
    """The look-ups bind a whole chunk as one array literal on PostgreSQL: quotes,
    backslashes, commas, braces, spaces and the word NULL must come through as typed."""
    case_id = make_case(project, name="Odd", external_id=external_id)
    make_case(project, name="Decoy", external_id="PT7")
    with project.scope():
        group = create_group("Odd ones")
        outcomes = adding.add_identifiers(group, [(2, external_id), (3, "PT7"), (4, "PT")])
        db.session.commit()
    assert [(o.result, o.case.case_id if o.case else None) for o in outcomes][0] == ("added", case_id)
    assert [o.result for o in outcomes] == ["added", "added", "not_found"]


def test_pg_array_literal_round_trips_through_postgresql(app):
    from sqlalchemy import bindparam, cast, text
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.types import BigInteger, String

    from messaging.db.dialect import array_literal as pg_array_literal

    values = ['a "b"', "c\\d", "e,f", "{g}", " h ", "NULL", "", "ß✓", None]
    assert pg_array_literal([1, 22, 333]) == "{1,22,333}"
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's array syntax")
        with db.engine.connect() as connection:
            texts = select(cast(bindparam("v", pg_array_literal(values), String), ARRAY(String)))
            assert connection.execute(texts).scalar_one() == values
            numbers = select(cast(bindparam("v", pg_array_literal([1, 2**40]), String), ARRAY(BigInteger)))
            assert connection.execute(numbers).scalar_one() == [1, 2**40]
            assert connection.execute(text("SELECT 1")).scalar_one() == 1


# --- adding and removing by API -----------------------------------------------------------


def test_add_by_each_identifier_kind_and_each_result(api, project):
    group_id = _group(api)
    by_phone = make_case(project, name="Amina", phone="254712345678")
    by_ext = make_case(project, name="Baraka", external_id="PT-0042")
    by_id = make_case(project, name="Chausiku")
    closed = make_case(project, name="Closed", phone="254733000111", closed=True)
    deleted = make_case(project, name="Gone", external_id="PT-GONE", deleted=True)
    make_case(project, name="Mum", phone="254722000111")
    make_case(project, name="Kid", phone="254722000111")

    response = _add(api, group_id, "+254 712 345 678")
    assert response.status_code == 201
    body = response.get_json()
    assert body["result"] == "added" and body["case"]["case_id"] == by_phone
    assert body["case"]["phone_number"] == "+254712345678"
    assert _add(api, group_id, "PT-0042").status_code == 201
    assert _add(api, group_id, by_id).status_code == 201

    again = _add(api, group_id, "0712345678")
    assert again.status_code == 200 and again.get_json()["result"] == "already_member"

    missing = _add(api, group_id, "254700999999")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"

    ambiguous = _add(api, group_id, "0722 000 111")
    assert ambiguous.status_code == 409
    error = ambiguous.get_json()["error"]
    assert error["code"] == "ambiguous" and len(error["details"]["case_ids"]) == 2
    assert {c["name"] for c in error["details"]["candidates"]} == {"Mum", "Kid"}

    refused = _add(api, group_id, "254733000111")
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "case_closed"
    assert refused.get_json()["error"]["details"]["case_id"] == closed
    gone = _add(api, group_id, "PT-GONE")
    assert gone.status_code == 422 and gone.get_json()["error"]["code"] == "case_deleted"
    assert gone.get_json()["error"]["details"]["case_id"] == deleted

    blank = _add(api, group_id, "   ")
    assert blank.status_code == 400 and blank.get_json()["error"]["code"] == "invalid_identifier"
    assert api.post(f"/api/v1/case-groups/{group_id}/cases", json={}).status_code == 400

    assert sorted(_member_ids(api, group_id)) == sorted([by_phone, by_ext, by_id])
    assert api.get(f"/api/v1/case-groups/{group_id}").get_json()["member_count"] == 3


def test_an_ambiguous_phone_can_then_be_added_by_case_id(api, project):
    group_id = _group(api)
    mum = make_case(project, name="Mum", phone="254722000111")
    make_case(project, name="Kid", phone="254722000111", external_id=mum)  # case ID reused as external ID
    assert _add(api, group_id, "254722000111").status_code == 409
    assert _add(api, group_id, mum).status_code == 409  # the identifier box sees both...
    picked = api.post(f"/api/v1/case-groups/{group_id}/cases", json={"case_id": mum})
    assert picked.status_code == 201  # ...the explicit case ID does not
    assert _member_ids(api, group_id) == [mum]


def test_numeric_json_identifier_is_accepted(api, project):
    group_id = _group(api)
    case_id = make_case(project, phone="254712345678")
    response = api.post(f"/api/v1/case-groups/{group_id}/cases", json={"identifier": 254712345678})
    assert response.status_code == 201 and response.get_json()["case"]["case_id"] == case_id


def test_a_refused_add_changes_nothing(api, project):
    group_id = _group(api)
    make_case(project, phone="254712345678", closed=True)
    _add(api, group_id, "254712345678")
    with project.scope():
        assert db.session.execute(select(func.count()).select_from(CaseGroupMember)).scalar_one() == 0


def test_already_member_even_when_the_case_was_closed_since(api, project):
    group_id = _group(api)
    case_id = make_case(project, phone="254712345678")
    _add(api, group_id, case_id)
    with project.scope():
        db.session.execute(select(Case).where(Case.case_id == case_id)).scalar_one().closed = True
        db.session.commit()
    response = _add(api, group_id, case_id)
    assert response.status_code == 200 and response.get_json()["result"] == "already_member"


def test_adding_a_member_again_changes_nothing(api, project):
    from messaging.lib import clock

    group_id = _group(api)
    case_id = make_case(project, phone="254712345678")
    clock.set_now(clock.now())
    assert _add(api, group_id, case_id).status_code == 201
    with project.scope():
        added_at = db.session.get(CaseGroup, group_id).modified_at
    clock.advance(minutes=5)
    again = _add(api, group_id, "+254 712 345 678")
    assert again.status_code == 200 and again.get_json()["result"] == "already_member"
    with project.scope():
        assert db.session.get(CaseGroup, group_id).modified_at == added_at
        assert db.session.execute(select(func.count()).select_from(CaseGroupMember)).scalar_one() == 1


def test_remove_a_case(api, project, other_project):
    group_id = _group(api)
    a = make_case(project, name="A")
    b = make_case(project, name="B")
    theirs = make_case(other_project, name="Theirs")
    _add(api, group_id, a)
    _add(api, group_id, b)
    assert api.delete(f"/api/v1/case-groups/{group_id}/cases/{a}").status_code == 204
    assert _member_ids(api, group_id) == [b]
    again = api.delete(f"/api/v1/case-groups/{group_id}/cases/{a}")
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "not_member"
    foreign = api.delete(f"/api/v1/case-groups/{group_id}/cases/{theirs}")
    assert foreign.status_code == 404 and foreign.get_json()["error"]["code"] == "not_found"
    with project.scope():  # removing never deletes the case
        assert db.session.execute(select(func.count()).select_from(Case)).scalar_one() == 2


def test_members_are_paginated_newest_first_and_searchable(api, project):
    from messaging.lib import clock

    group_id = _group(api)
    clock.set_now(clock.now())
    ids = []
    for i in range(7):
        ids.append(make_case(project, name=f"Person {i}", phone=f"25471234560{i}", external_id=f"HH-{i:03d}"))
        _add(api, group_id, ids[-1])
        clock.advance(seconds=1)
    first = api.get(f"/api/v1/case-groups/{group_id}/cases?limit=3").get_json()
    assert [c["case_id"] for c in first["results"]] == ids[::-1][:3]
    assert first["results"][0]["added_at"].endswith("Z")
    seen = [c["case_id"] for c in first["results"]]
    next_url = first["next"]
    while next_url:
        page = api.get(next_url.replace("http://localhost", "")).get_json()
        seen += [c["case_id"] for c in page["results"]]
        next_url = page["next"]
    assert seen == ids[::-1]

    assert _member_ids(api, group_id, q="person 3") == [ids[3]]
    assert _member_ids(api, group_id, q="hh-005") == [ids[5]]
    assert _member_ids(api, group_id, q="0712345604") == [ids[4]]  # any spelling of the phone
    assert _member_ids(api, group_id, q="+254 712 345 602") == [ids[2]]
    assert _member_ids(api, group_id, q="45606") == [ids[6]]  # digits anywhere in the number
    assert _member_ids(api, group_id, q=ids[1][:8]) == [ids[1]]  # start of the case ID
    assert _member_ids(api, group_id, q="100%_") == []
    assert len(_member_ids(api, group_id, q="person", limit=250)) == 7


def test_concurrent_add_of_the_same_case_is_reported_once(project, monkeypatch):
    """The membership check said 'not a member' but another request inserted it first."""
    case_id = make_case(project, phone="254712345678")
    with project.scope():
        group = create_group("Race")
        db.session.commit()
        first = adding.add_by_identifier(group, case_id)
        db.session.commit()
        assert first.result == "added"
        monkeypatch.setattr(members, "members_among", lambda group_id, pks: set())
        second = adding.add_by_identifier(group, case_id)
        db.session.commit()
        assert second.result == "already_member"
        assert db.session.execute(select(func.count()).select_from(CaseGroupMember)).scalar_one() == 1


def test_example_file(api):
    response = api.get("/api/v1/case-groups/example.xlsx")
    assert response.status_code == 200
    assert 'filename="cases_bulk_example.xlsx"' in response.headers["Content-Disposition"]
    rows = read_xlsx(response.data)
    assert rows[0] == ["case_identifier"] and len(rows) == 3
    assert all(isinstance(r[0], str) and r[0] for r in rows[1:])  # text, so Excel keeps every digit


def test_viewer_can_read_but_not_change(app, api, project):
    from messaging.models import ApiToken, WebUser

    group_id = _group(api)
    with project.scope():
        viewer = WebUser(email="viewer@alpha.example.org", role="viewer")
        viewer.set_password("correct horse battery")
        db.session.add(viewer)
        db.session.flush()
        _token, key = ApiToken.issue(viewer)
        db.session.commit()
    from tests.conftest import ApiClient

    as_viewer = ApiClient(app.test_client(), key)
    assert as_viewer.get(f"/api/v1/case-groups/{group_id}/cases").status_code == 200
    assert as_viewer.post("/api/v1/case-groups", json={"name": "Nope"}).status_code == 403
    add = as_viewer.post(f"/api/v1/case-groups/{group_id}/cases", json={"identifier": "x"})
    assert add.status_code == 403


def test_openapi_documents_the_case_group_endpoints(api):
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/case-groups/{case_group_id}/cases" in paths
    assert "post" in paths["/api/v1/case-groups/{case_group_id}/imports"]
    assert "/api/v1/case-groups/example.xlsx" in paths
