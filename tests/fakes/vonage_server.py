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

Its lifecycle, controls, ``/_fake/`` endpoints and command line are every fake's: see ``fake_server.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import random
import secrets
import sys
import time
import urllib.parse
from base64 import b64decode
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: put the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from messaging.lib.segments import is_gsm7  # noqa: E402
from tests.fakes.fake_server import (  # noqa: E402
    Control,
    FakeServer,
    Handler,
    Respond,
    add_fault_options,
    mapping,
    pair,
    parse,
    parser,
    raw_answer,
    run,
)

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


def _method(value: str) -> str:
    value = str(value).upper()
    if value not in WEBHOOK_METHODS:
        raise ValueError(f"webhook_method must be one of {WEBHOOK_METHODS}, got {value!r}")
    return value


class FakeVonage(FakeServer):
    """Fake Vonage SMS API on 127.0.0.1. Start with :meth:`start`.

    Controls (thread-safe; assign a new value, or use :meth:`configure`):
    ``fail_numbers`` {to: status} answered with that SMS API status (e.g. 3, 7);
    ``undeliverable_numbers`` {to: err-code} accepted, then reported ``failed``
    with that err-code by auto callbacks; ``raw_answers`` {to: (HTTP status, body
    text)} answered verbatim (an unexpected shape, an HTML error page);
    ``error_rate_500``, ``error_rate_429``, ``hang_rate`` (0..1, drawn from
    ``random.Random(seed)``) and ``hang_seconds``; ``auto_callbacks`` and
    ``callback_delay``; ``webhook_method`` (GET, POST or POST-JSON). ``reset()``
    also restores the balance.

    Records: ``messages`` are dicts with ``id`` (the first part's message-id),
    ``part_ids``, ``api_key``, ``auth`` (body, basic or signature), ``encoding``
    (form, json or query), ``to`` and ``from`` (as sent: no ``+``), ``body`` (=
    ``text``), ``type``, ``callback``, ``status_report_req``, ``client_ref``,
    ``segments``, ``price`` (per part), ``received_at`` (epoch seconds), ``status``
    (the last receipt's); ``message(id)`` takes any part's id. ``callbacks``
    (webhooks sent) have ``kind`` (status or inbound), ``url``, ``method``,
    ``params``, ``response_status`` (None on a connection error), ``error``;
    ``stats`` counts ``connections``, ``requests``, ``created``, ``auth_failed``,
    ``rate_limited``, ``server_error``, ``raw``, ``invalid``, ``failed_number``,
    ``hung``, ``not_found``, ``callbacks_sent``, ``callback_errors``,
    ``inbound_sent``.
    """

    name = "Vonage"
    json_type = "application/json; charset=utf-8"

    fail_numbers = Control(mapping(int, key=_bare), reset=True)
    undeliverable_numbers = Control(mapping(int, key=_bare), reset=True)
    raw_answers = Control(mapping(raw_answer, key=_bare), reset=True)
    auto_callbacks = Control(bool, False)
    callback_delay = Control(float, 0.0)
    webhook_method = Control(_method, "POST")

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        signature_secret: str | None = None,
        signature_method: str = "md5hash",
        price: str = DEFAULT_PRICE,
        balance: str = DEFAULT_BALANCE,
        max_parts: int = 10,
        **options: Any,
    ) -> None:
        """``accounts`` maps api_key -> api_secret (default: one account,
        :data:`DEFAULT_API_KEY`/:data:`DEFAULT_API_SECRET`). With
        ``signature_secret`` the webhooks the fake sends are signed with
        ``signature_method``, and a signed request (``sig`` instead of
        ``api_secret``) is accepted. ``options``: the controls, ``seed``,
        ``callback_timeout`` (10 s), ``host`` and ``verbose``."""
        if signature_method not in SIGNATURE_METHODS:
            raise ValueError(f"signature_method must be one of {SIGNATURE_METHODS}")
        self.accounts = dict(accounts or {DEFAULT_API_KEY: DEFAULT_API_SECRET})
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.price = price
        self.initial_balance = Decimal(balance)
        self.max_parts = max_parts
        super().__init__(**options)
        self._balance = self.initial_balance

    def _forget(self) -> None:
        self._balance = self.initial_balance

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages in arrival order (a snapshot; see the class for their keys)."""
        with self._lock:
            return [dict(m, part_ids=list(m["part_ids"])) for m in self._messages]

    # -- HTTP ----------------------------------------------------------------

    def _api(self, h: Handler, method: str, url: urllib.parse.SplitResult, raw: bytes) -> None:
        if url.path.rstrip("/") != "/sms/json":
            self._count("not_found")
            raise self._not_found(url.path)
        params, encoding = self._params(h, method, url.query, raw)
        self._send(h, params, encoding)

    def _not_found(self, path: str) -> Respond:
        return Respond(404, "Not Found")

    def _fault_answer(self, fault: str) -> Respond:
        if fault == "rate_limited":
            return Respond(
                429,
                {"type": "https://developer.vonage.com/api-errors#throttled", "title": "Too Many Requests"},
            )
        html = "<html><body><h1>500 Internal Server Error</h1></body></html>"
        return Respond(500, html, "text/html; charset=utf-8")

    @staticmethod
    def _params(h: Handler, method: str, query: str, raw: bytes) -> tuple[dict[str, str], str]:
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        if method == "GET":
            return params, "query"
        if "json" in (h.headers.get("Content-Type") or "").lower():
            try:
                data = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise Respond(400, "Bad Request") from None
            if not isinstance(data, dict):
                raise Respond(400, "Bad Request")
            params.update({str(k): str(v) for k, v in data.items()})
            return params, "json"
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params.update({k: v[0] for k, v in form.items()})
        return params, "form"

    def _authenticate(self, h: Handler, params: dict[str, str]) -> tuple[str, str]:
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
            raise Respond(200, answer_error(4))
        key = params.get("api_key", "")
        if not key:
            self._count("invalid")
            raise Respond(200, answer_error(2, param="api_key"))
        if "sig" in params and "api_secret" not in params and self.signature_secret:
            signed = {k: v for k, v in params.items() if k != "sig"}
            expected = _signature(signed, self.signature_secret, self.signature_method)
            if key in self.accounts and hmac.compare_digest(params["sig"].lower(), expected.lower()):
                return key, "signature"
            self._count("auth_failed")
            raise Respond(200, answer_error(14))
        if "api_secret" not in params:
            self._count("invalid")
            raise Respond(200, answer_error(2, param="api_secret"))
        if self.accounts.get(key) != params["api_secret"]:
            self._count("auth_failed")
            raise Respond(200, answer_error(4))
        return key, "body"

    def _faults(self, to: str) -> None:
        """Hangs, rate limits, server errors and raw answers, as the controls say."""
        with self._lock:
            verbatim = self._raw_answers.get(to)
        self._draw_faults()
        if verbatim is not None:
            self._count("raw")
            raise Respond(*verbatim, "application/json; charset=utf-8")

    def _validate(self, params: dict[str, str]) -> str:
        """The message type, or a status answer for a request Vonage would refuse."""
        for name in ("from", "to", "text"):
            if not params.get(name):
                self._count("invalid")
                raise Respond(200, answer_error(2, param=f"{name} param"))
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
            raise Respond(200, answer_error(status, param=param, to=to, from_=from_))
        return message_type

    def _send(self, h: Handler, params: dict[str, str], encoding: str) -> None:
        self._faults(_bare(params.get("to", "")))
        api_key, how = self._authenticate(h, params)
        message_type = self._validate(params)
        to, from_, text = params["to"], params["from"], params["text"]
        with self._lock:
            status = self._fail_numbers.get(to)
        if status is not None:
            self._count("failed_number")
            raise Respond(200, answer_error(status, to=to, from_=from_))
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
        answer = {"message-count": str(len(entries)), "messages": entries}
        raise Respond(200, answer, callbacks=[msg["id"]] if auto else ())

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
        record = {"kind": kind, "url": url, "method": method, "params": params}
        counter = "callbacks_sent" if kind == "status" else "inbound_sent"
        return self._post_recorded(record, data, headers, method.split("-")[0], counter)

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

    def _auto_callback(self, message_id: str) -> None:
        with self._lock:
            msg = self._by_id.get(message_id)
            code = self._undeliverable_numbers.get(msg["to"]) if msg else None
        if msg is None:
            return  # reset() since
        for part_id in msg["part_ids"]:
            with contextlib.suppress(OSError):  # recorded in callbacks / stats
                if code is None:
                    self.send_status_callback(None, part_id, "delivered")
                else:
                    self.send_status_callback(None, part_id, "failed", code)


def main(argv: list[str] | None = None) -> None:
    p = parser("Fake Vonage SMS API server.", 8098)
    p.add_argument(
        "--account",
        action="append",
        type=pair,
        metavar="API_KEY:API_SECRET",
        help=f"repeatable; default {DEFAULT_API_KEY}:{DEFAULT_API_SECRET}",
    )
    p.add_argument("--signature-secret", help="sign the webhooks sent (and accept signed requests)")
    p.add_argument("--signature-method", default="md5hash", choices=SIGNATURE_METHODS)
    add_fault_options(p, fail="NUMBER:STATUS", undeliverable="NUMBER:ERR_CODE")
    p.add_argument("--auto-callbacks", action="store_true")
    p.add_argument("--callback-delay", type=float, default=0.0)
    p.add_argument("--webhook-method", default="POST", choices=WEBHOOK_METHODS)
    p.add_argument("--price", default=DEFAULT_PRICE)
    args, options = parse(p, argv)
    fake = FakeVonage(
        dict(args.account) if args.account else None,
        signature_secret=args.signature_secret,
        signature_method=args.signature_method,
        auto_callbacks=args.auto_callbacks,
        callback_delay=args.callback_delay,
        webhook_method=args.webhook_method,
        price=args.price,
        **options,
    )
    run(fake, args.port, [f"api_key {key}  api_secret {secret}" for key, secret in fake.accounts.items()])


if __name__ == "__main__":
    main()
