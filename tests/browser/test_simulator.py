"""A manager defines a survey and a keyword, then runs the survey through the phone simulator."""

from tests.browser.conftest import log_in
from tests.factories import SURVEY, make_contact, make_keyword, make_survey
from tests.integration.inbound.inbound_helpers import case_props


def test_survey_through_the_phone_simulator(page, project, worker_process):
    case_pk, case_id = make_contact(project, "+254712000050", name="Zawadi")
    survey_id = make_survey(project, questions=SURVEY["questions"][:2])  # age, then fever
    make_keyword(project, keyword="CHECK", survey_id=survey_id)
    log_in(page, project.admin_email, project.password)
    page.goto("/simulator")
    page.fill("#sim-phone", "+254712000050")

    def send(text, expect):
        page.fill("#sim-body", text)
        page.click("#sim-send")
        page.wait_for_selector(f"#sim-chat .sim-msg.outbound:has-text('{expect}')", timeout=20_000)

    send("check", "How old are you?")
    send("two hundred", "Please reply with a whole number between 0 and 120.")
    send("41", "Any fever?")
    send("1", "Thank you, your answers have been received.")
    chat = page.locator("#sim-chat").inner_text()
    assert chat.index("You: check") < chat.index("You: 41") < chat.index("Reply: Thank you")
    assert case_props(project, case_pk) == {"age": 41, "fever": "Yes"}

    page.goto(f"/cases/{case_id}/conversation")
    assert page.locator("text=Thank you, your answers have been received.").is_visible()
    page.goto(f"/surveys/{survey_id}")
    assert page.locator("#responses >> text=completed").is_visible()
