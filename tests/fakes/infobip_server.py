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

It also answers ``GET /_fake/stats``, ``GET /_fake/messages`` and
``POST /_fake/reset`` (no auth) so another process can read its counters.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:
    from messaging.lib.segments import count_segments
except ImportError:  # run as a script: put the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from messaging.lib.segments import count_segments

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


class _Control:
    """A setting read and written under the server's lock."""

    def __init__(self, convert: Any) -> None:
        self.convert = convert

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = "_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        with obj._lock:
            return getattr(obj, self.attr)

    def __set__(self, obj: Any, value: Any) -> None:
        value = self.convert(value)
        with obj._lock:
            setattr(obj, self.attr, value)


def _rate(value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"rate must be within 0..1, got {value}")
    return value


def _outcome(value: str | int) -> str | int:
    """A ``fail_numbers`` value: an HTTP status (int), or a status or error name."""
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    name = str(value)
    if name not in STATUSES and name not in GROUP_STATUS and name not in SERVICE_ERRORS:
        raise ValueError(f"unknown Infobip status or error {name!r}")
    return name


def _outcomes(value: Mapping[str, str | int] | None) -> dict[str, str | int]:
    return {_plain(k): _outcome(v) for k, v in (value or {}).items()}


def _errors(value: Mapping[str, str] | None) -> dict[str, str]:
    out = {_plain(k): str(v) for k, v in (value or {}).items()}
    unknown = sorted(set(out.values()) - set(ERRORS))
    if unknown:
        raise ValueError(f"unknown Infobip error {unknown[0]!r}")
    return out


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeInfobip

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or self.fake._stopping.is_set():
            return  # client went away (timed out, closed the pool): expected
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeInfobip/1.0"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.fake.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._handle(self, "POST")


class _Respond(Exception):
    def __init__(self, status: int, payload: Any, after: Any = None):
        self.status, self.payload, self.after = status, payload, after


class FakeInfobip:
    """Fake Infobip SMS API on 127.0.0.1. Start with :meth:`start`.

    Controls (thread-safe; assign a new value, or use :meth:`configure`):
    ``fail_numbers`` {to: status name, error name or HTTP status} (see the
    module's notes); ``undeliverable_numbers`` {to: error name} accepted, then
    reported UNDELIVERABLE with that error by auto reports; ``error_rate_500``,
    ``error_rate_429``, ``hang_rate`` (0..1, drawn from ``random.Random(seed)``)
    and ``hang_seconds``; ``auto_reports`` (POST a delivery report to each
    message's notifyUrl after ``report_delay`` seconds); ``price_per_message``
    and ``currency`` (the price in reports and logs).
    """

    fail_numbers = _Control(_outcomes)
    undeliverable_numbers = _Control(_errors)
    error_rate_500 = _Control(_rate)
    error_rate_429 = _Control(_rate)
    hang_rate = _Control(_rate)
    hang_seconds = _Control(float)
    auto_reports = _Control(bool)
    report_delay = _Control(float)
    price_per_message = _Control(float)
    currency = _Control(str)

    def __init__(
        self,
        api_keys: Iterable[str] | None = None,
        *,
        seed: int | None = None,
        fail_numbers: Mapping[str, str | int] | None = None,
        undeliverable_numbers: Mapping[str, str] | None = None,
        error_rate_500: float = 0.0,
        error_rate_429: float = 0.0,
        hang_rate: float = 0.0,
        hang_seconds: float = 5.0,
        auto_reports: bool = False,
        report_delay: float = 0.0,
        price_per_message: float = 0.0075,
        currency: str = "EUR",
        callback_timeout: float = 10.0,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        """``api_keys``: the keys that may call (default: :data:`DEFAULT_API_KEY`)."""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self.api_keys = set(api_keys or [DEFAULT_API_KEY])
        self.seed = seed
        self.random = random.Random(seed)
        self.callback_timeout = callback_timeout
        self.host = host
        self.verbose = verbose
        self.configure(
            fail_numbers=fail_numbers,
            undeliverable_numbers=undeliverable_numbers,
            error_rate_500=error_rate_500,
            error_rate_429=error_rate_429,
            hang_rate=hang_rate,
            hang_seconds=hang_seconds,
            auto_reports=auto_reports,
            report_delay=report_delay,
            price_per_message=price_per_message,
            currency=currency,
        )
        self._raw_answers: list[tuple[int, str]] = []
        self._log: list[dict[str, Any]] = []  # every message sent, accepted or rejected
        self._by_id: dict[str, dict[str, Any]] = {}
        self._callbacks: list[dict[str, Any]] = []
        self._stats: Counter[str] = Counter()
        self._connections: set[socket.socket] = set()
        self._cb_queue: queue.Queue[str | None] = queue.Queue()
        self._cb_pending = 0
        self._cb_idle = threading.Condition(self._lock)
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.port = 0
        self.url = ""

    # -- lifecycle ---------------------------------------------------------

    @classmethod
    def start(cls, port: int = 0, **kwargs: Any) -> FakeInfobip:
        """Create a server (``kwargs`` as for the constructor) and run it in a
        daemon thread on 127.0.0.1:``port`` (0 = any free port)."""
        return cls(**kwargs).serve(port)

    def serve(self, port: int = 0) -> FakeInfobip:
        """Run this server in daemon threads; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("already running")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._threads = [
            threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-infobip-{self.port}",
                daemon=True,
            ),
            threading.Thread(
                target=self._report_worker,
                name=f"fake-infobip-reports-{self.port}",
                daemon=True,
            ),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections, end hangs."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        self._cb_queue.put(None)
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def __enter__(self) -> FakeInfobip:
        if self._httpd is None:
            self.serve()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
                self._stats["connections"] += 1
            else:
                self._connections.discard(conn)

    # -- controls and records ------------------------------------------------

    def configure(self, **controls: Any) -> None:
        """Set several controls at once (atomically); ``None`` leaves a mapping
        control empty."""
        names = {
            "fail_numbers",
            "undeliverable_numbers",
            "error_rate_500",
            "error_rate_429",
            "hang_rate",
            "hang_seconds",
            "auto_reports",
            "report_delay",
            "price_per_message",
            "currency",
        }
        unknown = set(controls) - names
        if unknown:
            raise TypeError(f"unknown controls: {sorted(unknown)}")
        converted = {name: getattr(type(self), name).convert(value) for name, value in controls.items()}
        with self._lock:
            for name, value in converted.items():
                setattr(self, "_" + name, value)

    def reset(self, *, controls: bool = True) -> None:
        """Forget messages, reports and stats; reseed the random generator;
        with ``controls`` also clear failures and rates (hang_seconds,
        auto_reports, report_delay and prices are kept)."""
        with self._lock:
            self._log.clear()
            self._by_id.clear()
            self._callbacks.clear()
            self._stats.clear()
            self._raw_answers.clear()
            self.random.seed(self.seed)
            if controls:
                self.configure(
                    fail_numbers=None,
                    undeliverable_numbers=None,
                    error_rate_500=0.0,
                    error_rate_429=0.0,
                    hang_rate=0.0,
                )

    def script_raw_answers(self, *answers: tuple[int, str]) -> None:
        """Answer the next authenticated API requests, one each, with these (HTTP status, raw
        body text) instead of the real thing (nothing is recorded): for answers in a shape a
        client does not expect (an HTML page, a JSON object without ``messages``)."""
        with self._lock:
            self._raw_answers.extend((int(status), str(body)) for status, body in answers)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages in arrival order (a snapshot): dicts with ``id``
        (the messageId), ``bulk_id``, ``to``, ``from``, ``body``, ``notify_url``,
        ``notify_content_type``, ``callback_data``, ``api_key``, ``received_at``
        (epoch seconds), ``status`` and ``error`` (names), ``sms_count``."""
        with self._lock:
            return [dict(m) for m in self._log if m["accepted"]]

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """Messages answered with a REJECTED status (same keys as :attr:`messages`)."""
        with self._lock:
            return [dict(m) for m in self._log if not m["accepted"]]

    def message(self, message_id: str) -> dict[str, Any]:
        """One message by messageId (a copy); KeyError if unknown."""
        with self._lock:
            return dict(self._by_id[message_id])

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Delivery reports sent: ``message_id``, ``status``, ``url``, ``payload``,
        ``response_status`` (None on a connection error), ``error``."""
        with self._lock:
            return [dict(c) for c in self._callbacks]

    @property
    def stats(self) -> Counter[str]:
        """Request counts by outcome (a snapshot; missing keys read 0):
        ``connections`` (TCP connections accepted), ``requests``, ``created``,
        ``rejected``, ``auth_failed``, ``rate_limited``, ``server_error``,
        ``invalid``, ``failed_number``, ``hung``, ``logs``, ``not_found``,
        ``scripted``, ``callbacks_sent``, ``callback_errors``, ``inbound_sent``."""
        with self._lock:
            return Counter(self._stats)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    # -- HTTP ----------------------------------------------------------------

    def _handle(self, h: _Handler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        split = urllib.parse.urlsplit(h.path)
        self._count("requests")
        try:
            if split.path.startswith("/_fake/"):
                self._control_endpoint(method, split.path)
            self._api(h, method, split.path, split.query, raw)
        except _Respond as r:
            if r.status == 0:  # stopping during a hang: drop the connection
                h.close_connection = True
                return
            self._write(h, r.status, r.payload)
            if r.after is not None:
                r.after()

    @staticmethod
    def _write(h: _Handler, status: int, payload: Any) -> None:
        raw = isinstance(payload, str | bytes)
        data = (
            (payload.encode() if isinstance(payload, str) else payload)
            if raw
            else json.dumps(payload).encode()
        )
        h.send_response(status)
        h.send_header("Content-Type", "text/html" if raw else "application/json;charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("X-Request-Id", uuid.uuid4().hex)
        h.end_headers()
        h.wfile.write(data)

    def _control_endpoint(self, method: str, path: str) -> None:
        if method == "GET" and path == "/_fake/stats":
            with self._lock:
                payload = {"stats": dict(self._stats), "messages": sum(m["accepted"] for m in self._log)}
            raise _Respond(200, payload)
        if method == "GET" and path == "/_fake/messages":
            raise _Respond(200, self.messages)
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            raise _Respond(200, {"reset": True})
        raise _Respond(*service_error("NOT_FOUND"))

    def _authenticate(self, h: _Handler) -> str:
        scheme, _, key = (h.headers.get("Authorization") or "").partition(" ")
        if scheme != "App" or key.strip() not in self.api_keys:
            self._count("auth_failed")
            raise _Respond(*service_error("UNAUTHORIZED"))
        return key.strip()

    def _api(self, h: _Handler, method: str, path: str, query: str, raw: bytes) -> None:
        if path not in (SEND_PATH, LOGS_PATH):
            self._count("not_found")
            raise _Respond(*service_error("NOT_FOUND"))
        api_key = self._authenticate(h)
        with self._lock:
            scripted = self._raw_answers.pop(0) if self._raw_answers else None
        if scripted is not None:
            self._count("scripted")
            raise _Respond(*scripted)
        if path == LOGS_PATH and method == "GET":
            self._logs(urllib.parse.parse_qs(query))
        if path == SEND_PATH and method == "POST":
            self._send(api_key, raw)
        raise _Respond(405, {"requestError": {"serviceException": {"messageId": "METHOD_NOT_ALLOWED"}}})

    def _faults(self) -> None:
        """Hang, 429 and 500 as drawn; a hang then answers normally."""
        with self._lock:
            hang = self.random.random() < self._hang_rate
            draw = self.random.random()
            e429, e500 = self._error_rate_429, self._error_rate_500
            hang_seconds = self._hang_seconds
        if hang:
            self._count("hung")
            if self._stopping.wait(hang_seconds):
                raise _Respond(0, None)
        if draw < e429:
            self._count("rate_limited")
            raise _Respond(*service_error("TOO_MANY_REQUESTS"))
        if draw < e429 + e500:
            self._count("server_error")
            raise _Respond(*service_error("GENERAL_ERROR"))

    @staticmethod
    def _parse_request(raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise _Respond(*service_error("BAD_REQUEST", "Invalid JSON")) from None
        messages = request.get("messages") if isinstance(request, dict) else None
        if not isinstance(messages, list) or not messages:
            raise _Respond(*service_error("BAD_REQUEST", "messages: must not be empty"))
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("destinations"), list):
                raise _Respond(*service_error("BAD_REQUEST", "destinations: must not be empty"))
            if not message["destinations"] or not all(isinstance(d, dict) for d in message["destinations"]):
                raise _Respond(*service_error("BAD_REQUEST", "destinations: must not be empty"))
            if not isinstance(message.get("text"), str) or not message["text"]:
                raise _Respond(*service_error("BAD_REQUEST", "text: must not be blank"))
        return request

    def _send(self, api_key: str, raw: bytes) -> None:
        self._faults()
        try:
            request = self._parse_request(raw)
        except _Respond:
            self._count("invalid")
            raise
        http_failure = self._http_failure(request)
        if http_failure is not None:
            self._count("failed_number")
            raise _Respond(*service_error(http_failure))
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
        raise _Respond(200, payload, after=lambda: self._queue_reports(queued))

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

    def _queue_reports(self, message_ids: list[str]) -> None:
        with self._lock:
            if not self._auto_reports:
                return
            self._cb_pending += len(message_ids)
        for message_id in message_ids:
            self._cb_queue.put(message_id)

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
            self._log.append(record)
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
            raise _Respond(*service_error("BAD_REQUEST", "limit: must be a number")) from None
        with self._lock:
            self._stats["logs"] += 1
            found = [
                self._log_entry(r)
                for r in reversed(self._log)
                if (ids is None or r["id"] in ids)
                and (bulks is None or r["bulk_id"] in bulks)
                and (to is None or r["to"] == _plain(to))
                and (from_ is None or r["from"] == from_)
                and (general is None or STATUSES[r["status"]][1] == general.upper())
            ][:limit]
        raise _Respond(200, {"results": found})

    # -- webhooks to the app -------------------------------------------------

    def _post_json(self, url: str, payload: dict[str, Any]) -> int:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "Infobip-fake/1.0"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=self.callback_timeout) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code

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
        sent: dict[str, Any] = {
            "message_id": message_id,
            "status": status,
            "url": url,
            "payload": payload,
            "response_status": None,
            "error": None,
        }
        try:
            sent["response_status"] = self._post_json(url, payload)
        except OSError as exc:
            sent["error"] = repr(exc)
            raise
        finally:
            with self._lock:
                self._callbacks.append(sent)
                ok = sent["response_status"] is not None
                self._stats["callbacks_sent" if ok else "callback_errors"] += 1
        return sent["response_status"]

    def send_inbound_sms(self, url: str, from_: str, to: str, body: str, **kwargs: Any) -> int:
        """POST Infobip's inbound-message forwarding (MO_JSON_2) to ``url``;
        ``kwargs`` as for :func:`inbound_payload`. Returns the HTTP status."""
        status = self._post_json(url, inbound_payload(from_, to, body, **kwargs))
        self._count("inbound_sent")
        return status

    def _report_worker(self) -> None:
        while True:
            message_id = self._cb_queue.get()
            if message_id is None:
                return
            try:
                delay = self.report_delay
                if delay and self._stopping.wait(delay):
                    continue
                with self._lock:
                    record = self._by_id.get(message_id)
                    error = self._undeliverable_numbers.get(record["to"]) if record else None
                if record is None:
                    continue  # reset() since
                try:
                    if error is None:
                        self.send_status_callback(None, message_id, "DELIVERED_TO_HANDSET")
                    else:
                        self.send_status_callback(None, message_id, "UNDELIVERABLE_NOT_DELIVERED", error)
                except OSError:
                    pass  # recorded in callbacks / stats
            finally:
                with self._cb_idle:
                    self._cb_pending -= 1
                    self._cb_idle.notify_all()

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Wait until the auto reports queued so far are sent; False on timeout."""
        with self._cb_idle:
            return self._cb_idle.wait_for(lambda: self._cb_pending == 0, timeout)


def main(argv: list[str] | None = None) -> None:
    def pair(text: str) -> tuple[str, str]:
        key, sep, value = text.rpartition(":")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY:VALUE, got {text!r}")
        return key, value

    p = argparse.ArgumentParser(description="Fake Infobip SMS API server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8098)
    p.add_argument("--api-key", action="append", help=f"repeatable; default {DEFAULT_API_KEY}")
    p.add_argument("--fail", action="append", type=pair, metavar="NUMBER:STATUS", default=[])
    p.add_argument("--undeliverable", action="append", type=pair, metavar="NUMBER:ERROR", default=[])
    p.add_argument("--seed", type=int)
    p.add_argument("--error-rate-500", type=float, default=0.0)
    p.add_argument("--error-rate-429", type=float, default=0.0)
    p.add_argument("--hang-rate", type=float, default=0.0)
    p.add_argument("--hang-seconds", type=float, default=5.0)
    p.add_argument("--auto-reports", action="store_true")
    p.add_argument("--report-delay", type=float, default=0.0)
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)

    fake = FakeInfobip(
        args.api_key,
        seed=args.seed,
        fail_numbers=dict(args.fail),
        undeliverable_numbers=dict(args.undeliverable),
        error_rate_500=args.error_rate_500,
        error_rate_429=args.error_rate_429,
        hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds,
        auto_reports=args.auto_reports,
        report_delay=args.report_delay,
        host=args.host,
        verbose=args.verbose,
    )
    fake.serve(args.port)
    print(f"fake Infobip listening on {fake.url}", flush=True)
    for key in sorted(fake.api_keys):
        print(f"  api key {key}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        print(json.dumps(dict(fake.stats), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
