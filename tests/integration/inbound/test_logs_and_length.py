"""Participants' data in the logs (last four digits, never a text) and the cap on inbound texts."""

import logging
import time
from datetime import datetime

import pytest
from sqlalchemy import select

from messaging.lib import clock
from tests.factories import make_contact, make_keyword, rows
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, signed_inbound_request
from tests.integration.inbound.inbound_helpers import TO, inbound_rows, text_in

PHONE = "+254712000031"
OTHER = "+254712000032"
STRANGER = "+254712000033"
SECRET = "my private words"
REPLY = "The clinic opens at 8."
WEBHOOK_URL = "http://localhost/twilio/inbound"


def _full_number_leaks(text: str, *phones: str) -> list[str]:
    """The numbers of ``phones`` that ``text`` shows whole (with or without their ``+``)."""
    return [phone for phone in phones if phone in text or phone.lstrip("+") in text]


def _post_signed(app, params: dict) -> None:
    signed, headers = signed_inbound_request(DEFAULT_AUTH_TOKEN, WEBHOOK_URL, params)
    response = app.test_client().post("/twilio/inbound", data=signed, headers=headers)
    assert response.status_code == 200


def _inbound(phone: str, body: str, sid: str) -> dict:
    return {"AccountSid": DEFAULT_ACCOUNT_SID, "From": phone, "To": TO, "Body": body, "MessageSid": sid}


def test_inbound_messages_and_their_handling_log_last_four_digits_and_no_text(
    app, twilio_project, fake, run_jobs, caplog
):
    clock.set_now(datetime(2026, 3, 2, 9, 0, 0))
    make_contact(twilio_project, PHONE)
    make_contact(twilio_project, OTHER, name="Baraka")
    make_keyword(twilio_project, keyword="clinic", reply_text=REPLY)
    caplog.set_level(logging.INFO)
    _post_signed(app, _inbound(PHONE, f"clinic {SECRET}", "SM" + "1" * 32))  # a keyword and its reply
    _post_signed(app, _inbound(OTHER, "STOP", "SM" + "2" * 32))  # an opt-out and its confirmation
    _post_signed(app, _inbound(STRANGER, SECRET, "SM" + "3" * 32))  # an unknown number, to the inbox
    run_jobs()
    outcomes = sorted(r["outcome"] for r in inbound_rows(twilio_project))
    assert outcomes == ["keyword", "opt_out", "unknown_number"]
    assert len(fake.messages) == 2  # the keyword's reply and the opt-out's confirmation went out

    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    logged = "\n".join(lines)
    assert not _full_number_leaks(logged, PHONE, OTHER, STRANGER), logged
    assert SECRET not in logged and REPLY not in logged and "unsubscribed" not in logged, logged
    # The lines still say whose message it was, by the last four digits.
    assert "phone=+***0031" in logged and "phone=+***0032" in logged and "phone=+***0033" in logged, logged
    # Each of our lines masks its number itself: none needed the handlers' safety net,
    # which rewrites a record it masks (its args then None; a line without args has ()).
    ours = [r for r in caplog.records if r.name.split(".")[0] in {"messaging", "workers"}]
    assert ours and not [r.getMessage() for r in ours if r.args is None]


def test_a_real_worker_logs_no_full_number_and_no_text(app, project, worker_process):
    """RQ's own lines (job descriptions list the arguments) and ours, in a real ``flask worker``."""
    from messaging.extensions import db
    from messaging.models import Message

    make_contact(project, PHONE)
    make_keyword(project, keyword="clinic", reply_text=REPLY)
    text_in(project, PHONE, f"clinic {SECRET}")  # the console gateway sends the reply
    deadline = time.time() + 60
    log_text = ""
    while time.time() < deadline:
        with project.scope():
            sent = db.session.execute(
                select(Message.status).where(Message.direction == "outbound", Message.status == "sent")
            ).all()
        log_text = worker_process.log_path.read_text()
        if sent and "send_messages done" in log_text and "handle_number done" in log_text:
            break
        time.sleep(0.2)
    assert sent, log_text[-3000:]
    assert "handle_number done" in log_text and "send_messages done" in log_text, log_text[-3000:]
    assert not _full_number_leaks(log_text, PHONE), log_text[-3000:]
    assert SECRET not in log_text and REPLY not in log_text, log_text[-3000:]
    assert "+***0031" in log_text  # the job's line and the console gateway's name the number masked


@pytest.mark.parametrize("length", [1600, 5000])
def test_an_inbound_text_is_cut_to_1600_characters_with_a_note(app, twilio_project, fake, caplog, length):
    body = ("0123456789" * 600)[:length]
    params = _inbound(PHONE, body, "SM" + "4" * 32)
    caplog.set_level(logging.INFO)
    for _ in range(2):  # a Twilio retry still stores it once
        _post_signed(app, params)
    [stored] = rows(twilio_project, direction="inbound")
    assert stored["body"] == body[:1600]
    assert len(inbound_rows(twilio_project)) == 1
    warnings = [r.getMessage() for r in caplog.records if "inbound body truncated" in r.getMessage()]
    if length > 1600:
        assert stored["error_message"] == "Truncated: 5000 characters received, the first 1600 kept."
        assert [r.levelno for r in caplog.records if "inbound body truncated" in r.getMessage()] == [
            logging.WARNING
        ]
        assert warnings == [
            f"inbound body truncated project_id={twilio_project.id} message_id={stored['id']} "
            "from_chars=5000 kept=1600"
        ]
    else:
        assert stored["error_message"] is None and warnings == []


def test_the_cap_is_the_inbound_max_chars_setting(app, project):
    saved = app.config["INBOUND_MAX_CHARS"]
    app.config["INBOUND_MAX_CHARS"] = 10
    try:
        text_in(project, PHONE, "x" * 25)
    finally:
        app.config["INBOUND_MAX_CHARS"] = saved
    [stored] = rows(project, direction="inbound")
    assert stored["body"] == "x" * 10 and stored["segments"] == 1
    assert stored["error_message"] == "Truncated: 25 characters received, the first 10 kept."


def test_the_phone_simulator_refuses_a_text_over_the_cap_and_logs_the_number_masked(
    app, project, web, caplog
):
    caplog.set_level(logging.INFO)
    too_long = web.post("/simulator/send", {"phone": PHONE, "body": "x" * 1601})
    assert too_long.status_code == 400
    assert too_long.get_json() == {"error": "Type a message (at most 1600 characters)."}
    response = web.post("/simulator/send", {"phone": PHONE, "body": SECRET})
    assert response.status_code == 200
    message_id = response.get_json()["message_id"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"simulator message project_id={project.id} message_id={message_id} phone=+***0031" in logged
    assert not _full_number_leaks(logged, PHONE) and SECRET not in logged, logged
