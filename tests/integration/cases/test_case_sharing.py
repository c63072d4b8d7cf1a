"""CommCare's owner rules (seeds 000-002), through POST /api/v1/forms, as a table."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from messaging.cases.ownership import CASE_SHARING_MESSAGE
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Case, CaseTransaction, Form


class World:
    """Applications, workers and groups made through the API, by name."""

    def __init__(self, api):
        self.api = api
        self.apps = {}
        self.users = {}
        self.groups = {}

    def app(self, name, case_sharing):
        r = self.api.post("/api/v1/applications", json={"name": name, "case_sharing": case_sharing})
        assert r.status_code == 201, r.get_json()
        self.apps[name] = r.get_json()["id"]
        return self.apps[name]

    def user(self, name):
        r = self.api.post("/api/v1/users", json={"username": name})
        assert r.status_code == 201, r.get_json()
        self.users[name] = r.get_json()["id"]
        return self.users[name]

    def group(self, name, members, case_sharing=True):
        body = {"name": name, "case_sharing": case_sharing, "members": [self.users[m] for m in members]}
        r = self.api.post("/api/v1/groups", json=body)
        assert r.status_code == 201, r.get_json()
        self.groups[name] = r.get_json()["id"]
        return self.groups[name]

    def owner(self, ref):
        """'user:x' / 'group:x' / a literal id."""
        if ref is None:
            return None
        kind, _, name = ref.partition(":")
        return {"user": self.users, "group": self.groups}.get(kind, {}).get(name, ref)

    def form(self, app, user, blocks, form_id=None, answers=None):
        body = {"app_id": self.apps[app], "user_id": self.users[user], "cases": blocks}
        if form_id:
            body["form_id"] = form_id
        if answers:
            body["answers"] = answers
        return self.api.post("/api/v1/forms", json=body)

    def create(self, app, user, owner=None, case_id=None, **update):
        create = {"case_type": "mother", "case_name": "Monica"}
        if owner:
            create["owner_id"] = self.owner(owner)
        block = {"case_id": case_id or uuid.uuid4().hex, "create": create}
        if update:
            block["update"] = update
        return self.form(app, user, [block])

    def case(self, case_id):
        r = self.api.get(f"/api/v1/cases/{case_id}")
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def case_list(self, user):
        r = self.api.get(f"/api/v1/users/{self.users[user]}/cases")
        assert r.status_code == 200
        return {c["case_id"] for c in r.get_json()["results"]}


@pytest.fixture
def world(api):
    w = World(api)
    w.app("shared", True)
    w.app("plain", False)
    for name in ("david", "maria", "loner", "nurse", "other"):
        w.user(name)
    w.group("village1", ["david", "maria", "nurse"])
    w.group("village2", ["nurse", "other"])
    w.group("book club", ["loner", "david"], case_sharing=False)
    return w


def _counts(project):
    with project.scope():
        return (
            db.session.execute(select(func.count()).select_from(Form)).scalar_one(),
            db.session.execute(select(func.count()).select_from(Case)).scalar_one(),
            db.session.execute(select(func.count()).select_from(CaseTransaction)).scalar_one(),
        )


# app, user, explicit owner, expected owner (or error code)
OWNER_RULES = [
    # case sharing on, no owner_id: the user's one case-sharing group owns the case
    ("shared", "david", None, "group:village1"),
    # ... a user in no case-sharing group (a non-sharing group does not count) is refused
    ("shared", "loner", None, "case_sharing_no_group"),
    # ... a user in several (a supervisor) is refused unless they choose
    ("shared", "nurse", None, "case_sharing_multiple_groups"),
    # explicit owner_id: one of the user's case-sharing groups (the supervisor chooses)
    ("shared", "nurse", "group:village2", "group:village2"),
    ("shared", "nurse", "group:village1", "group:village1"),
    # explicit owner_id = the user's own id keeps the case unshared
    ("shared", "david", "user:david", "user:david"),
    ("shared", "loner", "user:loner", "user:loner"),
    # explicit owner_id that is neither the user nor one of their case-sharing groups
    ("shared", "david", "group:village2", "owner_not_allowed"),
    ("shared", "david", "user:maria", "owner_not_allowed"),
    ("shared", "loner", "group:book club", "owner_not_allowed"),
    ("shared", "david", "no-such-owner", "owner_not_allowed"),
    # case sharing off: the user owns the case, whatever their groups
    ("plain", "david", None, "user:david"),
    ("plain", "nurse", None, "user:nurse"),
    ("plain", "loner", None, "user:loner"),
    # case sharing off, explicit owner: the same rule (user or own case-sharing group)
    ("plain", "david", "group:village1", "group:village1"),
    ("plain", "david", "group:village2", "owner_not_allowed"),
]


@pytest.mark.parametrize("app_name,user,owner,expected", OWNER_RULES)
def test_owner_rules_for_new_cases(world, project, app_name, user, owner, expected):
    before = _counts(project)
    case_id = uuid.uuid4().hex
    r = world.create(app_name, user, owner=owner, case_id=case_id)
    if ":" in expected:
        assert r.status_code == 201, r.get_json()
        case = world.case(case_id)
        assert case["owner_id"] == world.owner(expected)
        assert case["user_id"] == world.users[user]
        assert _counts(project) == (before[0] + 1, before[1] + 1, before[2] + 1)
    else:
        assert r.status_code == 422, r.get_json()
        error = r.get_json()["error"]
        assert error["code"] == expected
        if expected.startswith("case_sharing"):
            assert error["message"] == CASE_SHARING_MESSAGE
            assert "exactly one case sharing group" in error["message"]
        # nothing is written: no form, no case, no history
        assert _counts(project) == before
        assert world.api.get(f"/api/v1/cases/{case_id}").status_code == 404


def test_case_sharing_on_later_changes_no_existing_owner(world, api):
    app_id = world.app("late", False)
    r = world.create("late", "david", case_id="c-before")
    assert r.status_code == 201
    assert world.case("c-before")["owner_id"] == world.users["david"]
    assert api.patch(f"/api/v1/applications/{app_id}", json={"case_sharing": True}).status_code == 200
    # an update through the now-sharing app keeps the owner
    r = world.form("late", "david", [{"case_id": "c-before", "update": {"visits": "2"}}])
    assert r.status_code == 201
    assert world.case("c-before")["owner_id"] == world.users["david"]
    # a new case now goes to the group
    world.create("late", "david", case_id="c-after")
    assert world.case("c-after")["owner_id"] == world.groups["village1"]
    # turning a group's case sharing off changes no owner either
    api.patch(f"/api/v1/groups/{world.groups['village1']}", json={"case_sharing": False})
    assert world.case("c-after")["owner_id"] == world.groups["village1"]


def test_user_id_is_last_submitter_and_owner_changes_only_when_set(world):
    world.create("shared", "david", case_id="c1")
    assert world.case("c1")["owner_id"] == world.groups["village1"]
    world.form("shared", "maria", [{"case_id": "c1", "update": {"weight": "61"}}])
    case = world.case("c1")
    assert case["user_id"] == world.users["maria"]
    assert case["owner_id"] == world.groups["village1"]
    # the nurse moves it to village2 (one of her groups)
    r = world.form("shared", "nurse", [{"case_id": "c1", "update": {"owner_id": world.groups["village2"]}}])
    assert r.status_code == 201, r.get_json()
    case = world.case("c1")
    assert (case["owner_id"], case["user_id"]) == (world.groups["village2"], world.users["nurse"])
    # a later update that does not set owner_id leaves it alone
    world.form("shared", "david", [{"case_id": "c1", "update": {"weight": "62"}}])
    case = world.case("c1")
    assert (case["owner_id"], case["user_id"]) == (world.groups["village2"], world.users["david"])


def test_explicit_owner_on_update_is_checked(world, project):
    world.create("shared", "david", case_id="c1")
    before = _counts(project)
    r = world.form("shared", "maria", [{"case_id": "c1", "update": {"owner_id": world.groups["village2"]}}])
    assert r.status_code == 422
    assert r.get_json()["error"]["code"] == "owner_not_allowed"
    assert _counts(project) == before
    assert world.case("c1")["owner_id"] == world.groups["village1"]


def test_update_to_closed_case_updates_and_stays_closed(world):
    world.create("shared", "david", case_id="c1")
    clock.set_now(clock.now().replace(microsecond=0))
    r = world.form("shared", "david", [{"case_id": "c1", "close": True}])
    assert r.status_code == 201
    closed_on = world.case("c1")["closed_on"]
    assert world.case("c1")["closed"] is True and closed_on
    clock.advance(minutes=5)
    r = world.form("shared", "maria", [{"case_id": "c1", "update": {"outcome": "referred"}}])
    assert r.status_code == 201
    case = world.case("c1")
    assert case["closed"] is True
    assert case["closed_on"] == closed_on
    assert case["properties"]["outcome"] == "referred"
    assert case["user_id"] == world.users["maria"]
    assert case["modified_on"] > closed_on
    # a closed case leaves everyone's case list
    assert "c1" not in world.case_list("david")


def test_supervisor_sees_the_cases_of_all_her_groups(world):
    world.create("shared", "david", case_id="v1")  # village1
    world.create("shared", "other", case_id="v2")  # village2
    world.create("shared", "nurse", owner="user:nurse", case_id="mine")
    world.create("plain", "david", case_id="david-own")
    world.create("shared", "loner", owner="user:loner", case_id="loner-own")
    assert world.case_list("nurse") == {"v1", "v2", "mine"}
    assert world.case_list("david") == {"v1", "david-own"}
    assert world.case_list("maria") == {"v1"}
    assert world.case_list("other") == {"v2"}
    assert world.case_list("loner") == {"loner-own"}
    groups = world.api.get(f"/api/v1/users/{world.users['nurse']}/groups").get_json()["results"]
    assert [g["name"] for g in groups] == ["village1", "village2"]


def test_cases_of_one_case_type_are_shared_across_applications(world):
    world.app("clinic", True)
    # David registers with the community app; the nurse follows up with the clinic app
    world.create("shared", "david", case_id="m1")
    r = world.form("clinic", "nurse", [{"case_id": "m1", "update": {"referral_outcome": "seen"}}])
    assert r.status_code == 201, r.get_json()
    case = world.case("m1")
    assert case["case_type"] == "mother"
    assert case["properties"]["referral_outcome"] == "seen"
    assert case["owner_id"] == world.groups["village1"]
    assert "m1" in world.case_list("nurse") and "m1" in world.case_list("maria")
    listed = world.api.get("/api/v1/cases?case_type=mother").get_json()["results"]
    assert [c["case_id"] for c in listed] == ["m1"]


def test_offline_updates_from_two_users_apply_in_receive_order(world):
    world.create("shared", "david", case_id="c1", status="new")
    t0 = clock.now().replace(microsecond=0)
    # Both work offline: David edits first on his phone, Maria later, but Maria's
    # phone reaches the server first. The server's receive order decides.
    clock.set_now(t0 + timedelta(minutes=10))
    maria = world.form(
        "shared",
        "maria",
        [{"case_id": "c1", "update": {"status": "visited", "visited_by": "maria"}}],
        answers={"device_time": (t0 + timedelta(minutes=2)).isoformat()},
    )
    clock.set_now(t0 + timedelta(minutes=20))
    david = world.form(
        "shared",
        "david",
        [{"case_id": "c1", "update": {"status": "referred", "note": "fever"}}],
        answers={"device_time": (t0 + timedelta(minutes=1)).isoformat()},
    )
    assert maria.status_code == david.status_code == 201
    case = world.case("c1")
    assert case["properties"] == {"status": "referred", "visited_by": "maria", "note": "fever"}
    assert case["user_id"] == world.users["david"]
    assert case["modified_on"] == clock.isoformat(t0 + timedelta(minutes=20))
    # both forms keep their receive order
    form_ids = [maria.get_json()["form_id"], david.get_json()["form_id"]]
    received = [world.api.get(f"/api/v1/forms/{f}").get_json()["received_on"] for f in form_ids]
    assert received == sorted(received)


def test_close_then_update_in_one_form_and_across_forms(world):
    r = world.form(
        "shared",
        "david",
        [
            {"case_id": "c9", "create": {"case_type": "mother", "case_name": "Ann"}, "close": True},
            {"case_id": "c9", "update": {"after_close": "yes"}},
        ],
    )
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["case_ids"] == ["c9"]
    case = world.case("c9")
    assert case["closed"] is True and case["properties"] == {"after_close": "yes"}


def test_resubmitted_form_id_changes_nothing_and_returns_the_first_result(world, project):
    blocks = [{"case_id": "c1", "create": {"case_type": "mother", "case_name": "Ann"}, "update": {"n": 1}}]
    first = world.form("shared", "david", blocks, form_id="phone-form-1")
    assert first.status_code == 201
    clock.advance(minutes=3)
    counts = _counts(project)
    modified = world.case("c1")["modified_on"]
    # the phone resends after a timeout (even with different content, nothing changes)
    again = world.form("shared", "david", [{"case_id": "c1", "update": {"n": 2}}], form_id="phone-form-1")
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert _counts(project) == counts
    assert world.case("c1")["properties"] == {"n": 1}
    assert world.case("c1")["modified_on"] == modified
    # and even when the rules would now refuse it (david joined a second group)
    world.api.patch(
        f"/api/v1/groups/{world.groups['village2']}",
        json={"members": [world.users["nurse"], world.users["other"], world.users["david"]]},
    )
    third = world.form("shared", "david", blocks, form_id="phone-form-1")
    assert third.status_code == 200 and third.get_json() == first.get_json()


def test_create_for_existing_case_is_an_update(world):
    world.create("shared", "david", case_id="c1")
    r = world.form(
        "shared",
        "maria",
        [
            {
                "case_id": "c1",
                "create": {"case_type": "mother", "case_name": "Monica B."},
                "update": {"x": "1"},
            }
        ],
    )
    assert r.status_code == 201, r.get_json()
    case = world.case("c1")
    assert case["name"] == "Monica B."
    assert case["owner_id"] == world.groups["village1"]  # no owner given: unchanged
    assert case["user_id"] == world.users["maria"]
    assert world.api.get("/api/v1/cases").get_json()["results"].__len__() == 1


@pytest.mark.parametrize(
    "mutate,status,code",
    [
        (lambda b, w: b.update(app_id="nope"), 422, "unknown_application"),
        (lambda b, w: b.update(user_id="nope"), 422, "unknown_user"),
        (lambda b, w: b.update(cases=[{"case_id": "ghost", "update": {"a": 1}}]), 422, "case_not_found"),
        (lambda b, w: b.pop("app_id"), 400, "validation_error"),
        (lambda b, w: b.update(cases="x"), 400, "validation_error"),
        (lambda b, w: b.update(cases=[{"case_id": "a", "create": {}}]), 400, "validation_error"),
        (
            lambda b, w: b.update(cases=[{"case_id": "a", "update": {"p": {"nested": 1}}}]),
            400,
            "validation_error",
        ),
        (lambda b, w: b.update(cases=[{"case_id": "a", "close": "yes"}]), 400, "validation_error"),
        (lambda b, w: b.update(cases=[{"case_id": "a b"}]), 400, "validation_error"),
        (lambda b, w: b.update(answers=[1]), 400, "validation_error"),
        (lambda b, w: b.update(form_id="has space"), 400, "validation_error"),
        # the second block fails: the first block's new case is not written either
        (
            lambda b, w: b["cases"].append({"case_id": "ghost", "close": True}),
            422,
            "case_not_found",
        ),
    ],
)
def test_bad_forms_are_refused_and_write_nothing(world, project, mutate, status, code):
    body = {
        "app_id": world.apps["shared"],
        "user_id": world.users["david"],
        "cases": [{"case_id": "new1", "create": {"case_type": "mother", "case_name": "A"}}],
    }
    mutate(body, world)
    before = _counts(project)
    r = world.api.post("/api/v1/forms", json=body)
    assert r.status_code == status, r.get_json()
    assert r.get_json()["error"]["code"] == code
    assert _counts(project) == before


def test_another_projects_app_and_user_are_unknown(world, other_project):
    other = other_project.api()
    app_id = other.post("/api/v1/applications", json={"name": "Theirs"}).get_json()["id"]
    user_id = other.post("/api/v1/users", json={"username": "them"}).get_json()["id"]
    r = world.api.post("/api/v1/forms", json={"app_id": app_id, "user_id": world.users["david"], "cases": []})
    assert r.get_json()["error"]["code"] == "unknown_application"
    r = world.api.post(
        "/api/v1/forms", json={"app_id": world.apps["shared"], "user_id": user_id, "cases": []}
    )
    assert r.get_json()["error"]["code"] == "unknown_user"
