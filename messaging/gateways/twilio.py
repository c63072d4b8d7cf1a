"""Twilio, through the official ``twilio`` client.

Rules:
- Twilio codes that will never pass for this recipient are permanent
  (``PERMANENT_CODES``); 21610 means the recipient opted out at Twilio; 429
  and 5xx may pass later; ``requests``' own errors are read by
  ``base.classify_requests_error``. Twilio has no idempotency key, so a
  message whose request may have arrived is never sent again blindly: the
  sweep asks Twilio (``fetch``, ``find_recent``).
- Clients are built once per process per (account sid, auth token) and kept,
  so their keep-alive HTTP sessions are reused across jobs.
- Webhooks are signed with ``X-Twilio-Signature`` (HMAC-SHA1 of the URL Twilio
  called and the form, with the auth token). Twilio's statuses map to ours
  (``STATUS``); a status we do not know is dropped.
"""

from __future__ import annotations

import logging
import os
import threading

import requests
from flask import current_app
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

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
)
from messaging.lib import clock

log = logging.getLogger(__name__)

# Twilio codes that will never pass for this recipient.
PERMANENT_CODES = {
    21211: "invalid_number",
    21614: "not_mobile",
    21610: "opted_out",
    21612: "unreachable",
    21408: "region_not_enabled",
    21617: "body_too_long",
}
OPT_OUT_CODE = 21610

# Twilio's statuses -> ours.
STATUS = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}


def classify_exception(exc: Exception) -> GatewayError:
    """Turn what the twilio client raised into a :class:`GatewayError`."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, TwilioRestException):
        status = exc.status or 0
        code = exc.code
        text = str(exc.msg or "").strip() or f"HTTP {status}"
        if status == 429 or status >= 500:
            return GatewayError(str(code or status), text, retryable=True, status=status)
        if code == OPT_OUT_CODE:
            return GatewayError(str(code), text, retryable=False, opted_out=True, status=status)
        return GatewayError(str(code or status), text, retryable=False, status=status)
    if isinstance(exc, requests.exceptions.RequestException):
        return classify_requests_error(exc)
    raise exc


_clients: dict[tuple[str, str, str, float], Client] = {}
_clients_lock = threading.Lock()


def _http_client(base_url: str, timeout: float) -> TwilioHttpClient:
    """A keep-alive HTTP client that reads the proxy and CA settings of the environment once.

    requests re-reads the whole environment on every request otherwise
    (about half a millisecond per message where the environment is large).
    """
    target = base_url or "https://api.twilio.com"
    http = TwilioHttpClient(
        timeout=timeout, pool_connections=True, proxy=requests.utils.get_environ_proxies(target)
    )
    http.session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        http.session.verify = bundle
    return http


def twilio_client(account_sid: str, auth_token: str) -> Client:
    """The process's client for these credentials (kept: its HTTP session keeps connections alive)."""
    base_url = current_app.config.get("TWILIO_API_BASE_URL") or ""
    timeout = float(current_app.config.get("SMS_HTTP_TIMEOUT", 10.0))
    key = (account_sid, auth_token, base_url, timeout)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = Client(
                    account_sid, auth_token, environment={}, http_client=_http_client(base_url, timeout)
                )
                if base_url:
                    client.api.base_url = base_url.rstrip("/")
                _clients[key] = client
    return client


def _remote(instance) -> RemoteMessage:
    created = instance.date_created
    if created is not None and created.tzinfo is not None:
        created = clock.parse_iso(created.isoformat())
    return RemoteMessage(
        sid=instance.sid,
        status=str(instance.status),
        to=instance.to,
        from_number=instance.from_,
        body=instance.body or "",
        created_at=created,
        error_code=str(instance.error_code) if instance.error_code else None,
        price=str(instance.price) if instance.price not in (None, "") else None,
        price_unit=instance.price_unit or None,
    )


class TwilioGateway(Gateway):
    kind = "twilio"
    label = "Twilio"
    resolves = True
    inbound_answer = ('<?xml version="1.0" encoding="UTF-8"?><Response/>', "text/xml")
    fields = (
        Field("account_sid", "Account SID", required=True, help="AC followed by 32 hex characters"),
        Field("auth_token", "Auth token", required=True, secret=True),
        Field("messaging_service_sid", "Messaging Service SID", help="MG..., instead of sender numbers"),
    )

    def __init__(self, config):
        super().__init__(config)
        self.account_sid = config.settings.get("account_sid") or ""
        self.messaging_service_sid = config.settings.get("messaging_service_sid") or None
        self.auth_token = config.secrets.get("auth_token") or ""
        self.client = twilio_client(self.account_sid, self.auth_token)

    def send(self, to, body, from_number, status_callback) -> SendResult:
        kwargs = {"to": to, "body": body}
        if from_number:
            kwargs["from_"] = from_number
        elif self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            msg = self.client.messages.create(**kwargs)
        except Exception as exc:  # classified; anything unexpected re-raises
            raise classify_exception(exc) from exc
        segments = int(msg.num_segments) if msg.num_segments not in (None, "", "0") else None
        return SendResult(
            sid=msg.sid,
            status=str(msg.status),
            from_number=msg.from_ or from_number,
            segments=segments,
            gateway=self.kind,
        )

    def fetch(self, sid):
        try:
            return _remote(self.client.messages(sid).fetch())
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise classify_exception(exc) from exc
        except requests.exceptions.RequestException as exc:
            raise classify_exception(exc) from exc

    def find_recent(self, to, from_number, limit=20):
        kwargs = {"to": to, "limit": limit, "page_size": limit}
        if from_number:
            kwargs["from_"] = from_number
        try:
            return [_remote(m) for m in self.client.messages.list(**kwargs)]
        except Exception as exc:
            raise classify_exception(exc) from exc

    def verify(self, request: WebhookRequest) -> bool:
        signature = request.headers.get("x-twilio-signature", "")
        if not signature or not self.auth_token:
            return False
        return RequestValidator(self.auth_token).validate(request.url, request.form, signature)

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        sender = form.get("From", "")
        if not sid or not sender:
            return []
        return [
            InboundSms(sid=sid, from_number=sender, to_number=form.get("To", ""), body=form.get("Body", ""))
        ]

    def parse_status(self, request: WebhookRequest) -> list[StatusReport]:
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status = STATUS.get(form.get("MessageStatus") or form.get("SmsStatus") or "")
        if not sid or status is None:
            return []
        code = form.get("ErrorCode") or None
        return [StatusReport(sid=sid, status=status, error_code=code, opted_out=code == str(OPT_OUT_CODE))]
