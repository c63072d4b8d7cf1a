"""SMS gateways: Twilio (the official client) and a console gateway for development.

A gateway sends one message and answers a :class:`SendResult`, or raises
:class:`GatewayError` that says whether trying again later may pass
(``retryable``), whether the request may have reached the gateway anyway
(``outcome_unknown``: a read timeout or a connection dropped after the request
was written; Twilio has no idempotency key, so such a message must not be sent
again blindly) and whether the recipient has opted out (Twilio 21610).

Twilio clients are built once per process per (account sid, auth token) and
kept, so their keep-alive HTTP sessions are reused across jobs.

The console gateway prints each message (number and text) to the console in
development only (``APP_ENV=development``, what ``make run`` sets); elsewhere
its log line names the message's sid, the number's last four digits and the
text's length, never the text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime

import requests
from flask import current_app
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from messaging.jobs import redis_conn
from messaging.lib import clock
from messaging.lib.redact import mask_phone

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

CONSOLE_LOG_KEY = "sms:console:{project_id}"
CONSOLE_LOG_MAX = 1000


@dataclass
class SendResult:
    sid: str
    status: str  # the gateway's status (queued, accepted, sent...)
    from_number: str | None = None
    segments: int | None = None
    gateway: str | None = None  # the kind of gateway that took it (the usage report's column)


@dataclass
class RemoteMessage:
    """A message as the gateway knows it (for resolving unknown outcomes)."""

    sid: str
    status: str
    to: str
    from_number: str | None
    body: str
    created_at: datetime | None
    error_code: str | None = None
    # What the gateway billed (Twilio: a negative decimal string, once the message is sent).
    price: str | None = None
    price_unit: str | None = None


class GatewayError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        outcome_unknown: bool = False,
        opted_out: bool = False,
        status: int | None = None,
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        self.opted_out = opted_out
        self.status = status


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
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        # Never connected: the request did not leave.
        return GatewayError("connect_timeout", "Could not connect to the gateway in time.", retryable=True)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return GatewayError(
            "timeout",
            "The gateway did not answer in time; the message may have been sent.",
            retryable=True,
            outcome_unknown=True,
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        # A refused connection never left; a dropped one (reset, remote closed) might have.
        text = repr(exc)
        refused = "refused" in text.lower() or "NewConnectionError" in text or "NameResolution" in text
        return GatewayError(
            "connection_error",
            f"Connection to the gateway failed ({exc.__class__.__name__}).",
            retryable=True,
            outcome_unknown=not refused,
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return GatewayError(
            "http_error", f"{exc.__class__.__name__}: {exc}", retryable=True, outcome_unknown=True
        )
    raise exc


def pick_sender(phone: str, pool: list[str]) -> str | None:
    """The pool number for ``phone``: a stable hash, so a recipient always gets the same one."""
    if not pool:
        return None
    digest = hashlib.sha1(phone.encode()).digest()
    return pool[int.from_bytes(digest[:8], "big") % len(pool)]


class Gateway:
    kind = "base"

    def send(self, to: str, body: str, from_number: str | None, status_callback: str | None) -> SendResult:
        raise NotImplementedError

    def fetch(self, sid: str) -> RemoteMessage | None:
        """The gateway's record of ``sid``; None when it does not know it."""
        raise NotImplementedError

    def find_recent(self, to: str, from_number: str | None, limit: int = 20) -> list[RemoteMessage]:
        """The gateway's most recent messages to ``to`` (for resolving an unknown outcome)."""
        raise NotImplementedError


class ConsoleGateway(Gateway):
    """Development gateway: records each message in Redis (the last 1,000 per project) and shows
    it on the console in development."""

    kind = "console"

    def __init__(self, project_id: int):
        self.project_id = project_id

    def send(self, to, body, from_number, status_callback) -> SendResult:
        import json

        sid = "CO" + uuid.uuid4().hex
        record = {"sid": sid, "to": to, "from": from_number, "body": body, "at": clock.isoformat(clock.now())}
        key = CONSOLE_LOG_KEY.format(project_id=self.project_id)
        pipe = redis_conn().pipeline()
        pipe.lpush(key, json.dumps(record))
        pipe.ltrim(key, 0, CONSOLE_LOG_MAX - 1)
        pipe.execute()
        if current_app.config.get("APP_ENV") == "development":
            print(f"--- console sms {sid} to {to} from {from_number or '-'}\n{body}\n---", flush=True)
        log.info(
            "console sms project_id=%s sid=%s to=%s chars=%s", self.project_id, sid, mask_phone(to), len(body)
        )
        return SendResult(sid=sid, status="sent", from_number=from_number, gateway=self.kind)

    def _records(self) -> list[dict]:
        import json

        key = CONSOLE_LOG_KEY.format(project_id=self.project_id)
        return [json.loads(raw) for raw in redis_conn().lrange(key, 0, CONSOLE_LOG_MAX - 1)]

    def fetch(self, sid):
        for rec in self._records():
            if rec["sid"] == sid:
                return RemoteMessage(
                    sid, "sent", rec["to"], rec["from"], rec["body"], clock.parse_iso(rec["at"])
                )
        return None

    def find_recent(self, to, from_number, limit=20):
        found = []
        for rec in self._records():
            if rec["to"] == to:
                found.append(
                    RemoteMessage(
                        rec["sid"], "sent", rec["to"], rec["from"], rec["body"], clock.parse_iso(rec["at"])
                    )
                )
        return found[:limit]


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

    def __init__(self, account_sid: str, auth_token: str, messaging_service_sid: str | None = None):
        self.account_sid = account_sid
        self.messaging_service_sid = messaging_service_sid
        self.client = twilio_client(account_sid, auth_token)

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
