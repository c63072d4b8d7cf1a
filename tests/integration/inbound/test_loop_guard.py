"""The loop guard: automatic replies to one number, one per identical message in 10 minutes and
five an hour, counted from the database; what is held back is a failed row in the message log."""

import logging
import time
from datetime import datetime, timedelta

import pytest

from messaging.inbound.loop_guard import HOURLY_CAP, SKIP_REASON
from messaging.lib import clock
from tests.factories import make_contact, make_keyword, rows
from tests.integration.inbound.inbound_helpers import inbound_rows, say, text_in

PHONE = "+254712000051"
OTHER = "+254712000052"
DEFAULT = "Thanks, we got your message. A nurse will call you."
AWAY = "I am out of the office until Monday."
T0 = datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(T0)


def _set_default_reply(project, text=DEFAULT):
    from messaging.extensions import db
    from messaging.surveys.settings import set_default_reply

    with project.scope():
        set_default_reply(project.id, text)
        db.session.commit()


def _auto_replies(project, phone=PHONE):
    return [r for r in rows(project, direction="outbound", phone=phone) if r["auto_reply"]]


def _sent(replies):
    return [r for r in replies if r["skip_reason"] is None]


def _held(replies):
    return [r for r in replies if r["skip_reason"] == SKIP_REASON]


def test_fifty_identical_unhandled_messages_get_one_default_reply(project, run_jobs):
    make_contact(project, PHONE)
    _set_default_reply(project)
    for _ in range(50):
        text_in(project, PHONE, AWAY)
    run_jobs()

    replies = _auto_replies(project)
    assert len(replies) == 50
    [sent] = _sent(replies)
    assert sent["status"] == "sent" and sent["body"] == DEFAULT
    held = _held(replies)
    assert len(held) == 49
    assert {r["status"] for r in held} == {"failed"}
    assert all("same message within 10 minutes" in r["error_message"] for r in held)
    handled = inbound_rows(project)
    assert [r["outcome"] for r in handled] == ["unhandled"] * 50
    assert handled[0]["detail"] == "default reply sent"
    assert {r["detail"] for r in handled[1:]} == {"default reply held back by the loop guard (identical)"}
    # Every one of them still needs a person: the inbox has them all open.
    assert {r["inbox_state"] for r in handled} == {"open"}


def test_an_identical_message_is_answered_again_once_ten_minutes_have_passed(project, run_jobs):
    """Two auto-responders exchanging a text every 30 seconds: one reply per 10 minutes."""
    make_contact(project, PHONE)
    _set_default_reply(project)
    for n in range(50):  # 25 minutes
        text_in(project, PHONE, AWAY if n % 2 else f"  {AWAY.upper()} ")  # reads the same, normalised
        run_jobs()
        clock.advance(seconds=30)
    sent_at = [r["created_at"] for r in _sent(_auto_replies(project))]
    # A reply exactly 10 minutes old no longer counts.
    assert sent_at == [T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)]
    assert len(_held(_auto_replies(project))) == 47


def test_fifty_different_messages_get_five_replies_an_hour(project, run_jobs):
    make_contact(project, PHONE)
    _set_default_reply(project)
    for n in range(50):
        text_in(project, PHONE, f"message number {n}")
    run_jobs()

    replies = _auto_replies(project)
    assert len(_sent(replies)) == HOURLY_CAP == 5
    held = _held(replies)
    assert len(held) == 45
    assert all("5 automatic replies within the last hour" in r["error_message"] for r in held)
    assert {r["detail"] for r in inbound_rows(project)[5:]} == {
        "default reply held back by the loop guard (hourly_cap)"
    }
    # Another number is not held back by this one's replies.
    assert say(project, run_jobs, OTHER, "hello") == [DEFAULT]
    assert len(_sent(_auto_replies(project, OTHER))) == 1

    # What was held back does not count: an hour after the five, five more go out.
    clock.advance(minutes=59, seconds=59)
    say(project, run_jobs, PHONE, "still there?")
    assert len(_sent(_auto_replies(project))) == 5
    clock.advance(seconds=1)
    for n in range(7):
        say(project, run_jobs, PHONE, f"an hour later {n}")
    assert len(_sent(_auto_replies(project))) == 10


def test_keyword_replies_and_confirmations_count_and_stop_is_exempt_from_the_hourly_cap(project, run_jobs):
    from messaging.sms import optouts

    make_contact(project, PHONE)
    _set_default_reply(project)
    make_keyword(project, keyword="clinic", reply_text="The clinic opens at 8.")
    assert say(project, run_jobs, PHONE, "clinic hours") == ["The clinic opens at 8."]
    [help_text] = say(project, run_jobs, PHONE, "HELP")
    for n in range(3):
        say(project, run_jobs, PHONE, f"question {n}")
    assert len(_sent(_auto_replies(project))) == 5

    # The cap holds a keyword's reply and the help text back ...
    say(project, run_jobs, PHONE, "clinic again")
    say(project, run_jobs, PHONE, "INFO")
    assert [r["body"] for r in _held(_auto_replies(project))] == ["The clinic opens at 8.", help_text]
    assert inbound_rows(project)[-2]["detail"] == "reply held back by the loop guard (hourly_cap)"

    # ... but whoever texts STOP is told it worked, once: the cap does not apply, the identical rule does.
    [confirmation] = say(project, run_jobs, PHONE, "STOP")
    assert confirmation.startswith("You have been unsubscribed")
    clock.advance(minutes=5)
    say(project, run_jobs, PHONE, "stop")
    with project.scope():
        assert optouts.is_opted_out(project.id, PHONE)  # the second STOP still opts out
    replies = _auto_replies(project)
    assert len([r for r in _sent(replies) if r["body"].startswith("You have been")]) == 1
    last = replies[-1]
    assert last["skip_reason"] == SKIP_REASON and last["body"].startswith("You have been unsubscribed")
    assert "same message within 10 minutes" in last["error_message"]
    assert last["bypass_opt_out"]


def test_a_held_back_reply_is_logged_with_ids_and_no_phone_or_text(project, run_jobs, caplog):
    make_contact(project, PHONE)
    _set_default_reply(project)
    caplog.set_level(logging.INFO)
    text_in(project, PHONE, AWAY)
    text_in(project, PHONE, AWAY)
    run_jobs()
    [held] = _held(_auto_replies(project))
    second_inbound = inbound_rows(project)[1]["message_id"]
    lines = [r.getMessage() for r in caplog.records if r.name == "messaging.inbound.loop_guard"]
    assert lines == [
        f"automatic reply held back project_id={project.id} inbound_id={second_inbound} "
        f"message_id={held['id']} limit=identical"
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert PHONE not in logged and PHONE.lstrip("+") not in logged
    assert AWAY not in logged and DEFAULT not in logged


def test_the_limits_are_read_from_the_database_across_worker_processes(project, run_jobs, request):
    """Replies sent by this process count for a real ``flask worker`` process, and the other way."""
    from sqlalchemy import func, select

    from messaging.extensions import db
    from messaging.models import InboundMessage

    clock.set_now(None)  # the worker process runs on the real clock
    make_contact(project, PHONE)
    _set_default_reply(project)
    for n in range(3):
        say(project, run_jobs, PHONE, f"in this process {n}")
    worker_process = request.getfixturevalue("worker_process")
    for n in range(3):
        text_in(project, PHONE, f"in the worker {n}")
    deadline = time.time() + 60
    while time.time() < deadline:
        with project.scope():
            pending = db.session.execute(
                select(func.count()).where(InboundMessage.handled_at.is_(None))
            ).scalar_one()
        if not pending:
            break
        time.sleep(0.2)
    assert not pending, worker_process.log_path.read_text()
    replies = _auto_replies(project)
    assert len(_sent(replies)) == HOURLY_CAP
    [held] = _held(replies)
    assert "5 automatic replies within the last hour" in held["error_message"]
