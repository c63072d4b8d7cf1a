"""A fake Twilio Messages API server for tests and benchmarks.

It speaks the real wire format of ``POST /2010-04-01/Accounts/<Sid>/Messages.json``
(form-encoded, HTTP Basic auth) and answers with Twilio's Message resource JSON
or Twilio's error JSON, so the official ``twilio`` client works against it
unchanged.

Pointing twilio-python at it
----------------------------
twilio-python (checked with 9.13) has no base-URL setting. Every request URL is
built as ``client.api.base_url + "/2010-04-01/..."`` (``twilio.base.domain.Domain``
reads the plain attribute ``base_url`` at request time), so::

    client = Client(sid, token, environment={},
                    http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = fake.url          # "http://127.0.0.1:<port>"
    client.messages.create(to="+15551230001", from_="+15005550006", body="hi")

Leave ``region``/``edge`` unset (``environment={}`` also ignores
``TWILIO_REGION``/``TWILIO_EDGE``): with either set, the client rewrites the
host name of every URL. Timeouts surface as ``requests.exceptions.Timeout``
(twilio-python does not wrap them); API errors as ``TwilioRestException`` with
``.status`` and ``.code``.

Usage
-----
::

    with FakeTwilio.start(accounts={"AC...": "token"}, seed=1) as fake:
        fake.fail_numbers = {"+15550000001": 21211}
        fake.error_rate_429 = 0.1
        ...
        fake.messages           # accepted messages (snapshot list of dicts)
        fake.stats["created"]   # request counts by outcome
        fake.send_status_callback(sid, "delivered")

Realism notes
-------------
* Sending with ``MessagingServiceSid`` and no ``From`` answers status
  ``accepted``, ``from`` null and ``num_segments`` "0", as Twilio does; with a
  ``From`` the status is ``queued``.
* Codes 30003, 30005... are delivery errors: real Twilio reports them only in
  status callbacks (``undelivered`` + ``ErrorCode``). Put numbers in
  ``undeliverable_numbers`` for that; ``fail_numbers`` answers the API request
  itself with 400 for any code, for tests that want it.
* ``GET .../Messages.json`` lists accepted messages newest first, filtered by
  ``To`` and ``From`` (one page), and ``GET .../Messages/<sid>.json`` fetches
  one: what a sender needs to find out whether a timed-out request was sent.
* A hang sleeps and then answers normally, so a message whose request timed out
  on the client is still recorded, as can happen with Twilio.

Command line (manual use, benchmarks in another process)::

    python tests/fake_twilio.py --port 8099 --account ACxxx:token

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
from base64 import b64decode
from collections import Counter
from collections.abc import Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

try:
    from messaging.lib.segments import count_segments
except ImportError:  # run as a script: put the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from messaging.lib.segments import count_segments

__all__ = [
    "API_VERSION",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_FROM",
    "ERRORS",
    "FakeTwilio",
    "error_body",
    "signed_inbound_request",
]

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 30 + "01"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
DEFAULT_FROM = "+15005550006"  # Twilio's "valid From" magic test number
MAX_BODY = 1600

# code -> (HTTP status, message). Messages are Twilio's own wording; {to},
# {from_} and {path} are filled in.
ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21212: (
        400,
        "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID.",
    ),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    ),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The From phone number {from_} is not a valid, SMS-capable inbound "
        "phone number or short code for your account.",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (
        400,
        "The 'To' phone number: {to}, is not currently reachable using the "
        "'From' phone number: {from_} via SMS.",
    ),
    21614: (400, "'To' number {to} is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    30003: (400, "Unreachable destination handset"),
    30004: (400, "Message blocked"),
    30005: (400, "Unknown destination handset"),
    30006: (400, "Landline or unreachable carrier"),
    30007: (400, "Message filtered"),
    30008: (400, "Unknown error"),
}


def error_body(code: int, **fmt: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, Twilio error JSON) for ``code``; unknown codes answer 400."""
    status, message = ERRORS.get(code, (400, f"Error {code}"))
    fmt.setdefault("to", "")
    fmt.setdefault("from_", "")
    fmt.setdefault("path", "")
    return status, {
        "code": code,
        "message": message.format(**fmt),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _rfc2822(ts: float) -> str:
    return formatdate(ts, usegmt=False).replace("-0000", "+0000")


def _new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    return RequestValidator(auth_token).compute_signature(url, params)


def signed_inbound_request(
    auth_token: str,
    url: str,
    params: Mapping[str, Any],
    *,
    fill_defaults: bool = True,
) -> tuple[dict[str, str], dict[str, str]]:
    """Form params and headers of an inbound-SMS webhook, signed like Twilio.

    ``url`` is the full public URL Twilio would call (scheme, host, port, path
    and query): the app must validate against the same URL. With
    ``fill_defaults`` the usual fields Twilio adds are filled when missing
    (``MessageSid``/``SmsMessageSid``/``SmsSid``, ``NumMedia``,
    ``NumSegments``, ``SmsStatus``, ``ApiVersion``). Use with Flask's test
    client as ``client.post(path, data=params, headers=headers)``.
    """
    out = {k: str(v) for k, v in params.items()}
    if fill_defaults:
        sid = out.get("MessageSid") or _new_sid("SM")
        out.setdefault("MessageSid", sid)
        out.setdefault("SmsMessageSid", sid)
        out.setdefault("SmsSid", sid)
        out.setdefault("NumMedia", "0")
        out.setdefault("NumSegments", str(max(1, count_segments(out.get("Body", "")).segments)))
        out.setdefault("SmsStatus", "received")
        out.setdefault("ApiVersion", API_VERSION)
    headers = {
        "X-Twilio-Signature": _sign(auth_token, url, out),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return out, headers


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


def _codes(value: Mapping[str, int] | None) -> dict[str, int]:
    return {str(k): int(v) for k, v in (value or {}).items()}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeTwilio

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
    server_version = "FakeTwilio/1.0"
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

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.fake._handle(self, "DELETE")


class _Respond(Exception):
    def __init__(self, status: int, payload: Any, headers: dict | None = None):
        self.status, self.payload, self.headers = status, payload, headers or {}


def _price(msg: dict[str, Any]) -> str | None:
    """Twilio's price string (``-0.01500``) once the message is sent, else None."""
    per_segment = msg.get("price_per_segment")
    if per_segment is None or msg["status"] not in ("sent", "delivered", "undelivered"):
        return None
    segments = msg["num_segments"] or count_segments(msg["body"]).segments
    return f"{-per_segment * segments:.5f}"


class FakeTwilio:
    """Fake Twilio Messages API on 127.0.0.1. Start with :meth:`start`.

    Controls (thread-safe; assign a new value, or use :meth:`configure`):
    ``fail_numbers`` {to: code} answered with Twilio's 400 error;
    ``undeliverable_numbers`` {to: code} accepted, then reported
    ``undelivered`` with that ErrorCode by auto callbacks; ``error_rate_500``,
    ``error_rate_429``, ``hang_rate`` (0..1, drawn from ``random.Random(seed)``)
    and ``hang_seconds``; ``auto_callbacks`` and ``callback_delay``;
    ``price_per_segment`` (e.g. 0.0075): as real Twilio, a message's resource shows
    its price (negative, per segment times segments, in USD) once it is sent, never
    at creation and never in a status callback.
    """

    fail_numbers = _Control(_codes)
    undeliverable_numbers = _Control(_codes)
    error_rate_500 = _Control(_rate)
    error_rate_429 = _Control(_rate)
    hang_rate = _Control(_rate)
    hang_seconds = _Control(float)
    auto_callbacks = _Control(bool)
    callback_delay = _Control(float)
    price_per_segment = _Control(lambda v: None if v is None else float(v))

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        api_keys: Mapping[str, tuple[str, str]] | None = None,
        seed: int | None = None,
        fail_numbers: Mapping[str, int] | None = None,
        undeliverable_numbers: Mapping[str, int] | None = None,
        error_rate_500: float = 0.0,
        error_rate_429: float = 0.0,
        hang_rate: float = 0.0,
        hang_seconds: float = 5.0,
        auto_callbacks: bool = False,
        callback_delay: float = 0.0,
        callback_timeout: float = 10.0,
        price_per_segment: float | None = None,
        messaging_service_from: str = DEFAULT_FROM,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        """``accounts`` maps account sid -> auth token (default: one account,
        :data:`DEFAULT_ACCOUNT_SID`/:data:`DEFAULT_AUTH_TOKEN`); ``api_keys``
        maps an API key sid (SK...) -> (account sid, secret)."""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self.accounts = dict(accounts or {DEFAULT_ACCOUNT_SID: DEFAULT_AUTH_TOKEN})
        self.api_keys = {k: (a, s) for k, (a, s) in (api_keys or {}).items()}
        self.seed = seed
        self.random = random.Random(seed)
        self.callback_timeout = callback_timeout
        self.messaging_service_from = messaging_service_from
        self.host = host
        self.verbose = verbose
        self.configure(
            fail_numbers=fail_numbers,
            undeliverable_numbers=undeliverable_numbers,
            error_rate_500=error_rate_500,
            error_rate_429=error_rate_429,
            hang_rate=hang_rate,
            hang_seconds=hang_seconds,
            auto_callbacks=auto_callbacks,
            callback_delay=callback_delay,
            price_per_segment=price_per_segment,
        )
        self._messages: list[dict[str, Any]] = []
        self._by_sid: dict[str, dict[str, Any]] = {}
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
    def start(cls, port: int = 0, **kwargs: Any) -> FakeTwilio:
        """Create a server (``kwargs`` as for the constructor) and run it in a
        daemon thread on 127.0.0.1:``port`` (0 = any free port)."""
        return cls(**kwargs).serve(port)

    def serve(self, port: int = 0) -> FakeTwilio:
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
                name=f"fake-twilio-{self.port}",
                daemon=True,
            ),
            threading.Thread(
                target=self._callback_worker,
                name=f"fake-twilio-callbacks-{self.port}",
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

    def __enter__(self) -> FakeTwilio:
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
            "auto_callbacks",
            "callback_delay",
            "price_per_segment",
        }
        unknown = set(controls) - names
        if unknown:
            raise TypeError(f"unknown controls: {sorted(unknown)}")
        converted = {name: getattr(type(self), name).convert(value) for name, value in controls.items()}
        with self._lock:
            for name, value in converted.items():
                setattr(self, "_" + name, value)

    def reset(self, *, controls: bool = True) -> None:
        """Forget messages, callbacks and stats; reseed the random generator;
        with ``controls`` also clear failures and rates (hang_seconds,
        auto_callbacks and callback_delay are kept)."""
        with self._lock:
            self._messages.clear()
            self._by_sid.clear()
            self._callbacks.clear()
            self._stats.clear()
            self.random.seed(self.seed)
            if controls:
                self.configure(
                    fail_numbers=None,
                    undeliverable_numbers=None,
                    error_rate_500=0.0,
                    error_rate_429=0.0,
                    hang_rate=0.0,
                )

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages in arrival order (a snapshot): dicts with ``sid``,
        ``account_sid``, ``to``, ``from``, ``body``, ``messaging_service_sid``,
        ``status_callback``, ``received_at`` (epoch seconds), ``status``,
        ``error_code``, ``num_segments``."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def message(self, sid: str) -> dict[str, Any]:
        """One accepted message by sid (a copy); KeyError if unknown."""
        with self._lock:
            return dict(self._by_sid[sid])

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Status callbacks sent: ``sid``, ``status``, ``url``, ``params``,
        ``response_status`` (None on a connection error), ``error``."""
        with self._lock:
            return [dict(c) for c in self._callbacks]

    @property
    def stats(self) -> Counter[str]:
        """Request counts by outcome (a snapshot; missing keys read 0):
        ``connections`` (TCP connections accepted), ``requests``, ``created``,
        ``auth_failed``, ``rate_limited``,
        ``server_error``, ``invalid``, ``failed_number``, ``hung``,
        ``fetched``, ``listed``, ``not_found``, ``callbacks_sent``, ``callback_errors``,
        ``inbound_sent``."""
        with self._lock:
            return Counter(self._stats)

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    # -- HTTP ----------------------------------------------------------------

    def _handle(self, h: _Handler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        split = urllib.parse.urlsplit(h.path)
        path = split.path
        h.query = urllib.parse.parse_qs(split.query)
        self._count("requests")
        try:
            if path.startswith("/_fake/"):
                self._control_endpoint(method, path)
            self._api(h, method, path, raw)
        except _Respond as r:
            if r.status == 0:  # stopping during a hang: drop the connection
                h.close_connection = True
                return
            self._write(h, r.status, r.payload, r.headers)

    @staticmethod
    def _write(h: _Handler, status: int, payload: Any, headers: dict) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Twilio-Request-Id", _new_sid("RQ"))
        for name, value in headers.items():
            h.send_header(name, value)
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
        raise _Respond(*error_body(20404, path=path))

    def _authenticate(self, h: _Handler, account_sid: str) -> None:
        user = password = None
        scheme, _, encoded = (h.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = b64decode(encoded).decode().partition(":")
            except ValueError:
                pass
        ok = bool(user) and (
            (user == account_sid and self.accounts.get(user) == password)
            or self.api_keys.get(user or "") == (account_sid, password)
        )
        if not ok:
            self._count("auth_failed")
            status, body = error_body(20003)
            raise _Respond(status, body, {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def _api(self, h: _Handler, method: str, path: str, raw: bytes) -> None:
        parts = path.strip("/").split("/")
        # 2010-04-01 / Accounts / AC.. / Messages.json | Messages / SM...json
        if (
            len(parts) not in (4, 5)
            or parts[:2] != [API_VERSION, "Accounts"]
            or (len(parts) == 4 and parts[3] != "Messages.json")
            or (len(parts) == 5 and (parts[3] != "Messages" or not parts[4].endswith(".json")))
        ):
            self._count("not_found")
            raise _Respond(*error_body(20404, path=path))
        account_sid = parts[2]
        self._authenticate(h, account_sid)
        if len(parts) == 5:
            if method != "GET":
                raise _Respond(*error_body(20004))
            self._fetch(account_sid, parts[4][: -len(".json")], path)
        if method == "GET":
            self._list(account_sid, {k: v[0] for k, v in getattr(h, "query", {}).items()}, path)
        if method != "POST":
            raise _Respond(*error_body(20004))
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8")).items()}
        self._create(account_sid, form, h)

    def _fetch(self, account_sid: str, sid: str, path: str) -> None:
        with self._lock:
            msg = self._by_sid.get(sid)
            if msg is None or msg["account_sid"] != account_sid:
                self._stats["not_found"] += 1
                raise _Respond(*error_body(20404, path=path))
            self._stats["fetched"] += 1
            raise _Respond(200, self._resource(msg))

    def _list(self, account_sid: str, query: dict[str, str], path: str) -> None:
        """``GET Messages.json``: newest first, filtered by ``To`` and ``From``
        (one page of ``PageSize``, default 50), as Twilio answers it."""
        try:
            size = max(1, min(1000, int(query.get("PageSize", "50"))))
        except ValueError:
            size = 50
        to, from_ = query.get("To"), query.get("From")
        with self._lock:
            self._stats["listed"] += 1
            found = [
                self._resource(m)
                for m in reversed(self._messages)
                if m["account_sid"] == account_sid
                and (to is None or m["to"] == to)
                and (from_ is None or m["from"] == from_)
            ][:size]
        raise _Respond(
            200,
            {
                "messages": found,
                "end": max(0, len(found) - 1),
                "first_page_uri": f"{path}?PageSize={size}&Page=0",
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": f"{path}?PageSize={size}&Page=0",
            },
        )

    def _create(self, account_sid: str, form: dict[str, str], h: _Handler) -> None:
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
            raise _Respond(*error_body(20429))
        if draw < e429 + e500:
            self._count("server_error")
            raise _Respond(*error_body(20500))

        to = form.get("To", "")
        from_ = form.get("From", "")
        service = form.get("MessagingServiceSid", "")
        body = form.get("Body", "")
        code = None
        if not to:
            code = 21604
        elif not from_ and not service:
            code = 21603
        elif not body and not form.get("MediaUrl"):
            code = 21602
        elif len(body) > MAX_BODY:
            code = 21617
        if code is not None:
            self._count("invalid")
            raise _Respond(*error_body(code, to=to, from_=from_))
        with self._lock:
            code = self._fail_numbers.get(to)
        if code is not None:
            self._count("failed_number")
            raise _Respond(*error_body(code, to=to, from_=from_))

        now = time.time()
        msg = {
            "sid": _new_sid("SM"),
            "account_sid": account_sid,
            "to": to,
            "from": from_ or None,
            "body": body,
            "messaging_service_sid": service or None,
            "status_callback": form.get("StatusCallback") or None,
            "received_at": now,
            "date_updated": now,
            "status": "queued" if from_ else "accepted",
            "error_code": None,
            "num_segments": count_segments(body).segments if from_ else 0,
            "price_per_segment": self.price_per_segment,
        }
        with self._lock:
            self._messages.append(msg)
            self._by_sid[msg["sid"]] = msg
            self._stats["created"] += 1
            resource = self._resource(msg)
            auto = self._auto_callbacks and msg["status_callback"] is not None
        self._write(h, 201, resource, {})
        if auto:
            with self._lock:
                self._cb_pending += 1
            self._cb_queue.put(msg["sid"])

    @staticmethod
    def _resource(msg: dict[str, Any]) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{msg['account_sid']}/Messages/{msg['sid']}"
        error_code = msg["error_code"]
        return {
            "account_sid": msg["account_sid"],
            "api_version": API_VERSION,
            "body": msg["body"],
            "date_created": _rfc2822(msg["received_at"]),
            "date_sent": None,
            "date_updated": _rfc2822(msg["date_updated"]),
            "direction": "outbound-api",
            "error_code": error_code,
            "error_message": ERRORS[error_code][1] if error_code in ERRORS else None,
            "from": msg["from"],
            "messaging_service_sid": msg["messaging_service_sid"],
            "num_media": "0",
            "num_segments": str(msg["num_segments"]),
            "price": _price(msg),
            "price_unit": "USD",
            "sid": msg["sid"],
            "status": msg["status"],
            "subresource_uris": {
                "media": f"{uri}/Media.json",
                "feedback": f"{uri}/Feedback.json",
            },
            "to": msg["to"],
            "uri": f"{uri}.json",
        }

    # -- webhooks to the app -------------------------------------------------

    def _post_form(self, url: str, params: dict[str, str], signature: str) -> int:
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "I-Twilio-Idempotency-Token": secrets.token_hex(16),
                "User-Agent": "TwilioProxy/1.1",
            },
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
        sid: str,
        status: str,
        error_code: int | None = None,
        url: str | None = None,
    ) -> int:
        """POST Twilio's status-callback form for message ``sid`` to its
        StatusCallback (or ``url``), signed with ``X-Twilio-Signature`` using
        the account's auth token. Updates the recorded status. Returns the
        receiver's HTTP status; connection errors raise ``OSError``."""
        with self._lock:
            msg = self._by_sid[sid]
            url = url or msg["status_callback"]
            if not url:
                raise ValueError(f"message {sid} has no StatusCallback; pass url=")
            msg["status"] = status
            msg["error_code"] = error_code
            msg["date_updated"] = time.time()
            if msg["from"] is None:  # a Messaging Service picked a sender
                msg["from"] = self.messaging_service_from
            if msg["num_segments"] == 0:
                msg["num_segments"] = count_segments(msg["body"]).segments
            params = {
                "SmsSid": sid,
                "SmsStatus": status,
                "MessageStatus": status,
                "To": msg["to"],
                "MessageSid": sid,
                "AccountSid": msg["account_sid"],
                "From": msg["from"],
                "ApiVersion": API_VERSION,
            }
            if msg["messaging_service_sid"]:
                params["MessagingServiceSid"] = msg["messaging_service_sid"]
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            token = self.accounts[msg["account_sid"]]
        record: dict[str, Any] = {
            "sid": sid,
            "status": status,
            "url": url,
            "params": params,
            "response_status": None,
            "error": None,
        }
        try:
            record["response_status"] = self._post_form(url, params, _sign(token, url, params))
        except OSError as exc:
            record["error"] = repr(exc)
            raise
        finally:
            with self._lock:
                self._callbacks.append(record)
                ok = record["response_status"] is not None
                self._stats["callbacks_sent" if ok else "callback_errors"] += 1
        return record["response_status"]

    def send_inbound_sms(
        self,
        url: str,
        from_: str,
        to: str,
        body: str,
        *,
        account_sid: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """POST a signed inbound-SMS webhook to ``url`` as Twilio would;
        returns the HTTP status."""
        account_sid = account_sid or next(iter(self.accounts))
        params = {"AccountSid": account_sid, "From": from_, "To": to, "Body": body}
        params.update(extra or {})
        params, headers = signed_inbound_request(self.accounts[account_sid], url, params)
        status = self._post_form(url, params, headers["X-Twilio-Signature"])
        self._count("inbound_sent")
        return status

    def _callback_worker(self) -> None:
        while True:
            sid = self._cb_queue.get()
            if sid is None:
                return
            try:
                delay = self.callback_delay
                if delay and self._stopping.wait(delay):
                    continue
                with self._lock:
                    to = self._by_sid[sid]["to"] if sid in self._by_sid else None
                    code = self._undeliverable_numbers.get(to or "")
                if to is None:
                    continue  # reset() since
                try:
                    self.send_status_callback(sid, "sent")
                    if code is None:
                        self.send_status_callback(sid, "delivered")
                    else:
                        self.send_status_callback(sid, "undelivered", code)
                except OSError:
                    pass  # recorded in callbacks / stats
            finally:
                with self._cb_idle:
                    self._cb_pending -= 1
                    self._cb_idle.notify_all()

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Wait until the auto callbacks queued so far are sent; False on timeout."""
        with self._cb_idle:
            return self._cb_idle.wait_for(lambda: self._cb_pending == 0, timeout)


def main(argv: list[str] | None = None) -> None:
    def pair(text: str) -> tuple[str, str]:
        key, sep, value = text.rpartition(":")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY:VALUE, got {text!r}")
        return key, value

    p = argparse.ArgumentParser(description="Fake Twilio Messages API server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8099)
    p.add_argument(
        "--account",
        action="append",
        type=pair,
        metavar="SID:TOKEN",
        help=f"repeatable; default {DEFAULT_ACCOUNT_SID}:{DEFAULT_AUTH_TOKEN}",
    )
    p.add_argument("--fail", action="append", type=pair, metavar="NUMBER:CODE", default=[])
    p.add_argument("--undeliverable", action="append", type=pair, metavar="NUMBER:CODE", default=[])
    p.add_argument("--seed", type=int)
    p.add_argument("--error-rate-500", type=float, default=0.0)
    p.add_argument("--error-rate-429", type=float, default=0.0)
    p.add_argument("--hang-rate", type=float, default=0.0)
    p.add_argument("--hang-seconds", type=float, default=5.0)
    p.add_argument("--auto-callbacks", action="store_true")
    p.add_argument("--callback-delay", type=float, default=0.0)
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)

    fake = FakeTwilio(
        dict(args.account) if args.account else None,
        seed=args.seed,
        fail_numbers={n: int(c) for n, c in args.fail},
        undeliverable_numbers={n: int(c) for n, c in args.undeliverable},
        error_rate_500=args.error_rate_500,
        error_rate_429=args.error_rate_429,
        hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds,
        auto_callbacks=args.auto_callbacks,
        callback_delay=args.callback_delay,
        host=args.host,
        verbose=args.verbose,
    )
    fake.serve(args.port)
    print(f"fake Twilio listening on {fake.url}", flush=True)
    for sid, token in fake.accounts.items():
        print(f"  account {sid}  token {token}", flush=True)
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
