"""Telerivet (messages sent through an Android phone or a route of a Telerivet project).

Rules:
- **Client.** Plain ``requests``, not the official ``telerivet`` package: that client
  (1.9.6) takes another ``api_url``, but fixes a 60-second timeout on every request
  and drops the HTTP status of an error (a 429 or 503 reads like any refusal, an
  answer that is not JSON becomes a bare ``IOError``), so retryable and permanent
  failures could not be told apart. The API is small: JSON over HTTP Basic (the API
  key as user, an empty password).
- **Sending** is one ``POST /v1/projects/<project_id>/messages/send`` per message with
  ``to_number``, ``content``, ``route_id`` (when set: the phone or route to send
  through; else the project's default route) and, with a status callback,
  ``status_url`` and ``status_secret`` (the ``webhook_secret`` setting). The answer is
  the Message object; its ``id`` is our sid. Senders are Telerivet's (no number pool).
- **Errors.** Telerivet answers ``{"error": {"code", "message", "param"}}``. HTTP 429,
  5xx and the "try later" codes of ``RETRY_CODES`` may pass later; 401/403 and the
  codes of ``CREDENTIAL_CODES`` are ``bad_credentials``; ``invalid_param`` on
  ``to_number`` is ``invalid_number``; every other refusal is permanent. A recipient
  blocked in Telerivet (a contact with ``send_blocked``: how Telerivet records STOP)
  is an opt-out: an error whose code or message says so (``OPT_OUT``), or a Message
  answered with ``id`` and ``status`` null, which is how Telerivet answers a blocked
  recipient in ``send_multi``. A Message answered already ``failed``/``cancelled`` is
  a permanent failure. ``requests``' own errors are read by
  ``base.classify_requests_error``; an answer of another shape is ``unexpected_answer``.
- **Not asked by the sweep** (``resolves`` is False): Telerivet can be asked
  about a message by its id, but a request that timed out has no id, and finding
  it by number means reading the newest outgoing messages: during a broadcast the
  one sought is soon beyond any page read (the fault bench: 78 messages sent
  twice of 2,000). So, as for Africa's Talking, each attempt is noted in the
  send journal and a timed-out one fails ``unknown_outcome``.
  ``fetch`` and ``find_recent`` stay for an operator's use: ``fetch`` is
  ``GET .../messages/<id>`` (404/``not_found``:
  None). Telerivet's message query filters by direction, status, contact and time,
  not by number, so ``find_recent`` reads the newest outgoing messages
  (``direction=outgoing&sort_dir=desc``, up to ``SCAN_PAGES`` pages of
  ``SCAN_PAGE_SIZE``, following ``next_marker``) and keeps those whose ``to_number``
  has the recipient's digits. A ``RemoteMessage``'s status is Telerivet's, said in
  the shared words the sweep reads (``REMOTE_STATUS``: ``not_delivered`` is
  ``undelivered``, ``failed_queued`` still ``queued``).
- **Webhooks** are form-encoded POSTs: ``event=incoming_message`` (the project's
  Webhook API service) and ``event=send_status`` (the ``status_url`` of a message,
  or a project webhook). Telerivet proves them with a secret: the posted ``secret``
  field (``status_secret``, or the service's secret) or, for project webhooks, HTTP
  Basic auth as ``telerivet`` with the secret as password. ``verify`` compares either
  with the ``webhook_secret`` setting in constant time; without that setting it
  answers False (the URL's own secret is then required). Delivery statuses map to
  ours (``STATUS``); queued, sending and ``failed_queued`` (Telerivet tries again)
  are dropped.
- **Sessions.** One kept-alive session per process per (API key, base URL)
  (``messaging.gateways.http_client``). The host is
  ``TELERIVET_API_BASE_URL`` (empty: https://api.telerivet.com), the timeout
  ``SMS_HTTP_TIMEOUT``.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import requests
from flask import current_app

from messaging.errors import field_error
from messaging.gateways.base import (
    Field,
    Gateway,
    GatewayError,
    InboundSms,
    RemoteMessage,
    SendResult,
    StatusReport,
    WebhookRequest,
    classify_requests_error,
    http_status_error,
    unexpected_answer,
)
from messaging.gateways.http_client import http_timeout, kept_session

API_HOST = "https://api.telerivet.com"
# Telerivet's object ids (PJ..., PN..., SM...): at most 34 letters and digits; we allow _ and - too.
TELERIVET_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Error codes that may pass later (the HTTP status 429 or 5xx says so too).
RETRY_CODES = frozenset(
    {"rate_limit_exceeded", "too_many_requests", "rate_limited", "service_unavailable", "server_error"}
)
# Error codes of an API key that is wrong or may not use the project.
CREDENTIAL_CODES = frozenset({"unauthorized", "forbidden", "invalid_api_key", "permission_denied"})
# A code or message meaning the recipient is blocked in Telerivet (send_blocked) or opted out.
OPT_OUT = re.compile(
    r"send[_ ]blocked|contact[_ ](?:is[_ ])?blocked|blocked[_ ]contact|opted[ _-]?out|unsubscribed", re.I
)
# Message statuses that, in the answer to a send, mean it will never go.
FAILED_AT_SEND = frozenset({"failed", "cancelled", "not_delivered", "ignored"})

# Telerivet's delivery statuses -> ours (status webhooks); others are intermediate and dropped.
STATUS = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "not_delivered": "undelivered",
    "failed": "failed",
    "cancelled": "failed",
}
# Telerivet's statuses in the words the sweep reads (``messaging.sms.status.TWILIO_STATUS``).
REMOTE_STATUS = {
    "queued": "queued",
    "processing": "queued",
    "failed_queued": "queued",  # failed once, Telerivet tries again
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "not_delivered": "undelivered",
    "failed": "failed",
    "cancelled": "canceled",
    "ignored": "failed",
}

# find_recent: how many of the newest outgoing messages it reads.
SCAN_PAGE_SIZE = 200
SCAN_PAGES = 3


def api_base_url() -> str:
    return (current_app.config.get("TELERIVET_API_BASE_URL") or API_HOST).rstrip("/")


def telerivet_session(api_key: str, base_url: str) -> requests.Session:
    """The process's session for this API key and host (kept: its connections stay alive)."""
    return kept_session(
        ("telerivet", api_key, base_url),
        base_url,
        {"User-Agent": "messaging-telerivet/1.0"},
        auth=(api_key, ""),
    )


def _text(value) -> str:
    return "" if value is None else str(value)


def _digits(number) -> str:
    return "".join(ch for ch in _text(number) if ch.isdigit())


def _decimal_text(value) -> str | None:
    """A price (JSON number or text) as plain decimal text, e.g. ``0.0075``; None when not a number."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return format(amount, "f") if amount.is_finite() else None


def _timestamp(value) -> datetime | None:
    """A UNIX timestamp as naive UTC; None when absent or odd."""
    try:
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _segments(value) -> int | None:
    try:
        parts = int(value)
    except (TypeError, ValueError):
        return None
    return parts if parts > 0 else None


def _error_code(value) -> str | None:
    text = _text(value).strip()
    return text[:32] or None


def is_opt_out(*texts) -> bool:
    """Whether a code or message says the recipient is blocked or opted out at Telerivet."""
    return any(OPT_OUT.search(_text(t)) for t in texts)


def api_error(status: int, data, raw: str) -> GatewayError:
    """Telerivet's error answer (``{"error": {"code", "message", "param"}}``) as a GatewayError."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        if status < 400:
            return unexpected_answer(raw, "an error without a code")
        return http_status_error(status, raw)
    code = _text(error.get("code")).strip() or str(status)
    text = _text(error.get("message")).strip() or f"HTTP {status}"
    if status == 429 or status >= 500 or code in RETRY_CODES:
        return GatewayError(code, text, retryable=True, status=status)
    if status in (401, 403) or code in CREDENTIAL_CODES:
        return GatewayError(
            "bad_credentials",
            f"Telerivet refused the API key or its access to the project ({code}): {text}",
            retryable=False,
            status=status,
        )
    if is_opt_out(code, text):
        return GatewayError(code, text, retryable=False, opted_out=True, status=status)
    if code == "invalid_param" and error.get("param") == "to_number":
        return GatewayError("invalid_number", text, retryable=False, status=status)
    return GatewayError(code, text, retryable=False, status=status)


def _answer(response: requests.Response) -> dict:
    """The JSON object of a successful answer; GatewayError for an error or another shape."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400 or (isinstance(data, dict) and "error" in data):
        raise api_error(response.status_code, data, response.text)
    if not isinstance(data, dict):
        raise unexpected_answer(response.text, "not a JSON object")
    return data


def _remote(item: dict, raw: str) -> RemoteMessage:
    sid, status, to = item.get("id"), item.get("status"), item.get("to_number")
    if not isinstance(sid, str) or not sid or not isinstance(status, str) or not isinstance(to, str):
        raise unexpected_answer(raw, "a message without id, status or to_number")
    return RemoteMessage(
        sid=sid,
        status=REMOTE_STATUS.get(status, status),
        to=to,
        from_number=_text(item.get("from_number")) or None,
        body=_text(item.get("content")),
        created_at=_timestamp(item.get("time_created")),
        error_code=_error_code(item.get("error_code")),
        price=_decimal_text(item.get("price")),
        price_unit=_text(item.get("price_currency")) or None,
    )


def _refused_at_send(message: dict, raw: str) -> GatewayError | None:
    """The error of a send answered without a message (a blocked recipient) or already failed."""
    if message.get("id") is None and "id" in message and message.get("status") is None:
        return GatewayError(
            "send_blocked",
            "Telerivet did not create the message: the recipient is a blocked contact (opted out).",
            retryable=False,
            opted_out=True,
        )
    status = message.get("status")
    if status not in FAILED_AT_SEND:
        return None
    text = _text(message.get("error_message")).strip() or f"Telerivet answered the message {status}."
    code = _error_code(message.get("error_code")) or str(status)
    return GatewayError(code, text, retryable=False, opted_out=is_opt_out(code, text))


def _basic_password(header: str) -> str | None:
    """The password of an HTTP Basic header whose user is ``telerivet``; None otherwise."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except ValueError:
        return None
    return password if sep and user == "telerivet" else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class TelerivetGateway(Gateway):
    kind = "telerivet"
    label = "Telerivet"
    resolves = False
    uses_number_pool = False
    inbound_answer = ("", "text/plain")
    fields = (
        Field("api_key", "API key", required=True, secret=True, help="From Telerivet's API Keys page"),
        Field("project_id", "Project ID", required=True, help="PJ..., from Telerivet's API Keys page"),
        Field(
            "route_id",
            "Route ID",
            help="The phone (PN...) or route to send through; empty: the project's default route",
        ),
        Field(
            "webhook_secret",
            "Webhook secret",
            secret=True,
            help="The secret Telerivet posts with each webhook (set the same in Telerivet)",
        ),
    )

    def __init__(self, config):
        super().__init__(config)
        self.api_key = _text(config.secrets.get("api_key"))
        self.project_id = _text(config.settings.get("project_id"))
        self.route_id = _text(config.settings.get("route_id")) or None
        self.webhook_secret = _text(config.secrets.get("webhook_secret")) or None
        self.base_url = api_base_url()
        self.session = telerivet_session(self.api_key, self.base_url)

    @classmethod
    def check_settings(cls, settings: dict, secrets: dict) -> None:
        for name, what in (("project_id", "a Telerivet project ID"), ("route_id", "a Telerivet route ID")):
            value = _text(settings.get(name))
            if value and not TELERIVET_ID.fullmatch(value):
                raise field_error(
                    name, f"{what} is letters and digits only (as on Telerivet's API Keys page)."
                )
        key = _text(secrets.get("api_key"))
        if key and (":" in key or any(ch.isspace() for ch in key)):
            raise field_error(
                "api_key", "a Telerivet API key has no spaces or colons; copy it again from Telerivet."
            )

    # -- HTTP ------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params=None, payload=None) -> requests.Response:
        url = f"{self.base_url}/v1/projects/{self.project_id}{path}"
        try:
            return self.session.request(method, url, params=params, json=payload, timeout=http_timeout())
        except requests.exceptions.RequestException as exc:
            raise classify_requests_error(exc) from exc

    # -- sending and asking ----------------------------------------------------

    def send(self, to, body, from_number, status_callback) -> SendResult:
        payload = {"to_number": to, "content": body}
        if self.route_id:
            payload["route_id"] = self.route_id
        if status_callback:
            payload["status_url"] = status_callback
            if self.webhook_secret:
                payload["status_secret"] = self.webhook_secret
        response = self._request("POST", "/messages/send", payload=payload)
        message = _answer(response)
        refused = _refused_at_send(message, response.text)
        if refused is not None:
            raise refused
        sid, status = message.get("id"), message.get("status")
        if not isinstance(sid, str) or not sid or not isinstance(status, str):
            raise unexpected_answer(response.text, "a message without id or status")
        return SendResult(
            sid=sid,
            status=status,
            from_number=_text(message.get("from_number")) or from_number,
            segments=_segments(message.get("num_parts")),
            gateway=self.kind,
            price=_decimal_text(message.get("price")),
            price_unit=_text(message.get("price_currency")) or None,
        )

    def fetch(self, sid):
        if not TELERIVET_ID.fullmatch(_text(sid)):
            return None  # not a Telerivet id (and never a path of its own)
        response = self._request("GET", f"/messages/{sid}")
        if response.status_code == 404:
            return None
        try:
            return _remote(_answer(response), response.text)
        except GatewayError as exc:
            if exc.code == "not_found":
                return None
            raise

    def find_recent(self, to, from_number, limit=20):
        want, sender = _digits(to), _digits(from_number)
        params = {"direction": "outgoing", "sort_dir": "desc", "page_size": SCAN_PAGE_SIZE}
        found: list[RemoteMessage] = []
        for _ in range(SCAN_PAGES):
            response = self._request("GET", "/messages", params=params)
            page = _answer(response)
            items = page.get("data")
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise unexpected_answer(response.text, "a page without a data list")
            for item in items:
                if _digits(item.get("to_number")) != want:
                    continue
                if sender and _digits(item.get("from_number")) != sender:
                    continue
                found.append(_remote(item, json.dumps(item)))
                if len(found) >= limit:
                    return found
            marker = page.get("next_marker")
            if not page.get("truncated") or not marker:
                break
            params = {**params, "marker": marker}
        return found

    # -- webhooks --------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        if not self.webhook_secret:
            return False
        posted = request.form.get("secret")
        if posted:
            return _same(posted, self.webhook_secret)
        password = _basic_password(request.headers.get("authorization", ""))
        return password is not None and _same(password, self.webhook_secret)

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        values = request.values()
        if values.get("event", "incoming_message") != "incoming_message":
            return []
        if values.get("message_type", "sms") not in ("sms", "mms"):
            return []  # calls and USSD sessions are not text messages
        sid = values.get("id", "")
        sender = values.get("from_number_e164") or values.get("from_number", "")
        if not sid or not sender:
            return []
        return [
            InboundSms(
                sid=sid,
                from_number=sender,
                to_number=values.get("to_number", ""),
                body=values.get("content", ""),
            )
        ]

    def parse_status(self, request: WebhookRequest) -> list[StatusReport]:
        values = request.values()
        if values.get("event", "send_status") != "send_status":
            return []
        sid = values.get("id", "")
        status = STATUS.get(values.get("status", ""))
        if not sid or status is None:
            return []
        code = _error_code(values.get("error_code"))
        failed = status in ("failed", "undelivered")
        return [
            StatusReport(
                sid=sid,
                status=status,
                error_code=code,
                opted_out=failed and is_opt_out(code, values.get("error_message")),
                price=_decimal_text(values.get("price")),
                price_unit=values.get("price_currency") or None,
            )
        ]
