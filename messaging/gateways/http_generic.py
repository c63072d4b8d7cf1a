"""A generic HTTP gateway: an in-country aggregator's plain HTTP API, described in the UI.

Rules:
- Sending: ``method`` (GET, POST or PUT) to ``url_template``, with
  ``body_template`` as the body when there is one, sent as ``content_type``
  (JSON or a form). Templates take ``{to}``, ``{to_digits}`` (no ``+``),
  ``{from}``, ``{text}`` and ``{message_ref}`` (a fresh id per request). Each
  value is escaped for where it lands: URL-encoded in the URL and in a form
  body, JSON-escaped in a JSON body (write ``"{text}"`` in the template).
- ``auth_header`` (a secret, e.g. ``Authorization: Bearer ...``) is sent with
  every request. The URL is checked like every URL a user enters
  (``messaging.lib.outbound``: no private or loopback address unless
  ``OUTBOUND_ALLOW_HOSTS`` allows it) when saved and again by each send job
  (once per host, not per message: a name look-up each), and the connection
  goes to the address that was checked; redirects are not followed.
- The answer: a 2xx with JSON; the message id is read at ``id_path`` (a
  dotted path such as ``data.id`` or ``messages.0.id``). When ``status_path``
  is set, the value there must be one of ``ok_values`` (comma-separated),
  else the message fails with the raw answer. A 2xx without an id at
  ``id_path``, or not JSON, fails with the raw answer (``unexpected_answer``).
  429 and 5xx may pass later; 401/403 are wrong credentials; other 4xx fail.
- It cannot be asked about a message (``resolves`` false).
- Webhooks are authenticated by the secret in their URL only. Inbound
  messages arrive as a form, a query string or a JSON object; the sender,
  recipient, text and id are read at ``inbound_from``, ``inbound_to``,
  ``inbound_text`` and ``inbound_id`` (dotted paths; an inbound message
  without an id gets one made from its content and the ten minutes it came in,
  so a retry is still stored once and the same text later is a new message).
  Delivery reports: the id at ``status_id`` and the status at ``status_field``,
  mapped by ``delivered_values`` and ``failed_values`` (anything else is a
  status on the way, ignored).
- Plain ``requests`` through ``messaging.lib.outbound_http``: there is no
  provider client to use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import replace
from urllib.parse import quote, urlsplit

import requests

from messaging.errors import field_error
from messaging.forwarding.locations import checked_destination, refuse_internal_url
from messaging.gateways.base import (
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
from messaging.gateways.http_client import http_timeout
from messaging.lib import clock, outbound_http
from messaging.lib.outbound import Destination, OutboundRefused

log = logging.getLogger(__name__)

METHODS = ("POST", "GET", "PUT")
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
PLACEHOLDERS = ("to", "to_digits", "from", "text", "message_ref")
MAX_ANSWER = 64 * 1024
# Seconds within which an inbound message without an id, sent again the same, is a retry.
INBOUND_RETRY_WINDOW = 600


def read_path(data, path: str):
    """The value at a dotted ``path`` (``data.items.0.id``) of parsed JSON, or None."""
    current = data
    for part in (path or "").split("."):
        if part == "":
            continue
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def fill(template: str, values: dict[str, str], escape) -> str:
    """``template`` with each ``{name}`` of ``values`` replaced by ``escape(value)``; other braces
    stay as written (a JSON body's own braces)."""
    out = template
    for name in PLACEHOLDERS:
        out = out.replace("{" + name + "}", escape(values.get(name, "")))
    return out


def json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def url_escape(value: str) -> str:
    return quote(value, safe="")


def _values_list(raw: str | None) -> set[str]:
    return {v.strip().lower() for v in (raw or "").split(",") if v.strip()}


class HttpGateway(Gateway):
    kind = "http"
    label = "Generic HTTP"
    resolves = False
    uses_number_pool = True
    inbound_answer = ('{"ok": true}', "application/json")
    fields = (
        Field("method", "Method", required=True, choices=METHODS),
        Field(
            "url_template",
            "URL",
            required=True,
            help="e.g. https://sms.example.org/send?to={to_digits}; takes {to} {to_digits} {from} {text} "
            "{message_ref}",
        ),
        Field("body_template", "Body", multiline=True, help='e.g. {"to": "{to}", "message": "{text}"}'),
        Field("content_type", "Body type", choices=CONTENT_TYPES),
        Field("auth_header", "Auth header", secret=True, help="e.g. Authorization: Bearer abc123"),
        Field("id_path", "Message id in the answer", required=True, help="a dotted path, e.g. data.id"),
        Field("status_path", "Status in the answer", help="optional, e.g. status"),
        Field("ok_values", "Accepted status values", help="comma-separated, e.g. queued,sent"),
        Field("inbound_from", "Inbound: sender field", help="default: from"),
        Field("inbound_to", "Inbound: recipient field", help="default: to"),
        Field("inbound_text", "Inbound: text field", help="default: text"),
        Field("inbound_id", "Inbound: id field", help="default: id"),
        Field("status_id", "Report: message id field", help="default: id"),
        Field("status_field", "Report: status field", help="default: status"),
        Field("delivered_values", "Report: delivered values", help="default: delivered"),
        Field("failed_values", "Report: failed values", help="default: failed,undelivered,rejected,expired"),
    )

    @classmethod
    def check_settings(cls, settings: dict, secrets: dict) -> None:
        method = settings.get("method", "").upper()
        if method not in METHODS:
            raise field_error("method", f"must be one of {', '.join(METHODS)}.")
        settings["method"] = method
        content_type = settings.get("content_type")
        if content_type and content_type not in CONTENT_TYPES:
            raise field_error("content_type", f"must be one of {', '.join(CONTENT_TYPES)}.")
        if settings.get("body_template") and method == "GET":
            raise field_error("body_template", "a GET request has no body.")
        if settings.get("body_template") and not content_type:
            settings["content_type"] = CONTENT_TYPES[0]
        header = secrets.get("auth_header")
        if header and (":" not in header or not header.split(":", 1)[0].strip()):
            raise field_error("auth_header", "write it as a header line, e.g. Authorization: Bearer abc123.")
        sample = fill(settings["url_template"], dict.fromkeys(PLACEHOLDERS, "0"), url_escape)
        refuse_internal_url(sample, field="url_template")

    def __init__(self, config):
        super().__init__(config)
        self.settings = config.settings
        self.auth_header = config.secrets.get("auth_header")
        self._checked: dict[tuple[str, str], Destination] = {}

    def _request_parts(self, to: str, body: str, from_number: str | None) -> tuple[str, bytes | None, dict]:
        values = {
            "to": to,
            "to_digits": to.lstrip("+"),
            "from": from_number or "",
            "text": body,
            "message_ref": uuid.uuid4().hex,
        }
        url = fill(self.settings["url_template"], values, url_escape)
        headers = {"Accept": "application/json"}
        if self.auth_header:
            name, _, value = self.auth_header.partition(":")
            headers[name.strip()] = value.strip()
        template = self.settings.get("body_template")
        if not template:
            return url, None, headers
        content_type = self.settings.get("content_type") or CONTENT_TYPES[0]
        escape = json_escape if content_type == "application/json" else url_escape
        headers["Content-Type"] = content_type + (
            "; charset=utf-8" if content_type == CONTENT_TYPES[0] else ""
        )
        return url, fill(template, values, escape).encode("utf-8"), headers

    def send(self, to, body, from_number, status_callback) -> SendResult:
        url, payload, headers = self._request_parts(to, body, from_number)
        timeout = http_timeout()
        try:
            destination = self._destination(url)
        except OutboundRefused as refusal:
            # A name that does not resolve now may later (DNS); a refused address will not.
            raise GatewayError(
                refusal.code,
                f"The gateway's URL is refused: {refusal.message}",
                retryable=refusal.code == "host_not_found",
            ) from None
        try:
            answer = outbound_http.send(self.settings["method"], destination, payload, headers, timeout)
            try:
                raw = answer.raw.read(MAX_ANSWER, decode_content=True) or b""
            finally:
                answer.close()
        except requests.exceptions.RequestException as exc:
            raise classify_requests_error(exc) from exc
        text = raw.decode("utf-8", "replace")
        if not 200 <= answer.status_code < 300:
            raise http_status_error(answer.status_code, text)
        try:
            data = json.loads(text)
        except ValueError:
            raise unexpected_answer(text, "not JSON") from None
        message_id = read_path(data, self.settings["id_path"])
        if message_id in (None, "") or isinstance(message_id, (dict, list)):
            raise unexpected_answer(text, f"no message id at {self.settings['id_path']}")
        status = "accepted"
        if self.settings.get("status_path"):
            found = read_path(data, self.settings["status_path"])
            status = str(found) if found is not None else ""
            if status.lower() not in _values_list(self.settings.get("ok_values")):
                raise GatewayError(
                    status or "refused",
                    f"The gateway did not accept the message: {text[:500]}",
                    retryable=False,
                )
        return SendResult(sid=str(message_id)[:64], status=status, from_number=from_number, gateway=self.kind)

    def _destination(self, url: str) -> Destination:
        """Where ``url`` goes: its host is checked once per gateway object (one send job), not for
        every message (a name look-up each); the path and query are this message's."""
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.netloc.lower())
        checked = self._checked.get(key)
        if checked is None:
            checked = self._checked[key] = checked_destination(url)
            return checked
        return replace(checked, target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""))

    def _fields(self, request: WebhookRequest):
        data = request.json() if "json" in request.headers.get("content-type", "") else None
        if isinstance(data, dict):
            return data
        return request.values()

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        data = self._fields(request)
        sender = read_path(data, self.settings.get("inbound_from") or "from")
        text = read_path(data, self.settings.get("inbound_text") or "text")
        to = read_path(data, self.settings.get("inbound_to") or "to")
        given_id = read_path(data, self.settings.get("inbound_id") or "id")
        if not sender or text is None:
            return []
        sid = str(given_id) if given_id not in (None, "") else None
        if sid is None:
            # No id from the aggregator: one made from the content and the ten minutes it came
            # in, so a retry soon after is stored once and the same "YES" tomorrow is new.
            window = int(clock.now().timestamp() // INBOUND_RETRY_WINDOW)
            sid = "H" + hashlib.sha1(f"{sender}|{to}|{text}|{window}".encode()).hexdigest()[:40]
        return [InboundSms(sid=sid[:64], from_number=str(sender), to_number=str(to or ""), body=str(text))]

    def parse_status(self, request: WebhookRequest) -> list[StatusReport]:
        data = self._fields(request)
        sid = read_path(data, self.settings.get("status_id") or "id")
        raw_status = read_path(data, self.settings.get("status_field") or "status")
        if sid in (None, "") or raw_status is None:
            return []
        value = str(raw_status).lower()
        delivered = _values_list(self.settings.get("delivered_values")) or {"delivered"}
        failed = _values_list(self.settings.get("failed_values")) or {
            "failed",
            "undelivered",
            "rejected",
            "expired",
        }
        if value in delivered:
            status = "delivered"
        elif value in failed:
            status = "failed"
        else:
            return []
        return [
            StatusReport(
                sid=str(sid)[:64], status=status, error_code=None if status == "delivered" else value
            )
        ]
