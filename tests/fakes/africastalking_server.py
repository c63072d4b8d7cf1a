"""A fake Africa's Talking bulk SMS API server for tests and benchmarks.

It speaks the real wire format of ``POST /version1/messaging``: a form with
``username``, ``to`` (one number or several, comma-separated), ``message`` and
an optional ``from`` (sender ID or short code), authenticated by the ``apiKey``
header together with the ``username`` field. With ``Accept: application/json``
it answers Africa's Talking's JSON (HTTP 201)::

    {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
      "Recipients": [{"cost": "KES 0.8000", "messageId": "ATXid_...", "messageParts": 1,
                      "number": "+254711000001", "status": "Success", "statusCode": 101}]}}

and its XML otherwise. Wrong credentials answer 401 ``The supplied authentication
is invalid`` (text/plain), a missing field 400 (text/plain), as Africa's Talking
does.

Usage
-----
::

    with FakeAfricasTalking.start(accounts={"myapp": "key"}, seed=1) as fake:
        fake.fail_numbers = {"+254711000009": 406}     # or a status name: "UserInBlacklist"
        fake.error_rate_429 = 0.1
        ...
        fake.messages           # accepted messages (snapshot list of dicts)
        fake.stats["created"]   # request counts by outcome
        fake.send_status_callback(url, message_id, "Success")
        fake.send_inbound_sms(url, "+254711000001", "21512", "hello")

Realism notes
-------------
* A refused recipient is not an HTTP error: the answer is 201 and the
  recipient's entry carries the refusal (``statusCode`` 4xx/5xx, ``status`` the
  name, ``cost`` "0", ``messageId`` "None"), as Africa's Talking answers it.
* A ``from`` that is not one of ``sender_ids`` (when set) is answered the real
  way: ``{"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}``.
* Africa's Talking takes no per-message callback URL: delivery reports go to
  the URL set in its dashboard. Here that is ``delivery_report_url``; with
  ``auto_callbacks`` each accepted message gets its final report there
  (``Success``, or ``Failed`` with the ``failureReason`` of
  ``undeliverable_numbers``). Africa's Talking signs nothing, so neither does
  this fake.
* Nothing can be asked about a sent message (the API has no lookup).
* A hang sleeps and then answers normally, so a message whose request timed out
  on the client is still recorded, as can happen with Africa's Talking.
* ``raw_answers`` {number: (HTTP status, body)} answers a request for that
  number with that body as is, for tests of answers in an unexpected shape.

Command line (manual use, benchmarks in another process)::

    python tests/fakes/africastalking_server.py --port 8097 --account myapp:key

It also answers ``GET /_fake/stats``, ``GET /_fake/messages`` and
``POST /_fake/reset`` (no auth) so another process can read its counters.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import secrets
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
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

try:
    from messaging.lib.segments import count_segments
except ImportError:  # run as a script: put the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from messaging.lib.segments import count_segments

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_NETWORK_CODE",
    "DEFAULT_USERNAME",
    "SEND_PATH",
    "STATUS_CODES",
    "FakeAfricasTalking",
    "delivery_report_payload",
    "inbound_payload",
]

SEND_PATH = "/version1/messaging"
DEFAULT_USERNAME = "messaging-test"
DEFAULT_API_KEY = "atsk_" + "0" * 60 + "fake"
DEFAULT_NETWORK_CODE = "63902"  # Safaricom
AUTH_FAILED = "The supplied authentication is invalid"
MAX_BODY = 1600

# Africa's Talking's per-recipient statusCodes and their names.
STATUS_CODES: dict[int, str] = {
    100: "Processed",
    101: "Success",  # the code's name is "Sent"; the answer's status reads "Success"
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
_CODE_BY_NAME = {name.lower(): code for code, name in STATUS_CODES.items()}


def _utc_text(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def inbound_payload(
    from_: str,
    to: str,
    text: str,
    *,
    message_id: str | None = None,
    link_id: str | None = None,
    date: str | None = None,
    network_code: str = DEFAULT_NETWORK_CODE,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The form Africa's Talking POSTs for an incoming message (``from``, ``to``, ``text``,
    ``date``, ``id``, ``linkId``, ``networkCode``)."""
    params = {
        "from": from_,
        "to": to,
        "text": text,
        "date": date or _utc_text(),
        "id": message_id or str(uuid.uuid4()),
        "linkId": link_id if link_id is not None else str(random.randrange(10**19, 10**20)),
        "networkCode": network_code,
    }
    params.update({k: str(v) for k, v in (extra or {}).items()})
    return params


def delivery_report_payload(
    message_id: str,
    status: str,
    *,
    phone_number: str = "",
    network_code: str = DEFAULT_NETWORK_CODE,
    failure_reason: str | None = None,
    retry_count: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The form Africa's Talking POSTs as a delivery report (``id``, ``status``,
    ``phoneNumber``, ``networkCode``, ``failureReason`` for Rejected/Failed, ``retryCount``)."""
    params = {"id": message_id, "status": status, "phoneNumber": phone_number, "networkCode": network_code}
    if failure_reason is not None:
        params["failureReason"] = failure_reason
    if retry_count is not None:
        params["retryCount"] = str(retry_count)
    params.update({k: str(v) for k, v in (extra or {}).items()})
    return params


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


def _status_code(value: int | str) -> int:
    """A statusCode from a code or a status name ("UserInBlacklist")."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        return _CODE_BY_NAME[text.lower()]
    except KeyError:
        raise ValueError(f"unknown Africa's Talking status {value!r}") from None


def _fail_codes(value: Mapping[str, int | str] | None) -> dict[str, int]:
    return {str(k): _status_code(v) for k, v in (value or {}).items()}


def _reasons(value: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def _raw(value: Mapping[str, tuple[int, str]] | None) -> dict[str, tuple[int, str]]:
    return {str(k): (int(v[0]), str(v[1])) for k, v in (value or {}).items()}


def _optional_set(value: Any) -> frozenset[str] | None:
    return None if value is None else frozenset(str(v) for v in value)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeAfricasTalking

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
    server_version = "FakeAfricasTalking/1.0"
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
    """An answer: ``payload`` is JSON-encoded unless it is already text (then sent as text/plain)."""

    def __init__(self, status: int, payload: Any, content_type: str | None = None):
        self.status, self.payload, self.content_type = status, payload, content_type


class FakeAfricasTalking:
    """Fake Africa's Talking SMS API on 127.0.0.1. Start with :meth:`start`.

    Controls (thread-safe; assign a new value, or use :meth:`configure`):
    ``fail_numbers`` {to: statusCode or status name} answered as that refusal in
    the recipient's entry; ``undeliverable_numbers`` {to: failureReason}
    accepted, then reported ``Failed`` with that reason by auto callbacks;
    ``raw_answers`` {to: (HTTP status, body)}; ``sender_ids`` (None: any
    ``from`` is accepted; else the registered ones); ``error_rate_500``,
    ``error_rate_429``, ``hang_rate`` (0..1, drawn from ``random.Random(seed)``)
    and ``hang_seconds``; ``auto_callbacks``, ``delivery_report_url`` and
    ``callback_delay``; ``price_per_part`` and ``currency`` (the ``cost`` of a
    message is the price per part times its parts, e.g. "KES 0.8000").
    """

    fail_numbers = _Control(_fail_codes)
    undeliverable_numbers = _Control(_reasons)
    raw_answers = _Control(_raw)
    sender_ids = _Control(_optional_set)
    error_rate_500 = _Control(_rate)
    error_rate_429 = _Control(_rate)
    hang_rate = _Control(_rate)
    hang_seconds = _Control(float)
    auto_callbacks = _Control(bool)
    delivery_report_url = _Control(lambda v: str(v) if v else None)
    callback_delay = _Control(float)
    price_per_part = _Control(float)
    currency = _Control(str)

    _CONTROLS = (
        "fail_numbers",
        "undeliverable_numbers",
        "raw_answers",
        "sender_ids",
        "error_rate_500",
        "error_rate_429",
        "hang_rate",
        "hang_seconds",
        "auto_callbacks",
        "delivery_report_url",
        "callback_delay",
        "price_per_part",
        "currency",
    )

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        seed: int | None = None,
        fail_numbers: Mapping[str, int | str] | None = None,
        undeliverable_numbers: Mapping[str, str] | None = None,
        raw_answers: Mapping[str, tuple[int, str]] | None = None,
        sender_ids: Any = None,
        error_rate_500: float = 0.0,
        error_rate_429: float = 0.0,
        hang_rate: float = 0.0,
        hang_seconds: float = 5.0,
        auto_callbacks: bool = False,
        delivery_report_url: str | None = None,
        callback_delay: float = 0.0,
        callback_timeout: float = 10.0,
        price_per_part: float = 0.8,
        currency: str = "KES",
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        """``accounts`` maps username -> API key (default: one account,
        :data:`DEFAULT_USERNAME`/:data:`DEFAULT_API_KEY`)."""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self.accounts = dict(accounts or {DEFAULT_USERNAME: DEFAULT_API_KEY})
        self.seed = seed
        self.random = random.Random(seed)
        self.callback_timeout = callback_timeout
        self.host = host
        self.verbose = verbose
        self.configure(
            fail_numbers=fail_numbers,
            undeliverable_numbers=undeliverable_numbers,
            raw_answers=raw_answers,
            sender_ids=sender_ids,
            error_rate_500=error_rate_500,
            error_rate_429=error_rate_429,
            hang_rate=hang_rate,
            hang_seconds=hang_seconds,
            auto_callbacks=auto_callbacks,
            delivery_report_url=delivery_report_url,
            callback_delay=callback_delay,
            price_per_part=price_per_part,
            currency=currency,
        )
        self._messages: list[dict[str, Any]] = []
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
    def start(cls, port: int = 0, **kwargs: Any) -> FakeAfricasTalking:
        """Create a server (``kwargs`` as for the constructor) and run it in a
        daemon thread on 127.0.0.1:``port`` (0 = any free port)."""
        return cls(**kwargs).serve(port)

    def serve(self, port: int = 0) -> FakeAfricasTalking:
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
                name=f"fake-africastalking-{self.port}",
                daemon=True,
            ),
            threading.Thread(
                target=self._callback_worker,
                name=f"fake-africastalking-callbacks-{self.port}",
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

    def __enter__(self) -> FakeAfricasTalking:
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
        """Set several controls at once (atomically); ``None`` leaves a mapping control empty."""
        unknown = set(controls) - set(self._CONTROLS)
        if unknown:
            raise TypeError(f"unknown controls: {sorted(unknown)}")
        converted = {name: getattr(type(self), name).convert(value) for name, value in controls.items()}
        with self._lock:
            for name, value in converted.items():
                setattr(self, "_" + name, value)

    def reset(self, *, controls: bool = True) -> None:
        """Forget messages, callbacks and stats; reseed the random generator; with
        ``controls`` also clear failures, raw answers, sender IDs and rates
        (hang_seconds, auto callbacks, the report URL, prices are kept)."""
        with self._lock:
            self._messages.clear()
            self._by_id.clear()
            self._callbacks.clear()
            self._stats.clear()
            self.random.seed(self.seed)
            if controls:
                self.configure(
                    fail_numbers=None,
                    undeliverable_numbers=None,
                    raw_answers=None,
                    sender_ids=None,
                    error_rate_500=0.0,
                    error_rate_429=0.0,
                    hang_rate=0.0,
                )

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages in arrival order (a snapshot): dicts with ``id`` (the
        messageId), ``username``, ``to``, ``from`` (None without one), ``body``,
        ``received_at`` (epoch seconds), ``status`` (the last delivery status),
        ``status_code``, ``parts``, ``cost``, ``headers`` (of the request, names
        lower-cased) and ``form`` (the fields posted, ``message`` included)."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def message(self, message_id: str) -> dict[str, Any]:
        """One accepted message by id (a copy); KeyError if unknown."""
        with self._lock:
            return dict(self._by_id[message_id])

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Webhooks sent: ``kind`` (status or inbound), ``url``, ``params``,
        ``response_status`` (None on a connection error), ``error``."""
        with self._lock:
            return [dict(c) for c in self._callbacks]

    @property
    def stats(self) -> Counter[str]:
        """Request counts by outcome (a snapshot; missing keys read 0):
        ``connections`` (TCP connections accepted), ``requests``, ``created``
        (accepted recipients), ``auth_failed``, ``rate_limited``,
        ``server_error``, ``invalid``, ``invalid_sender``, ``failed_number``,
        ``raw_answer``, ``hung``, ``not_found``, ``callbacks_sent``,
        ``callback_errors``, ``inbound_sent``."""
        with self._lock:
            return Counter(self._stats)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    # -- HTTP ----------------------------------------------------------------

    def _handle(self, h: _Handler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        path = urllib.parse.urlsplit(h.path).path
        self._count("requests")
        try:
            if path.startswith("/_fake/"):
                self._control_endpoint(method, path)
            if path.rstrip("/") != SEND_PATH or method != "POST":
                self._count("not_found")
                raise _Respond(404, "Not Found")
            self._send(h, raw)
        except _Respond as r:
            if r.status == 0:  # stopping during a hang: drop the connection
                h.close_connection = True
                return
            self._write(h, r.status, r.payload, r.content_type)

    @staticmethod
    def _write(h: _Handler, status: int, payload: Any, content_type: str | None = None) -> None:
        if isinstance(payload, str):
            data = payload.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        else:
            data = json.dumps(payload).encode()
            content_type = content_type or "application/json"
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _control_endpoint(self, method: str, path: str) -> None:
        if method == "GET" and path == "/_fake/stats":
            with self._lock:
                payload = {"stats": dict(self._stats), "messages": len(self._messages)}
            raise _Respond(200, payload)
        if method == "GET" and path == "/_fake/messages":
            raise _Respond(200, self.messages)
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            raise _Respond(200, {"reset": True})
        raise _Respond(404, "Not Found")

    def _faults(self) -> None:
        """Hang, 429 or 500 as the rates say (a hang then answers normally)."""
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
            raise _Respond(429, "Too Many Requests")
        if draw < e429 + e500:
            self._count("server_error")
            raise _Respond(500, "Internal Server Error")

    def _authenticate(self, headers: dict[str, str], form: dict[str, str]) -> None:
        username = form.get("username", "")
        key = headers.get("apikey", "")
        if not username or not key or self.accounts.get(username) != key:
            self._count("auth_failed")
            raise _Respond(401, AUTH_FAILED)

    def _validate(self, form: dict[str, str]) -> list[str]:
        for name in ("username", "to", "message"):
            if not form.get(name):
                self._count("invalid")
                raise _Respond(400, f"Request is missing required form field '{name}'")
        if len(form["message"]) > MAX_BODY:
            self._count("invalid")
            raise _Respond(400, f"The message is longer than {MAX_BODY} characters")
        return [n.strip() for n in form["to"].split(",") if n.strip()]

    def _send(self, h: _Handler, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        form = {
            k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()
        }
        self._authenticate(headers, form)
        self._faults()
        numbers = self._validate(form)
        with self._lock:
            raw_answer = next((self._raw_answers[n] for n in numbers if n in self._raw_answers), None)
            sender_ids = self._sender_ids
        if raw_answer is not None:
            self._count("raw_answer")
            status, text = raw_answer
            raise _Respond(status, text, "application/json" if _is_json(text) else "text/html; charset=utf-8")
        sender = form.get("from") or None
        if sender is not None and sender_ids is not None and sender not in sender_ids:
            self._count("invalid_sender")
            self._answer(headers, {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}})
        recipients = [self._recipient(n, sender, form, headers) for n in numbers]
        sent = [r for r in recipients if r["statusCode"] < 200]
        total = sum(float(r["cost"].split()[-1]) for r in sent)
        summary = f"Sent to {len(sent)}/{len(recipients)} Total Cost: "
        summary += f"{self.currency} {total:.4f}" if sent else "0"
        self._answer(headers, {"SMSMessageData": {"Message": summary, "Recipients": recipients}})

    def _recipient(self, number: str, sender: str | None, form: dict, headers: dict) -> dict[str, Any]:
        """One recipient's entry of the answer; records the message when it is accepted."""
        with self._lock:
            code = self._fail_numbers.get(number)
        if code is not None and code >= 200:
            self._count("failed_number")
            return {
                "cost": "0",
                "messageId": "None",
                "number": number,
                "status": STATUS_CODES.get(code, "Failed"),
                "statusCode": code,
            }
        code = code or 101
        body = form["message"]
        parts = count_segments(body).segments
        msg = {
            "id": "ATXid_" + secrets.token_hex(16),
            "username": form["username"],
            "to": number,
            "from": sender,
            "body": body,
            "received_at": time.time(),
            "status": STATUS_CODES[code] if code in STATUS_CODES else "Success",
            "status_code": code,
            "parts": parts,
            "cost": f"{self.currency} {self.price_per_part * parts:.4f}",
            "headers": dict(headers),
            "form": dict(form),
        }
        with self._lock:
            self._messages.append(msg)
            self._by_id[msg["id"]] = msg
            self._stats["created"] += 1
            auto = self._auto_callbacks and self._delivery_report_url is not None
            if auto:
                self._cb_pending += 1
        if auto:
            self._cb_queue.put(msg["id"])
        return {
            "cost": msg["cost"],
            "messageId": msg["id"],
            "messageParts": parts,
            "number": number,
            "status": msg["status"],
            "statusCode": code,
        }

    @staticmethod
    def _answer(headers: dict[str, str], payload: dict[str, Any]) -> None:
        if "json" in headers.get("accept", ""):
            raise _Respond(201, payload)
        raise _Respond(201, _xml(payload), "application/xml")

    # -- webhooks to the app -------------------------------------------------

    def _post_form(self, kind: str, url: str, params: dict[str, str]) -> int:
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "AfricasTalking/1.0"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        record: dict[str, Any] = {
            "kind": kind,
            "url": url,
            "params": params,
            "response_status": None,
            "error": None,
        }
        try:
            try:
                with opener.open(request, timeout=self.callback_timeout) as response:
                    response.read()
                    record["response_status"] = response.status
            except urllib.error.HTTPError as exc:
                exc.close()
                record["response_status"] = exc.code
        except OSError as exc:
            record["error"] = repr(exc)
            raise
        finally:
            with self._lock:
                self._callbacks.append(record)
                ok = record["response_status"] is not None
                self._stats["callbacks_sent" if ok else "callback_errors"] += 1
        return record["response_status"]

    def send_status_callback(
        self,
        url: str | None,
        message_id: str,
        status: str,
        *,
        failure_reason: str | None = None,
        phone_number: str | None = None,
        network_code: str = DEFAULT_NETWORK_CODE,
        retry_count: int | None = None,
    ) -> int:
        """POST Africa's Talking's delivery report for ``message_id`` to ``url`` (None: the
        ``delivery_report_url``), unsigned as Africa's Talking sends it. Updates the recorded
        status of a known message. Returns the receiver's HTTP status; connection errors
        raise ``OSError``."""
        with self._lock:
            url = url or self._delivery_report_url
            msg = self._by_id.get(message_id)
            if msg is not None:
                msg["status"] = status
                phone_number = phone_number or msg["to"]
        if not url:
            raise ValueError("no url given and no delivery_report_url set")
        params = delivery_report_payload(
            message_id,
            status,
            phone_number=phone_number or "",
            network_code=network_code,
            failure_reason=failure_reason,
            retry_count=retry_count,
        )
        return self._post_form("status", url, params)

    def send_inbound_sms(
        self,
        url: str,
        from_: str,
        to: str,
        body: str,
        *,
        message_id: str | None = None,
        link_id: str | None = None,
        network_code: str = DEFAULT_NETWORK_CODE,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """POST an incoming-message webhook to ``url`` as Africa's Talking would (unsigned);
        returns the HTTP status."""
        with self._lock:
            if link_id is None:
                link_id = str(self.random.randrange(10**19, 10**20))
        params = inbound_payload(
            from_, to, body, message_id=message_id, link_id=link_id, network_code=network_code, extra=extra
        )
        status = self._post_form("inbound", url, params)
        self._count("inbound_sent")
        return status

    def _callback_worker(self) -> None:
        while True:
            message_id = self._cb_queue.get()
            if message_id is None:
                return
            try:
                delay = self.callback_delay
                if delay and self._stopping.wait(delay):
                    continue
                with self._lock:
                    msg = self._by_id.get(message_id)
                    reason = self._undeliverable_numbers.get(msg["to"]) if msg else None
                if msg is None:
                    continue  # reset() since
                try:
                    if reason is None:
                        self.send_status_callback(None, message_id, "Success")
                    else:
                        self.send_status_callback(None, message_id, "Failed", failure_reason=reason)
                except (OSError, ValueError):
                    pass  # recorded in callbacks / stats
            finally:
                with self._cb_idle:
                    self._cb_pending -= 1
                    self._cb_idle.notify_all()

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Wait until the auto callbacks queued so far are sent; False on timeout."""
        with self._cb_idle:
            return self._cb_idle.wait_for(lambda: self._cb_pending == 0, timeout)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _xml(payload: dict[str, Any]) -> str:
    """Africa's Talking's XML answer (without ``Accept: application/json``)."""
    data = payload["SMSMessageData"]
    recipients = "".join(
        "<Recipient>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in r.items()) + "</Recipient>"
        for r in data["Recipients"]
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><AfricasTalkingResponse><SMSMessageData>'
        f"<Message>{escape(data['Message'])}</Message><Recipients>{recipients}</Recipients>"
        "</SMSMessageData></AfricasTalkingResponse>"
    )


def main(argv: list[str] | None = None) -> None:
    def pair(text: str) -> tuple[str, str]:
        key, sep, value = text.rpartition(":")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY:VALUE, got {text!r}")
        return key, value

    p = argparse.ArgumentParser(description="Fake Africa's Talking SMS API server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8097)
    p.add_argument(
        "--account",
        action="append",
        type=pair,
        metavar="USERNAME:API_KEY",
        help=f"repeatable; default {DEFAULT_USERNAME}:{DEFAULT_API_KEY}",
    )
    p.add_argument("--fail", action="append", type=pair, metavar="NUMBER:CODE_OR_STATUS", default=[])
    p.add_argument("--undeliverable", action="append", type=pair, metavar="NUMBER:FAILURE_REASON", default=[])
    p.add_argument(
        "--sender-id", action="append", metavar="SENDER", help="registered sender IDs (default: any)"
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--error-rate-500", type=float, default=0.0)
    p.add_argument("--error-rate-429", type=float, default=0.0)
    p.add_argument("--hang-rate", type=float, default=0.0)
    p.add_argument("--hang-seconds", type=float, default=5.0)
    p.add_argument("--auto-callbacks", action="store_true")
    p.add_argument("--delivery-report-url", help="where auto callbacks go (the dashboard's setting)")
    p.add_argument("--callback-delay", type=float, default=0.0)
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)

    fake = FakeAfricasTalking(
        dict(args.account) if args.account else None,
        seed=args.seed,
        fail_numbers=dict(args.fail),
        undeliverable_numbers=dict(args.undeliverable),
        sender_ids=args.sender_id,
        error_rate_500=args.error_rate_500,
        error_rate_429=args.error_rate_429,
        hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds,
        auto_callbacks=args.auto_callbacks,
        delivery_report_url=args.delivery_report_url,
        callback_delay=args.callback_delay,
        host=args.host,
        verbose=args.verbose,
    )
    fake.serve(args.port)
    print(f"fake AfricasTalking listening on {fake.url}", flush=True)
    for username, key in fake.accounts.items():
        print(f"  username {username}  apiKey {key}", flush=True)
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
