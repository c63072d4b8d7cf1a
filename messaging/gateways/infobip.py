"""Infobip (SMS API v2), through plain ``requests``.

Rules:
- One message is one ``POST {base_url}/sms/2/text/advanced`` (JSON; header
  ``Authorization: App <api_key>``) with one message and one destination:
  ``{"messages": [{"destinations": [{"to", "messageId"}], "from", "text",
  "notifyUrl", "notifyContentType": "application/json"}],
  "includeSmsCountInResponse": true}``. The number goes without its "+"; the
  ``messageId`` is ours (a uuid4 hex made per call) and is the sid. The
  answer's ``messages[]`` entry for that message decides: a status of group
  PENDING (1) or DELIVERED (3) is accepted; ``smsCount`` gives the parts.
- A status of another group in an HTTP 200 answer refuses this message; its
  name is the error code. REJECTED_DND and REJECTED_DESTINATION_BLOCKLISTED
  mean the recipient is on a do-not-disturb or block list (opted out);
  REJECTED_SYSTEM_ERROR, REJECTED_FLOODING_FILTER (too many messages to one
  number this hour) and REJECTED_NOT_ENOUGH_CREDITS may pass later
  (retryable); the others (REJECTED_DESTINATION, REJECTED_PREFIX_MISSING,
  REJECTED_SOURCE, REJECTED_ROUTE_NOT_AVAILABLE...) are permanent.
- HTTP errors carry ``{"requestError": {"serviceException": {"messageId",
  "text"}}}`` (or the newer ``{"errorCode", "description"}``): 429 and 5xx may
  pass later; 401/403 (UNAUTHORIZED, FORBIDDEN) are wrong credentials
  (``bad_credentials``); any other status is permanent, coded by Infobip's
  ``messageId`` (BAD_REQUEST...). ``requests``' own errors go through
  ``base.classify_requests_error``; any other shape is ``unexpected_answer``.
- Infobip can be asked about a message (``resolves``): ``GET
  {base_url}/sms/1/logs?messageId=`` (``fetch``) and ``?to=&limit=``
  (``find_recent``, newest first), the logs of the last 48 hours. The pull
  endpoint for reports (``/sms/1/reports``) is not used: it hands each report
  out only once.
- Delivery reports (JSON ``{"results": [...]}`` POSTed to the notifyUrl) give
  one ``StatusReport`` per result, by the status group: PENDING -> sent,
  DELIVERED -> delivered (but DELIVERED_TO_OPERATOR, not yet at the handset,
  -> sent), UNDELIVERABLE and EXPIRED -> undelivered (but EXPIRED_DLR_UNKNOWN,
  no final word from the network, -> sent), REJECTED -> failed; any other is
  dropped. The error code is the error's name (EC_ABSENT_SUBSCRIBER...) when
  it has one, else the status name. The errors EC_SC_BLOCKED_BY_END_USER,
  EC_BLACKLISTED_DESTINATIONADDRESS and EC_DEST_ADDRESS_BLACKLISTED (the
  operator's DND list) and the opt-out statuses above mark an opt-out. The
  price is ``pricePerMessage`` (per SMS part) times ``smsCount``, in its
  ``currency``. Logs are read the same way.
- Inbound messages (the number's forwarding, format MO_JSON_2: ``{"results":
  [{"messageId", "from", "to", "text"...}]}``) give one ``InboundSms`` per
  result. Infobip writes numbers in international form without the "+": a
  number of 8 digits or more gets it back (a short code keeps its digits).
- Webhooks are unsigned (Infobip has no signature or posted secret):
  ``verify`` is always False and our layer requires the secret in the URL
  (the notifyUrl we send carries it; the forwarding URL set at Infobip must).
- The base URL is typed by a user, so saving it checks it as every such URL
  (``messaging.lib.outbound``: no private or loopback address unless
  ``OUTBOUND_ALLOW_HOSTS`` allows it). Unlike the generic HTTP gateway the
  connection is not pinned to the checked address: the name is resolved again.
- Client: plain ``requests``, one keep-alive ``Session`` per process per (base
  URL, API key). The official ``infobip-api-python-sdk`` was last released in
  May 2023 and pins requests~=2.31 and pydantic 1.x (older than ours); its
  generated successor ``infobip-api-python-client`` brings pydantic 2, its
  own urllib3 pool and exception types and every channel's models, for the
  two endpoints used here.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import requests

from messaging.errors import field_error
from messaging.forwarding.locations import refuse_internal_url
from messaging.gateways.base import (
    RAW_ANSWER_CHARS,
    Field,
    Gateway,
    GatewayError,
    InboundSms,
    RemoteMessage,
    SendResult,
    StatusReport,
    WebhookRequest,
    classify_requests_error,
    unexpected_answer,
)
from messaging.gateways.http_client import http_timeout, kept_session
from messaging.lib import clock

log = logging.getLogger(__name__)

SEND_PATH = "/sms/2/text/advanced"
LOGS_PATH = "/sms/1/logs"
MAX_LOGS = 1000  # Infobip's most per logs request

# Infobip's status groups, by id, for an object that names only the id.
GROUPS = {1: "PENDING", 2: "UNDELIVERABLE", 3: "DELIVERED", 4: "EXPIRED", 5: "REJECTED"}
# Status groups -> ours.
STATUS = {
    "PENDING": "sent",
    "DELIVERED": "delivered",
    "UNDELIVERABLE": "undelivered",
    "EXPIRED": "undelivered",
    "REJECTED": "failed",
}
# Statuses whose name says more than their group.
STATUS_BY_NAME = {"DELIVERED_TO_OPERATOR": "sent", "EXPIRED_DLR_UNKNOWN": "sent"}
ACCEPTED_GROUPS = {"PENDING", "DELIVERED"}
# Refusals in a send answer.
OPT_OUT_STATUSES = {"REJECTED_DND", "REJECTED_DESTINATION_BLOCKLISTED"}
RETRYABLE_STATUSES = {"REJECTED_SYSTEM_ERROR", "REJECTED_FLOODING_FILTER", "REJECTED_NOT_ENOUGH_CREDITS"}
# Delivery errors that mean the recipient blocked us or is on a do-not-disturb list.
OPT_OUT_ERRORS = {
    "EC_SC_BLOCKED_BY_END_USER",
    "EC_BLACKLISTED_DESTINATIONADDRESS",
    "EC_DEST_ADDRESS_BLACKLISTED",
}
# HTTP error names that are wrong credentials.
CREDENTIAL_ERRORS = {"UNAUTHORIZED", "FORBIDDEN", "E401", "E403"}

SENDER_NUMBER = re.compile(r"\+?[0-9]{1,16}")
INTERNATIONAL = re.compile(r"[0-9]{8,15}")
MAX_ALPHANUMERIC_SENDER = 11


def infobip_session(base_url: str, api_key: str) -> requests.Session:
    """The process's session for this account (kept: it keeps its connections alive)."""
    return kept_session(("infobip", base_url, api_key), base_url, {"Authorization": f"App {api_key}"})


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _international(number: str) -> str:
    """Infobip's ``385916242493`` as ``+385916242493``; a short code or a name as it is."""
    return "+" + number if INTERNATIONAL.fullmatch(number) else number


def _wire_sender(sender: str) -> str:
    """A number sender without its "+" (Infobip's form); a sender ID as it is."""
    return sender[1:] if SENDER_NUMBER.fullmatch(sender) and sender.startswith("+") else sender


def _group(status: dict) -> str | None:
    name = _text(status.get("groupName")).upper()
    if name in STATUS:
        return name
    group_id = status.get("groupId")
    return GROUPS.get(group_id) if type(group_id) is int else None


def our_status(status) -> str | None:
    """An Infobip status object as ours (sent, delivered, undelivered, failed); None when unknown."""
    if not isinstance(status, dict):
        return None
    name = _text(status.get("name")).upper()
    if name in STATUS_BY_NAME:
        return STATUS_BY_NAME[name]
    return STATUS.get(_group(status) or "")


def _error_name(item: dict) -> str | None:
    """The name of a result's error (EC_...), None when it has none (NO_ERROR, id 0)."""
    error = item.get("error")
    if not isinstance(error, dict) or error.get("id") == 0 or error.get("groupId") == 0:
        return None
    return _text(error.get("name")) or (str(error["id"]) if type(error.get("id")) is int else None)


def _error_code(item: dict, ours: str) -> str | None:
    if ours not in ("failed", "undelivered"):
        return None
    status = item.get("status")
    return _error_name(item) or (_text(status.get("name")) if isinstance(status, dict) else None) or None


def _opted_out(item: dict, ours: str) -> bool:
    if ours not in ("failed", "undelivered"):
        return False
    status = item.get("status")
    name = _text(status.get("name")).upper() if isinstance(status, dict) else ""
    return name in OPT_OUT_STATUSES or (_error_name(item) or "").upper() in OPT_OUT_ERRORS


def _price(item: dict) -> tuple[str | None, str | None]:
    """(price of the whole message as decimal text, currency) of a report or log; (None, None)."""
    price = item.get("price")
    if not isinstance(price, dict) or isinstance(price.get("pricePerMessage"), bool):
        return None, None
    try:
        amount = Decimal(str(price.get("pricePerMessage")))
    except (InvalidOperation, ValueError):
        return None, None
    if not amount.is_finite():
        return None, None
    parts = item.get("smsCount", item.get("messageCount"))
    if type(parts) is int and parts > 1:
        amount *= parts
    return format(amount, "f"), _text(price.get("currency")).upper() or None


def _parse_time(value) -> datetime | None:
    try:
        return clock.parse_iso(value) if isinstance(value, str) and value.strip() else None
    except ValueError:
        return None


def _results(data) -> list[dict]:
    """The ``results`` objects of a webhook or logs answer ([] when it has none)."""
    results = data.get("results") if isinstance(data, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _remote(item: dict) -> RemoteMessage | None:
    sid = _text(item.get("messageId"))
    if not sid:
        return None
    ours = our_status(item.get("status")) or "sent"  # it is in the logs: it left
    price, unit = _price(item)
    body = item.get("text")
    return RemoteMessage(
        sid=sid,
        status=ours,
        to=_international(_text(item.get("to"))),
        from_number=_international(_text(item.get("from"))) or None,
        body=body if isinstance(body, str) else "",
        created_at=_parse_time(item.get("sentAt")),
        error_code=_error_code(item, ours),
        price=price,
        price_unit=unit,
    )


def _report(item: dict) -> StatusReport | None:
    sid = _text(item.get("messageId"))
    ours = our_status(item.get("status"))
    if not sid or ours is None:
        return None
    price, unit = _price(item)
    return StatusReport(
        sid=sid,
        status=ours,
        error_code=_error_code(item, ours),
        opted_out=_opted_out(item, ours),
        price=price,
        price_unit=unit,
    )


def _service_exception(resp: requests.Response) -> tuple[str, str]:
    """(Infobip's error name, its text) of an error answer; ("", raw text) for another shape."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    name = text = ""
    if isinstance(data, dict):
        error = data.get("requestError")
        exc = error.get("serviceException") if isinstance(error, dict) else None
        if isinstance(exc, dict):
            name, text = _text(exc.get("messageId")), _text(exc.get("text"))
            details = exc.get("validationErrors")
            if isinstance(details, dict) and details:
                text = f"{text} {details}".strip()
        elif "errorCode" in data:
            name, text = _text(data.get("errorCode")), _text(data.get("description"))
    return name, (text or resp.text.strip() or f"HTTP {resp.status_code}")[:RAW_ANSWER_CHARS]


def http_error(resp: requests.Response) -> GatewayError:
    """An Infobip answer that is not a success, as a :class:`GatewayError`."""
    status = resp.status_code
    name, text = _service_exception(resp)
    if status == 429 or status >= 500:
        return GatewayError(name or str(status), text, retryable=True, status=status)
    if status in (401, 403) or name.upper() in CREDENTIAL_ERRORS:
        return GatewayError(
            "bad_credentials", f"Infobip refused the API key: {text}", retryable=False, status=status
        )
    return GatewayError(name or str(status), text, retryable=False, status=status)


def refusal(status: dict) -> GatewayError:
    """A send answer's status outside PENDING and DELIVERED, as a :class:`GatewayError`."""
    name = _text(status.get("name")) or _group(status) or "REJECTED"
    text = _text(status.get("description")) or name
    if name.upper() in OPT_OUT_STATUSES:
        return GatewayError(name, text, retryable=False, opted_out=True)
    return GatewayError(name, text, retryable=name.upper() in RETRYABLE_STATUSES)


def _answer(resp: requests.Response) -> dict:
    """The JSON object of a successful answer; GatewayError for an error or another shape."""
    if not 200 <= resp.status_code < 300:
        raise http_error(resp)
    try:
        data = resp.json()
    except ValueError:
        raise unexpected_answer(resp.text, "not JSON") from None
    if not isinstance(data, dict):
        raise unexpected_answer(resp.text, "not a JSON object")
    return data


def _sent_entry(data: dict, message_id: str, raw: str) -> dict:
    """The answer's entry for the message we sent (ours by messageId, or the only one)."""
    messages = data.get("messages")
    entries = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
    entry = next((m for m in entries if m.get("messageId") == message_id), None)
    if entry is None and len(entries) == 1:
        entry = entries[0]
    if entry is None or not isinstance(entry.get("status"), dict):
        raise unexpected_answer(raw, "no status for the message")
    return entry


def _check_base_url(value: str) -> None:
    example = "such as https://xxxxx.api.infobip.com"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise field_error("base_url", f"is not a URL ({example}).") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise field_error("base_url", f"must be your account's Infobip base URL with https:// ({example}).")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise field_error(
            "base_url", f"only the scheme, host and port, without a user, query or fragment ({example})."
        )


def _check_sender(sender: str) -> None:
    if SENDER_NUMBER.fullmatch(sender):
        return
    if sender.lstrip("+").isdigit():
        raise field_error("sender", "a number has at most 16 digits.")
    if len(sender) > MAX_ALPHANUMERIC_SENDER or not sender.isprintable():
        raise field_error(
            "sender", f"a sender ID has at most {MAX_ALPHANUMERIC_SENDER} letters, digits or spaces."
        )


class InfobipGateway(Gateway):
    kind = "infobip"
    label = "Infobip"
    resolves = True
    uses_number_pool = False
    fields = (
        Field(
            "base_url",
            "Base URL",
            required=True,
            help="Your account's own API address, shown on the Infobip portal's home page: "
            "https://xxxxx.api.infobip.com",
        ),
        Field("api_key", "API key", required=True, secret=True),
        Field("sender", "Sender", required=True, help="A sender ID (up to 11 characters) or a number"),
    )

    def __init__(self, config):
        super().__init__(config)
        self.base_url = _text(config.settings.get("base_url")).rstrip("/")
        self.sender = _text(config.settings.get("sender"))
        self.api_key = _text(config.secrets.get("api_key"))
        self.session = infobip_session(self.base_url, self.api_key)

    @classmethod
    def check_settings(cls, settings: dict, secrets: dict) -> None:
        _check_base_url(_text(settings.get("base_url")))
        sender = _text(settings.get("sender"))
        if sender:
            _check_sender(sender)
        # A base URL a user typed is checked like every such URL: no private or loopback
        # address unless the operator allows it (OUTBOUND_ALLOW_HOSTS).
        refuse_internal_url(_text(settings.get("base_url")), field="base_url")

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            # Never follow a redirect: the base URL was checked, where it sends to was not.
            return self.session.request(
                method, self.base_url + path, timeout=http_timeout(), allow_redirects=False, **kwargs
            )
        except requests.exceptions.RequestException as exc:
            raise classify_requests_error(exc) from exc

    def send(self, to, body, from_number, status_callback) -> SendResult:
        message_id = uuid.uuid4().hex
        sender = _text(from_number) or self.sender
        message: dict = {"destinations": [{"to": to.strip().removeprefix("+"), "messageId": message_id}]}
        if sender:
            message["from"] = _wire_sender(sender)
        message["text"] = body
        if status_callback:
            message["notifyUrl"] = status_callback
            message["notifyContentType"] = "application/json"
        resp = self._call("POST", SEND_PATH, json={"messages": [message], "includeSmsCountInResponse": True})
        entry = _sent_entry(_answer(resp), message_id, resp.text)
        status = entry["status"]
        group = _group(status)
        if group is None:
            raise unexpected_answer(resp.text, "unknown status")
        if group not in ACCEPTED_GROUPS:
            raise refusal(status)
        parts = entry.get("smsCount")
        return SendResult(
            sid=_text(entry.get("messageId")) or message_id,
            status=_text(status.get("name")) or group,
            from_number=sender or None,
            segments=parts if type(parts) is int and parts > 0 else None,
            gateway=self.kind,
        )

    def _logs(self, params: dict) -> list[dict]:
        resp = self._call("GET", LOGS_PATH, params=params)
        data = _answer(resp)
        if not isinstance(data.get("results"), list):
            raise unexpected_answer(resp.text, "no results")
        return _results(data)

    def fetch(self, sid):
        for item in self._logs({"messageId": sid}):
            if item.get("messageId") == sid:
                return _remote(item)
        return None

    def find_recent(self, to, from_number, limit=20):
        limit = max(1, min(int(limit), MAX_LOGS))
        params: dict = {"to": to.strip().removeprefix("+"), "limit": limit}
        if from_number:
            params["from"] = _wire_sender(from_number.strip())
        found = [m for m in (_remote(item) for item in self._logs(params)) if m is not None]
        found.sort(key=lambda m: m.created_at or datetime.min, reverse=True)
        return found[:limit]

    def verify(self, request: WebhookRequest) -> bool:
        return False  # Infobip signs nothing: the secret in the URL is required

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        found = []
        for item in _results(request.json()):
            sid, sender = _text(item.get("messageId")), _text(item.get("from"))
            if not sid or not sender:
                continue
            body = item.get("text")
            found.append(
                InboundSms(
                    sid=sid,
                    from_number=_international(sender),
                    to_number=_international(_text(item.get("to"))),
                    body=body if isinstance(body, str) else "",
                )
            )
        return found

    def parse_status(self, request: WebhookRequest) -> list[StatusReport]:
        return [r for r in (_report(item) for item in _results(request.json())) if r is not None]
