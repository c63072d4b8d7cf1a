"""The demo project that ``make run`` seeds on first start."""

import random

import phonenumbers
from sqlalchemy import select

from messaging.cases.indexing import stamp
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import ApiToken, Application, Case, MobileWorker, Project, UserGroup, WebUser
from messaging.projects.setup import create_project

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@example.org"
DEMO_PASSWORD = "demo-password"

# Country, mobile number prefix after the country code, digits that follow.
_PHONE_PLANS = [
    ("KE", "2547", 8),
    ("UG", "2567", 8),
    ("TZ", "2557", 8),
    ("NG", "23480", 8),
    ("IN", "919", 9),
    ("ZA", "2782", 7),
    ("BD", "88017", 8),
    ("GB", "447700", 6),
]
_FIRST = [
    "Amina",
    "Grace",
    "Wanjiru",
    "Fatuma",
    "Joyce",
    "Esther",
    "Mary",
    "Aisha",
    "Priya",
    "Nomsa",
    "Halima",
    "Ruth",
    "Nia",
    "Zainab",
    "Lakshmi",
    "Thandi",
    "Mercy",
    "Akosua",
    "Rahima",
    "Sarah",
]
_LAST = [
    "Otieno",
    "Mwangi",
    "Nakato",
    "Okafor",
    "Achieng",
    "Banda",
    "Kamau",
    "Patel",
    "Dlamini",
    "Mensah",
    "Hossain",
    "Njeri",
    "Mutua",
    "Abubakar",
    "Khumalo",
    "Akinyi",
    "Wekesa",
    "Osei",
]


def demo_exists() -> bool:
    return db.session.execute(select(Project.id).where(Project.slug == DEMO_SLUG)).first() is not None


def random_mobile(rng: random.Random) -> tuple[str, str]:
    """A valid-looking mobile number: (how someone typed it, E.164)."""
    while True:
        region, prefix, rest = rng.choice(_PHONE_PLANS)
        digits = prefix + "".join(rng.choice("0123456789") for _ in range(rest))
        parsed = phonenumbers.parse("+" + digits)
        if phonenumbers.is_valid_number(parsed):
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            style = rng.choice(
                [
                    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                    phonenumbers.PhoneNumberFormat.E164,
                    phonenumbers.PhoneNumberFormat.NATIONAL,
                ]
            )
            if style == phonenumbers.PhoneNumberFormat.NATIONAL and region != "KE":
                style = phonenumbers.PhoneNumberFormat.INTERNATIONAL
            return phonenumbers.format_number(parsed, style), e164


def seed_demo(case_count: int = 300, seed: int = 7) -> str:
    """Create the demo project; returns the admin's one-time API key."""
    rng = random.Random(seed)
    project, _admin, key = create_project(
        DEMO_SLUG, DEMO_EMAIL, DEMO_PASSWORD, "Demo Health Programme", "KE", "Africa/Nairobi"
    )
    pid = project.id
    workers = []
    for name in ["david", "maria", "nurse.joy", "peter", "halima", "supervisor.sam"]:
        w = MobileWorker(project_id=pid, username=name, language="en")
        w.set_password("demo-password")
        workers.append(w)
    db.session.add_all(workers)
    by_name = {w.username: w for w in workers}
    villages = []
    for village, members in [
        ("Village 1", ["david", "maria", "nurse.joy", "supervisor.sam"]),
        ("Village 2", ["peter", "nurse.joy", "supervisor.sam"]),
        ("Village 3", ["halima", "nurse.joy", "supervisor.sam"]),
    ]:
        group = UserGroup(
            project_id=pid, name=village, case_sharing=True, members=[by_name[m] for m in members]
        )
        villages.append(group)
    db.session.add_all(villages)
    db.session.add(
        UserGroup(project_id=pid, name="All staff (reporting)", case_sharing=False, members=list(workers))
    )
    db.session.add_all(
        [
            Application(project_id=pid, name="Community health worker app", case_sharing=True),
            Application(project_id=pid, name="Clinic app", case_sharing=True),
        ]
    )
    db.session.flush()
    now = clock.now()
    rows = []
    for i in range(case_count):
        raw, e164 = random_mobile(rng)
        group = villages[i % len(villages)]
        submitter = rng.choice([m for m in group.members if m.username != "supervisor.sam"])
        rows.append(
            Case(
                project_id=pid,
                case_type="mother" if i % 4 else "child",
                name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                external_id=f"EXT-{1000 + i}",
                phone_raw=raw,
                phone_number=e164,
                language=rng.choice(["en", "en", "sw", "fr"]),
                owner_id=group.id,
                user_id=submitter.id,
                opened_on=now,
                modified_on=now,
                properties={"village": group.name, "edd": f"2027-0{1 + i % 9}-1{i % 9}"},
            )
        )
    db.session.add_all(rows)
    stamp(pid, cases=rows)
    db.session.commit()
    _seed_broadcast(project, rows)
    _seed_alert(project)
    return key


def _seed_alert(project: Project) -> None:
    """A reminder two weeks before each mother's due date, so Alerts is not empty; the worker
    applies it to the demo's cases as it starts."""
    from messaging.alerts import manage
    from messaging.db.tenancy import project_scope

    with project_scope(project.id):
        body = {
            "name": "Two weeks before the due date",
            "case_type": "mother",
            "criteria": [{"property": "edd", "op": "exists"}],
            "start": {"property": "edd", "offset_days": -14, "time": "09:00"},
            "recipient": "case",
            "translations": {
                "en": "Hello {case.name}, your baby is due on {case.edd}. Please plan your clinic visit.",
                "sw": "Habari {case.name}, mtoto wako anatarajiwa {case.edd}. Tafadhali panga kliniki.",
            },
            "default_language": "en",
            "quiet_hours": {"start": "08:00", "end": "19:00"},
        }
        manage.create_rule(project.id, body)
        db.session.commit()


def _seed_broadcast(project: Project, cases: list[Case]) -> None:
    """A case group of mothers and a weekly reminder to them, so Broadcasts is not empty."""
    from messaging.broadcasts import manage
    from messaging.db.tenancy import project_scope
    from messaging.models import CaseGroup, CaseGroupMember

    with project_scope(project.id):
        group = CaseGroup(name="Expecting mothers, Village 1")
        db.session.add(group)
        db.session.flush()
        mothers = [c for c in cases if c.case_type == "mother" and c.properties["village"] == "Village 1"]
        db.session.add_all(CaseGroupMember(group_id=group.id, case_pk=c.id) for c in mothers[:40])
        body = {
            "name": "Weekly antenatal reminder",
            "recipients": {"case_groups": [group.id]},
            "translations": {
                "en": "Hello {case.name}, your antenatal visit is this week. Due date: {case.edd}.",
                "sw": "Habari {case.name}, kliniki yako ya ujauzito ni wiki hii. Tarehe: {case.edd}.",
            },
            "default_language": "en",
            "repeat": {"kind": "weekly", "time": "09:00", "days_of_week": [0]},
            "quiet_hours": {"start": "08:00", "end": "19:00"},
        }
        manage.create_broadcast(project, body)
        db.session.commit()


def issue_demo_token() -> str:
    """A new token for the demo admin; the one made by the last ``make run`` is revoked."""
    admin = db.session.execute(select(WebUser).where(WebUser.email == DEMO_EMAIL)).scalar_one()
    for old in db.session.execute(
        select(ApiToken).where(
            ApiToken.user_id == admin.id, ApiToken.name == "make run", ApiToken.revoked_at.is_(None)
        )
    ).scalars():
        old.revoked_at = clock.now()
    _token, key = ApiToken.issue(admin, "make run")
    db.session.commit()
    return key
