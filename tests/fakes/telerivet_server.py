"""A fake Telerivet REST API server for tests and benchmarks.

It speaks the wire format of Telerivet's REST API (https://telerivet.com/api/rest,
checked against the official ``telerivet`` Python client 1.9.6):

* ``POST /v1/projects/<project_id>/messages/send``: a JSON body (gzip accepted, as
  the official clients send large bodies; a form body too) with ``to_number``,
  ``content``, ``route_id``, ``status_url``, ``status_secret``...; the answer is the
  Message object (``id``, ``status`` ``queued``, ``to_number``, ``from_number``,
  ``content``, ``time_created``, ``price``...).
* ``GET /v1/projects/<project_id>/messages/<id>``: one Message.
* ``GET /v1/projects/<project_id>/messages``: a query, newest first with
  ``sort_dir=desc``, filtered by ``direction``, ``status``, ``message_type``,
  ``time_created[min]``/``[max]``; pages of ``page_size`` (at most 500) as
  ``{"data": [...], "truncated": bool, "next_marker": str|null}``, the next page
  asked with ``marker``; ``count=1`` answers ``{"count": n}``. Like Telerivet, it
  has no filter by number.
* HTTP Basic auth with the API key as user (the password is ignored, as
  Telerivet does). Errors are ``{"error": {"code", "message", "param"}}`` with a
  4xx/5xx status (``ERRORS``).

Webhooks it sends (form-encoded POSTs, as Telerivet's Webhook API does):
``send_status_callback`` (``event=send_status`` with the message's
``status_secret`` as ``secret``) and ``send_inbound_sms``
(``event=incoming_message`` with the fake's ``webhook_secret``). Their payload
builders ``status_payload`` and ``inbound_payload`` are public, for tests that
build a webhook request without HTTP.

Usage
-----
::

    with FakeTelerivet.start(api_keys={"key": ["PJ1"]}, seed=1) as fake:
        fake.fail_numbers = {"+15550000001": "invalid_param"}   # or "failed", 503...
        fake.error_rate_429 = 0.1
        ...
        fake.messages            # accepted messages (snapshot list of dicts)
        fake.stats["created"]    # request counts by outcome
        fake.send_status_callback(None, message_id, "delivered")

Realism notes
-------------
* A message is answered ``queued`` with ``from_number`` set to its route's phone
  number; its ``price`` is known once it is ``sent`` (never at creation).
* ``blocked_numbers`` are contacts with ``send_blocked``: the send is answered
  with a Message whose ``id`` and ``status`` are null and nothing is sent, as
  Telerivet documents for blocked recipients of ``send_multi``. Telerivet
  documents no error code for them; ``fail_numbers`` value ``"send_blocked"``
  answers such an error for tests that want one.
* A hang sleeps and then answers normally, so a message whose request timed out on
  the client is still recorded, as can happen with Telerivet.

Command line (manual use, benchmarks in another process)::

    python tests/fakes/telerivet_server.py --port 8097 --api-key KEY:PJ1

Its lifecycle, controls, ``/_fake/`` endpoints and command line are every fake's: see ``fake_server.py``.
"""

from __future__ import annotations

import gzip
import json
import secrets
import sys
import time
import urllib.parse
from base64 import b64decode
from collections.abc import Iterable, Mapping
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
    optional,
    pair,
    parse,
    parser,
    run,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_FROM",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_ROUTE_ID",
    "DEFAULT_WEBHOOK_SECRET",
    "ERRORS",
    "FakeTelerivet",
    "error_body",
    "inbound_payload",
    "status_payload",
]

DEFAULT_API_KEY = "fake-telerivet-api-key"
DEFAULT_PROJECT_ID = "PJ" + "0" * 14 + "01"
DEFAULT_ROUTE_ID = "PN" + "0" * 14 + "01"
DEFAULT_FROM = "+16505550100"
DEFAULT_WEBHOOK_SECRET = "fake-telerivet-webhook-secret"
MAX_PAGE = 500

# code -> (HTTP status, message). {to}, {param} and {path} are filled in.
ERRORS: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "Invalid API key"),
    "forbidden": (403, "You do not have permission to access this project"),
    "not_found": (404, "Not found: {path}"),
    "invalid_param": (400, "Invalid parameter {param}"),
    "invalid_to_number": (400, "Invalid phone number: {to}"),
    "send_blocked": (400, "Cannot send a message to {to}: the contact is blocked"),
    "method_not_allowed": (405, "Method not allowed"),
    "rate_limit_exceeded": (429, "Too many API requests; try again later"),
    "internal_error": (500, "An internal error occurred"),
    "service_unavailable": (503, "Service temporarily unavailable"),
}
# An HTTP status named in fail_numbers -> the code answered with it.
STATUS_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    429: "rate_limit_exceeded",
    500: "internal_error",
}
# Message statuses fail_numbers may name: the message is created in that status.
MESSAGE_STATUSES = ("failed", "cancelled", "not_delivered", "failed_queued")


def error_body(
    code: str, *, param: str | None = None, status: int | None = None, **fmt: Any
) -> tuple[int, dict]:
    """(HTTP status, Telerivet error JSON) for ``code``; unknown codes answer 400 (or ``status``)."""
    known, message = ERRORS.get(code, (400, f"Error {code}"))
    fmt.setdefault("to", "")
    fmt.setdefault("path", "")
    fmt["param"] = param or ""
    if code == "invalid_to_number":
        code, param = "invalid_param", "to_number"
    error: dict[str, Any] = {"code": code, "message": message.format(**fmt)}
    if param and code == "invalid_param":
        error["param"] = param
    return status or known, {"error": error}


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


def status_payload(
    message: Mapping[str, Any], status: str, *, secret: str | None = None, **extra: Any
) -> dict:
    """The form of a ``send_status`` webhook for ``message`` (a fake message dict, or any mapping with
    ``id``, ``to``, ``from``, ``body``), as Telerivet posts it to the message's ``status_url``."""
    now = int(time.time())
    form = {
        "event": "send_status",
        "secret": secret if secret is not None else (message.get("status_secret") or ""),
        "id": message["id"],
        "status": status,
        "message_type": "sms",
        "direction": "outgoing",
        "source": "api",
        "content": message.get("body", ""),
        "from_number": message.get("from") or "",
        "to_number": message["to"],
        "time_created": str(int(message.get("received_at") or now)),
        "time_sent": str(now) if status in ("sent", "delivered", "not_delivered") else "",
        "contact_id": message.get("contact_id") or _new_id("CT"),
        "phone_id": message.get("route_id") or DEFAULT_ROUTE_ID,
        "project_id": message.get("project_id") or DEFAULT_PROJECT_ID,
    }
    form.update({k: "" if v is None else str(v) for k, v in extra.items()})
    return form


def inbound_payload(
    from_: str, to: str, body: str, *, secret: str = DEFAULT_WEBHOOK_SECRET, **extra: Any
) -> dict:
    """The form of an ``incoming_message`` webhook, as Telerivet posts it to a Webhook API service."""
    now = str(int(time.time()))
    form = {
        "event": "incoming_message",
        "secret": secret,
        "id": _new_id("SM"),
        "message_type": "sms",
        "direction": "incoming",
        "status": "received",
        "source": "phone",
        "content": body,
        "from_number": from_,
        "from_number_e164": from_ if from_.startswith("+") else "",
        "to_number": to,
        "time_created": now,
        "time_sent": now,
        "contact_id": _new_id("CT"),
        "phone_id": DEFAULT_ROUTE_ID,
        "service_id": _new_id("SV"),
        "project_id": DEFAULT_PROJECT_ID,
    }
    form.update({k: "" if v is None else str(v) for k, v in extra.items()})
    return form


def _failure(what: Any) -> str | int:
    """A ``fail_numbers`` value: a code, a message status or an HTTP status (digits-only text is one)."""
    text = str(what)
    return int(text) if text.isdigit() else text


def _numbers(value: Iterable[str] | None) -> frozenset[str]:
    return frozenset(str(n) for n in (value or ()))


class FakeTelerivet(FakeServer):
    """Fake Telerivet REST API on 127.0.0.1. Start with :meth:`start`.

    Controls (thread-safe; assign a new value, or use :meth:`configure`):
    ``fail_numbers`` {to: what}: an error code of ``ERRORS`` (answered as that error;
    ``invalid_to_number`` is ``invalid_param`` on ``to_number``), an HTTP status
    (int: 429, 500, 502, 503...; 502 answers an HTML page, not JSON) or a message
    status of ``MESSAGE_STATUSES`` (the message is created in that status, with an
    ``error_message``); ``blocked_numbers`` (contacts with ``send_blocked``);
    ``malformed_numbers`` {to: raw text} answered with HTTP 200 as is;
    ``undeliverable_numbers`` {to: error message} reported ``not_delivered`` by auto
    callbacks; ``error_rate_500``, ``error_rate_429``, ``hang_rate`` (0..1, drawn from
    ``random.Random(seed)``) and ``hang_seconds``; ``auto_callbacks`` and
    ``callback_delay``; ``price_per_part`` (e.g. 0.01, in ``price_currency``).

    Records: ``messages`` are dicts with ``id``, ``project_id``, ``api_key``, ``to``,
    ``from``, ``body``, ``route_id``, ``status_url``, ``status_secret``, ``payload``
    (the request body as received), ``content_type``, ``received_at`` (epoch seconds),
    ``status``, ``error_message``, ``num_parts``; ``callbacks`` (status webhooks sent)
    have ``id``, ``status``, ``url``, ``params``, ``response_status`` (None on a
    connection error), ``error``; ``stats`` counts ``connections``, ``requests``,
    ``created``, ``auth_failed``, ``rate_limited``, ``server_error``, ``invalid``,
    ``failed_number``, ``blocked``, ``malformed``, ``hung``, ``fetched``, ``listed``,
    ``not_found``, ``callbacks_sent``, ``callback_errors``, ``inbound_sent``.
    """

    name = "Telerivet"
    text_type = "application/json"  # a malformed answer still says JSON

    fail_numbers = Control(mapping(_failure), reset=True)
    blocked_numbers = Control(_numbers, reset=True)
    malformed_numbers = Control(mapping(str), reset=True)
    undeliverable_numbers = Control(mapping(str), reset=True)
    auto_callbacks = Control(bool, False)
    callback_delay = Control(float, 0.0)
    price_per_part = Control(optional(float))

    def __init__(
        self,
        api_keys: Mapping[str, Iterable[str]] | None = None,
        *,
        routes: Mapping[str, str] | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        price_currency: str = "USD",
        **options: Any,
    ) -> None:
        """``api_keys`` maps an API key -> the project ids it may use (default:
        :data:`DEFAULT_API_KEY` -> [:data:`DEFAULT_PROJECT_ID`]); ``routes`` maps a
        route/phone id -> its number (default :data:`DEFAULT_ROUTE_ID` ->
        :data:`DEFAULT_FROM`, also the project's default route). ``options``: the
        controls, ``seed``, ``callback_timeout`` (10 s), ``host`` and ``verbose``."""
        self.api_keys = {k: set(v) for k, v in (api_keys or {DEFAULT_API_KEY: [DEFAULT_PROJECT_ID]}).items()}
        self.routes = dict(routes or {DEFAULT_ROUTE_ID: DEFAULT_FROM})
        self.default_route = next(iter(self.routes))
        self.webhook_secret = webhook_secret
        self.price_currency = price_currency
        super().__init__(**options)
        self._contacts: dict[str, str] = {}

    # -- HTTP ----------------------------------------------------------------

    def _not_found(self, path: str) -> Respond:
        return Respond(*error_body("not_found", path=path))

    def _fault_answer(self, fault: str) -> Respond:
        return Respond(*error_body("rate_limit_exceeded" if fault == "rate_limited" else "internal_error"))

    def _authenticate(self, h: Handler, project_id: str) -> str:
        scheme, _, encoded = (h.headers.get("Authorization") or "").partition(" ")
        key = None
        if scheme.lower() == "basic":
            try:
                key = b64decode(encoded).decode().partition(":")[0]
            except ValueError:
                key = None
        if not key or key not in self.api_keys:
            self._count("auth_failed")
            status, body = error_body("unauthorized")
            raise Respond(status, body, headers={"WWW-Authenticate": 'Basic realm="Telerivet API"'})
        if project_id not in self.api_keys[key]:
            self._count("not_found")
            raise Respond(*error_body("not_found", path=f"project {project_id}"))
        return key

    def _api(self, h: Handler, method: str, url: urllib.parse.SplitResult, raw: bytes) -> None:
        path = url.path
        parts = path.strip("/").split("/")
        # v1 / projects / PJ.. / messages [/ send | / SM..]
        if len(parts) not in (4, 5) or parts[:2] != ["v1", "projects"] or parts[3] != "messages":
            self._count("not_found")
            raise self._not_found(path)
        project_id = parts[2]
        key = self._authenticate(h, project_id)
        if len(parts) == 5 and parts[4] == "send":
            if method != "POST":
                raise Respond(*error_body("method_not_allowed"))
            self._send(h, project_id, key, self._body(h, raw))
        if method != "GET":
            raise Respond(*error_body("method_not_allowed"))
        if len(parts) == 5:
            self._fetch(project_id, parts[4])
        self._query(project_id, {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()})

    @staticmethod
    def _body(h: Handler, raw: bytes) -> dict[str, Any]:
        if (h.headers.get("Content-Encoding") or "").lower() == "gzip":
            raw = gzip.decompress(raw)
        kind = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind == "application/x-www-form-urlencoded":
            return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8")).items()}
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Respond(*error_body("invalid_param", param="body"))
        return body

    def _fetch(self, project_id: str, message_id: str) -> None:
        with self._lock:
            msg = self._by_id.get(message_id)
            if msg is None or msg["project_id"] != project_id:
                self._stats["not_found"] += 1
                raise Respond(404, {"error": {"code": "not_found", "message": "Message not found"}})
            self._stats["fetched"] += 1
            raise Respond(200, self._resource(msg))

    def _query(self, project_id: str, query: dict[str, str]) -> None:
        """``GET messages``: filtered, sorted by time_created, one page from ``marker``."""
        try:
            size = max(1, min(MAX_PAGE, int(query.get("page_size", "50"))))
            start = int(query.get("marker") or query.get("offset") or 0)
        except ValueError:
            raise Respond(*error_body("invalid_param", param="page_size")) from None
        with self._lock:
            self._stats["listed"] += 1
            found = [self._resource(m) for m in self._messages if m["project_id"] == project_id]
        found = [m for m in found if self._matches(m, query)]
        if query.get("sort_dir") == "desc":
            found.reverse()
        if query.get("count"):
            raise Respond(200, {"count": len(found)})
        page = found[start : start + size]
        more = start + size < len(found)
        raise Respond(
            200, {"data": page, "truncated": more, "next_marker": str(start + size) if more else None}
        )

    @staticmethod
    def _matches(resource: dict[str, Any], query: dict[str, str]) -> bool:
        for name in ("direction", "status", "message_type", "source"):
            if name in query and resource[name] != query[name]:
                return False
        created = resource["time_created"]
        low, high = query.get("time_created[min]"), query.get("time_created[max]")
        return (low is None or created >= float(low)) and (high is None or created < float(high))

    def _check(self, body: dict[str, Any]) -> tuple[str, str, str]:
        """(to, content, route id) of a valid send request; the error answer otherwise."""
        to = str(body.get("to_number") or "")
        content = str(body.get("content") or "")
        route_id = str(body.get("route_id") or "") or self.default_route
        error = None
        if not to:
            error = error_body("invalid_param", param="to_number")
        elif sum(ch.isdigit() for ch in to) < 3:
            error = error_body("invalid_to_number", to=to)
        elif not content and not body.get("media_urls"):
            error = error_body("invalid_param", param="content")
        elif route_id not in self.routes:
            error = error_body("invalid_param", param="route_id")
        if error is not None:
            self._count("invalid")
            raise Respond(*error)
        return to, content, route_id

    def _planned_failure(self, to: str) -> str | None:
        """The message status a failing number is created in; raises for the other failures."""
        with self._lock:
            what = self._fail_numbers.get(to)
            malformed = self._malformed_numbers.get(to)
            blocked = to in self._blocked_numbers
        if malformed is not None:
            self._count("malformed")
            raise Respond(200, malformed)
        if blocked:
            self._count("blocked")
            raise Respond(200, {"id": None, "status": None, "to_number": to, "content": None})
        if what is None or what in MESSAGE_STATUSES:
            return what
        self._count("failed_number")
        if what == 502:
            raise Respond(502, "<html><body>502 Bad Gateway</body></html>", "text/html")
        if isinstance(what, int):
            code = STATUS_CODES.get(what, "service_unavailable" if what >= 500 else "invalid_param")
            raise Respond(*error_body(code, status=what, param="to_number"))
        raise Respond(*error_body(what, to=to, param="to_number"))

    def _send(self, h: Handler, project_id: str, key: str, body: dict[str, Any]) -> None:
        self._draw_faults()
        to, content, route_id = self._check(body)
        status = self._planned_failure(to) or "queued"
        now = time.time()
        with self._lock:
            contact = self._contacts.setdefault(to, _new_id("CT"))
        msg = {
            "id": _new_id("SM"),
            "project_id": project_id,
            "api_key": key,
            "to": to,
            "from": self.routes[route_id],
            "body": content,
            "route_id": route_id,
            "contact_id": contact,
            "status_url": body.get("status_url") or None,
            "status_secret": body.get("status_secret") or None,
            "payload": dict(body),
            "content_type": (h.headers.get("Content-Type") or "").split(";")[0].strip(),
            "received_at": now,
            "time_updated": now,
            "time_sent": None,
            "status": status,
            "error_message": None if status == "queued" else f"Sending failed ({status})",
            "num_parts": count_segments(content).segments,
            "price_per_part": self.price_per_part,
        }
        with self._lock:
            self._messages.append(msg)
            self._by_id[msg["id"]] = msg
            self._stats["created"] += 1
            resource = self._resource(msg)
            auto = self._auto_callbacks and msg["status_url"] is not None and status == "queued"
        if auto:
            self._queue_callbacks([msg["id"]])
        raise Respond(200, resource)

    def _resource(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The Message object Telerivet answers."""
        sent = msg["status"] in ("sent", "delivered", "not_delivered")
        per_part = msg["price_per_part"]
        resource = {
            "id": msg["id"],
            "direction": "outgoing",
            "status": msg["status"],
            "message_type": "sms",
            "source": "api",
            "time_created": int(msg["received_at"]),
            "time_sent": int(msg["time_sent"]) if msg["time_sent"] else None,
            "time_updated": int(msg["time_updated"]),
            "from_number": msg["from"],
            "to_number": msg["to"],
            "content": msg["body"],
            "starred": False,
            "simulated": False,
            "label_ids": [],
            "vars": {},
            "priority": 1,
            "external_id": None,
            "num_parts": msg["num_parts"] if sent else None,
            "price": round(per_part * msg["num_parts"], 6) if sent and per_part is not None else None,
            "price_currency": self.price_currency if sent and per_part is not None else None,
            "phone_id": msg["route_id"] if msg["route_id"].startswith("PN") else None,
            "route_id": None if msg["route_id"].startswith("PN") else msg["route_id"],
            "contact_id": msg["contact_id"],
            "broadcast_id": None,
            "scheduled_id": None,
            "service_id": None,
            "user_id": None,
            "project_id": msg["project_id"],
        }
        if msg["error_message"]:
            resource["error_message"] = msg["error_message"]
        return resource

    # -- webhooks to the app -------------------------------------------------

    def _post_form(self, url: str, params: dict[str, str], record: dict[str, Any] | None = None) -> int:
        """POST ``params`` as Telerivet's webhooks do; recorded in ``callbacks`` with ``record``."""
        data = urllib.parse.urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Telerivet"}
        if record is None:
            return self._post(url, data, headers)
        return self._post_recorded(record, data, headers)

    def send_status_callback(
        self,
        url: str | None,
        message_id: str,
        status: str,
        *,
        error_message: str | None = None,
        secret: str | None = None,
    ) -> int:
        """POST Telerivet's ``send_status`` webhook for ``message_id`` to ``url`` (None: the
        message's ``status_url``), with its ``status_secret`` as ``secret`` (or ``secret``).
        Updates the recorded status. Returns the receiver's HTTP status; connection errors
        raise ``OSError``."""
        with self._lock:
            msg = self._by_id[message_id]
            url = url or msg["status_url"]
            if not url:
                raise ValueError(f"message {message_id} has no status_url; pass url")
            now = time.time()
            msg.update(status=status, time_updated=now, error_message=error_message)
            if status in ("sent", "delivered", "not_delivered") and not msg["time_sent"]:
                msg["time_sent"] = now
            resource = self._resource(msg)
            extra = {"error_message": error_message or ""}
            if resource["price"] is not None:
                extra.update(price=resource["price"], price_currency=resource["price_currency"])
            params = status_payload(msg, status, secret=secret, **extra)
        record = {"id": message_id, "status": status, "url": url, "params": params}
        return self._post_form(url, params, record)

    def send_inbound_sms(
        self, url: str, from_: str, to: str, body: str, *, secret: str | None = None, **extra: Any
    ) -> int:
        """POST an ``incoming_message`` webhook to ``url`` as Telerivet's Webhook API service
        would (``secret``: the fake's ``webhook_secret`` unless given); returns the HTTP status."""
        params = inbound_payload(
            from_, to, body, secret=self.webhook_secret if secret is None else secret, **extra
        )
        status = self._post_form(url, params)
        self._count("inbound_sent")
        return status

    def _auto_callback(self, message_id: str) -> None:
        with self._lock:
            to = self._by_id[message_id]["to"] if message_id in self._by_id else None
            why = self._undeliverable_numbers.get(to or "")
        if to is None:
            return  # reset() since
        self.send_status_callback(None, message_id, "sent")
        if why is None:
            self.send_status_callback(None, message_id, "delivered")
        else:
            self.send_status_callback(None, message_id, "not_delivered", error_message=why)


def main(argv: list[str] | None = None) -> None:
    p = parser("Fake Telerivet REST API server.", 8097)
    p.add_argument(
        "--api-key",
        action="append",
        type=pair,
        metavar="KEY:PROJECT_ID",
        help=f"repeatable; default {DEFAULT_API_KEY}:{DEFAULT_PROJECT_ID}",
    )
    p.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    add_fault_options(p, fail="NUMBER:CODE", undeliverable="NUMBER:MESSAGE")
    p.add_argument("--auto-callbacks", action="store_true")
    p.add_argument("--callback-delay", type=float, default=0.0)
    args, options = parse(p, argv)
    keys: dict[str, list[str]] = {}
    for key, project in args.api_key or []:
        keys.setdefault(key, []).append(project)
    fake = FakeTelerivet(
        keys or None,
        webhook_secret=args.webhook_secret,
        auto_callbacks=args.auto_callbacks,
        callback_delay=args.callback_delay,
        **options,
    )
    run(
        fake,
        args.port,
        [f"api key {key}  projects {', '.join(sorted(ids))}" for key, ids in fake.api_keys.items()],
    )


if __name__ == "__main__":
    main()
