"""The case group pages: list, create, add by identifier, pick among candidates, upload."""

import io
import re

from sqlalchemy import select

from messaging.extensions import db
from messaging.models import CaseGroup, Import, WebUser
from tests.conftest import login
from tests.factories import make_case, read_xlsx, xlsx


def _create(web, name="Control group"):
    response = web.post("/case-groups", {"name": name})
    assert response.status_code == 302
    return response.headers["Location"].rsplit("/", 1)[-1]


def _page(web, path):
    response = web.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_list_create_and_duplicate(web, project):
    page = _page(web, "/case-groups")
    assert "No case groups yet" in page and 'class="active"' in page
    group_id = _create(web, "Control group")
    shown = _page(web, f"/case-groups/{group_id}")
    assert "Case group &#39;Control group&#39; created" in shown
    response = web.post("/case-groups", {"name": "control GROUP"}, follow_redirects=True)
    assert "already exists" in response.get_data(as_text=True)
    listing = _page(web, "/case-groups")
    assert listing.count("Manage cases") == 1 and '<td class="member-count">0</td>' in listing


def test_add_by_phone_then_member_list_and_remove(web, project):
    group_id = _create(web)
    case_id = make_case(project, name="Amina Wanjiru", phone="254712345678", external_id="PT-7")
    response = web.post(
        f"/case-groups/{group_id}/cases", {"identifier": "0712 345 678"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "Added &#39;Amina Wanjiru&#39; (+254712345678) to the group." in page
    assert f'data-case-id="{case_id}"' in page and "PT-7" in page
    again = web.post(f"/case-groups/{group_id}/cases", {"identifier": "254712345678"}, follow_redirects=True)
    assert "is already in this group" in again.get_data(as_text=True)
    missing = web.post(
        f"/case-groups/{group_id}/cases", {"identifier": "254700000000"}, follow_redirects=True
    )
    assert "Not found: &#39;254700000000&#39;" in missing.get_data(as_text=True)
    removed = web.post(f"/case-groups/{group_id}/cases/{case_id}/remove", {}, follow_redirects=True)
    assert "Removed from the group." in removed.get_data(as_text=True)
    assert f'data-case-id="{case_id}"' not in _page(web, f"/case-groups/{group_id}")


def test_closed_and_deleted_cases_are_refused_with_the_reason(web, project):
    group_id = _create(web)
    make_case(project, name="Old", phone="254712345678", closed=True)
    make_case(project, name="Gone", external_id="PT-GONE", deleted=True)
    closed = web.post(f"/case-groups/{group_id}/cases", {"identifier": "254712345678"}, follow_redirects=True)
    assert "closed, so it was not added" in closed.get_data(as_text=True)
    gone = web.post(f"/case-groups/{group_id}/cases", {"identifier": "PT-GONE"}, follow_redirects=True)
    assert "has been deleted" in gone.get_data(as_text=True)


def test_ambiguous_identifier_lists_candidates_to_pick_from(web, project):
    group_id = _create(web)
    mum = make_case(project, name="Mum", phone="254722000111")
    kid = make_case(project, name="Kid", phone="254722000111")
    response = web.post(f"/case-groups/{group_id}/cases", {"identifier": "0722000111"})
    assert response.status_code == 302 and "pick=0722000111" in response.headers["Location"]
    page = _page(web, response.headers["Location"])
    assert "Several cases match" in page and 'id="candidates"' in page
    assert page.count("Add this case") == 2 and mum in page and kid in page
    picked = web.post(f"/case-groups/{group_id}/cases", {"case_id": kid}, follow_redirects=True)
    assert "Added &#39;Kid&#39;" in picked.get_data(as_text=True)
    members = re.findall(r'data-case-id="(\w+)"', _page(web, f"/case-groups/{group_id}"))
    assert members == [kid]


def test_search_and_pagination(web, project):
    from messaging.lib import clock

    group_id = _create(web)
    clock.set_now(clock.now())
    ids = []
    for i in range(5):
        ids.append(make_case(project, name=f"Person {i}", phone=f"25471234560{i}"))
        web.post(f"/case-groups/{group_id}/cases", {"identifier": ids[-1]})
        clock.advance(seconds=1)
    page = _page(web, f"/case-groups/{group_id}?limit=2")
    assert re.findall(r'data-case-id="(\w+)"', page) == [ids[4], ids[3]]
    next_url = re.search(r'href="([^"]+)" id="next-page"', page).group(1).replace("&amp;", "&")
    second = _page(web, next_url.replace("http://localhost", ""))
    assert re.findall(r'data-case-id="(\w+)"', second) == [ids[2], ids[1]] and "First page" in second
    found = _page(web, f"/case-groups/{group_id}?q=person+3")
    assert re.findall(r'data-case-id="(\w+)"', found) == [ids[3]]
    none = _page(web, f"/case-groups/{group_id}?q=nobody")
    assert "No case in this group matches" in none
    bad = web.get(f"/case-groups/{group_id}?cursor=garbage")
    assert bad.status_code == 302


def test_rename_and_delete(web, project):
    group_id = _create(web, "Old name")
    _create(web, "Taken")
    case_id = make_case(project, name="Stays")
    web.post(f"/case-groups/{group_id}/cases", {"identifier": case_id})
    taken = web.post(f"/case-groups/{group_id}/rename", {"name": "TAKEN"}, follow_redirects=True)
    assert "already exists" in taken.get_data(as_text=True)
    ok = web.post(f"/case-groups/{group_id}/rename", {"name": "New name"}, follow_redirects=True)
    assert "Renamed to &#39;New name&#39;" in ok.get_data(as_text=True)
    deleted = web.post(f"/case-groups/{group_id}/delete", {}, follow_redirects=True)
    assert "its 1 cases were kept" in deleted.get_data(as_text=True)
    assert web.get(f"/case-groups/{group_id}").status_code == 404


def test_upload_dry_run_goes_to_the_progress_page(web, project, run_jobs):
    group_id = _create(web)
    make_case(project, phone="254712345678")
    response = web.post(
        f"/case-groups/{group_id}/imports",
        {"file": (io.BytesIO(xlsx(["254712345678", "nobody"])), "list.xlsx"), "dry_run": "1"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302 and "/imports/" in response.headers["Location"]
    import_id = response.headers["Location"].rsplit("/", 1)[-1]
    run_jobs()
    page = _page(web, f"/imports/{import_id}")
    assert "dry run" in page and "Would be added" in page and "Not found" in page
    assert f'href="/case-groups/{group_id}"' in page and "Back to Control group" in page
    with project.scope():
        assert db.session.get(Import, import_id).dry_run is True
    group_page = _page(web, f"/case-groups/{group_id}")
    assert "Recent uploads" in group_page and "list.xlsx" in group_page and "No cases yet" in group_page


def test_refused_upload_is_flashed(web):
    group_id = _create(web)
    response = web.post(
        f"/case-groups/{group_id}/imports",
        {"file": (io.BytesIO(b"%PDF-1.4 not a sheet"), "list.xlsx")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "This file is a PDF" in response.get_data(as_text=True)
    no_file = web.post(f"/case-groups/{group_id}/imports", {}, follow_redirects=True)
    assert "Choose an .xlsx file" in no_file.get_data(as_text=True)


def test_example_download(web):
    response = web.get("/case-groups/example.xlsx")
    assert response.status_code == 200
    assert 'filename="cases_bulk_example.xlsx"' in response.headers["Content-Disposition"]
    assert read_xlsx(response.data)[0] == ["case_identifier"]


def test_viewer_sees_no_forms_and_cannot_post(app, web, project):
    group_id = _create(web)
    with project.scope():
        viewer = WebUser(email="viewer@alpha.example.org", role="viewer")
        viewer.set_password("correct horse battery")
        db.session.add(viewer)
        db.session.commit()
    as_viewer = login(app, "viewer@alpha.example.org", "correct horse battery")
    page = _page(as_viewer, f"/case-groups/{group_id}")
    assert 'id="add-case"' not in page and 'id="upload-cases"' not in page and "Remove" not in page
    assert as_viewer.post(f"/case-groups/{group_id}/cases", {"identifier": "x"}).status_code == 403
    assert as_viewer.post("/case-groups", {"name": "x"}).status_code == 403
    with project.scope():
        assert len(db.session.execute(select(CaseGroup)).scalars().all()) == 1


def test_another_projects_case_cannot_be_removed_through_our_group(web, project, other_project):
    group_id = _create(web)
    theirs = make_case(other_project, name="Theirs")
    assert web.post(f"/case-groups/{group_id}/cases/{theirs}/remove", {}).status_code == 404
