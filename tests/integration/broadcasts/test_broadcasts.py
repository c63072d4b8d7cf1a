"""Broadcasts end to end: content, skip reasons, fan-out idempotency, cancel, surveys, people, the API.

The schedule (once, repeating, DST, quiet hours, edits) is in test_broadcasts_schedule.py.
"""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from messaging.broadcasts import fanout, reading
from messaging.broadcasts.firing import FIRING_STALE_SECONDS, enqueue_firing
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Case
from tests.factories import T0, make_case, make_group, rows
from tests.integration.broadcasts.broadcast_helpers import (
    by_phone,
    case_pk,
    create,
    error_of,
    firings,
    run_firing,
    show,
    snapshot,
    tick,
)


def _set_case(project, case_id, **fields):
    with project.scope():
        db.session.execute(update(Case).where(Case.case_id == case_id).values(**fields))
        db.session.commit()


def _run_queues(app, *names):
    """A burst worker on only these queues (e.g. send jobs without the firing jobs)."""
    from workers.worker import make_worker

    with app.app_context():
        worker = make_worker(app, queue_names=list(names))
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
        return worker.jobs_performed


class _Crash(Exception):
    pass


def _crash_after(monkeypatch, batches):
    """Make the fan-out die (as a killed worker would) after ``batches`` more batches."""
    real = fanout.fan_out_batch
    done = []

    def dying(*args, **kwargs):
        if len(done) >= batches:
            raise _Crash()
        done.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fanout, "fan_out_batch", dying)
    return lambda: monkeypatch.setattr(fanout, "fan_out_batch", real)


# --- 8. the whole path ----------------------------------------------------------------


def test_case_group_broadcast_reaches_fake_twilio(app, twilio_project, fake, run_jobs):
    cases = [make_case(twilio_project, name=f"P{i}", phone=f"+2547120002{i:02d}") for i in range(5)]
    group_id = make_group(twilio_project, "Mothers", cases)
    api = twilio_project.api()
    body = {"name": "Clinic day", "recipients": {"case_groups": [group_id]}, "text": "Hi {case.name}"}
    preview = api.post("/api/v1/broadcasts/preview", json=body)
    assert preview.status_code == 200, preview.get_json()
    assert preview.get_json()["will_send"] == 5
    created = api.post("/api/v1/broadcasts", json=body)
    assert created.status_code == 201, created.get_json()
    broadcast_id = created.get_json()["id"]
    run_jobs(scheduled=True)
    assert sorted(m["body"] for m in fake.messages) == sorted(f"Hi P{i}" for i in range(5))
    assert all(r["status"] == "sent" for r in rows(twilio_project, broadcast_id=broadcast_id))
    shown = api.get(f"/api/v1/broadcasts/{broadcast_id}").get_json()
    assert shown["status"] == "sent", shown


# --- 1. placeholders and translations --------------------------------------------------


def test_placeholders_render_per_recipient_and_preview_reports_the_missing(
    app, twilio_project, fake, run_jobs
):
    p = twilio_project
    amina = make_case(p, name="Amina", phone="+254712000301", properties={"clinic": "Kisumu", "visit": 3})
    baraka = make_case(p, name="Baraka", phone="+254712000302", properties={"clinic": "Nakuru"})
    chebet = make_case(p, name="Chebet", phone="+254712000303", properties={})
    group = make_group(p, "Mothers", [amina, baraka, chebet])
    body = {
        "recipients": {"case_groups": [group]},
        "text": "Hi { case.name }, {case.clinic} visit {case.visit} {{ok}}",
    }
    preview = p.api().post("/api/v1/broadcasts/preview", json=body)
    assert preview.status_code == 200, preview.get_json()
    shown = preview.get_json()
    assert shown["recipients"] == shown["will_send"] == shown["checked"] == 3
    assert shown["skipped"] == {}
    assert shown["missing_placeholders"] == {"case.clinic": 1, "case.visit": 2}
    assert [s["text"] for s in shown["samples"]] == [
        "Hi Amina, Kisumu visit 3 {ok}",
        "Hi Baraka, Nakuru visit  {ok}",
        "Hi Chebet,  visit  {ok}",
    ]
    assert shown["segments"] == 1 and shown["total_segments"] == 3

    created = create(p, **body)
    run_jobs()
    assert by_phone(fake.messages) == {
        "+254712000301": ["Hi Amina, Kisumu visit 3 {ok}"],
        "+254712000302": ["Hi Baraka, Nakuru visit  {ok}"],
        "+254712000303": ["Hi Chebet,  visit  {ok}"],
    }
    sent = rows(p, broadcast_id=created["id"])
    assert {r["case_id"] for r in sent} == {case_pk(p, c) for c in (amina, baraka, chebet)}


def test_translations_follow_the_recipients_language_with_fallback_to_the_default(
    app, twilio_project, fake, run_jobs
):
    p = twilio_project
    languages = {"+254712000311": "en", "+254712000312": "en-GB", "+254712000313": "fr"}
    languages |= {"+254712000314": None, "+254712000315": "SW", "+254712000316": "sw_KE"}
    cases = [
        make_case(p, name=f"N{i}", phone=phone, language=lang)
        for i, (phone, lang) in enumerate(languages.items())
    ]
    body = {
        "recipients": {"case_groups": [make_group(p, "All", cases)]},
        "translations": {"en": "Hello {case.name}", "sw": "Habari {case.name}"},
        "default_language": "sw",
    }
    preview = p.api().post("/api/v1/broadcasts/preview", json=body).get_json()
    assert preview["will_send"] == 6 and preview["missing_placeholders"] == {}
    assert [s["text"] for s in preview["samples"]] == ["Hello N0", "Hello N1", "Habari N2"]
    created = create(p, **body)
    assert created["translations"] == body["translations"] and created["default_language"] == "sw"
    run_jobs()
    assert by_phone(fake.messages) == {
        "+254712000311": ["Hello N0"],  # exact
        "+254712000312": ["Hello N1"],  # base language of en-GB
        "+254712000313": ["Habari N2"],  # no French: the default
        "+254712000314": ["Habari N3"],  # no language: the default
        "+254712000315": ["Habari N4"],  # case-insensitive
        "+254712000316": ["Habari N5"],  # sw_KE -> sw
    }


def test_translations_default_to_english_when_no_default_is_given(app, twilio_project, fake, run_jobs):
    p = twilio_project
    fr = make_case(p, name="F", phone="+254712000321", language="fr")
    sw = make_case(p, name="S", phone="+254712000322", language="sw")
    created = create(p, recipients={"cases": [fr, sw]}, translations={"sw": "Habari", "en": "Hello"})
    assert created["default_language"] == "en"
    run_jobs()
    assert by_phone(fake.messages) == {"+254712000321": ["Hello"], "+254712000322": ["Habari"]}


# --- 2. skip reasons -----------------------------------------------------------------


def test_each_skip_reason_in_the_preview_and_in_the_firing(app, twilio_project, fake, run_jobs):
    from messaging.sms import optouts

    p = twilio_project
    ok = make_case(p, name="Ok", phone="+254712000401")
    closed = make_case(p, name="Closed", phone="+254712000402")
    deleted = make_case(p, name="Deleted", phone="+254712000403")
    no_phone = make_case(p, name="NoPhone")
    invalid = make_case(p, name="Bad", phone="12345")
    first = make_case(p, name="First", phone="+254712000404")
    second = make_case(p, name="Second", phone="0712000404")  # the same number, written differently
    opted = make_case(p, name="Opted", phone="+254712000405")
    closed_twin = make_case(p, name="ClosedTwin", phone="+254712000406")
    open_twin = make_case(p, name="OpenTwin", phone="+254712000406")
    everyone = [ok, closed, deleted, no_phone, invalid, first, second, opted, closed_twin, open_twin]
    group = make_group(p, "Everyone", everyone)
    # Cases close or are deleted after they joined the group.
    _set_case(p, closed, closed=True)
    _set_case(p, closed_twin, closed=True)
    _set_case(p, deleted, deleted=True)
    with p.scope():
        assert optouts.opt_out(p.id, "+254712000405", "keyword")
        db.session.commit()

    # ``ok`` is in the group and listed by itself: still one recipient.
    body = {"recipients": {"case_groups": [group], "cases": [ok]}, "text": "Hi {case.name}"}
    expected_skips = {
        "closed_case": 3,
        "no_phone": 1,
        "invalid_number": 1,
        "duplicate_phone": 1,
        "opted_out": 1,
    }
    preview = p.api().post("/api/v1/broadcasts/preview", json=body).get_json()
    assert preview["recipients"] == 10 and preview["will_send"] == 3
    assert preview["skipped"] == expected_skips

    broadcast_id = create(p, **body)["id"]
    run_jobs()
    [firing] = firings(p, broadcast_id)
    reasons = {r["case_pk"]: r["skip_reason"] for r in snapshot(p, firing["id"])}
    assert reasons == {
        case_pk(p, ok): None,
        case_pk(p, closed): "closed_case",
        case_pk(p, deleted): "closed_case",
        case_pk(p, no_phone): "no_phone",
        case_pk(p, invalid): "invalid_number",
        case_pk(p, first): None,  # the first in a stable order gets the shared number
        case_pk(p, second): "duplicate_phone",
        case_pk(p, opted): "opted_out",
        case_pk(p, closed_twin): "closed_case",  # a closed case does not take the number
        case_pk(p, open_twin): None,
    }
    messages = rows(p, broadcast_id=broadcast_id)
    assert sorted((r["phone"], r["body"], r["status"]) for r in messages) == [
        ("+254712000401", "Hi Ok", "sent"),
        ("+254712000404", "Hi First", "sent"),
        ("+254712000406", "Hi OpenTwin", "sent"),
    ]
    assert by_phone(fake.messages) == {
        "+254712000401": ["Hi Ok"],
        "+254712000404": ["Hi First"],
        "+254712000406": ["Hi OpenTwin"],
    }
    assert firing["total"] == 10 and firing["messages"] == 3 and firing["status"] == "done"
    shown = show(p, broadcast_id)
    assert shown["status"] == "sent" and shown["percent"] == 100
    assert shown["counts"] == {"statuses": {"sent": 3}, "skipped": expected_skips}
    [progress] = shown["firings"]
    assert progress["recipients"] == 10 and progress["processed"] == 10 and progress["messages"] == 3


def test_a_number_opted_out_after_the_fan_out_is_not_sent(app, twilio_project, fake, run_jobs):
    from messaging.sms import optouts

    p = twilio_project
    cases = [make_case(p, name=f"O{i}", phone=f"+25471200041{i}") for i in range(2)]
    broadcast_id = create(p, recipients={"cases": cases}, text="Hi")["id"]
    [firing] = firings(p, broadcast_id)
    run_firing(p, firing["id"])  # messages written, send jobs queued, nothing sent yet
    with p.scope():
        optouts.opt_out(p.id, "+254712000411", "keyword")
        db.session.commit()
    run_jobs()
    assert by_phone(fake.messages) == {"+254712000410": ["Hi"]}
    late = rows(p, phone="+254712000411")[0]
    assert late["status"] == "failed" and late["skip_reason"] == "opted_out"
    assert show(p, broadcast_id)["counts"] == {
        "statuses": {"sent": 1, "failed": 1},
        "skipped": {"opted_out": 1},
    }


# --- 5. a duplicate firing sends nothing twice ----------------------------------------


def test_the_firing_job_enqueued_three_times_sends_each_recipient_once(app, twilio_project, fake, run_jobs):
    p = twilio_project
    cases = [make_case(p, name=f"D{i}", phone=f"+2547120005{i:02d}") for i in range(7)]
    broadcast_id = create(p, recipients={"case_groups": [make_group(p, "G", cases)]}, text="Once")["id"]
    [firing] = firings(p, broadcast_id)
    with app.app_context():
        enqueue_firing(p.id, firing["id"])
        enqueue_firing(p.id, firing["id"])
    run_jobs()
    assert sorted(by_phone(fake.messages)) == [f"+2547120005{i:02d}" for i in range(7)]
    assert all(bodies == ["Once"] for bodies in by_phone(fake.messages).values())
    assert fake.stats["created"] == 7 and len(fake.messages) == 7
    assert len(rows(p, broadcast_id=broadcast_id)) == 7
    # And once more by hand, after it is done: nothing.
    assert run_firing(p, firing["id"]) == {"status": "done"}
    run_jobs()
    assert len(fake.messages) == 7 and len(rows(p, broadcast_id=broadcast_id)) == 7
    assert len(firings(p, broadcast_id)) == 1


def test_a_fan_out_resumed_after_a_crash_writes_each_message_once(
    app, twilio_project, fake, run_jobs, monkeypatch
):
    p = twilio_project
    cases = [make_case(p, name=f"R{i}", phone=f"+2547120005{i + 20}") for i in range(5)]
    broadcast_id = create(p, recipients={"cases": cases}, text="Resume")["id"]
    [firing] = firings(p, broadcast_id)
    restore = _crash_after(monkeypatch, 1)
    with pytest.raises(_Crash):
        run_firing(p, firing["id"], batch_size=2)
    restore()
    [after_crash] = firings(p, broadcast_id)
    assert after_crash["status"] == "sending" and after_crash["cursor"] == 2 and after_crash["total"] == 5
    assert len(rows(p, broadcast_id=broadcast_id)) == 2
    # The firing job (still queued) picks up where the crash left off; a second run is a no-op.
    run_jobs()
    assert run_firing(p, firing["id"], batch_size=2) == {"status": "done"}
    messages = rows(p, broadcast_id=broadcast_id)
    assert sorted(r["phone"] for r in messages) == sorted(f"+2547120005{i + 20}" for i in range(5))
    assert len(fake.messages) == 5 and len(by_phone(fake.messages)) == 5
    assert len(snapshot(p, firing["id"])) == 5  # snapshotted once


@pytest.mark.parametrize("other_finishes", [True, False], ids=["other-job-finishes", "other-job-mid-way"])
def test_two_fan_outs_racing_on_one_firing_write_each_message_once(
    app, twilio_project, fake, run_jobs, monkeypatch, other_finishes
):
    p = twilio_project
    phones = [f"+2547120005{i + 40}" for i in range(5)]
    cases = [make_case(p, name=f"X{i}", phone=phone) for i, phone in enumerate(phones)]
    broadcast_id = create(p, recipients={"cases": cases}, text="Race")["id"]
    [firing] = firings(p, broadcast_id)
    real = fanout.fan_out_batch
    calls, other = [], {}

    def job_b():
        try:
            other.update(run_firing(p, firing["id"], batch_size=2))
        except _Crash:
            other["crashed"] = True

    def racing(b, firing_id, cursor, batch, content, **kwargs):
        me = "B" if threading.current_thread().name == "job-b" else "A"
        if me == "B" and not other_finishes and any(who == "B" for who, _ in calls):
            raise _Crash()  # B dies after one batch: the firing stays 'sending' at B's cursor
        calls.append((me, cursor))
        if calls == [("A", 0), ("A", 2)]:
            # Job A has read its second batch; job B (another worker) runs now, before A claims it.
            thread = threading.Thread(target=job_b, name="job-b")
            thread.start()
            thread.join()
        return real(b, firing_id, cursor, batch, content, **kwargs)

    monkeypatch.setattr(fanout, "fan_out_batch", racing)
    mine = run_firing(p, firing["id"], batch_size=2)
    monkeypatch.setattr(fanout, "fan_out_batch", real)
    assert mine == {"batches": 1, "messages": 2}  # A lost the claim at cursor 2 and stopped
    if other_finishes:
        assert calls == [("A", 0), ("A", 2), ("B", 2), ("B", 4)]
        assert other == {"batches": 2, "messages": 3}
    else:
        assert calls == [("A", 0), ("A", 2), ("B", 2)]
        assert other == {"crashed": True}
        [midway] = firings(p, broadcast_id)
        assert midway["status"] == "sending" and midway["cursor"] == 4
        assert sorted(r["phone"] for r in rows(p, broadcast_id=broadcast_id)) == phones[:4]
    run_jobs()  # the queued firing job finishes what is left
    assert sorted(r["phone"] for r in rows(p, broadcast_id=broadcast_id)) == phones
    assert len(fake.messages) == 5 and sorted(by_phone(fake.messages)) == phones
    [done] = firings(p, broadcast_id)
    assert done["status"] == "done" and done["processed"] == 5 and done["messages"] == 5


def test_a_firing_whose_job_was_lost_is_enqueued_again_by_the_tick(app, twilio_project, fake, run_jobs):
    from messaging.jobs import redis_conn

    p = twilio_project
    clock.set_now(T0)
    cases = [make_case(p, name=f"L{i}", phone=f"+2547120005{i + 60}") for i in range(3)]
    broadcast_id = create(p, recipients={"cases": cases}, text="Lost")["id"]
    redis_conn(app).flushdb()  # the firing job is gone
    assert run_jobs() == 0
    clock.advance(seconds=FIRING_STALE_SECONDS - 1)
    assert tick(app) == {}  # not stale yet
    clock.advance(seconds=2)
    assert tick(app) == {"requeued": 1}
    run_jobs()
    assert len(fake.messages) == 3 and len(rows(p, broadcast_id=broadcast_id)) == 3
    assert show(p, broadcast_id)["status"] == "sent"
    clock.advance(seconds=FIRING_STALE_SECONDS + 1)
    assert tick(app) == {}  # done: never again


# --- 6. cancel ---------------------------------------------------------------------


def test_cancel_midway_fails_the_unsent_and_nothing_more_reaches_twilio(
    app, twilio_project, fake, run_jobs, monkeypatch
):
    p = twilio_project
    clock.set_now(T0)
    phones = [f"+2547120007{i:02d}" for i in range(6)]
    cases = [make_case(p, name=f"C{i}", phone=phone) for i, phone in enumerate(phones)]
    broadcast_id = create(p, recipients={"case_groups": [make_group(p, "G", cases)]}, text="Hi")["id"]
    [firing] = firings(p, broadcast_id)
    # A worker writes the first batch, whose send job runs; then it dies.
    restore = _crash_after(monkeypatch, 1)
    with pytest.raises(_Crash):
        run_firing(p, firing["id"], batch_size=2)
    restore()
    assert _run_queues(app, "sms") == 1
    assert sorted(by_phone(fake.messages)) == phones[:2]
    # Another writes the second batch and dies before its send job runs.
    restore = _crash_after(monkeypatch, 1)
    with pytest.raises(_Crash):
        run_firing(p, firing["id"], batch_size=2)
    restore()
    assert [r["status"] for r in rows(p, broadcast_id=broadcast_id)] == ["sent", "sent", "queued", "queued"]
    assert show(p, broadcast_id)["status"] == "sending"

    response = p.api().post(f"/api/v1/broadcasts/{broadcast_id}/cancel")
    assert response.status_code == 200, response.get_json()
    cancelled = response.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] == "2026-03-02T09:00:00Z"
    assert cancelled["next_fire_at"] is None
    assert cancelled["counts"]["statuses"] == {"sent": 2, "failed": 2}
    assert cancelled["counts"]["skipped"] == {"cancelled": 2}
    assert cancelled["firings"][0]["status"] == "cancelled"

    # The queued firing job, the pending send job, retries, the sweep and the tick: nothing more.
    run_jobs(scheduled=True)
    assert run_firing(p, firing["id"]) == {"status": "cancelled"}
    clock.advance(minutes=10)
    from messaging.sms import sweep

    with app.app_context():
        assert sweep.sweep().requeued == 0
    assert tick(app) == {}
    run_jobs(scheduled=True)
    assert sorted(by_phone(fake.messages)) == phones[:2] and len(fake.messages) == 2
    messages = rows(p, broadcast_id=broadcast_id)
    assert [(r["phone"], r["status"], r["skip_reason"]) for r in messages] == [
        (phones[0], "sent", None),
        (phones[1], "sent", None),
        (phones[2], "failed", "cancelled"),
        (phones[3], "failed", "cancelled"),
    ]
    assert show(p, broadcast_id)["status"] == "cancelled"
    assert [b["id"] for b in p.api().get("/api/v1/broadcasts?status=cancelled").get_json()["results"]] == [
        broadcast_id
    ]


def test_cancel_after_the_fan_out_before_any_send(app, twilio_project, fake, run_jobs):
    p = twilio_project
    cases = [make_case(p, name=f"E{i}", phone=f"+2547120007{i + 50}") for i in range(4)]
    broadcast_id = create(p, recipients={"cases": cases}, text="Hi")["id"]
    assert _run_queues(app, "default") == 1  # the fan-out only
    assert [r["status"] for r in rows(p, broadcast_id=broadcast_id)] == ["queued"] * 4
    assert p.api().post(f"/api/v1/broadcasts/{broadcast_id}/cancel").status_code == 200
    run_jobs(scheduled=True)
    assert fake.messages == []
    assert {(r["status"], r["skip_reason"]) for r in rows(p, broadcast_id=broadcast_id)} == {
        ("failed", "cancelled")
    }
    shown = show(p, broadcast_id)
    assert shown["status"] == "cancelled" and shown["percent"] == 100
    assert shown["counts"] == {"statuses": {"failed": 4}, "skipped": {"cancelled": 4}}
    # Cancelling again is harmless and keeps the first cancel time.
    again = p.api().post(f"/api/v1/broadcasts/{broadcast_id}/cancel").get_json()
    assert again["cancelled_at"] == shown["cancelled_at"] and again["status"] == "cancelled"


# --- surveys ------------------------------------------------------------------------


def test_survey_broadcast_sends_the_first_question_and_opens_a_session(app, twilio_project, fake, run_jobs):
    from messaging.sms import optouts
    from tests.factories import make_survey
    from tests.integration.inbound.inbound_helpers import say, sessions_of

    p = twilio_project
    clock.set_now(T0)
    survey_id = make_survey(p)
    asha = make_case(p, name="Asha", phone="+254712000801")
    bora = make_case(p, name="Bora", phone="+254712000802")
    opted = make_case(p, name="Opted", phone="+254712000803")
    with p.scope():
        optouts.opt_out(p.id, "+254712000803", "keyword")
        db.session.commit()
    body = {"recipients": {"cases": [asha, bora, opted]}, "survey_id": survey_id}
    preview = p.api().post("/api/v1/broadcasts/preview", json=body).get_json()
    assert preview["will_send"] == 2 and preview["skipped"] == {"opted_out": 1}
    assert preview["samples"][0]["text"] == "How old are you?"
    created = create(p, **body)
    assert created["survey_id"] == survey_id and created["text"] is None
    run_jobs()
    assert by_phone(fake.messages) == {
        "+254712000801": ["How old are you?"],
        "+254712000802": ["How old are you?"],
    }
    sessions = {s["phone"]: s for s in sessions_of(p)}
    assert sorted(sessions) == ["+254712000801", "+254712000802"]
    for phone, session in sessions.items():
        assert session["status"] == "open" and session["current_index"] == 0
        assert session["source"] == "broadcast" and session["broadcast_id"] == created["id"]
        assert session["survey_id"] == survey_id
        [message] = rows(p, phone=phone)
        assert message["survey_session_id"] == session["id"] and message["broadcast_id"] == created["id"]
    assert sessions["+254712000801"]["case_pk"] == case_pk(p, asha)
    # The session works: the answer gets the next question.
    assert say(p, run_jobs, "+254712000801", "34") == ["Any fever?\n1. Yes\n2. No"]
    assert show(p, created["id"])["counts"]["statuses"] == {"sent": 2}


def test_a_survey_broadcast_replaces_a_recipients_open_session_and_gives_each_its_own(
    app, twilio_project, fake, run_jobs
):
    import re

    from tests.factories import make_keyword, make_survey
    from tests.integration.inbound.inbound_helpers import say, sessions_of

    p = twilio_project
    clock.set_now(T0)
    other = make_survey(p, name="Other", questions=[{"id": "q", "type": "text", "text": "Name?"}])
    make_keyword(p, keyword="JOIN", survey_id=other)
    cases = [make_case(p, name=f"R{i}", phone=f"+25471200085{i}") for i in range(4)]
    assert say(p, run_jobs, "+254712000850", "join") == ["Name?"]
    [earlier] = sessions_of(p)
    created = create(p, recipients={"cases": cases}, survey_id=make_survey(p))
    run_jobs()
    sessions = sessions_of(p)
    replaced = next(s for s in sessions if s["id"] == earlier["id"])
    assert (replaced["status"], replaced["end_reason"]) == ("cancelled", "replaced")
    new = [s for s in sessions if s["broadcast_id"] == created["id"]]
    assert len(new) == 4 and len({s["id"] for s in new}) == 4
    assert all(re.fullmatch(r"[0-9a-f]{32}", s["id"]) for s in new)
    assert all(s["status"] == "open" and s["answers"] == {} and s["expires_at"] for s in new)
    linked = {m["phone"]: m["survey_session_id"] for m in rows(p, broadcast_id=created["id"])}
    assert linked == {s["phone"]: s["id"] for s in new}
    # The replacing session is the one the number's answers go to.
    assert say(p, run_jobs, "+254712000850", "34") == ["Any fever?\n1. Yes\n2. No"]


def test_cancelling_a_survey_broadcast_cancels_its_unanswered_sessions(app, twilio_project, fake, run_jobs):
    from tests.factories import make_survey
    from tests.integration.inbound.inbound_helpers import sessions_of

    p = twilio_project
    survey_id = make_survey(p)
    cases = [make_case(p, name=f"S{i}", phone=f"+25471200081{i}") for i in range(2)]
    broadcast_id = create(p, recipients={"cases": cases}, survey_id=survey_id)["id"]
    assert _run_queues(app, "default") == 1  # sessions opened, questions queued
    assert [s["status"] for s in sessions_of(p)] == ["open", "open"]
    assert p.api().post(f"/api/v1/broadcasts/{broadcast_id}/cancel").status_code == 200
    run_jobs()
    assert fake.messages == []
    assert {(s["status"], s["end_reason"]) for s in sessions_of(p)} == {("cancelled", "broadcast_cancelled")}


# --- mobile workers and user groups ----------------------------------------------------


def _user(api, username, **body):
    response = api.post("/api/v1/users", json={"username": username, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_mobile_workers_and_user_groups_as_recipients(app, twilio_project, fake, run_jobs):
    p = twilio_project
    api = p.api()
    wanjiru = _user(api, "wanjiru", phone_number="+254712000901", language="sw")
    otieno = _user(api, "otieno", phone_number="0712000902")
    kamau = _user(api, "kamau")  # no phone
    twin = _user(api, "twin", phone_number="+254712000903")
    assert otieno["phone_number"] == "+254712000902"
    response = api.post(
        "/api/v1/groups", json={"name": "CHWs", "members": [wanjiru["id"], otieno["id"], kamau["id"]]}
    )
    assert response.status_code == 201, response.get_json()
    group_id = response.get_json()["id"]
    case = make_case(p, name="Case", phone="+254712000903")  # the same number as ``twin``

    body = {
        "recipients": {"groups": [group_id], "users": [wanjiru["id"], twin["id"]], "cases": [case]},
        "translations": {"en": "Meeting at 10", "sw": "Mkutano saa nne"},
    }
    preview = api.post("/api/v1/broadcasts/preview", json=body).get_json()
    # wanjiru is in the group and listed: one recipient. The case comes first: twin is the duplicate.
    assert preview["recipients"] == 5 and preview["will_send"] == 3
    assert preview["skipped"] == {"no_phone": 1, "duplicate_phone": 1}
    broadcast_id = create(p, **body)["id"]
    run_jobs()
    assert by_phone(fake.messages) == {
        "+254712000901": ["Mkutano saa nne"],
        "+254712000902": ["Meeting at 10"],
        "+254712000903": ["Meeting at 10"],
    }
    by_number = {r["phone"]: r for r in rows(p, broadcast_id=broadcast_id)}
    assert by_number["+254712000903"]["case_id"] == case_pk(p, case)
    assert by_number["+254712000901"]["case_id"] is None
    [firing] = firings(p, broadcast_id)
    workers = {r["worker_id"]: r["skip_reason"] for r in snapshot(p, firing["id"]) if r["worker_id"]}
    assert workers == {
        wanjiru["id"]: None,
        otieno["id"]: None,
        kamau["id"]: "no_phone",
        twin["id"]: "duplicate_phone",
    }

    # {user.username} is the worker's; only users here, so nothing is missing.
    body = {"recipients": {"groups": [group_id]}, "text": "Hi {user.username}"}
    preview = api.post("/api/v1/broadcasts/preview", json=body).get_json()
    assert preview["missing_placeholders"] == {} and preview["skipped"] == {"no_phone": 1}
    fake.reset()
    create(p, **body)
    run_jobs()
    assert by_phone(fake.messages) == {"+254712000901": ["Hi wanjiru"], "+254712000902": ["Hi otieno"]}


def test_inactive_workers_and_invalid_worker_numbers_are_skipped(app, twilio_project, fake, run_jobs):
    from messaging.models import MobileWorker

    p = twilio_project
    api = p.api()
    gone = _user(api, "gone", phone_number="+254712000911")
    bad = _user(api, "bad", phone_number="12")
    plus_but_invalid = _user(api, "plus", phone_number="+12 34")  # stored as typed: it does not parse
    with p.scope():
        db.session.execute(update(MobileWorker).where(MobileWorker.id == gone["id"]).values(is_active=False))
        db.session.commit()
    preview = api.post(
        "/api/v1/broadcasts/preview",
        json={"recipients": {"users": [gone["id"], bad["id"], plus_but_invalid["id"]]}, "text": "Hi"},
    ).get_json()
    assert preview["will_send"] == 0 and preview["skipped"] == {"closed_case": 1, "invalid_number": 2}


# --- 9. the API ---------------------------------------------------------------------

DROP = object()
PAST = "2020-01-01T00:00:00Z"
VALIDATION = [
    ({"name": DROP}, 400, "validation_error", "name"),
    ({"name": "   "}, 400, "validation_error", "name"),
    ({"name": "x" * 201}, 400, "validation_error", "name"),
    ({"recipients": DROP}, 400, "validation_error", "recipients"),
    ({"recipients": {}}, 400, "validation_error", "recipients"),
    ({"recipients": {"cases": []}}, 400, "validation_error", "recipients"),
    ({"recipients": {"people": ["x"]}}, 400, "validation_error", "recipients"),
    ({"recipients": {"cases": "abc"}}, 400, "validation_error", "recipients.cases"),
    ({"recipients": ["abc"]}, 400, "validation_error", "recipients"),
    ({"recipients": {"case_groups": ["nope"]}}, 404, "not_found", "recipients.case_groups"),
    ({"recipients": {"cases": ["nope"]}}, 404, "not_found", "recipients.cases"),
    ({"recipients": {"users": ["nope"]}}, 404, "not_found", "recipients.users"),
    ({"recipients": {"groups": ["nope"]}}, 404, "not_found", "recipients.groups"),
    ({"text": DROP}, 400, "validation_error", "text"),
    ({"text": ""}, 400, "validation_error", "text"),
    ({"text": "   "}, 400, "validation_error", "text"),
    ({"text": 5}, 400, "validation_error", "text"),
    ({"text": "x" * 1601}, 400, "validation_error", "text"),
    ({"translations": {"en": "Hi"}}, 400, "validation_error", "text"),  # text and translations
    ({"survey_id": "nope"}, 400, "validation_error", "text"),  # text and survey_id
    ({"text": "Hi {name}"}, 400, "invalid_template", "text"),
    ({"text": "Hi {foo.bar}"}, 400, "invalid_template", "text"),
    ({"text": "Hi {case.name"}, 400, "invalid_template", "text"),
    (
        {"text": DROP, "translations": {"sw": "Habari"}, "default_language": "en"},
        400,
        "validation_error",
        "default_language",
    ),
    ({"text": DROP, "translations": {"en": "Hi {oops"}}, 400, "invalid_template", "translations.en"),
    ({"text": DROP, "translations": {"en": ""}}, 400, "validation_error", "translations.en"),
    ({"text": DROP, "translations": ["en"]}, 400, "validation_error", "translations"),
    ({"text": DROP, "survey_id": "nope"}, 404, "not_found", "survey_id"),
    ({"send_at": PAST}, 400, "validation_error", "send_at"),
    ({"send_at": "tomorrow"}, 400, "validation_error", "send_at"),
    ({"send_at": 12}, 400, "validation_error", "send_at"),
    (
        {"send_at": "2026-03-03T09:00:00Z", "repeat": {"kind": "daily", "time": "09:00"}},
        400,
        "validation_error",
        "send_at",
    ),
    ({"repeat": {"kind": "hourly", "time": "09:00"}}, 400, "validation_error", "repeat.kind"),
    ({"repeat": {"kind": "daily", "time": "25:00"}}, 400, "validation_error", "repeat.time"),
    ({"repeat": {"kind": "weekly", "time": "09:00"}}, 400, "validation_error", "repeat.days_of_week"),
    (
        {"repeat": {"kind": "daily", "time": "09:00", "timezone": "Mars/Base"}},
        400,
        "validation_error",
        "repeat.timezone",
    ),
    (
        {"repeat": {"kind": "daily", "time": "09:00", "start_date": "2020-01-01", "end_date": "2020-01-05"}},
        400,
        "validation_error",
        "repeat",
    ),
    ({"repeat": "daily"}, 400, "validation_error", "repeat"),
    ({"quiet_hours": {"start": "8am", "end": "20:00"}}, 400, "validation_error", "quiet_hours.start"),
    ({"quiet_hours": {"start": "08:00"}}, 400, "validation_error", "quiet_hours.end"),
    ({"quiet_hours": {"start": "08:00", "end": "08:00"}}, 400, "validation_error", "quiet_hours"),
    ({"quiet_hours": "08-20"}, 400, "validation_error", "quiet_hours"),
]


def test_create_and_preview_validation_errors_name_the_field(app, project):
    """One project for all the bad bodies (each is refused, and nothing is created)."""
    clock.set_now(T0)
    case = make_case(project, name="Amina", phone="+254712001001")
    api = project.api()
    for overrides, status, code, field in VALIDATION:
        body = {"name": "Clinic day", "recipients": {"cases": [case]}, "text": "Hi {case.name}"}
        for key, value in overrides.items():
            if value is DROP:
                body.pop(key)
            else:
                body[key] = value
        response = api.post("/api/v1/broadcasts", json=body)
        assert response.status_code == status, (overrides, response.get_json())
        error = response.get_json()["error"]
        assert error["code"] == code and error["details"]["field"] == field, (overrides, error)
        assert error["message"]
        if not {"name", "send_at", "repeat"} & set(overrides):
            # The preview validates the same way (it ignores the name and the timing).
            response = api.post("/api/v1/broadcasts/preview", json=body)
            assert response.status_code == status, (overrides, response.get_json())
            error = response.get_json()["error"]
            assert error["code"] == code and error["details"]["field"] == field, (overrides, error)
    assert api.get("/api/v1/broadcasts").get_json()["results"] == []


def test_invalid_template_lists_its_problems(api, project):
    case = make_case(project, phone="+254712001002")
    body = {"name": "x", "recipients": {"cases": [case]}, "text": "Hi {name} and }"}
    error = error_of(api.post("/api/v1/broadcasts", json=body), 400)
    assert error["code"] == "invalid_template" and len(error["details"]["problems"]) == 2


def test_not_json_object_bodies_are_rejected(api):
    for path in ("/api/v1/broadcasts", "/api/v1/broadcasts/preview"):
        response = api.post(path, json=["not", "an", "object"])
        assert response.status_code == 400, response.get_json()


def test_unknown_and_other_projects_broadcasts_are_404(app, project, other_project):
    theirs_case = make_case(other_project, phone="+256772000001")
    theirs = create(
        other_project, recipients={"cases": [theirs_case]}, text="Hi", send_at="2099-01-01T00:00:00Z"
    )
    their_group = make_group(other_project, "Theirs", [theirs_case])
    api = project.api()
    for broadcast_id in ("nope", theirs["id"]):
        for response in (
            api.get(f"/api/v1/broadcasts/{broadcast_id}"),
            api.patch(f"/api/v1/broadcasts/{broadcast_id}", json={"name": "mine"}),
            api.delete(f"/api/v1/broadcasts/{broadcast_id}"),
            api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel"),
        ):
            assert error_of(response, 404)["code"] == "not_found"
    assert api.get("/api/v1/broadcasts").get_json()["results"] == []
    # Their cases and groups are not recipients here either.
    for recipients in ({"cases": [theirs_case]}, {"case_groups": [their_group]}):
        response = api.post("/api/v1/broadcasts", json={"name": "x", "recipients": recipients, "text": "Hi"})
        assert error_of(response, 404)["code"] == "not_found"
    # And theirs is untouched.
    assert show(other_project, theirs["id"])["status"] == "scheduled"


def test_list_with_status_filter(app, twilio_project, fake, run_jobs):
    p = twilio_project
    clock.set_now(T0)
    case = make_case(p, name="Amina", phone="+254712001101")
    later = create(
        p, name="Later", recipients={"cases": [case]}, text="Later", send_at="2026-03-09T09:00:00Z"
    )
    clock.advance(seconds=1)  # newest first
    stopped = create(
        p, name="Stopped", recipients={"cases": [case]}, text="x", send_at="2026-03-09T09:00:00Z"
    )
    assert p.api().post(f"/api/v1/broadcasts/{stopped['id']}/cancel").status_code == 200
    clock.advance(seconds=1)
    now = create(p, name="Now", recipients={"cases": [case]}, text="Now")
    assert now["status"] == "sending" and later["status"] == "scheduled"

    def names(status=None):
        query = f"?status={status}" if status else ""
        response = p.api().get(f"/api/v1/broadcasts{query}")
        assert response.status_code == 200, response.get_json()
        return [(b["name"], b["status"]) for b in response.get_json()["results"]]

    assert names() == [("Now", "sending"), ("Stopped", "cancelled"), ("Later", "scheduled")]
    assert names("sending") == [("Now", "sending")]
    assert names("scheduled") == [("Later", "scheduled")]
    assert names("cancelled") == [("Stopped", "cancelled")]
    assert names("sent") == []
    run_jobs()
    assert names("sent") == [("Now", "sent")] and names("sending") == []
    error = error_of(p.api().get("/api/v1/broadcasts?status=done"), 400)
    assert error["code"] == "validation_error"


def test_list_pages_with_a_cursor_and_filters_status_across_pages(app, project, other_project):
    clock.set_now(T0)
    case = make_case(project, name="Amina", phone="+254712001121")
    made = []
    for i in range(7):
        clock.advance(seconds=1)  # distinct created_at: newest first
        b = create(
            project, name=f"B{i}", recipients={"cases": [case]}, text="x", send_at="2099-01-01T09:00:00Z"
        )
        made.append(b["id"])
    for i in (1, 2, 4):  # cancelled ones sit between scheduled ones
        assert project.api().post(f"/api/v1/broadcasts/{made[i]}/cancel").status_code == 200
    theirs = make_case(other_project, phone="+256772000011")
    create(other_project, recipients={"cases": [theirs]}, text="x", send_at="2099-01-01T09:00:00Z")

    def walk(query):
        seen, url, pages = [], f"/api/v1/broadcasts?{query}", 0
        while url:
            response = project.api().get(url)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            seen += [b["name"] for b in body["results"]]
            url, pages = body["next"], pages + 1
        return seen, pages

    assert walk("limit=3") == (["B6", "B5", "B4", "B3", "B2", "B1", "B0"], 3)
    assert walk("limit=2&status=scheduled") == (["B6", "B5", "B3", "B0"], 2)
    assert walk("limit=2&status=cancelled") == (["B4", "B2", "B1"], 2)
    assert walk("limit=5&status=sent") == ([], 1)
    error = error_of(project.api().get("/api/v1/broadcasts?cursor=bm90LWEtY3Vyc29y"), 400)
    assert error["code"] == "invalid_cursor"
    with project.scope():
        assert reading.status_counts() == {"cancelled": 3, "sending": 0, "scheduled": 4, "sent": 0}


def test_detail_shows_counts_by_status_and_skip_reason_and_the_fields(app, twilio_project, fake, run_jobs):
    p = twilio_project
    clock.set_now(T0)
    fake.fail_numbers = {"+254712001202": 21211}
    ok = make_case(p, name="Ok", phone="+254712001201")
    rejected = make_case(p, name="Rejected", phone="+254712001202")
    no_phone = make_case(p, name="NoPhone")
    created = create(
        p,
        name="  Clinic day  ",
        recipients={"cases": [ok, rejected, no_phone, ok]},
        text="Hi",
        quiet_hours={"start": "06:00", "end": "22:00"},
    )
    assert created["name"] == "Clinic day"
    assert created["recipients"] == {
        "case_groups": [],
        "cases": [ok, rejected, no_phone],
        "users": [],
        "groups": [],
    }
    assert created["quiet_hours"] == {"start": "06:00", "end": "22:00"}
    assert created["send_at"] is None and created["repeat"] is None and created["next_fire_at"] is None
    assert created["created_at"] == "2026-03-02T09:00:00Z"
    assert created["percent"] == 0
    run_jobs()
    shown = show(p, created["id"])
    assert shown["status"] == "sent" and shown["percent"] == 100
    assert shown["counts"] == {
        "statuses": {"sent": 1, "failed": 1},
        "skipped": {"no_phone": 1},
    }
    [progress] = shown["firings"]
    assert progress["fire_at"] == "2026-03-02T09:00:00Z" and progress["status"] == "done"
    assert progress["recipients"] == 3 and progress["messages"] == 2
    assert progress["started_at"] == progress["finished_at"] == "2026-03-02T09:00:00Z"


def test_delete_before_firing_and_409_once_it_fired(app, twilio_project, fake, run_jobs):
    p = twilio_project
    api = p.api()
    clock.set_now(T0)
    case = make_case(p, name="Amina", phone="+254712001301")
    later = create(p, recipients={"cases": [case]}, text="x", send_at="2026-03-03T09:00:00Z")
    assert api.delete(f"/api/v1/broadcasts/{later['id']}").status_code == 204
    assert error_of(api.get(f"/api/v1/broadcasts/{later['id']}"), 404)["code"] == "not_found"
    clock.advance(days=2)
    assert tick(app) == {}  # deleted: never fires
    # One sent now has a firing at once: it cannot be deleted (cancel it instead) nor edited.
    now = create(p, recipients={"cases": [case]}, text="y")
    assert error_of(api.delete(f"/api/v1/broadcasts/{now['id']}"), 409)["code"] == "already_fired"
    error = error_of(api.patch(f"/api/v1/broadcasts/{now['id']}", json={"name": "z"}), 409)
    assert error["code"] == "not_editable"
    run_jobs()
    assert error_of(api.delete(f"/api/v1/broadcasts/{now['id']}"), 409)["code"] == "already_fired"
    assert (
        error_of(api.patch(f"/api/v1/broadcasts/{now['id']}", json={"text": "z"}), 409)["code"]
        == "not_editable"
    )
    assert show(p, now["id"])["text"] == "y"
    # A cancelled one cannot be edited either.
    other = create(p, recipients={"cases": [case]}, text="x", send_at="2026-03-09T09:00:00Z")
    api.post(f"/api/v1/broadcasts/{other['id']}/cancel")
    assert (
        error_of(api.patch(f"/api/v1/broadcasts/{other['id']}", json={"name": "z"}), 409)["code"]
        == "not_editable"
    )


def test_send_at_within_a_minute_in_the_past_is_accepted_and_fires_at_the_next_tick(
    app, twilio_project, fake, run_jobs
):
    p = twilio_project
    clock.set_now(T0)
    case = make_case(p, name="Amina", phone="+254712001401")
    created = create(
        p, recipients={"cases": [case]}, text="x", send_at=clock.isoformat(T0 - timedelta(seconds=30))
    )
    assert created["status"] == "scheduled" and created["next_fire_at"] == "2026-03-02T09:00:00Z"
    assert tick(app) == {"fired": 1}
    run_jobs()
    assert len(fake.messages) == 1
    [firing] = firings(p, created["id"])
    assert firing["fire_at"] == T0


def test_sends_today_counts_firings_and_messages_since_local_midnight(app, twilio_project, fake, run_jobs):
    from messaging.models import Project

    p = twilio_project
    clock.set_now(T0)  # 12:00 in Nairobi
    case = make_case(p, name="Amina", phone="+254712001501")
    create(p, recipients={"cases": [case]}, text="x")
    run_jobs()
    with p.scope():
        project = db.session.get(Project, p.id)
        assert reading.sends_today(project) == {"firings": 1, "messages": 1}
        clock.set_now(T0 + timedelta(hours=12))  # 00:00 the next day in Nairobi
        assert reading.sends_today(project) == {"firings": 0, "messages": 0}


def test_a_session_a_keyword_opens_during_the_walk_is_replaced_after_one_retry(
    app, twilio_project, fake, run_jobs, monkeypatch
):
    """Nobody had an open session when the walk began, so its batches skip the close; a keyword
    opening one meanwhile breaks the one-open-session index, the batch runs again, closing."""
    from messaging.surveys.starting import start_session
    from tests.factories import make_survey
    from tests.integration.inbound.inbound_helpers import sessions_of

    p = twilio_project
    clock.set_now(T0)
    other = make_survey(p, name="Other", questions=[{"id": "q", "type": "text", "text": "Name?"}])
    phones = [f"+25471200087{i}" for i in range(4)]
    cases = [make_case(p, name=f"K{i}", phone=phone) for i, phone in enumerate(phones)]
    created = create(p, recipients={"cases": cases}, survey_id=make_survey(p))
    [firing] = firings(p, created["id"])
    real, closing_flags = fanout.fan_out_batch, []

    def keyword_session():
        with p.scope():
            start_session(p.id, other, phones[3], case_pk(p, cases[3]), source="keyword")
            db.session.commit()

    def meanwhile(*args, **kwargs):
        closing_flags.append(kwargs["closing"])
        if len(closing_flags) == 2:  # after the first batch, the last number texts a keyword
            thread = threading.Thread(target=keyword_session)
            thread.start()
            thread.join()
        return real(*args, **kwargs)

    monkeypatch.setattr(fanout, "fan_out_batch", meanwhile)
    assert run_firing(p, firing["id"], batch_size=2) == {"batches": 2, "messages": 4, "retries": 1}
    monkeypatch.setattr(fanout, "fan_out_batch", real)
    assert closing_flags == [False, False, True]  # the second batch failed once, then closed
    sessions = sessions_of(p)
    keyword = next(s for s in sessions if s["survey_id"] == other)
    assert (keyword["status"], keyword["end_reason"]) == ("cancelled", "replaced")
    mine = [s for s in sessions if s["broadcast_id"] == created["id"]]
    assert sorted(s["phone"] for s in mine) == phones and {s["status"] for s in mine} == {"open"}
