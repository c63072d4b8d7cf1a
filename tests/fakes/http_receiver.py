"""A small local HTTP receiver for forwarding tests and benchmarks.

It records every request (path, headers, JSON body) and answers according to
``status`` (default 200), or pops the next answer from ``script`` first. An
answer is an int status code, or ``"hang"``: hold the request without answering
until ``hang_seconds`` pass or the receiver stops (the client times out first).
A 3xx answer sends ``Location: redirect_to`` (default ``/redirected``). Given an
``ssl_context`` (a server-side ``ssl.SSLContext``), it speaks https.

::

    with Receiver.start() as rx:
        rx.script = [500, "hang", 200]   # then rx.status for the rest
        ...                              # POST to rx.url + "/inbox"
        rx.requests                      # [{"path", "headers", "body", "json", "answer"}]
        rx.bodies()                      # the JSON bodies, in arrival order

Command line, for a benchmark in another process::

    python tests/http_receiver.py --port 8098 --status 200
"""

from __future__ import annotations

import argparse
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # else keep-alive stalls at ~23 requests/s
    server: _Server

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        rx = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = rx._next_answer()
        entry = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "answer": answer,
        }
        try:
            entry["json"] = json.loads(body) if body else None
        except ValueError:
            entry["json"] = None
        with rx._lock:
            rx._requests.append(entry)
            rx.count += 1
        if answer == "hang":
            rx._release.wait(rx.hang_seconds)
            answer = 200
        text = rx.body_for(answer).encode()
        try:
            self.send_response(answer)
            if 300 <= answer < 400:
                self.send_header("Location", rx.redirect_to)
            content_type = (
                "application/json" if rx.answer_body and 200 <= answer < 300 else "text/plain; charset=utf-8"
            )
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
        except OSError:
            pass  # the client gave up (timeout)

    do_PUT = do_POST
    do_GET = do_POST


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Receiver:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        status: int = 200,
        record: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.status = status
        self.script: list = []
        self.hang_seconds = 30.0
        self.redirect_to = "/redirected"
        self.answer_body = None  # what a 2xx answer says (default "ok"): text, or a callable of the count
        self.record = record
        self.count = 0
        self._requests: list[dict] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.receiver = self
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        # A short poll: stop() waits for it, and tests start and stop many receivers.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @classmethod
    def start(cls, **kw) -> Receiver:
        rx = cls(**kw)
        rx._thread.start()
        return rx

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_answer(self):
        with self._lock:
            if self.script:
                return self.script.pop(0)
            return self.status

    def body_for(self, status: int) -> str:
        if 200 <= status < 300:
            # ``answer_body``: e.g. a generic HTTP gateway's JSON answer with a message id; a
            # callable makes each answer from the number of requests so far.
            body = self.answer_body(self.count) if callable(self.answer_body) else self.answer_body
            return body or "ok"
        return f"error {status}: " + "the receiver is unhappy. " * 40  # > 500 characters

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    def bodies(self) -> list:
        return [r["json"] for r in self.requests]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self.count = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--status", type=int, default=200)
    args = parser.parse_args()
    rx = Receiver.start(host=args.host, port=args.port, status=args.status)
    print(f"receiving on {rx.url} (answering {args.status}); Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        rx.stop()


if __name__ == "__main__":
    main()
