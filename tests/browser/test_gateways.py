"""A programme sets up its in-country aggregator's plain HTTP API on the gateway page and tests it."""

import json

from tests.browser.conftest import log_in
from tests.fakes.http_receiver import Receiver


def test_a_generic_http_gateway_set_up_from_the_page_sends_its_test_message(page, project, worker_process):
    with Receiver.start() as aggregator:
        aggregator.answer_body = json.dumps({"result": {"message_id": "MOH-42", "status": "ACCEPTED"}})
        log_in(page, project.admin_email, project.password)
        page.goto("/settings/gateway")
        page.select_option("#gateway-kind", "http")
        # Only the chosen kind's settings are shown.
        assert page.locator("fieldset[data-kind=http]").is_visible()
        assert not page.locator("fieldset[data-kind=twilio]").is_visible()
        form = page.locator("#gateway-add-form")
        form.locator("input[name=name]").fill("Ministry aggregator")
        form.locator("textarea[name=from_numbers]").fill("+254700000100")
        form.locator("select[name='http.method']").select_option("POST")
        form.locator("input[name='http.url_template']").fill(aggregator.url + "/sms/send")
        body = '{"msisdn": "{to_digits}", "text": "{text}"}'
        form.locator("textarea[name='http.body_template']").fill(body)
        form.locator("select[name='http.content_type']").select_option("application/json")
        form.locator("input[name='http.auth_header']").fill("X-Api-Key: moh-key-123")
        form.locator("input[name='http.id_path']").fill("result.message_id")
        form.locator("input[name='http.status_path']").fill("result.status")
        form.locator("input[name='http.ok_values']").fill("ACCEPTED")
        form.locator("button[type=submit]").click()
        page.wait_for_load_state()
        card = page.locator("section.card", has_text="Ministry aggregator")
        assert card.locator("text=Generic HTTP (http)").is_visible()
        assert "moh-key-123" not in page.content()  # the secret is never shown again

        card.locator("input[name=phone]").fill("+254712000501")
        card.locator("input[name=text]").fill("Testing the aggregator")
        card.locator("button", has_text="Send test").click()
        # The page follows the test message until the worker has sent it.
        page.locator("#gateway-test-status", has_text="sent").wait_for()
        [request] = aggregator.requests
        assert request["json"] == {"msisdn": "254712000501", "text": "Testing the aggregator"}
        assert request["headers"]["x-api-key"] == "moh-key-123"
