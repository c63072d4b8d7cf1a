"""What every fake provider server is and what it gets: the scaffolding the fakes share.

A fake provider server is an HTTP server on loopback that speaks one SMS provider's wire format
(its send API, the look-ups it has, its errors, its answers), records what it is sent, and sends
the app the webhooks the provider would send (delivery reports, inbound messages), for tests and
benchmarks. A provider's module (``twilio_server.py``, ``vonage_server.py``...) holds only what is
that provider's: its paths, authentication, answers and errors, records, webhooks, and flags. All
else is here, and is the same for every fake:

* **Lifecycle.** ``Fake.start(port, **options)`` (or ``with Fake(...) as fake``) serves on
  ``host`` (127.0.0.1) at ``port`` (0: any free port) in daemon threads; ``fake.url`` is
  ``http://<host>:<port>``. ``stop()`` closes the open keep-alive connections and ends hangs.
* **Controls.** A fake's settings are :class:`Control` attributes: thread-safe, converted and
  checked when set, given to the constructor as keywords, set several at once (atomically) with
  ``configure()`` (an unknown name is a ``TypeError``). A mapping control given ``None`` is empty.
* **Faults.** Every fake has ``error_rate_500``, ``error_rate_429``, ``hang_rate`` (0..1) and
  ``hang_seconds``, drawn from ``random.Random(seed)``, two draws a send request: a hang sleeps
  ``hang_seconds`` and then answers normally (a request that timed out on the client is still
  recorded, as with the real provider; if the server stops meanwhile the connection drops); then
  a 429 or a 500, each answered the way the provider answers it.
* **Records.** ``messages`` (accepted messages, a snapshot), ``message(id)``, ``callbacks``
  (the webhooks sent, with the receiver's status or the connection error) and ``stats``
  (counts: ``requests``, ``connections``, and outcome keys such as ``created``, ``hung``,
  ``rate_limited``, ``server_error``, ``callbacks_sent``, ``callback_errors``).
  ``reset()`` forgets them all and reseeds the generator; with ``controls`` (the default) it
  also puts the controls declared ``reset=True`` (failures and fault rates) back to their
  defaults.
* **Auto callbacks.** A worker thread sends the webhooks a fake queues for its accepted messages,
  one message at a time, after the fake's delay; ``wait_for_callbacks()`` waits until those
  queued so far are sent (those of a request are queued by the time its answer is read).
* **Control endpoints** (no auth), for another process: ``GET /_fake/stats`` answers
  ``{"stats": {...}, "messages": <accepted messages>}``, ``GET /_fake/messages`` the list of
  ``messages``, ``POST /_fake/reset`` ``{"reset": true}``; any other ``/_fake/`` path is the
  provider's own 404.
* **Command line.** ``python tests/fakes/<kind>_server.py --port N [flags]`` prints
  ``fake <Name> listening on <url>`` and the credentials, serves until interrupted (Ctrl-C),
  then prints its stats as one line of JSON. Every fake takes ``--host``, ``--port``,
  ``--fail NUMBER:X``, ``--undeliverable NUMBER:X``, ``--seed``, ``--error-rate-500``,
  ``--error-rate-429``, ``--hang-rate``, ``--hang-seconds`` and ``--verbose``.

A provider's fake subclasses :class:`FakeServer`: it sets ``name``, declares its own controls
(with their defaults), and writes ``_api`` (its routes: an answer is a raised :class:`Respond`),
``_not_found``, ``_fault_answer`` and ``_auto_callback``. Its ``main()`` uses :func:`parser`,
:func:`add_fault_options`, :func:`parse` and :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import socket
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = [
    "Control",
    "FakeServer",
    "Handler",
    "Respond",
    "add_fault_options",
    "mapping",
    "optional",
    "pair",
    "parse",
    "parser",
    "rate",
    "raw_answer",
    "run",
]


# -- controls --------------------------------------------------------------------------------------


class Control:
    """A setting of a fake, read and written under the fake's lock.

    ``convert`` turns (and checks) a value given; ``default`` is the value when the constructor is
    not given one; ``reset=True`` puts the default back on ``reset()`` (failures, fault rates),
    otherwise a reset keeps the value (delays, prices...).
    """

    def __init__(self, convert: Callable[[Any], Any], default: Any = None, *, reset: bool = False) -> None:
        self.convert = convert
        self.default = default
        self.reset = reset

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = "_" + name  # where the value is kept: no method may have this name
        if hasattr(owner, self.attr):
            raise TypeError(f"{owner.__name__}.{self.attr} would hide the value of control {name}")

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        with obj._lock:
            return getattr(obj, self.attr)

    def __set__(self, obj: Any, value: Any) -> None:
        value = self.convert(value)
        with obj._lock:
            setattr(obj, self.attr, value)


def rate(value: float) -> float:
    """A probability control: a float within 0..1."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"rate must be within 0..1, got {value}")
    return value


def mapping(
    value: Callable[[Any], Any], key: Callable[[Any], str] = str
) -> Callable[[Mapping[Any, Any] | None], dict[str, Any]]:
    """A mapping control's converter: ``None`` is empty; each key and value converted."""

    def convert(given: Mapping[Any, Any] | None) -> dict[str, Any]:
        return {key(k): value(v) for k, v in (given or {}).items()}

    return convert


def optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A converter that keeps ``None`` (a control that may be unset)."""
    return lambda value: None if value is None else convert(value)


def raw_answer(value: Iterable[Any]) -> tuple[int, str]:
    """An answer given verbatim: (HTTP status, body text)."""
    status, body = value
    return int(status), str(body)


# -- HTTP --------------------------------------------------------------------------------------------


class Respond(Exception):
    """An answer, raised from anywhere in a request's handling.

    ``payload`` is sent as JSON unless it is text (``str`` or ``bytes``), sent as it is;
    ``content_type`` defaults to the fake's ``json_type`` or ``text_type``. ``headers`` are added
    after the fake's own. ``callbacks``: keys of messages whose auto callbacks follow this answer
    (queued once it is written, counted as pending before, so that ``wait_for_callbacks()`` called
    on the answer waits for them). Status 0 drops the connection without an answer (a hang cut by
    ``stop()``).
    """

    def __init__(
        self,
        status: int,
        payload: Any,
        content_type: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        callbacks: Iterable[str] = (),
    ) -> None:
        super().__init__(status)
        self.status, self.payload, self.content_type = status, payload, content_type
        self.headers, self.callbacks = dict(headers or {}), list(callbacks)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeServer

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


class Handler(BaseHTTPRequestHandler):
    """Hands each request of the methods its fake takes (``methods``) to ``fake._handle``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    sys_version = ""
    server: _HTTPServer

    def version_string(self) -> str:
        return f"Fake{self.server.fake.name}/1.0 {self.sys_version}"

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

    def _dispatch(self) -> None:
        if self.command not in self.server.fake.methods:
            # what BaseHTTPRequestHandler answers a method it has no do_ method for
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        self.server.fake._handle(self, self.command)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()


# -- the base of every fake ------------------------------------------------------------------------


class FakeServer:
    """A fake provider server on 127.0.0.1; see the module's notes. Start with :meth:`start`.

    A subclass sets ``name`` (as in ``fake <name> listening on``, the ``Server`` header
    ``Fake<name>/1.0`` and thread names), ``methods`` (the HTTP methods its API takes),
    ``json_type`` and ``text_type`` (its answers' default Content-Types), declares its controls and
    writes the hooks below. Its records go in ``_messages`` (in order) and ``_by_id``.
    """

    name = "Server"
    methods: tuple[str, ...] = ("GET", "POST")
    json_type = "application/json"
    text_type = "text/plain; charset=utf-8"

    error_rate_500 = Control(rate, 0.0, reset=True)
    error_rate_429 = Control(rate, 0.0, reset=True)
    hang_rate = Control(rate, 0.0, reset=True)
    hang_seconds = Control(float, 5.0)

    def __init__(
        self,
        *,
        seed: int | None = None,
        callback_timeout: float = 10.0,
        host: str = "127.0.0.1",
        verbose: bool = False,
        **controls: Any,
    ) -> None:
        """``controls``: initial values of the controls (the others take their defaults);
        ``callback_timeout``: seconds a webhook sent may take."""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self.seed = seed
        self.random = random.Random(seed)
        self.callback_timeout = callback_timeout
        self.host = host
        self.verbose = verbose
        self.configure(**({name: c.default for name, c in self._controls().items()} | controls))
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

    # -- what a provider writes ----------------------------------------------------------------

    def _api(self, h: Handler, method: str, url: urllib.parse.SplitResult, raw: bytes) -> None:
        """Answer a request to the provider's API (anything but ``/_fake/``) by raising :class:`Respond`."""
        raise NotImplementedError

    def _not_found(self, path: str) -> Respond:
        """The provider's answer to a path it does not have."""
        raise NotImplementedError

    def _fault_answer(self, fault: str) -> Respond:
        """The provider's answer to a drawn fault: ``rate_limited`` (429) or ``server_error`` (500)."""
        raise NotImplementedError

    def _auto_callback(self, key: str) -> None:
        """Send the auto callbacks of the queued message ``key`` (nothing if it is gone since);
        an ``OSError`` (receiver unreachable) is recorded and passed over."""
        raise NotImplementedError

    def _auto_callback_delay(self) -> float:
        """Seconds an auto callback waits: the ``callback_delay`` control of a fake that has one."""
        return getattr(self, "callback_delay", 0.0)

    def _forget(self) -> None:
        """Clear the provider's own records on ``reset()`` (under the lock)."""

    def _message_count(self) -> int:
        """Accepted messages, for ``/_fake/stats`` (under the lock)."""
        return len(self._messages)

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def start(cls, port: int = 0, **kwargs: Any) -> Self:
        """Create a server (``kwargs`` as for the constructor) and run it in daemon threads on
        127.0.0.1:``port`` (0 = any free port)."""
        return cls(**kwargs).serve(port)

    def serve(self, port: int = 0) -> Self:
        """Run this server in daemon threads; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("already running")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, port), Handler)
        httpd.fake = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        label = f"fake-{self.name.lower()}"
        self._threads = [
            threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{label}-{self.port}",
                daemon=True,
            ),
            threading.Thread(
                target=self._callback_worker, name=f"{label}-callbacks-{self.port}", daemon=True
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

    def __enter__(self) -> Self:
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

    # -- controls and records ------------------------------------------------------------------

    @classmethod
    def _controls(cls) -> dict[str, Control]:
        """The controls of this fake by name, the base's first."""
        return {
            name: value
            for klass in reversed(cls.__mro__)
            for name, value in vars(klass).items()
            if isinstance(value, Control)
        }

    def configure(self, **controls: Any) -> None:
        """Set several controls at once (atomically); ``None`` leaves a mapping control empty."""
        known = self._controls()
        unknown = set(controls) - set(known)
        if unknown:
            raise TypeError(f"unknown controls: {sorted(unknown)}")
        converted = {name: known[name].convert(value) for name, value in controls.items()}
        with self._lock:
            for name, value in converted.items():
                setattr(self, "_" + name, value)

    def reset(self, *, controls: bool = True) -> None:
        """Forget messages, callbacks and stats; reseed the random generator; with ``controls`` also
        put the failures and rates back to their defaults (delays, prices and the like are kept)."""
        with self._lock:
            self._messages.clear()
            self._by_id.clear()
            self._callbacks.clear()
            self._stats.clear()
            self._forget()
            self.random.seed(self.seed)
            if controls:
                self.configure(**{name: c.default for name, c in self._controls().items() if c.reset})

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages in arrival order (a snapshot; the fake's class says their keys)."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def message(self, message_id: str) -> dict[str, Any]:
        """One accepted message by id (a copy); KeyError if unknown."""
        with self._lock:
            return dict(self._by_id[message_id])

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Webhooks sent (a snapshot): what was sent, ``response_status`` (None on a connection
        error) and ``error``."""
        with self._lock:
            return [dict(c) for c in self._callbacks]

    @property
    def stats(self) -> Counter[str]:
        """Request counts by outcome (a snapshot; missing keys read 0; the fake's class lists them)."""
        with self._lock:
            return Counter(self._stats)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    # -- HTTP ------------------------------------------------------------------------------------

    def _handle(self, h: Handler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(h.path)
        self._count("requests")
        try:
            if url.path.startswith("/_fake/"):
                self._control_endpoint(method, url.path)
            self._api(h, method, url, raw)
        except Respond as r:
            if r.status == 0:  # stopping during a hang: drop the connection
                h.close_connection = True
                return
            with self._lock:
                self._cb_pending += len(r.callbacks)
            try:
                self._write(h, r)
            finally:
                for key in r.callbacks:
                    self._cb_queue.put(key)

    def _response_headers(self) -> dict[str, str]:
        """Headers the provider adds to every answer (a request id...)."""
        return {}

    def _write(self, h: Handler, r: Respond) -> None:
        if isinstance(r.payload, str | bytes):
            data = r.payload.encode() if isinstance(r.payload, str) else r.payload
            content_type = r.content_type or self.text_type
        else:
            data = json.dumps(r.payload).encode()
            content_type = r.content_type or self.json_type
        h.send_response(r.status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for name, value in (self._response_headers() | r.headers).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    def _control_endpoint(self, method: str, path: str) -> None:
        if method == "GET" and path == "/_fake/stats":
            with self._lock:
                payload = {"stats": dict(self._stats), "messages": self._message_count()}
            raise Respond(200, payload)
        if method == "GET" and path == "/_fake/messages":
            raise Respond(200, self.messages)
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            raise Respond(200, {"reset": True})
        raise self._not_found(path)

    def _draw_faults(self) -> None:
        """Draw this request's faults: a hang (then go on), or a 429 or 500 raised as the
        provider's :meth:`_fault_answer`."""
        with self._lock:
            hang = self.random.random() < self._hang_rate
            draw = self.random.random()
            e429, e500 = self._error_rate_429, self._error_rate_500
            hang_seconds = self._hang_seconds
        if hang:
            self._count("hung")
            if self._stopping.wait(hang_seconds):
                raise Respond(0, None)
        fault = "rate_limited" if draw < e429 else "server_error" if draw < e429 + e500 else None
        if fault is not None:
            self._count(fault)
            raise self._fault_answer(fault)

    # -- webhooks to the app -------------------------------------------------------------------

    def _post(self, url: str, data: bytes | None, headers: Mapping[str, str], method: str = "POST") -> int:
        """Send one request to the app (no proxy); the receiver's HTTP status. A connection error
        raises ``OSError``."""
        request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=self.callback_timeout) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code

    def _post_recorded(
        self,
        record: dict[str, Any],
        data: bytes | None,
        headers: Mapping[str, str],
        method: str = "POST",
        counter: str = "callbacks_sent",
    ) -> int:
        """:meth:`_post` to ``record["url"]``, recorded in ``callbacks`` (``record`` plus
        ``response_status`` and ``error``) and counted in ``counter`` or ``callback_errors``."""
        record.update(response_status=None, error=None)
        try:
            record["response_status"] = self._post(record["url"], data, headers, method)
        except OSError as exc:
            record["error"] = repr(exc)
            raise
        finally:
            with self._lock:
                self._callbacks.append(record)
                self._stats[counter if record["response_status"] is not None else "callback_errors"] += 1
        return record["response_status"]

    def _queue_callbacks(self, keys: Iterable[str]) -> None:
        """Queue auto callbacks now, one :meth:`_auto_callback` each (they may then reach the app
        before the answer does; :class:`Respond`'s ``callbacks`` queue them after it)."""
        keys = list(keys)
        with self._lock:
            self._cb_pending += len(keys)
        for key in keys:
            self._cb_queue.put(key)

    def _callback_worker(self) -> None:
        while True:
            key = self._cb_queue.get()
            if key is None:
                return
            try:
                delay = self._auto_callback_delay()
                if delay and self._stopping.wait(delay):
                    continue
                try:
                    self._auto_callback(key)
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


# -- the command line ------------------------------------------------------------------------------


def pair(text: str) -> tuple[str, str]:
    """A ``KEY:VALUE`` argument (split at the last colon)."""
    key, sep, value = text.rpartition(":")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY:VALUE, got {text!r}")
    return key, value


def parser(description: str, port: int) -> argparse.ArgumentParser:
    """A fake's command line: ``--host`` and ``--port`` (default ``port``); the provider adds its
    credentials, then :func:`add_fault_options`, then its own flags."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=port)
    return p


def add_fault_options(p: argparse.ArgumentParser, *, fail: str, undeliverable: str) -> None:
    """``--fail`` and ``--undeliverable`` (repeatable ``NUMBER:X``, metavars ``fail`` and
    ``undeliverable``), ``--seed`` and the fault rates."""
    p.add_argument("--fail", action="append", type=pair, metavar=fail, default=[])
    p.add_argument("--undeliverable", action="append", type=pair, metavar=undeliverable, default=[])
    p.add_argument("--seed", type=int)
    p.add_argument("--error-rate-500", type=float, default=0.0)
    p.add_argument("--error-rate-429", type=float, default=0.0)
    p.add_argument("--hang-rate", type=float, default=0.0)
    p.add_argument("--hang-seconds", type=float, default=5.0)


def parse(p: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Add ``--verbose`` and parse: the arguments, and the constructor's keywords every fake takes
    (seed, failures, fault rates, host, verbose)."""
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    options = {
        "seed": args.seed,
        "fail_numbers": dict(args.fail),
        "undeliverable_numbers": dict(args.undeliverable),
        "error_rate_500": args.error_rate_500,
        "error_rate_429": args.error_rate_429,
        "hang_rate": args.hang_rate,
        "hang_seconds": args.hang_seconds,
        "host": args.host,
        "verbose": args.verbose,
    }
    return args, options


def run(fake: FakeServer, port: int, credentials: Iterable[str]) -> None:
    """Serve ``fake`` on ``port`` until interrupted: print ``fake <name> listening on <url>`` and a
    line per credential, and on the way out the stats as JSON."""
    fake.serve(port)
    print(f"fake {fake.name} listening on {fake.url}", flush=True)
    for line in credentials:
        print(f"  {line}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        print(json.dumps(dict(fake.stats), sort_keys=True), flush=True)
