"""A fake Infobip SMS API server for tests and benchmarks.

It speaks the real wire format of ``POST /sms/2/text/advanced`` (JSON,
``Authorization: App <api key>``) and ``GET /sms/1/logs``, and answers with
Infobip's own JSON: ``{"bulkId", "messages": [{"to", "status", "messageId",
"smsCount"}]}`` for a send, ``{"results": [...]}`` for logs, and
``{"requestError": {"serviceException": {"messageId", "text"}}}`` for an
error. Point a client at it by using its ``url`` as the account's base URL.

Usage
-----
::

    with FakeInfobip.start(api_keys=["key"], seed=1) as fake:
        fake.fail_numbers = {"254700000001": "REJECTED_DESTINATION"}
        fake.error_rate_429 = 0.1
        ...
        fake.messages              # accepted messages (snapshot list of dicts)
        fake.stats["created"]      # request counts by outcome
        fake.send_status_callback(url, message_id, "DELIVERED")
        fake.send_inbound_sms(url, "254711000001", "254700123456", "hello")

Realism notes
-------------
* Numbers are international without "+" (``254712345678``), as Infobip
  writes them; ``fail_numbers`` and ``undeliverable_numbers`` keys may be
  given with or without the "+".
* ``fail_numbers`` values: a status name (``REJECTED_DESTINATION``,
  ``REJECTED_DND``, ``REJECTED_NOT_ENOUGH_CREDITS``... see ``STATUSES``) is
  answered as Infobip does, HTTP 200 with that status for the destination (the
  message is logged, not accepted); an error name of ``SERVICE_ERRORS``
  (``BAD_REQUEST``, ``UNAUTHORIZED``...) or an HTTP status (400, 500...) answers
  the whole request with that HTTP error.
* A ``messageId`` already used is answered REJECTED_DUPLICATE_MESSAGE_ID; a
  destination that is not 6 to 15 digits REJECTED_DESTINATION; a request
  without messages, destinations or text 400 BAD_REQUEST.
* ``GET /sms/1/logs`` answers every message sent (accepted or rejected),
  newest first, filtered by ``messageId`` (comma-separated), ``bulkId``,
  ``to``, ``from`` and ``generalStatus``, at most ``limit`` (default 50, at most
  1000): what a sender needs to find out whether a timed-out request was sent.
* A hang sleeps and then answers normally, so a message whose request timed out
  on the client is still recorded, as can happen with Infobip.
* ``script_raw_answers((200, "<html>..."))`` answers the next API requests
  with raw bodies, for a client's handling of answers in an unexpected shape.
* Infobip does not sign its webhooks: the delivery reports and inbound
  messages this fake posts carry no proof; put the secret in the URL.

Command line (manual use, benchmarks in another process)::

    python tests/fakes/infobip_server.py --port 8098 --api-key KEY

Its lifecycle, controls, ``/_fake/`` endpoints and command line are every fake's: see ``fake_server.py``.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: put the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from messaging.lib.segments import count_segments  # noqa: E402
from tests.fakes.fake_server import (  # noqa: E402
    Control,
    FakeServer,
    Handler,
    Respond,
    add_fault_options,
    mapping,
    parse,
    parser,
    run,
)

__all__ = [
    "DEFAULT_API_KEY",
    "ERRORS",
    "SERVICE_ERRORS",
    "STATUSES",
    "FakeInfobip",
    "delivery_report_payload",
    "error_object",
    "inbound_payload",
    "status_object",
]

DEFAULT_API_KEY = "fake-infobip-api-key"
SEND_PATH = "/sms/2/text/advanced"
LOGS_PATH = "/sms/1/logs"
MAX_TEXT = 4000
VALID_TO = re.compile(r"[0-9]{6,15}")

# Status name -> (groupId, groupName, id, description): Infobip's general status codes.
STATUSES: dict[str, tuple[int, str, int, str]] = {
    "PENDING_WAITING_DELIVERY": (1, "PENDING", 3, "Message sent, waiting for delivery report"),
    "PENDING_ENROUTE": (1, "PENDING", 7, "Message sent to next instance"),
    "PENDING_ACCEPTED": (1, "PENDING", 26, "Message sent to next instance"),
    "UNDELIVERABLE_REJECTED_OPERATOR": (2, "UNDELIVERABLE", 4, "Message rejected by operator"),
    "UNDELIVERABLE_NOT_DELIVERED": (2, "UNDELIVERABLE", 9, "Message sent not delivered"),
    "UNDELIVERABLE_NOT_SENT": (2, "UNDELIVERABLE", 31, "Message not sent"),
    "DELIVERED_TO_OPERATOR": (3, "DELIVERED", 2, "Message delivered to operator"),
    "DELIVERED_TO_HANDSET": (3, "DELIVERED", 5, "Message delivered to handset"),
    "EXPIRED_EXPIRED": (4, "EXPIRED", 15, "Message expired"),
    "EXPIRED_DLR_UNKNOWN": (4, "EXPIRED", 29, "Message expired, delivery status unknown"),
    "REJECTED_NETWORK": (5, "REJECTED", 6, "Network is forbidden"),
    "REJECTED_PREFIX_MISSING": (5, "REJECTED", 8, "Number prefix missing"),
    "REJECTED_DND": (5, "REJECTED", 10, "Destination on DND list"),
    "REJECTED_SOURCE": (5, "REJECTED", 11, "Invalid Source address"),
    "REJECTED_NOT_ENOUGH_CREDITS": (5, "REJECTED", 12, "Not enough credits"),
    "REJECTED_SENDER": (5, "REJECTED", 13, "Sender blocklisted"),
    "REJECTED_DESTINATION_BLOCKLISTED": (5, "REJECTED", 14, "Destination blocklisted"),
    "REJECTED_ROUTE_NOT_AVAILABLE": (5, "REJECTED", 19, "Route not available"),
    "REJECTED_FLOODING_FILTER": (5, "REJECTED", 20, "Rejected by flooding filter"),
    "REJECTED_SYSTEM_ERROR": (5, "REJECTED", 21, "System error"),
    "REJECTED_DUPLICATE_MESSAGE_ID": (5, "REJECTED", 23, "Duplicate message ID"),
    "REJECTED_MESSAGE_TOO_LONG": (5, "REJECTED", 25, "Message too long"),
    "REJECTED_DESTINATION": (5, "REJECTED", 52, "Invalid destination address"),
}
# A status group alone -> the status a report of that group carries.
GROUP_STATUS = {
    "PENDING": "PENDING_ENROUTE",
    "UNDELIVERABLE": "UNDELIVERABLE_NOT_DELIVERED",
    "DELIVERED": "DELIVERED_TO_HANDSET",
    "EXPIRED": "EXPIRED_EXPIRED",
    "REJECTED": "REJECTED_NETWORK",
}

# Error name -> (groupId, groupName, id, permanent, description): Infobip's general error codes.
ERRORS: dict[str, tuple[int, str, int, bool, str]] = {
    "NO_ERROR": (0, "OK", 0, False, "No Error"),
    "EC_UNKNOWN_SUBSCRIBER": (1, "HANDSET_ERRORS", 1, True, "Unknown Subscriber"),
    "EC_ABSENT_SUBSCRIBER_SM": (1, "HANDSET_ERRORS", 6, False, "Absent Subscriber"),
    "EC_CALL_BARRED": (1, "HANDSET_ERRORS", 13, False, "Call Barred"),
    "EC_ABSENT_SUBSCRIBER": (1, "HANDSET_ERRORS", 27, False, "Absent Subscriber"),
    "EC_SUBSCRIBER_BUSY_FOR_MT_SMS": (1, "HANDSET_ERRORS", 31, False, "Subscriber Busy For MT SMS"),
    "EC_SYSTEM_FAILURE": (1, "HANDSET_ERRORS", 34, False, "System Failure"),
    "EC_SC_BLOCKED_BY_END_USER": (1, "HANDSET_ERRORS", 573, True, "End user blocked the short code"),
    "EC_INVALID_DESTINATION_ADDRESS": (2, "USER_ERRORS", 351, False, "Invalid destination address"),
    "EC_CONTENT_BLOCKED": (2, "USER_ERRORS", 603, True, "Content blocked"),
    "EC_REJECTED_SPAM_BY_OPERATOR": (2, "USER_ERRORS", 607, True, "Identified as spam"),
    "EC_BLACKLISTED_DESTINATIONADDRESS": (2, "USER_ERRORS", 2052, True, "Destination address blocklisted"),
    "EC_DEST_ADDRESS_BLACKLISTED": (
        3,
        "OPERATOR_ERRORS",
        2050,
        True,
        "Destination on the operator's DND list",
    ),
    "EC_DESTINATION_BLOCKED_BY_OPERATOR": (
        3,
        "OPERATOR_ERRORS",
        566,
        True,
        "Destination blocked by operator",
    ),
    "EC_TIME_OUT": (3, "OPERATOR_ERRORS", 2048, False, "Time out"),
}

# serviceException messageId -> (HTTP status, text) of Infobip's HTTP errors.
SERVICE_ERRORS: dict[str, tuple[int, str]] = {
    "BAD_REQUEST": (400, "Bad request"),
    "UNAUTHORIZED": (401, "Invalid login details"),
    "FORBIDDEN": (403, "Forbidden"),
    "NOT_FOUND": (404, "Not found"),
    "TOO_MANY_REQUESTS": (429, "Too many requests"),
    "GENERAL_ERROR": (500, "Something went wrong. Please contact support."),
}
_BY_HTTP_STATUS = {status: name for name, (status, _) in SERVICE_ERRORS.items()}


def service_error(name_or_status: str | int, text: str | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, Infobip's error JSON) for an error name or an HTTP status."""
    if isinstance(name_or_status, int):
        status = name_or_status
        name = _BY_HTTP_STATUS.get(status, "GENERAL_ERROR" if status >= 500 else "BAD_REQUEST")
    else:
        name = name_or_status
        status = SERVICE_ERRORS.get(name, (400, ""))[0]
    default = SERVICE_ERRORS.get(name, (status, name.replace("_", " ").capitalize()))[1]
    return status, {"requestError": {"serviceException": {"messageId": name, "text": text or default}}}


def status_object(name: str) -> dict[str, Any]:
    """Infobip's status object for a status name (or a group name: its usual status)."""
    name = GROUP_STATUS.get(name, name)
    group_id, group_name, status_id, description = STATUSES[name]
    return {
        "groupId": group_id,
        "groupName": group_name,
        "id": status_id,
        "name": name,
        "description": description,
    }


def error_object(name: str | None) -> dict[str, Any]:
    """Infobip's error object for an error name (None: NO_ERROR)."""
    name = name or "NO_ERROR"
    group_id, group_name, error_id, permanent, description = ERRORS[name]
    return {
        "groupId": group_id,
        "groupName": group_name,
        "id": error_id,
        "name": name,
        "description": description,
        "permanent": permanent,
    }


def _timestamp(ts: float) -> str:
    """Infobip's time format: ``2019-11-09T16:00:00.000+0000``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _plain(number: str) -> str:
    return str(number).strip().removeprefix("+")


def delivery_report_payload(
    message_id: str,
    status: str,
    *,
    to: str = "254700000000",
    error: str | None = None,
    bulk_id: str | None = None,
    sent_at: float | None = None,
    sms_count: int = 1,
    price_per_message: float | None = 0.01,
    currency: str = "EUR",
    callback_data: str | None = None,
) -> dict[str, Any]:
    """The JSON body of Infobip's delivery report (SMS API v2) for one message."""
    sent = time.time() if sent_at is None else sent_at
    result: dict[str, Any] = {
        "bulkId": bulk_id or message_id,
        "messageId": message_id,
        "to": _plain(to),
        "sentAt": _timestamp(sent),
        "doneAt": _timestamp(max(sent, time.time())),
        "smsCount": sms_count,
        "price": {"pricePerMessage": price_per_message or 0, "currency": currency},
        "status": status_object(status),
        "error": error_object(error),
    }
    if callback_data is not None:
        result["callbackData"] = callback_data
    return {"results": [result]}


def inbound_payload(
    from_: str,
    to: str,
    text: str,
    *,
    message_id: str | None = None,
    keyword: str | None = None,
    received_at: float | None = None,
    pending: int = 0,
) -> dict[str, Any]:
    """The JSON body of Infobip's inbound-message forwarding (format MO_JSON_2) for one message."""
    first, _, rest = text.partition(" ")
    keyword = keyword if keyword is not None else first.upper()
    clean = rest if keyword and first.upper() == keyword.upper() else text
    return {
        "results": [
            {
                "messageId": message_id or str(random.getrandbits(60)),
                "from": _plain(from_),
                "to": _plain(to),
                "text": text,
                "cleanText": clean,
                "keyword": keyword,
                "receivedAt": _timestamp(time.time() if received_at is None else received_at),
                "smsCount": max(1, count_segments(text).segments),
                "price": {"pricePerMessage": 0, "currency": "EUR"},
                "callbackData": None,
            }
        ],
        "messageCount": 1,
        "pendingMessageCount": pending,
    }


def _outcome(value: str | int) -> str | int:
    """A ``fail_numbers`` value: an HTTP status (int), or a status or error name."""
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    name = str(value)
    if name not in STATUSES and name not in GROUP_STATUS and name not in SERVICE_ERRORS:
        raise ValueError(f"unknown Infobip status or error {name!r}")
    return name


def _errors(value: Mapping[str, str] | None) -> dict[str, str]:
    out = {_plain(k): str(v) for k, v in (value or {}).items()}
    unknown = sorted(set(out.values()) - set(ERRORS))
    if unknown:
        raise ValueError(f"unknown Infobip error {unknown[0]!r}")
    return out


class FakeInfobip(FakeServer):
    """Fake Infobip SMS API on 127.0.0.1. Start with :meth:`start`.

    Controls (thread-safe; assign a new value, or use :meth:`configure`):
    ``fail_numbers`` {to: status name, error name or HTTP status} (see the
    module's notes); ``undeliverable_numbers`` {to: error name} accepted, then
    reported UNDELIVERABLE with that error by auto reports; ``error_rate_500``,
    ``error_rate_429``, ``hang_rate`` (0..1, drawn from ``random.Random(seed)``)
    and ``hang_seconds``; ``auto_reports`` (POST a delivery report to each
    message's notifyUrl after ``report_delay`` seconds); ``price_per_message``
    and ``currency`` (the price in reports and logs). ``reset()`` also drops the
    scripted raw answers.

    Records: ``messages`` (accepted) and ``rejected`` (answered with a REJECTED
    status) are dicts with ``id`` (the messageId), ``bulk_id``, ``to``, ``from``,
    ``body``, ``notify_url``, ``notify_content_type``, ``callback_data``,
    ``api_key``, ``received_at`` (epoch seconds), ``status`` and ``error``
    (names), ``sms_count``; ``message(id)`` finds either. ``callbacks``
    (delivery reports sent) have ``message_id``, ``status``, ``url``,
    ``payload``, ``response_status`` (None on a connection error), ``error``;
    ``stats`` counts ``connections`` (TCP connections accepted), ``requests``,
    ``created``, ``rejected``, ``auth_failed``, ``rate_limited``,
    ``server_error``, ``invalid``, ``failed_number``, ``hung``, ``logs``,
    ``not_found``, ``scripted``, ``callbacks_sent``, ``callback_errors``,
    ``inbound_sent``.
    """

    name = "Infobip"
    json_type = "application/json;charset=UTF-8"
    text_type = "text/html"

    fail_numbers = Control(mapping(_outcome, key=_plain), reset=True)
    undeliverable_numbers = Control(_errors, reset=True)
    auto_reports = Control(bool, False)
    report_delay = Control(float, 0.0)
    price_per_message = Control(float, 0.0075)
    currency = Control(str, "EUR")

    def __init__(self, api_keys: Iterable[str] | None = None, **options: Any) -> None:
        """``api_keys``: the keys that may call (default: :data:`DEFAULT_API_KEY`).
        ``options``: the controls, ``seed``, ``callback_timeout`` (10 s), ``host``
        and ``verbose``. Every message sent, accepted or rejected, is in
        ``_messages`` (for the logs)."""
        self.api_keys = set(api_keys or [DEFAULT_API_KEY])
        super().__init__(**options)
        self._raw_answers: list[tuple[int, str]] = []

    def _forget(self) -> None:
        self._raw_answers.clear()

    def _message_count(self) -> int:
        return sum(m["accepted"] for m in self._messages)

    def _auto_callback_delay(self) -> float:
        return self.report_delay

    def script_raw_answers(self, *answers: tuple[int, str]) -> None:
        """Answer the next authenticated API requests, one each, with these (HTTP status, raw
        body text) instead of the real thing (nothing is recorded): for answers in a shape a
        client does not expect (an HTML page, a JSON object without ``messages``)."""
        with self._lock:
            self._raw_answers.extend((int(status), str(body)) for status, body in answers)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages in arrival order (a snapshot; see the class for their keys)."""
        with self._lock:
            return [dict(m) for m in self._messages if m["accepted"]]

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """Messages answered with a REJECTED status (same keys as :attr:`messages`)."""
        with self._lock:
            return [dict(m) for m in self._messages if not m["accepted"]]

    # -- HTTP ----------------------------------------------------------------

    def _response_headers(self) -> dict[str, str]:
        return {"X-Request-Id": uuid.uuid4().hex}

    def _not_found(self, path: str) -> Respond:
        return Respond(*service_error("NOT_FOUND"))

    def _fault_answer(self, fault: str) -> Respond:
        return Respond(*service_error("TOO_MANY_REQUESTS" if fault == "rate_limited" else "GENERAL_ERROR"))

    def _authenticate(self, h: Handler) -> str:
        scheme, _, key = (h.headers.get("Authorization") or "").partition(" ")
        if scheme != "App" or key.strip() not in self.api_keys:
            self._count("auth_failed")
            raise Respond(*service_error("UNAUTHORIZED"))
        return key.strip()

    def _api(self, h: Handler, method: str, url: urllib.parse.SplitResult, raw: bytes) -> None:
        path, query = url.path, url.query
        if path not in (SEND_PATH, LOGS_PATH):
            self._count("not_found")
            raise self._not_found(path)
        api_key = self._authenticate(h)
        with self._lock:
            scripted = self._raw_answers.pop(0) if self._raw_answers else None
        if scripted is not None:
            self._count("scripted")
            raise Respond(*scripted)
        if path == LOGS_PATH and method == "GET":
            self._logs(urllib.parse.parse_qs(query))
        if path == SEND_PATH and method == "POST":
            self._send(api_key, raw)
        raise Respond(405, {"requestError": {"serviceException": {"messageId": "METHOD_NOT_ALLOWED"}}})

    @staticmethod
    def _parse_request(raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise Respond(*service_error("BAD_REQUEST", "Invalid JSON")) from None
        messages = request.get("messages") if isinstance(request, dict) else None
        if not isinstance(messages, list) or not messages:
            raise Respond(*service_error("BAD_REQUEST", "messages: must not be empty"))
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("destinations"), list):
                raise Respond(*service_error("BAD_REQUEST", "destinations: must not be empty"))
            if not message["destinations"] or not all(isinstance(d, dict) for d in message["destinations"]):
                raise Respond(*service_error("BAD_REQUEST", "destinations: must not be empty"))
            if not isinstance(message.get("text"), str) or not message["text"]:
                raise Respond(*service_error("BAD_REQUEST", "text: must not be blank"))
        return request

    def _send(self, api_key: str, raw: bytes) -> None:
        self._draw_faults()
        try:
            request = self._parse_request(raw)
        except Respond:
            self._count("invalid")
            raise
        http_failure = self._http_failure(request)
        if http_failure is not None:
            self._count("failed_number")
            raise Respond(*service_error(http_failure))
        bulk_id = str(request.get("bulkId") or uuid.uuid4())
        answers, queued = [], []
        for message in request["messages"]:
            for destination in message["destinations"]:
                record = self._record(api_key, bulk_id, message, destination)
                answer = {
                    "to": record["to"],
                    "status": status_object(record["status"]),
                    "messageId": record["id"],
                }
                if request.get("includeSmsCountInResponse"):
                    answer["smsCount"] = record["sms_count"]
                answers.append(answer)
                if record["accepted"] and record["notify_url"]:
                    queued.append(record["id"])
        payload: dict[str, Any] = {"messages": answers}
        if len(answers) > 1 or request.get("bulkId"):
            payload = {"bulkId": bulk_id, **payload}
        raise Respond(200, payload, callbacks=queued if self.auto_reports else ())

    def _http_failure(self, request: dict[str, Any]) -> str | int | None:
        """The HTTP error ``fail_numbers`` sets for a destination of the request, if any."""
        with self._lock:
            failures = self._fail_numbers
        for message in request["messages"]:
            for destination in message["destinations"]:
                failure = failures.get(_plain(destination.get("to", "")))
                if isinstance(failure, int) or failure in SERVICE_ERRORS:
                    return failure
        return None

    def _record(self, api_key: str, bulk_id: str, message: dict, destination: dict) -> dict[str, Any]:
        to = _plain(destination.get("to", ""))
        text = message["text"]
        with self._lock:
            message_id = str(destination.get("messageId") or uuid.uuid4())
            failure = self._fail_numbers.get(to)
            duplicate = message_id in self._by_id
            if duplicate:
                status = "REJECTED_DUPLICATE_MESSAGE_ID"
            elif not VALID_TO.fullmatch(to):
                status = "REJECTED_DESTINATION"
            elif len(text) > MAX_TEXT:
                status = "REJECTED_MESSAGE_TOO_LONG"
            elif isinstance(failure, str):
                status = GROUP_STATUS.get(failure, failure)
                self._stats["failed_number"] += 1
            else:
                status = "PENDING_ACCEPTED"
            accepted = STATUSES[status][1] in ("PENDING", "DELIVERED")
            record = {
                "id": message_id,
                "bulk_id": bulk_id,
                "to": to,
                "from": message.get("from"),
                "body": text,
                "notify_url": message.get("notifyUrl"),
                "notify_content_type": message.get("notifyContentType"),
                "callback_data": message.get("callbackData"),
                "api_key": api_key,
                "received_at": time.time(),
                "done_at": None,
                "status": status,
                "error": None,
                "sms_count": max(1, count_segments(text).segments),
                "accepted": accepted,
            }
            self._messages.append(record)
            if not duplicate:  # the first message keeps its id
                self._by_id[message_id] = record
            self._stats["created" if accepted else "rejected"] += 1
            return dict(record)

    def _log_entry(self, record: dict[str, Any]) -> dict[str, Any]:
        price = self._price_per_message if record["accepted"] else 0
        return {
            "bulkId": record["bulk_id"],
            "messageId": record["id"],
            "to": record["to"],
            "from": record["from"],
            "text": record["body"],
            "sentAt": _timestamp(record["received_at"]),
            "doneAt": _timestamp(record["done_at"] or record["received_at"]),
            "smsCount": record["sms_count"],
            "mccMnc": "63902",
            "price": {"pricePerMessage": price, "currency": self._currency},
            "status": status_object(record["status"]),
            "error": error_object(record["error"]),
        }

    def _logs(self, query: dict[str, list[str]]) -> None:
        """``GET /sms/1/logs``: every message sent, newest first, filtered as Infobip filters."""

        def values(name: str) -> set[str] | None:
            given = [v for raw in query.get(name, []) for v in raw.split(",") if v]
            return set(given) if given else None

        ids, bulks = values("messageId"), values("bulkId")
        to = query.get("to", [None])[0]
        from_ = query.get("from", [None])[0]
        general = query.get("generalStatus", [None])[0]
        try:
            limit = max(1, min(1000, int(query.get("limit", ["50"])[0])))
        except ValueError:
            self._count("invalid")
            raise Respond(*service_error("BAD_REQUEST", "limit: must be a number")) from None
        with self._lock:
            self._stats["logs"] += 1
            found = [
                self._log_entry(r)
                for r in reversed(self._messages)
                if (ids is None or r["id"] in ids)
                and (bulks is None or r["bulk_id"] in bulks)
                and (to is None or r["to"] == _plain(to))
                and (from_ is None or r["from"] == from_)
                and (general is None or STATUSES[r["status"]][1] == general.upper())
            ][:limit]
        raise Respond(200, {"results": found})

    # -- webhooks to the app -------------------------------------------------

    def _post_json(self, url: str, payload: dict[str, Any]) -> int:
        data = json.dumps(payload).encode()
        return self._post(url, data, {"Content-Type": "application/json", "User-Agent": "Infobip-fake/1.0"})

    def send_status_callback(
        self,
        url: str | None,
        message_id: str,
        status: str,
        error: str | None = None,
    ) -> int:
        """POST Infobip's delivery report for ``message_id`` to ``url`` (None: the
        message's notifyUrl). ``status`` is a status name (DELIVERED_TO_HANDSET)
        or a group (DELIVERED, UNDELIVERABLE, EXPIRED, REJECTED, PENDING);
        ``error`` an error name (EC_ABSENT_SUBSCRIBER...). Updates the logged
        status. Returns the receiver's HTTP status; connection errors raise
        ``OSError``."""
        with self._lock:
            record = self._by_id[message_id]
            url = url or record["notify_url"]
            if not url:
                raise ValueError(f"message {message_id} has no notifyUrl; pass url=")
            status = GROUP_STATUS.get(status, status)
            record["status"] = status
            record["error"] = error
            record["done_at"] = time.time()
            payload = delivery_report_payload(
                message_id,
                status,
                to=record["to"],
                error=error,
                bulk_id=record["bulk_id"],
                sent_at=record["received_at"],
                sms_count=record["sms_count"],
                price_per_message=self._price_per_message,
                currency=self._currency,
                callback_data=record["callback_data"],
            )
        record = {"message_id": message_id, "status": status, "url": url, "payload": payload}
        headers = {"Content-Type": "application/json", "User-Agent": "Infobip-fake/1.0"}
        return self._post_recorded(record, json.dumps(payload).encode(), headers)

    def send_inbound_sms(self, url: str, from_: str, to: str, body: str, **kwargs: Any) -> int:
        """POST Infobip's inbound-message forwarding (MO_JSON_2) to ``url``;
        ``kwargs`` as for :func:`inbound_payload`. Returns the HTTP status."""
        status = self._post_json(url, inbound_payload(from_, to, body, **kwargs))
        self._count("inbound_sent")
        return status

    def _auto_callback(self, message_id: str) -> None:
        with self._lock:
            record = self._by_id.get(message_id)
            error = self._undeliverable_numbers.get(record["to"]) if record else None
        if record is None:
            return  # reset() since
        if error is None:
            self.send_status_callback(None, message_id, "DELIVERED_TO_HANDSET")
        else:
            self.send_status_callback(None, message_id, "UNDELIVERABLE_NOT_DELIVERED", error)


def main(argv: list[str] | None = None) -> None:
    p = parser("Fake Infobip SMS API server.", 8098)
    p.add_argument("--api-key", action="append", help=f"repeatable; default {DEFAULT_API_KEY}")
    add_fault_options(p, fail="NUMBER:STATUS", undeliverable="NUMBER:ERROR")
    p.add_argument("--auto-reports", action="store_true")
    p.add_argument("--report-delay", type=float, default=0.0)
    args, options = parse(p, argv)
    fake = FakeInfobip(
        args.api_key, auto_reports=args.auto_reports, report_delay=args.report_delay, **options
    )
    run(fake, args.port, [f"api key {key}" for key in sorted(fake.api_keys)])


if __name__ == "__main__":
    main()
