"""Vonage (formerly Nexmo), through its SMS API with plain ``requests``.

Rules:
- One message is one ``POST {base}/sms/json`` (form-encoded; ``api_key`` and
  ``api_secret`` in the form, numbers E.164 without the ``+``, ``type=unicode``
  when the text is not GSM-7, ``callback`` = our status URL). Vonage answers
  HTTP 200 with one entry per SMS part; a part's ``status`` "0" is accepted.
  The first accepted part's ``message-id`` is the sid; the parts are the
  segments; the price is the sum of the parts' ``message-price`` (EUR, the
  currency of every Vonage account).
- Errors: statuses 1 (throttled), 5 (internal error), 9 (no credit: "top up and
  retry") and 10 (too many binds) may pass later; 4 (invalid credentials) and 32
  (the account refuses the API secret) are ``bad_credentials``; 7 (number barred:
  the recipient is on Vonage's list of numbers that may not receive) is an
  opt-out; every other status is permanent. HTTP 429 and 5xx may pass later;
  ``requests``' own errors are read by ``base.classify_requests_error``; an
  answer without a readable ``messages`` list is ``unexpected_answer``.
- Vonage's SMS API cannot be asked about a message it took (``resolves`` is
  False): the send journal settles an uncertain outcome. Nothing here retries a
  POST (a dropped connection may have sent the message).
- Webhooks (GET query, POST form or POST JSON, as set on the Vonage dashboard)
  are authenticated only when Vonage signs them: ``sig`` is the MD5 hash or the
  HMAC (MD5, SHA-1, SHA-256, SHA-512; told apart by its length) of
  ``&key=value`` over the other parameters sorted by key, ``&`` and ``=`` in
  values replaced by ``_``, with the ``signature_secret`` (appended for the MD5
  hash, the key of the HMAC), compared without regard to case; its ``timestamp``
  must be at most 25 hours old (Vonage retries an unanswered webhook for 24).
  Without a signature secret ``verify`` is False (the URL's secret then applies).
- Delivery receipts map to ours (``DLR_STATUS``): ``accepted``/``buffered`` are
  ``sent``, ``expired``/``failed`` (the carrier could not deliver a message Vonage
  took and billed) ``undelivered``, ``rejected`` ``failed``; ``unknown`` is
  dropped. ``err-code`` 4 (call barred by the user) and 9 (the user asked not to
  receive these messages) mark the recipient opted out. A long message's parts
  each get a receipt with their own id: only the first part's matches the sid.
  The receipt's ``price`` is one part's, so the send answer's total is kept.
- A long inbound message arrives in parts (``concat``, ``concat-ref``,
  ``concat-total``, ``concat-part``): the parts are kept in Redis for a day and
  the whole text is returned once every part is there (sid: the first part's
  ``messageId``; asking again returns the same message, stored once by sid).
  With Redis away, a part is passed on alone rather than lost.
- Client: plain ``requests``, one keep-alive ``Session`` per process per
  (credentials, base URL). The official ``vonage`` SDK (v4) was not used: its
  HTTP client builds every URL as ``https://{host}``, so it cannot reach an
  ``http://127.0.0.1:<port>`` fake, and it re-POSTs a request whose connection
  dropped (``RemoteDisconnected``), which can send an SMS twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import requests
from flask import current_app
from redis.exceptions import RedisError

from messaging.errors import field_error
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
    pick_sender,
    unexpected_answer,
)
from messaging.gateways.http_client import http_timeout, kept_session
from messaging.lib import clock
from messaging.lib.segments import UCS2, count_segments

log = logging.getLogger(__name__)

API_BASE_URL = "https://rest.nexmo.com"
SEND_PATH = "/sms/json"
PRICE_UNIT = "EUR"

# The SMS API's statuses (developer.vonage.com/messaging/sms/guides/troubleshooting-sms).
STATUS_TEXT = {
    1: "Throttled",
    2: "Missing parameters",
    3: "Invalid parameters",
    4: "Invalid credentials",
    5: "Internal error",
    6: "Invalid message",
    7: "Number barred",
    8: "Partner account barred",
    9: "Partner quota violation",
    10: "Too many existing binds",
    11: "Account not enabled for HTTP",
    12: "Message too long",
    14: "Invalid signature",
    15: "Invalid sender address",
    22: "Invalid network code",
    23: "Invalid callback URL",
    29: "Non-whitelisted destination",
    32: "Signature and API secret disallowed",
    33: "Number de-activated",
}
RETRYABLE_STATUSES = {1, 5, 9, 10}
CREDENTIAL_STATUSES = {4, 32}
OPT_OUT_STATUS = 7

# Delivery receipt statuses -> ours; "unknown" (and anything else) is dropped.
DLR_STATUS = {
    "accepted": "sent",
    "buffered": "sent",
    "delivered": "delivered",
    "expired": "undelivered",
    "failed": "undelivered",
    "rejected": "failed",
}
# Receipt err-codes that are the recipient's own refusal: 4 call barred by user, 9 illegal number.
DLR_OPT_OUT_CODES = {"4", "9"}

SIGNATURE_MAX_AGE = timedelta(days=1, hours=1)
SIGNATURE_MAX_SKEW = timedelta(minutes=10)
# Hex length of ``sig`` -> the digests it can be (md5: Vonage's "MD5 hash" and HMAC-MD5).
SIGNATURE_DIGESTS = {32: ("md5hash", "md5"), 40: ("sha1",), 64: ("sha256",), 128: ("sha512",)}

CONCAT_KEY = "vonage:concat:{project_id}:{gateway_id}:{sender}:{ref}"
CONCAT_TTL = int(timedelta(days=1, hours=1).total_seconds())
CONCAT_MAX_PARTS = 50

API_KEY_RE = re.compile(r"[A-Za-z0-9]{4,64}")


def status_error(status: int, error_text: str) -> GatewayError:
    """A non-zero status of the SMS API as a :class:`GatewayError`."""
    name = STATUS_TEXT.get(status, "Unknown status")
    detail = f"{name} (status {status})" + (f": {error_text}" if error_text else "")
    if status in CREDENTIAL_STATUSES:
        return GatewayError(
            "bad_credentials", f"Vonage refused the API key and secret: {detail}", retryable=False
        )
    if status == OPT_OUT_STATUS:
        return GatewayError(
            str(status), f"The recipient may not receive messages: {detail}", retryable=False, opted_out=True
        )
    return GatewayError(
        str(status), f"Vonage refused the message: {detail}", retryable=status in RETRYABLE_STATUSES
    )


def vonage_session(api_key: str, api_secret: str, base_url: str) -> requests.Session:
    """The process's session for these credentials and host (kept: its connections stay open)."""
    return kept_session(("vonage", api_key, api_secret, base_url), base_url)


def _bare(number: str) -> str:
    """A number as Vonage writes it: E.164 without the ``+``."""
    return number.strip().lstrip("+")


def _plus(number: str) -> str:
    """A number from Vonage as ours: ``+`` before a full international number; short codes and
    sender names as they are."""
    number = number.strip()
    return "+" + number if number.isdigit() and len(number) >= 8 else number


def _sum_prices(prices: list) -> str | None:
    try:
        return str(sum((Decimal(str(p)) for p in prices), Decimal(0))) if prices else None
    except InvalidOperation:
        return None


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def webhook_params(request: WebhookRequest) -> dict[str, str]:
    """The parameters of a Vonage webhook: the query of a GET, else the form, else the JSON body."""
    if request.method.upper() == "GET":
        source = request.args
    elif request.form:
        source = request.form
    else:
        data = request.json()
        source = data if isinstance(data, dict) else request.args
    return {str(k): _text(v) for k, v in source.items()}


def signature(params: dict[str, str], secret: str, method: str) -> str:
    """Vonage's ``sig`` of ``params`` (without ``sig``), lower-case hex; ``method`` is ``md5hash``,
    ``md5``, ``sha1``, ``sha256`` or ``sha512``."""
    text = "".join(
        "&{}={}".format(key, params[key].replace("&", "_").replace("=", "_")) for key in sorted(params)
    )
    if method == "md5hash":
        return hashlib.md5((text + secret).encode("utf-8")).hexdigest()
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), getattr(hashlib, method)).hexdigest()


def _fresh(timestamp: str) -> bool:
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        return False
    now = clock.now()
    return now - SIGNATURE_MAX_AGE <= signed_at <= now + SIGNATURE_MAX_SKEW


def _read_answer(raw: str) -> list[dict]:
    """The ``messages`` of a send answer, each with a numeric ``status``; else unexpected_answer."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise unexpected_answer(raw, "not JSON") from None
    parts = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(parts, list) or not parts:
        raise unexpected_answer(raw, "no messages")
    for part in parts:
        if not isinstance(part, dict) or not str(part.get("status", "")).strip().isdigit():
            raise unexpected_answer(raw, "a message without a status")
    return parts


class VonageGateway(Gateway):
    kind = "vonage"
    label = "Vonage"
    resolves = False
    uses_number_pool = True
    inbound_answer = ("", "text/plain")
    fields = (
        Field("api_key", "API key", required=True, help="On the Vonage API dashboard (8 characters)"),
        Field("api_secret", "API secret", required=True, secret=True),
        Field(
            "signature_secret",
            "Signature secret",
            secret=True,
            help="Only if Vonage signs your webhooks (dashboard, API settings): they are then checked",
        ),
    )

    def __init__(self, config):
        super().__init__(config)
        self.api_key = (config.settings.get("api_key") or "").strip()
        self.api_secret = config.secrets.get("api_secret") or ""
        self.signature_secret = config.secrets.get("signature_secret") or ""
        self.base_url = (current_app.config.get("VONAGE_API_BASE_URL") or API_BASE_URL).rstrip("/")
        self.timeout = http_timeout()
        self.session = vonage_session(self.api_key, self.api_secret, self.base_url)

    @classmethod
    def check_settings(cls, settings: dict, secrets: dict) -> None:
        api_key = (settings.get("api_key") or "").strip()
        if api_key and not API_KEY_RE.fullmatch(api_key):
            raise field_error("api_key", "letters and digits only, as shown on the Vonage API dashboard")
        for name in ("api_secret", "signature_secret"):
            value = secrets.get(name) or ""
            if value and (value != value.strip() or " " in value):
                raise field_error(name, "must not contain spaces")

    # -- sending -------------------------------------------------------------

    def send(self, to, body, from_number, status_callback) -> SendResult:
        sender = from_number or pick_sender(to, self.config.from_numbers)
        if not sender:
            raise GatewayError(
                "no_sender", "This Vonage gateway has no number to send from: add one.", retryable=False
            )
        info = count_segments(body)
        form = {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "from": _bare(sender),
            "to": _bare(to),
            "text": body,
            "type": "unicode" if info.encoding == UCS2 else "text",
        }
        if status_callback:
            form["callback"] = status_callback
            form["status-report-req"] = "1"
        try:
            response = self.session.post(self.base_url + SEND_PATH, data=form, timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            raise classify_requests_error(exc) from exc
        if not 200 <= response.status_code < 300:
            raise http_status_error(response.status_code, response.text)
        return self._result(response.text, sender)

    def _result(self, raw: str, sender: str) -> SendResult:
        parts = _read_answer(raw)
        accepted = [p for p in parts if str(p["status"]).strip() == "0"]
        if not accepted:
            first = parts[0]
            raise status_error(int(str(first["status"]).strip()), str(first.get("error-text") or ""))
        sid = accepted[0].get("message-id")
        if not isinstance(sid, str) or not sid:
            raise unexpected_answer(raw, "no message-id")
        if len(accepted) < len(parts):
            log.warning("vonage sid=%s: %s of %s parts refused", sid, len(parts) - len(accepted), len(parts))
        prices = [p.get("message-price") for p in accepted]
        price = _sum_prices(prices) if None not in prices else None
        return SendResult(
            sid=sid,
            status="accepted",
            from_number=sender,
            segments=len(parts),
            gateway=self.kind,
            price=price,
            price_unit=PRICE_UNIT if price is not None else None,
        )

    # -- webhooks ------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        if not self.signature_secret:
            return False
        params = webhook_params(request)
        sig = params.pop("sig", "").strip().lower()
        if not sig or not _fresh(params.get("timestamp", "")):
            return False
        return any(
            hmac.compare_digest(sig, signature(params, self.signature_secret, method))
            for method in SIGNATURE_DIGESTS.get(len(sig), ())
        )

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        params = webhook_params(request)
        sid, sender = params.get("messageId", ""), params.get("msisdn", "")
        if not sid or not sender or params.get("type", "text") == "binary":
            return []
        if params.get("concat", "").lower() == "true":
            return self._concatenated(params)
        return [
            InboundSms(
                sid=sid,
                from_number=_plus(sender),
                to_number=_plus(params.get("to", "")),
                body=params.get("text", ""),
            )
        ]

    def _concatenated(self, params: dict[str, str]) -> list[InboundSms]:
        """The whole message once every part has arrived (each part is kept in Redis for a day)."""
        sid, sender, text = params["messageId"], params["msisdn"], params.get("text", "")
        ref = params.get("concat-ref", "")
        try:
            total, part = int(params.get("concat-total", "")), int(params.get("concat-part", ""))
        except ValueError:
            total = part = 0
        whole = InboundSms(
            sid=sid, from_number=_plus(sender), to_number=_plus(params.get("to", "")), body=text
        )
        if not ref or not 1 <= part <= total <= CONCAT_MAX_PARTS:
            return [whole]
        from messaging.jobs import redis_conn

        key = CONCAT_KEY.format(
            project_id=self.config.project_id, gateway_id=self.config.id, sender=sender, ref=ref
        )
        try:
            pipe = redis_conn().pipeline()
            pipe.hset(key, str(part), json.dumps({"id": sid, "text": text}))
            pipe.expire(key, CONCAT_TTL)
            pipe.hgetall(key)
            stored = pipe.execute()[-1]
        except RedisError as exc:
            log.warning("vonage concatenated part kept alone (Redis: %s) sid=%s", exc.__class__.__name__, sid)
            return [whole]
        parts = _stored_parts(stored)
        if not all(n in parts for n in range(1, total + 1)):
            return []
        whole.sid = parts[1]["id"]
        whole.body = "".join(parts[n]["text"] for n in range(1, total + 1))
        return [whole]

    def parse_status(self, request: WebhookRequest) -> list[StatusReport]:
        params = webhook_params(request)
        sid = params.get("messageId", "")
        status = DLR_STATUS.get(params.get("status", "").strip().lower())
        if not sid or status is None:
            return []
        code = params.get("err-code", "").strip()
        error_code = code if code not in ("", "0") else None
        opted_out = status in ("undelivered", "failed") and code in DLR_OPT_OUT_CODES
        return [StatusReport(sid=sid, status=status, error_code=error_code, opted_out=opted_out)]


def _stored_parts(stored: dict) -> dict[int, dict]:
    """The parts kept in Redis, by number (bytes or text, as the connection answers)."""
    parts = {}
    for key, value in stored.items():
        try:
            number = int(key.decode() if isinstance(key, bytes) else key)
            part = json.loads(value)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(part, dict) and isinstance(part.get("id"), str) and isinstance(part.get("text"), str):
            parts[number] = part
    return parts
