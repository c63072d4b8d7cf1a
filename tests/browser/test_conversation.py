"""The case conversation as a chat in Chromium (issue 21 "Reply from the web"): the reply box's
counter agrees with messaging/lib/segments.py (GSM-7 until an emoji makes it UCS-2), a canned
reply fills the box, a reply sent shows in the thread and its status moves on, and a new inbound
message appears without a reload."""

from messaging.lib.segments import count_segments
from tests.browser.conftest import log_in
from tests.factories import make_contact
from tests.integration.inbound.inbound_helpers import text_in

PHONE = "+254712000501"

# Texts at the edges of segments.py's rules: one SMS and the next part, extension characters
# (two septets, never split), UCS-2 by one character, emoji (two code units, never split),
# line breaks.
COUNTER_SAMPLES = [
    "Hello Amina",
    "a" * 160,
    "a" * 161,
    "a" * 152 + "{",
    "a" * 153 + "€" + "b" * 10,
    "[" * 80,
    "Karibu sana, ç",
    "x" * 69 + "é",
    "ç" * 70,
    "ç" * 71,
    "😀" * 35,
    "😀" * 36,
    "a" * 66 + "😀" + "b",
    "line one\nline two\n\nthree",
    "Grüße aus Köln, São Paulo & Île-de-France",
]


def counter(page) -> tuple[str, int, int]:
    return (
        page.inner_text("#reply-encoding"),
        int(page.inner_text("#reply-segments")),
        int(page.inner_text("#reply-chars")),
    )


def test_counter_canned_reply_sending_and_a_new_message_without_reload(page, project, worker_process):
    _, case_id = make_contact(project, PHONE, name="Amina")
    canned = project.api().post(
        "/api/v1/canned-replies", json={"title": "Directions", "body": "Main Road, gate 2 {left}"}
    )
    assert canned.status_code == 201
    log_in(page, project.admin_email, project.password)
    page.goto(f"/cases/{case_id}/conversation")
    assert counter(page) == ("GSM-7", 0, 0)

    for text in COUNTER_SAMPLES:
        page.fill("#reply-text", text)
        info = count_segments(text)
        assert counter(page) == (info.encoding, info.segments, info.characters), text

    # Typing: GSM-7 until the emoji, then UCS-2.
    page.fill("#reply-text", "")
    page.locator("#reply-text").press_sequentially("Can you come on Tuesday?")
    assert counter(page) == ("GSM-7", 1, 24)
    page.locator("#reply-text").press_sequentially(" 😀")
    assert counter(page) == ("UCS-2", 1, 26)
    page.fill("#reply-text", "x" * 1601)
    assert page.is_visible("#reply-too-long")

    page.select_option("#canned-picker", canned.get_json()["id"])
    assert page.input_value("#reply-text") == "Main Road, gate 2 {left}"
    assert counter(page) == ("GSM-7", 1, 24)  # "{" and "}" cost two septets each, still one SMS

    page.fill("#reply-text", "Can you come on Tuesday? 😀")
    page.click("#reply-send")
    page.wait_for_selector("#thread tr.outbound:has-text('Can you come on Tuesday? 😀')")
    assert page.inner_text("#thread tr.outbound .author") == "by Admin"
    # The worker sends it through the console gateway; the page follows its status.
    page.wait_for_selector("#thread tr.outbound[data-status=sent] .badge.sent", timeout=20_000)

    loads = []
    page.on("load", lambda: loads.append(page.url))
    text_in(project, PHONE, "Yes, Tuesday is fine 👍")  # through the receive path, as Twilio's webhook does
    page.wait_for_selector("#thread tr.inbound:has-text('Yes, Tuesday is fine 👍')", timeout=20_000)
    assert loads == []  # no reload: the row came by the live update
    texts = page.locator("#thread tr.msg .body").all_inner_texts()
    assert [t.splitlines()[0] for t in texts] == ["Can you come on Tuesday? 😀", "Yes, Tuesday is fine 👍"]


def test_an_opted_out_number_needs_the_confirm_box(page, project):
    from messaging.extensions import db
    from messaging.sms.optouts import opt_out

    _, case_id = make_contact(project, PHONE, name="Juma")
    with project.scope():
        opt_out(project.id, PHONE, "keyword")
        db.session.commit()
    log_in(page, project.admin_email, project.password)
    page.goto(f"/cases/{case_id}/conversation")
    assert "This number opted out" in page.inner_text("#opted-out-warning")
    page.fill("#reply-text", "Your results are ready")
    page.click("#reply-send")
    page.wait_for_selector(".flash-error:has-text('This number opted out')")
    assert page.input_value("#reply-text") == "Your results are ready"  # kept
    assert page.locator("#thread tr.msg").count() == 0
    page.check("#confirm-opted-out")
    page.click("#reply-send")
    page.wait_for_selector("#thread tr.outbound:has-text('Your results are ready')")
