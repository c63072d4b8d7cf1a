"""Africa's Talking (bulk SMS), through plain ``requests``.

Rules:
- One message is one ``POST {base}/version1/messaging`` (form-encoded
  ``username``, ``to``, ``message`` and ``from`` when a sender ID or short code
  is set; headers ``apiKey`` and ``Accept: application/json``), one recipient
  per call; the answer's ``SMSMessageData.Recipients[]`` entry for that
  recipient decides. ``statusCode`` 100/101/102 (Processed, Sent, Queued) are
  accepted; the message id is ``messageId``, the price is ``cost`` ("KES
  0.8000" -> price "0.8000", unit "KES"), the parts are ``messageParts``.
- Refusals (``REFUSALS``): 500 InternalServerError, 501 GatewayError and 405
  InsufficientBalance may pass later (retryable); 406 UserInBlacklist means the
  recipient opted out (blocked the sender, or dialled the opt-out code); the
  others (RiskHold, InvalidSenderId, InvalidPhoneNumber, UnsupportedNumberType,
  CouldNotRoute, RejectedByGateway) are permanent. 409 DoNotDisturbRejection is
  NOT an opt-out: Africa's Talking answers it in Nigeria for a promotional
  sender ID between 8 PM and 8 AM (the NCC rule), whoever the recipient is, so
  it is permanent for this message and leaves the recipient's consent alone.
  An empty ``Recipients`` list names the refusal in ``Message`` (e.g.
  "InvalidSenderId", "InsufficientBalance") and is read the same way.
- HTTP 429 and 5xx may pass later; 401/403 are wrong credentials
  (``bad_credentials``; Africa's Talking answers "The supplied authentication
  is invalid"); ``requests``' own errors go through
  ``base.classify_requests_error``; any other shape is ``unexpected_answer``.
- Africa's Talking cannot be asked about a message it took (``resolves`` is
  False): an unknown outcome is settled by the send journal. It takes no
  per-message callback URL either: delivery reports and inbound messages go to
  the URLs set in its dashboard (SMS -> SMS Callback URLs), which must be our
  ``/gateways/africastalking/<id>/status`` and ``/inbound`` with the URL secret.
- Webhooks are unsigned (Africa's Talking has no signature or posted secret):
  ``verify`` is always False and our layer requires the secret in the URL.
  Delivery reports (form ``id``, ``status``, ``failureReason``...) map to ours
  by ``STATUS``: Sent/Submitted/Buffered -> sent, Success -> delivered,
  Rejected/Failed/AbsentSubscriber/Expired -> undelivered (Africa's Talking
  took and billed the message; the network did not deliver it); others are
  dropped. A ``failureReason`` in ``OPT_OUT_REASONS`` marks an opt-out.
- Client: plain ``requests``, one keep-alive ``Session`` per process per
  (username, API key, base URL). The official ``africastalking`` package has no
  host setting (its URLs are built from hard-coded domains), posts through
  module-level ``requests.post`` (no kept connections) and raises one exception
  type carrying only the answer's text, losing the HTTP status we classify by.
- The API host is ``AFRICASTALKING_API_BASE_URL`` when set, else the sandbox
  host for the username "sandbox", else the live host.
"""

from __future__ import annotations

import json
import logging
import re
from typing import NamedTuple

import requests
from flask import current_app

from messaging.errors import field_error
from messaging.gateways.base import (
    RAW_ANSWER_CHARS,
    Field,
    Gateway,
    GatewayError,
    InboundSms,
    SendResult,
    StatusReport,
    WebhookRequest,
    classify_requests_error,
    http_status_error,
    unexpected_answer,
)
from messaging.gateways.http_client import http_timeout, kept_session

log = logging.getLogger(__name__)

LIVE_BASE_URL = "https://api.africastalking.com"
SANDBOX_BASE_URL = "https://api.sandbox.africastalking.com"
SANDBOX_USERNAME = "sandbox"
SEND_PATH = "/version1/messaging"

# Accepted statusCodes -> our name for the gateway's status.
ACCEPTED = {100: "processed", 101: "sent", 102: "queued"}


class Refusal(NamedTuple):
    name: str  # Africa's Talking's status name: our error code
    retryable: bool
    opted_out: bool
    words: str


# Africa's Talking's per-recipient refusal statusCodes.
REFUSALS: dict[int, Refusal] = {
    401: Refusal("RiskHold", False, False, "Africa's Talking held the message for a risk review."),
    402: Refusal(
        "InvalidSenderId", False, False, "The sender ID is not registered for this Africa's Talking account."
    ),
    403: Refusal("InvalidPhoneNumber", False, False, "The phone number is not valid."),
    404: Refusal(
        "UnsupportedNumberType", False, False, "Africa's Talking cannot send to this type of number."
    ),
    405: Refusal(
        "InsufficientBalance", True, False, "The Africa's Talking account has not enough balance to send."
    ),
    406: Refusal("UserInBlacklist", False, True, "The recipient has blocked messages from this sender."),
    407: Refusal("CouldNotRoute", False, False, "Africa's Talking has no route to this number's network."),
    409: Refusal(
        "DoNotDisturbRejection",
        False,
        False,
        "Nigeria's NCC rules forbid promotional sender IDs between 8 PM and 8 AM; "
        "send in the day or use a transactional sender ID.",
    ),
    500: Refusal("InternalServerError", True, False, "Africa's Talking had an internal error."),
    501: Refusal("GatewayError", True, False, "The mobile network's gateway failed."),
    502: Refusal("RejectedByGateway", False, False, "The mobile network refused the message."),
}
_REFUSAL_BY_NAME = {r.name.lower(): r for r in REFUSALS.values()}

# Delivery-report statuses -> ours.
STATUS = {
    "Sent": "sent",
    "Submitted": "sent",
    "Buffered": "sent",
    "Success": "delivered",
    "Rejected": "undelivered",
    "Failed": "undelivered",
    "AbsentSubscriber": "undelivered",
    "Expired": "undelivered",
}
# failureReason values (lower-cased) meaning the recipient blocked the sender or opted out.
OPT_OUT_REASONS = {"userinblacklist", "useroptedout"}

# A sender: a short code or number (3 to 15 digits, "+" allowed), or an alphanumeric ID of up to 11.
_SENDER_ID = re.compile(r"^(?:\+?\d{3,15}|(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9 .&_-]{1,11})$")
_COST = re.compile(r"^([A-Z]{3})\s+(-?\d+(?:\.\d+)?)$")


def api_base_url(username: str) -> str:
    """The API host: ``AFRICASTALKING_API_BASE_URL`` when set, else sandbox or live by username."""
    configured = current_app.config.get("AFRICASTALKING_API_BASE_URL") or ""
    if configured:
        return configured.rstrip("/")
    return SANDBOX_BASE_URL if username == SANDBOX_USERNAME else LIVE_BASE_URL


def at_session(username: str, api_key: str, base_url: str) -> requests.Session:
    """The process's session for these credentials and host (kept: its connections stay alive)."""
    return kept_session(("africastalking", username, api_key, base_url), base_url, {"apiKey": api_key})


def parse_cost(cost) -> tuple[str | None, str | None]:
    """("0.8000", "KES") from Africa's Talking's "KES 0.8000"; (None, None) for "0" or anything else."""
    match = _COST.match(str(cost or "").strip())
    if not match:
        return None, None
    return match.group(2), match.group(1)


def _refusal_error(refusal: Refusal, code: int | None, http_status: int) -> GatewayError:
    detail = f" (statusCode {code})" if code is not None else ""
    return GatewayError(
        refusal.name,
        f"{refusal.words}{detail}",
        retryable=refusal.retryable,
        opted_out=refusal.opted_out,
        status=http_status,
    )


def _recipient_error(code: int, status_name: str, http_status: int) -> GatewayError:
    """A recipient refused with ``code``; codes we do not know: 5xx may pass later, others not."""
    refusal = REFUSALS.get(code)
    if refusal is None:
        name = status_name or str(code)
        refusal = Refusal(name, 500 <= code < 600, False, f"Africa's Talking refused the message: {name}.")
    return _refusal_error(refusal, code, http_status)


def _message_error(message, raw: str, http_status: int) -> GatewayError:
    """No recipient in the answer: ``SMSMessageData.Message`` names the refusal."""
    text = str(message or "").strip()
    if not text:
        return unexpected_answer(raw, "no recipient and no message")
    refusal = _REFUSAL_BY_NAME.get(text.lower())
    if refusal is not None:
        return _refusal_error(refusal, None, http_status)
    return GatewayError(
        "rejected",
        f"Africa's Talking took no recipient: {text[:RAW_ANSWER_CHARS]}",
        retryable=False,
        status=http_status,
    )


def _pick_recipient(recipients: list, to: str) -> dict | None:
    entries = [r for r in recipients if isinstance(r, dict)]
    for entry in entries:
        if entry.get("number") == to:
            return entry
    return entries[0] if len(entries) == 1 and len(recipients) == 1 else None


def _status_code(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _clean(value) -> str:
    return str(value or "").strip()


class AfricasTalkingGateway(Gateway):
    kind = "africastalking"
    label = "Africa's Talking"
    resolves = False
    uses_number_pool = False
    inbound_answer = ("", "text/plain")
    fields = (
        Field(
            "username",
            "Username",
            required=True,
            help='Your Africa\'s Talking app username ("sandbox" to test)',
        ),
        Field("api_key", "API key", required=True, secret=True),
        Field(
            "sender_id",
            "Sender ID or short code",
            help="A registered alphanumeric sender ID (up to 11 characters) or short code; "
            "empty: Africa's Talking picks its default sender",
        ),
    )

    def __init__(self, config):
        super().__init__(config)
        self.username = _clean(config.settings.get("username"))
        self.sender_id = _clean(config.settings.get("sender_id")) or None
        self.api_key = _clean(config.secrets.get("api_key"))
        base_url = api_base_url(self.username)
        self.url = base_url + SEND_PATH
        self.session = at_session(self.username, self.api_key, base_url)

    @classmethod
    def check_settings(cls, settings: dict, secrets: dict) -> None:
        username = _clean(settings.get("username"))
        if username and any(ch.isspace() for ch in username):
            raise field_error("username", "must not contain spaces.")
        sender = _clean(settings.get("sender_id"))
        if sender and not _SENDER_ID.match(sender):
            raise field_error(
                "sender_id",
                "must be a short code or number (3 to 15 digits) or an alphanumeric "
                "sender ID of up to 11 letters, digits, spaces or . & _ -.",
            )

    def send(self, to, body, from_number, status_callback) -> SendResult:
        # status_callback is not used: Africa's Talking takes its delivery-report URL from its dashboard.
        sender = from_number or self.sender_id
        form = {"username": self.username, "to": to, "message": body}
        if sender:
            form["from"] = sender
        timeout = http_timeout()
        try:
            response = self.session.post(self.url, data=form, timeout=timeout)
            text = response.text
        except requests.exceptions.RequestException as exc:
            raise classify_requests_error(exc) from exc
        return self._read_answer(response.status_code, text, to, sender)

    def _read_answer(self, http_status: int, text: str, to: str, sender: str | None) -> SendResult:
        if http_status == 429 or http_status >= 500:
            raise http_status_error(http_status, text)
        if http_status in (401, 403):
            detail = text.strip()[:RAW_ANSWER_CHARS] or f"HTTP {http_status}"
            raise GatewayError(
                "bad_credentials",
                f"Africa's Talking refused the username or API key: {detail}",
                retryable=False,
                status=http_status,
            )
        payload = _json_or_none(text)
        data = payload.get("SMSMessageData") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            if 200 <= http_status < 300:
                raise unexpected_answer(text)
            raise http_status_error(http_status, text)
        recipients = data.get("Recipients")
        if not isinstance(recipients, list):
            raise unexpected_answer(text, "no Recipients list")
        if not recipients:
            raise _message_error(data.get("Message"), text, http_status)
        recipient = _pick_recipient(recipients, to)
        if recipient is None:
            raise unexpected_answer(text, "no entry for the recipient")
        code = _status_code(recipient.get("statusCode"))
        if code is None:
            raise unexpected_answer(text, "no statusCode")
        if not 100 <= code < 200:
            raise _recipient_error(code, _clean(recipient.get("status")), http_status)
        sid = _clean(recipient.get("messageId"))
        if not sid or sid == "None":
            raise unexpected_answer(text, "no messageId")
        price, unit = parse_cost(recipient.get("cost"))
        parts = _status_code(recipient.get("messageParts"))
        return SendResult(
            sid=sid,
            status=ACCEPTED.get(code, _clean(recipient.get("status")).lower() or str(code)),
            from_number=sender,
            segments=parts or None,
            gateway=self.kind,
            price=price,
            price_unit=unit,
        )

    def verify(self, request: WebhookRequest) -> bool:
        # Africa's Talking neither signs its callbacks nor posts a secret.
        return False

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        values = request.values()
        sid = _clean(values.get("id"))
        sender = _clean(values.get("from"))
        if not sid or not sender:
            return []
        return [
            InboundSms(
                sid=sid, from_number=sender, to_number=_clean(values.get("to")), body=values.get("text") or ""
            )
        ]

    def parse_status(self, request: WebhookRequest) -> list[StatusReport]:
        values = request.values()
        sid = _clean(values.get("id"))
        status = STATUS.get(_clean(values.get("status")))
        if not sid or status is None:
            return []
        reason = _clean(values.get("failureReason")) or None
        price, unit = parse_cost(values.get("cost"))
        return [
            StatusReport(
                sid=sid,
                status=status,
                error_code=reason if status != "delivered" else None,
                opted_out=bool(reason) and reason.lower() in OPT_OUT_REASONS,
                price=price,
                price_unit=unit,
            )
        ]
