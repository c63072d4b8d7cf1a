"""A gateway page's test send: one message to a number a person types, through one gateway.

Rules:
- The message is an ordinary outbound message pinned to the gateway
  (``messages.gateway_id``): it goes through the send pipeline (claim, rate
  limit, outcome, sweep), is in the message log, and its status is what the
  page shows. Nothing is sent inside the web request.
- It is urgent (a person waits for it) and written by that person; the
  number must be E.164 and the text 1-160 characters. Opt-outs hold as for
  any message.
- ``explain`` turns a failed test's error into plain words (wrong
  credentials, an unreachable host, a provider's refusal).
"""

from __future__ import annotations

from messaging.errors import field_error
from messaging.gateways.settings import get_gateway
from messaging.sms.e164 import E164
from messaging.sms.outbox import send_sms

DEFAULT_TEXT = "Test message from your SMS gateway settings."


def send_test(project_id: int, gateway_id: int, phone: str, text: str | None, author_id: int | None) -> int:
    """Queue the test message (joins the caller's transaction); returns its message id."""
    get_gateway(project_id, gateway_id)
    phone = (phone or "").strip().replace(" ", "")
    if not E164.match(phone):
        raise field_error("phone", "give the number in international format, like +254712345678.")
    body = (text or "").strip() or DEFAULT_TEXT
    if len(body) > 160:
        raise field_error("text", "a test message is at most 160 characters.")
    return send_sms(project_id, phone, body, author_id=author_id, urgent=True, gateway_id=gateway_id)


# Error codes -> what a person should do about them.
PLAIN_WORDS = {
    "bad_credentials": "The gateway refused the credentials. Check the key, token or password; save again.",
    "no_gateway": "The gateway's secret is missing or unreadable. Enter it again and save.",
    "connection_error": "The gateway could not be reached. Check its address and this server's network.",
    "connect_timeout": "The gateway could not be reached in time. Check its address and the network.",
    "timeout": "The gateway did not answer in time.",
    "unknown_outcome": "The gateway did not answer in time and cannot be asked whether it sent the message.",
    "unexpected_answer": "The gateway answered in a way this server cannot read (its answer follows).",
}


def explain(error_code: str | None, error_message: str | None) -> str | None:
    """Plain words for a failed test send, or None when it did not fail."""
    if not error_code and not error_message:
        return None
    words = PLAIN_WORDS.get(error_code or "")
    if words:
        return f"{words} ({error_message})" if error_message else words
    return f"The gateway refused the message: {error_message or error_code}"
