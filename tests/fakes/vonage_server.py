"""A fake Vonage SMS API server for tests and benchmarks.

It speaks the wire format of Vonage's SMS API, ``POST /sms/json`` (also GET
with a query), form-encoded or JSON, authenticated by ``api_key`` and
``api_secret`` in the parameters, by HTTP Basic, or by a signed request
(``api_key``, ``timestamp`` and ``sig``). It answers HTTP 200 with Vonage's
``{"message-count": "N", "messages": [...]}``: one entry per SMS part, each with
its own ``message-id``, ``status`` "0", ``remaining-balance``, ``message-price``
and ``network``; or a single entry with a non-zero ``status`` and its
``error-text``. Sources: developer.vonage.com, "Troubleshooting SMS" (answer
shape and statuses), "Delivery receipts", "Inbound SMS", "Signing messages".

Pointing a client at it: use ``fake.url`` (``http://127.0.0.1:<port>``) as the
API host instead of ``https://rest.nexmo.com``; the app reads it from
``VONAGE_API_BASE_URL``.

Usage
-----
::

    with FakeVonage.start(accounts={"abcd1234": "secret"}, seed=1) as fake:
        fake.fail_numbers = {"447700900001": 3}   # answered with status 3
        fake.error_rate_429 = 0.1
        ...
        fake.messages           # accepted messages (snapshot list of dicts)
        fake.stats["created"]   # request counts by outcome
        fake.send_status_callback(url, message_id, "delivered")
        fake.send_inbound_sms(url, "+447700900123", "+447700900001", "Hello")

Realism notes
-------------
* Numbers go to Vonage as E.164 without the ``+``; the fake refuses a ``to``
  that is not all digits (status 3) and a ``from`` with a ``+`` (status 15). The
  keys of ``fail_numbers``, ``undeliverable_numbers`` and ``raw_answers`` may be
  written with or without the ``+``.
* A text longer than one SMS is split as Vonage does (GSM-7: 160, then 153 per
  part; ``type=unicode``: 70, then 67): one ``messages`` entry per part, each
  with its own id and price; the recorded message keeps the first part's id as
  ``id`` and all of them in ``part_ids``. Each part gets its own delivery receipt.
* Vonage's SMS API has no look-up of a sent message, so neither has the fake.
* A hang sleeps and then answers normally, so a message whose request timed
  out on the client is still recorded, as can happen with Vonage.
* Webhooks (delivery receipts, inbound messages) go out as Vonage sends them:
  ``GET`` with a query, ``POST`` form or ``POST-JSON`` (``webhook_method``),
  signed with ``sig``/``timestamp``/``nonce`` when ``signature_secret`` is set
  (``signature_method``: ``md5hash``, Vonage's default, or the HMACs ``md5``,
  ``sha1``, ``sha256``, ``sha512``, written in upper case). A long inbound text
  arrives in parts with ``concat``, ``concat-ref``, ``concat-total`` and
  ``concat-part``.
* The ``error-text`` wordings follow Vonage's where they are known; the limit of
  ``max_parts`` parts per message is the fake's own.

Command line (manual use, benchmarks in another process)::

    python tests/fakes/vonage_server.py --port 8098 --account abcd1234:secret

It also answers ``GET /_fake/stats``, ``GET /_fake/messages`` and
``POST /_fake/reset`` (no auth) so another process can read its counters.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
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
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:
    from messaging.lib.segments import is_gsm7
except ImportError:  # run as a script: put the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from messaging.lib.segments import is_gsm7

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "ERRORS",
    "SIGNATURE_METHODS",
    "FakeVonage",
    "answer_error",
    "inbound_params",
    "sign_params",
    "split_text",
    "status_params",
]

DEFAULT_API_KEY = "abcd1234"
DEFAULT_API_SECRET = "fakeVonageSecret"
DEFAULT_PRICE = "0.03330000"
DEFAULT_BALANCE = "15.53590000"
DEFAULT_NETWORK = "23410"
SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
WEBHOOK_METHODS = ("GET", "POST", "POST-JSON")

# status -> error-text ({param}, {to}, {from_} filled in).
ERRORS: dict[int, str] = {
    1: "Throughput Rate Exceeded - please wait [ 1000 ] and retry",
    2: "Missing {param}",
    3: "Invalid {param}",
    4: "Bad Credentials",
    5: "Internal Error",
    6: "Unroutable message - rejected",
    7: "Number barred.",
    8: "Account suspended",
    9: "Quota Exceeded - rejected",
    10: "Too many existing binds",
    11: "Account not enabled for HTTP",
    12: "Message too long",
    14: "Invalid Signature",
    15: "Illegal Sender Address - rejected",
    22: "Invalid network code",
    23: "Invalid callback url",
    29: "Non White-listed Destination - rejected",
    32: "Signature and api secret disallowed",
    33: "Number de-activated",
}


def answer_error(status: int, **fmt: Any) -> dict[str, Any]:
    """Vonage's answer to a refused message: one entry with ``status`` and ``error-text``."""
    fmt.setdefault("param", "params")
    fmt.setdefault("to", "")
    fmt.setdefault("from_", "")
    text = ERRORS.get(status, f"Error {status}").format(**fmt)
    return {"message-count": "1", "messages": [{"status": str(status), "error-text": text}]}


def _bare(number: str) -> str:
    return str(number).strip().lstrip("+")


def _new_id() -> str:
    """A Vonage-like message id: 16 upper-case hex characters."""
    return secrets.token_hex(8).upper()


def _timestamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def split_text(text: str, message_type: str = "text") -> list[str]:
    """The parts Vonage sends ``text`` in: ``unicode`` packs 70 UTF-16 units (67 per part of a long
    message); ``text`` packs 160 GSM-7 septets (153), extension characters counting two."""
    if message_type == "unicode":
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, multi = 70, 67
    else:
        sizes = [2 if ch in "\f^{}\\[~]|€" else 1 for ch in text]
        single, multi = 160, 153
    if sum(sizes) <= single:
        return [text] if text else []
    parts, current, used = [], [], 0
    for ch, size in zip(text, sizes, strict=True):
        if used + size > multi:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    parts.append("".join(current))
    return parts


def _signature(params: Mapping[str, str], secret: str, method: str) -> str:
    """Vonage's ``sig``: over ``&key=value`` sorted by key, ``&`` and ``=`` in values made ``_``; the
    MD5 hash of that and the secret, or its HMAC keyed by the secret (upper-case hex)."""
    text = ""
    for key in sorted(params):
        text += f"&{key}=" + str(params[key]).replace("&", "_").replace("=", "_")
    if method == "md5hash":
        return hashlib.md5((text + secret).encode()).hexdigest()
    if method not in SIGNATURE_METHODS:
        raise ValueError(f"unknown signature method {method!r}")
    return hmac.new(secret.encode(), text.encode(), getattr(hashlib, method)).hexdigest().upper()


def sign_params(
    params: Mapping[str, Any],
    secret: str,
    method: str = "md5hash",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """``params`` with ``timestamp``, ``nonce`` and ``sig`` added, signed as Vonage signs webhooks."""
    out = {k: str(v) for k, v in params.items() if k != "sig"}
    out["timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
    out["nonce"] = nonce or secrets.token_hex(8)
    out["sig"] = _signature(out, secret, method)
    return out


def status_params(
    message_id: str,
    status: str,
    *,
    msisdn: str,
    to: str,
    err_code: int | str = 0,
    price: str | None = DEFAULT_PRICE,
    network_code: str = DEFAULT_NETWORK,
    client_ref: str | None = None,
    api_key: str = DEFAULT_API_KEY,
    at: float | None = None,
) -> dict[str, str]:
    """A delivery receipt's parameters as Vonage sends them (``msisdn``: the recipient; ``to``: the
    sender the message went from)."""
    at = time.time() if at is None else at
    params = {
        "msisdn": _bare(msisdn),
        "to": _bare(to),
        "network-code": network_code,
        "messageId": message_id,
        "status": status,
        "err-code": str(err_code),
        "message-timestamp": _timestamp(at),
        "scts": time.strftime("%y%m%d%H%M", time.gmtime(at)),
        "api-key": api_key,
    }
    if price is not None:
        params["price"] = price
    if client_ref:
        params["client-ref"] = client_ref
    return params


def inbound_params(
    from_: str,
    to: str,
    body: str,
    *,
    api_key: str = DEFAULT_API_KEY,
    message_id: str | None = None,
    concat_ref: str | None = None,
    at: float | None = None,
) -> list[dict[str, str]]:
    """The inbound-message webhook(s) for ``body`` sent by ``from_`` to our number ``to``: one dict,
    or one per part (with ``concat``, ``concat-ref``, ``concat-total``, ``concat-part``) when the
    text is longer than one SMS. ``message_id`` is the (first) part's id."""
    message_type = "text" if is_gsm7(body) else "unicode"
    parts = split_text(body, message_type) or [""]
    stamp = _timestamp(time.time() if at is None else at)
    words = body.split()
    base = {
        "msisdn": _bare(from_),
        "to": _bare(to),
        "type": message_type,
        "keyword": words[0].upper() if words else "",
        "message-timestamp": stamp,
        "api-key": api_key,
    }
    if len(parts) == 1:
        return [{**base, "messageId": message_id or _new_id(), "text": body}]
    ref = concat_ref or str(random.randint(1, 255))
    out = []
    for number, text in enumerate(parts, start=1):
        part_id = message_id if number == 1 and message_id else _new_id()
        out.append(
            {
                **base,
                "messageId": part_id,
                "text": text,
                "concat": "true",
                "concat-ref": ref,
                "concat-total": str(len(parts)),
                "concat-part": str(number),
            }
        )
    return out


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
    return {_bare(k): int(v) for k, v in (value or {}).items()}


def _raw(value: Mapping[str, tuple[int, str]] | None) -> dict[str, tuple[int, str]]:
    return {_bare(k): (int(status), str(body)) for k, (status, body) in (value or {}).items()}


def _method(value: str) -> str:
    value = str(value).upper()
    if value not in WEBHOOK_METHODS:
        raise ValueError(f"webhook_method must be one of {WEBHOOK_METHODS}, got {value!r}")
    return value


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeVonage

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
    server_version = "FakeVonage/1.0"
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
    """An answer: ``payload`` is JSON-encoded unless it is already text."""

    def __init__(self, status: int, payload: Any, content_type: str = "application/json"):
        self.status, self.payload, self.content_type = status, payload, content_type


class FakeVonage:
    """Fake Vonage SMS API on 127.0.0.1. Start with :meth:`start`.

    Controls (thread-safe; assign a new value, or use :meth:`configure`):
    ``fail_numbers`` {to: status} answered with that SMS API status (e.g. 3, 7);
    ``undeliverable_numbers`` {to: err-code} accepted, then reported ``failed``
    with that err-code by auto callbacks; ``raw_answers`` {to: (HTTP status, body
    text)} answered verbatim (an unexpected shape, an HTML error page);
    ``error_rate_500``, ``error_rate_429``, ``hang_rate`` (0..1, drawn from
    ``random.Random(seed)``) and ``hang_seconds``; ``auto_callbacks`` and
    ``callback_delay``; ``webhook_method`` (GET, POST or POST-JSON).
    """

    fail_numbers = _Control(_codes)
    undeliverable_numbers = _Control(_codes)
    raw_answers = _Control(_raw)
    error_rate_500 = _Control(_rate)
    error_rate_429 = _Control(_rate)
    hang_rate = _Control(_rate)
    hang_seconds = _Control(float)
    auto_callbacks = _Control(bool)
    callback_delay = _Control(float)
    webhook_method = _Control(_method)

    _CONTROLS = (
        "fail_numbers",
        "undeliverable_numbers",
        "raw_answers",
        "error_rate_500",
        "error_rate_429",
        "hang_rate",
        "hang_seconds",
        "auto_callbacks",
        "callback_delay",
        "webhook_method",
    )

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        signature_secret: str | None = None,
        signature_method: str = "md5hash",
        seed: int | None = None,
        fail_numbers: Mapping[str, int] | None = None,
        undeliverable_numbers: Mapping[str, int] | None = None,
        raw_answers: Mapping[str, tuple[int, str]] | None = None,
        error_rate_500: float = 0.0,
        error_rate_429: float = 0.0,
        hang_rate: float = 0.0,
        hang_seconds: float = 5.0,
        auto_callbacks: bool = False,
        callback_delay: float = 0.0,
        callback_timeout: float = 10.0,
        webhook_method: str = "POST",
        price: str = DEFAULT_PRICE,
        balance: str = DEFAULT_BALANCE,
        max_parts: int = 10,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        """``accounts`` maps api_key -> api_secret (default: one account,
        :data:`DEFAULT_API_KEY`/:data:`DEFAULT_API_SECRET`). With
        ``signature_secret`` the webhooks the fake sends are signed with
        ``signature_method``, and a signed request (``sig`` instead of
        ``api_secret``) is accepted."""
        if signature_method not in SIGNATURE_METHODS:
            raise ValueError(f"signature_method must be one of {SIGNATURE_METHODS}")
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self.accounts = dict(accounts or {DEFAULT_API_KEY: DEFAULT_API_SECRET})
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.seed = seed
        self.random = random.Random(seed)
        self.callback_timeout = callback_timeout
        self.price = price
        self.initial_balance = Decimal(balance)
        self.max_parts = max_parts
        self.host = host
        self.verbose = verbose
        self.configure(
            fail_numbers=fail_numbers,
            undeliverable_numbers=undeliverable_numbers,
            raw_answers=raw_answers,
            error_rate_500=error_rate_500,
            error_rate_429=error_rate_429,
            hang_rate=hang_rate,
            hang_seconds=hang_seconds,
            auto_callbacks=auto_callbacks,
            callback_delay=callback_delay,
            webhook_method=webhook_method,
        )
        self._balance = self.initial_balance
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
    def start(cls, port: int = 0, **kwargs: Any) -> FakeVonage:
        """Create a server (``kwargs`` as for the constructor) and run it in a
        daemon thread on 127.0.0.1:``port`` (0 = any free port)."""
        return cls(**kwargs).serve(port)

    def serve(self, port: int = 0) -> FakeVonage:
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
                name=f"fake-vonage-{self.port}",
                daemon=True,
            ),
            threading.Thread(
                target=self._callback_worker, name=f"fake-vonage-callbacks-{self.port}", daemon=True
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

    def __enter__(self) -> FakeVonage:
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
        """Forget messages, callbacks and stats; restore the balance; reseed the random generator;
        with ``controls`` also clear failures and rates (hang_seconds, auto_callbacks,
        callback_delay and webhook_method are kept)."""
        with self._lock:
            self._messages.clear()
            self._by_id.clear()
            self._callbacks.clear()
            self._stats.clear()
            self._balance = self.initial_balance
            self.random.seed(self.seed)
            if controls:
                self.configure(
                    fail_numbers=None,
                    undeliverable_numbers=None,
                    raw_answers=None,
                    error_rate_500=0.0,
                    error_rate_429=0.0,
                    hang_rate=0.0,
                )

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages in arrival order (a snapshot): dicts with ``id`` (the first part's
        message-id), ``part_ids``, ``api_key``, ``auth`` (body, basic or signature), ``encoding``
        (form, json or query), ``to`` and ``from`` (as sent: no ``+``), ``body`` (= ``text``),
        ``type``, ``callback``, ``status_report_req``, ``client_ref``, ``segments``, ``price``
        (per part), ``received_at`` (epoch seconds), ``status`` (the last receipt's)."""
        with self._lock:
            return [dict(m, part_ids=list(m["part_ids"])) for m in self._messages]

    def message(self, message_id: str) -> dict[str, Any]:
        """One accepted message by its id or any part's id (a copy); KeyError if unknown."""
        with self._lock:
            return dict(self._by_id[message_id])

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Webhooks sent: ``kind`` (status or inbound), ``url``, ``method``, ``params``,
        ``response_status`` (None on a connection error), ``error``."""
        with self._lock:
            return [dict(c) for c in self._callbacks]

    @property
    def stats(self) -> Counter[str]:
        """Request counts by outcome (a snapshot; missing keys read 0): ``connections``,
        ``requests``, ``created``, ``auth_failed``, ``rate_limited``, ``server_error``, ``raw``,
        ``invalid``, ``failed_number``, ``hung``, ``not_found``, ``callbacks_sent``,
        ``callback_errors``, ``inbound_sent``."""
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
        self._count("requests")
        try:
            if split.path.startswith("/_fake/"):
                self._control_endpoint(method, split.path)
            if split.path.rstrip("/") != "/sms/json":
                self._count("not_found")
                raise _Respond(404, "Not Found", "text/plain")
            params, encoding = self._params(h, method, split.query, raw)
            self._send(h, params, encoding)
        except _Respond as r:
            if r.status == 0:  # stopping during a hang: drop the connection
                h.close_connection = True
                return
            self._write(h, r.status, r.payload, r.content_type)

    @staticmethod
    def _write(h: _Handler, status: int, payload: Any, content_type: str) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        h.send_response(status)
        h.send_header("Content-Type", content_type + ("" if "charset" in content_type else "; charset=utf-8"))
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
        raise _Respond(404, "Not Found", "text/plain")

    @staticmethod
    def _params(h: _Handler, method: str, query: str, raw: bytes) -> tuple[dict[str, str], str]:
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        if method == "GET":
            return params, "query"
        if "json" in (h.headers.get("Content-Type") or "").lower():
            try:
                data = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise _Respond(400, "Bad Request", "text/plain") from None
            if not isinstance(data, dict):
                raise _Respond(400, "Bad Request", "text/plain")
            params.update({str(k): str(v) for k, v in data.items()})
            return params, "json"
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params.update({k: v[0] for k, v in form.items()})
        return params, "form"

    def _authenticate(self, h: _Handler, params: dict[str, str]) -> tuple[str, str]:
        """(api_key, how) of a request, or a status-2/4/14 answer."""
        scheme, _, encoded = (h.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                key, _, secret = b64decode(encoded).decode().partition(":")
            except ValueError:
                key = secret = ""
            if key and self.accounts.get(key) == secret:
                return key, "basic"
            self._count("auth_failed")
            raise _Respond(200, answer_error(4))
        key = params.get("api_key", "")
        if not key:
            self._count("invalid")
            raise _Respond(200, answer_error(2, param="api_key"))
        if "sig" in params and "api_secret" not in params and self.signature_secret:
            signed = {k: v for k, v in params.items() if k != "sig"}
            expected = _signature(signed, self.signature_secret, self.signature_method)
            if key in self.accounts and hmac.compare_digest(params["sig"].lower(), expected.lower()):
                return key, "signature"
            self._count("auth_failed")
            raise _Respond(200, answer_error(14))
        if "api_secret" not in params:
            self._count("invalid")
            raise _Respond(200, answer_error(2, param="api_secret"))
        if self.accounts.get(key) != params["api_secret"]:
            self._count("auth_failed")
            raise _Respond(200, answer_error(4))
        return key, "body"

    def _faults(self, to: str) -> None:
        """Hangs, rate limits, server errors and raw answers, as the controls say."""
        with self._lock:
            hang = self.random.random() < self._hang_rate
            draw = self.random.random()
            e429, e500 = self._error_rate_429, self._error_rate_500
            hang_seconds = self._hang_seconds
            raw = self._raw_answers.get(to)
        if hang:
            self._count("hung")
            if self._stopping.wait(hang_seconds):
                raise _Respond(0, None)
        if draw < e429:
            self._count("rate_limited")
            raise _Respond(
                429,
                {"type": "https://developer.vonage.com/api-errors#throttled", "title": "Too Many Requests"},
            )
        if draw < e429 + e500:
            self._count("server_error")
            raise _Respond(500, "<html><body><h1>500 Internal Server Error</h1></body></html>", "text/html")
        if raw is not None:
            self._count("raw")
            raise _Respond(raw[0], raw[1], "application/json")

    def _validate(self, params: dict[str, str]) -> str:
        """The message type, or a status answer for a request Vonage would refuse."""
        for name in ("from", "to", "text"):
            if not params.get(name):
                self._count("invalid")
                raise _Respond(200, answer_error(2, param=f"{name} param"))
        to, from_ = params["to"], params["from"]
        message_type = params.get("type") or "text"
        status, param = None, ""
        if not to.isdigit() or not 7 <= len(to) <= 15:
            status, param = 3, "to address"
        elif "+" in from_ or not from_.replace(" ", "").isalnum():
            status = 15
        elif message_type not in ("text", "unicode"):
            status, param = 3, "type"
        elif params.get("callback") and not params["callback"].startswith(("http://", "https://")):
            status = 23
        elif len(split_text(params["text"], message_type)) > self.max_parts:
            status = 12
        if status is not None:
            self._count("invalid")
            raise _Respond(200, answer_error(status, param=param, to=to, from_=from_))
        return message_type

    def _send(self, h: _Handler, params: dict[str, str], encoding: str) -> None:
        self._faults(_bare(params.get("to", "")))
        api_key, how = self._authenticate(h, params)
        message_type = self._validate(params)
        to, from_, text = params["to"], params["from"], params["text"]
        with self._lock:
            status = self._fail_numbers.get(to)
        if status is not None:
            self._count("failed_number")
            raise _Respond(200, answer_error(status, to=to, from_=from_))
        parts = split_text(text, message_type)
        part_ids = [_new_id() for _ in parts]
        msg = {
            "id": part_ids[0],
            "part_ids": part_ids,
            "api_key": api_key,
            "auth": how,
            "encoding": encoding,
            "to": to,
            "from": from_,
            "body": text,
            "text": text,
            "type": message_type,
            "callback": params.get("callback") or None,
            "status_report_req": params.get("status-report-req"),
            "client_ref": params.get("client-ref") or None,
            "segments": len(parts),
            "price": self.price,
            "received_at": time.time(),
            "status": "accepted",
        }
        entries = []
        with self._lock:
            for part_id in part_ids:
                self._balance -= Decimal(self.price)
                entry = {
                    "to": to,
                    "message-id": part_id,
                    "status": "0",
                    "remaining-balance": f"{self._balance:.8f}",
                    "message-price": self.price,
                    "network": DEFAULT_NETWORK,
                }
                if msg["client_ref"]:
                    entry["client-ref"] = msg["client_ref"]
                entries.append(entry)
                self._by_id[part_id] = msg
            self._messages.append(msg)
            self._stats["created"] += 1
            auto = self._auto_callbacks and msg["callback"] is not None
        self._write(h, 200, {"message-count": str(len(entries)), "messages": entries}, "application/json")
        if auto:
            with self._lock:
                self._cb_pending += 1
            self._cb_queue.put(msg["id"])

    # -- webhooks to the app -------------------------------------------------

    def _deliver(self, kind: str, url: str, params: dict[str, str], method: str | None) -> int:
        """Send one webhook as Vonage does (signed when the fake has a signature secret); returns
        the receiver's HTTP status; connection errors raise ``OSError``."""
        method = _method(method or self.webhook_method)
        if self.signature_secret:
            params = sign_params(params, self.signature_secret, self.signature_method)
        headers = {"User-Agent": "Vonage/SMS"}
        data = None
        if method == "GET":
            url = url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        elif method == "POST":
            data = urllib.parse.urlencode(params).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(params).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method.split("-")[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        record: dict[str, Any] = {
            "kind": kind,
            "url": url,
            "method": method,
            "params": params,
            "response_status": None,
            "error": None,
        }
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
                self._stats[
                    ("callbacks_sent" if kind == "status" else "inbound_sent") if ok else "callback_errors"
                ] += 1
        return record["response_status"]

    def send_status_callback(
        self,
        url: str | None,
        message_id: str,
        status: str,
        err_code: int | str = 0,
        *,
        method: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """Send Vonage's delivery receipt of ``message_id`` (any part's id of an accepted message, or
        any id) with ``status`` (delivered, expired, failed, rejected, accepted, buffered, unknown)
        and ``err-code`` to ``url`` (default: the message's callback). Updates the recorded status.
        Returns the receiver's HTTP status."""
        with self._lock:
            msg = self._by_id.get(message_id)
            if msg is not None:
                msg["status"] = status
                url = url or msg["callback"]
                params = status_params(
                    message_id,
                    status,
                    msisdn=msg["to"],
                    to=msg["from"],
                    err_code=err_code,
                    price=msg["price"],
                    client_ref=msg["client_ref"],
                    api_key=msg["api_key"],
                )
            else:
                params = status_params(
                    message_id, status, msisdn="447700900000", to="447700900001", err_code=err_code
                )
        if not url:
            raise ValueError(f"message {message_id} has no callback; pass url")
        params.update({k: str(v) for k, v in (extra or {}).items()})
        return self._deliver("status", url, params, method)

    def send_inbound_sms(
        self,
        url: str,
        from_: str,
        to: str,
        body: str,
        *,
        method: str | None = None,
        message_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """Send an inbound message from ``from_`` to our number ``to`` as Vonage would: one webhook,
        or one per part of a long text. Returns the HTTP status of the last."""
        api_key = next(iter(self.accounts))
        status = 0
        for params in inbound_params(from_, to, body, api_key=api_key, message_id=message_id):
            params.update({k: str(v) for k, v in (extra or {}).items()})
            status = self._deliver("inbound", url, params, method)
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
                    code = self._undeliverable_numbers.get(msg["to"]) if msg else None
                if msg is None:
                    continue  # reset() since
                for part_id in msg["part_ids"]:
                    try:
                        if code is None:
                            self.send_status_callback(None, part_id, "delivered")
                        else:
                            self.send_status_callback(None, part_id, "failed", code)
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

    p = argparse.ArgumentParser(description="Fake Vonage SMS API server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8098)
    p.add_argument(
        "--account",
        action="append",
        type=pair,
        metavar="API_KEY:API_SECRET",
        help=f"repeatable; default {DEFAULT_API_KEY}:{DEFAULT_API_SECRET}",
    )
    p.add_argument("--signature-secret", help="sign the webhooks sent (and accept signed requests)")
    p.add_argument("--signature-method", default="md5hash", choices=SIGNATURE_METHODS)
    p.add_argument("--fail", action="append", type=pair, metavar="NUMBER:STATUS", default=[])
    p.add_argument("--undeliverable", action="append", type=pair, metavar="NUMBER:ERR_CODE", default=[])
    p.add_argument("--seed", type=int)
    p.add_argument("--error-rate-500", type=float, default=0.0)
    p.add_argument("--error-rate-429", type=float, default=0.0)
    p.add_argument("--hang-rate", type=float, default=0.0)
    p.add_argument("--hang-seconds", type=float, default=5.0)
    p.add_argument("--auto-callbacks", action="store_true")
    p.add_argument("--callback-delay", type=float, default=0.0)
    p.add_argument("--webhook-method", default="POST", choices=WEBHOOK_METHODS)
    p.add_argument("--price", default=DEFAULT_PRICE)
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)

    fake = FakeVonage(
        dict(args.account) if args.account else None,
        signature_secret=args.signature_secret,
        signature_method=args.signature_method,
        seed=args.seed,
        fail_numbers={n: int(c) for n, c in args.fail},
        undeliverable_numbers={n: int(c) for n, c in args.undeliverable},
        error_rate_500=args.error_rate_500,
        error_rate_429=args.error_rate_429,
        hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds,
        auto_callbacks=args.auto_callbacks,
        callback_delay=args.callback_delay,
        webhook_method=args.webhook_method,
        price=args.price,
        host=args.host,
        verbose=args.verbose,
    )
    fake.serve(args.port)
    print(f"fake Vonage listening on {fake.url}", flush=True)
    for key, secret in fake.accounts.items():
        print(f"  api_key {key}  api_secret {secret}", flush=True)
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
