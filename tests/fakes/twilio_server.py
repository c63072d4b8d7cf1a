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

    python tests/fakes/twilio_server.py --port 8099 --account ACxxx:token

Its lifecycle, controls, ``/_fake/`` endpoints and command line are every fake's: see ``fake_server.py``.
"""

from __future__ import annotations

import secrets
import sys
import time
import urllib.parse
from base64 import b64decode
from collections.abc import Mapping
from email.utils import formatdate
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

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


def _price(msg: dict[str, Any]) -> str | None:
    """Twilio's price string (``-0.01500``) once the message is sent, else None."""
    per_segment = msg.get("price_per_segment")
    if per_segment is None or msg["status"] not in ("sent", "delivered", "undelivered"):
        return None
    segments = msg["num_segments"] or count_segments(msg["body"]).segments
    return f"{-per_segment * segments:.5f}"


class FakeTwilio(FakeServer):
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

    Records: ``messages`` are dicts with ``sid``, ``account_sid``, ``to``, ``from``,
    ``body``, ``messaging_service_sid``, ``status_callback``, ``received_at`` (epoch
    seconds), ``status``, ``error_code``, ``num_segments``; ``callbacks`` (status
    callbacks sent) have ``sid``, ``status``, ``url``, ``params``, ``response_status``
    (None on a connection error), ``error``; ``stats`` counts ``connections`` (TCP
    connections accepted), ``requests``, ``created``, ``auth_failed``, ``rate_limited``,
    ``server_error``, ``invalid``, ``failed_number``, ``hung``, ``fetched``, ``listed``,
    ``not_found``, ``callbacks_sent``, ``callback_errors``, ``inbound_sent``.
    """

    name = "Twilio"
    methods = ("GET", "POST", "DELETE")
    json_type = "application/json; charset=utf-8"

    fail_numbers = Control(mapping(int), reset=True)
    undeliverable_numbers = Control(mapping(int), reset=True)
    auto_callbacks = Control(bool, False)
    callback_delay = Control(float, 0.0)
    price_per_segment = Control(optional(float))

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        api_keys: Mapping[str, tuple[str, str]] | None = None,
        messaging_service_from: str = DEFAULT_FROM,
        **options: Any,
    ) -> None:
        """``accounts`` maps account sid -> auth token (default: one account,
        :data:`DEFAULT_ACCOUNT_SID`/:data:`DEFAULT_AUTH_TOKEN`); ``api_keys``
        maps an API key sid (SK...) -> (account sid, secret). ``options``: the
        controls, ``seed``, ``callback_timeout`` (10 s), ``host`` and ``verbose``."""
        self.accounts = dict(accounts or {DEFAULT_ACCOUNT_SID: DEFAULT_AUTH_TOKEN})
        self.api_keys = {k: (a, s) for k, (a, s) in (api_keys or {}).items()}
        self.messaging_service_from = messaging_service_from
        super().__init__(**options)

    def message(self, sid: str) -> dict[str, Any]:
        """One accepted message by sid (a copy); KeyError if unknown."""
        return super().message(sid)

    # -- HTTP ----------------------------------------------------------------

    def _response_headers(self) -> dict[str, str]:
        return {"Twilio-Request-Id": _new_sid("RQ")}

    def _not_found(self, path: str) -> Respond:
        return Respond(*error_body(20404, path=path))

    def _fault_answer(self, fault: str) -> Respond:
        return Respond(*error_body(20429 if fault == "rate_limited" else 20500))

    def _authenticate(self, h: Handler, account_sid: str) -> None:
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
            raise Respond(status, body, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def _api(self, h: Handler, method: str, url: urllib.parse.SplitResult, raw: bytes) -> None:
        path = url.path
        parts = path.strip("/").split("/")
        # 2010-04-01 / Accounts / AC.. / Messages.json | Messages / SM...json
        if (
            len(parts) not in (4, 5)
            or parts[:2] != [API_VERSION, "Accounts"]
            or (len(parts) == 4 and parts[3] != "Messages.json")
            or (len(parts) == 5 and (parts[3] != "Messages" or not parts[4].endswith(".json")))
        ):
            self._count("not_found")
            raise self._not_found(path)
        account_sid = parts[2]
        self._authenticate(h, account_sid)
        if len(parts) == 5:
            if method != "GET":
                raise Respond(*error_body(20004))
            self._fetch(account_sid, parts[4][: -len(".json")], path)
        if method == "GET":
            self._list(account_sid, {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}, path)
        if method != "POST":
            raise Respond(*error_body(20004))
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8")).items()}
        self._create(account_sid, form)

    def _fetch(self, account_sid: str, sid: str, path: str) -> None:
        with self._lock:
            msg = self._by_id.get(sid)
            if msg is None or msg["account_sid"] != account_sid:
                self._stats["not_found"] += 1
                raise self._not_found(path)
            self._stats["fetched"] += 1
            raise Respond(200, self._resource(msg))

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
        raise Respond(
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

    def _create(self, account_sid: str, form: dict[str, str]) -> None:
        self._draw_faults()

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
            raise Respond(*error_body(code, to=to, from_=from_))
        with self._lock:
            code = self._fail_numbers.get(to)
        if code is not None:
            self._count("failed_number")
            raise Respond(*error_body(code, to=to, from_=from_))

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
            self._by_id[msg["sid"]] = msg
            self._stats["created"] += 1
            resource = self._resource(msg)
            auto = self._auto_callbacks and msg["status_callback"] is not None
        raise Respond(201, resource, callbacks=[msg["sid"]] if auto else ())

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

    @staticmethod
    def _webhook_headers(signature: str) -> dict[str, str]:
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            "User-Agent": "TwilioProxy/1.1",
        }

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
            msg = self._by_id[sid]
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
        record = {"sid": sid, "status": status, "url": url, "params": params}
        data = urllib.parse.urlencode(params).encode()
        return self._post_recorded(record, data, self._webhook_headers(_sign(token, url, params)))

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
        data = urllib.parse.urlencode(params).encode()
        status = self._post(url, data, self._webhook_headers(headers["X-Twilio-Signature"]))
        self._count("inbound_sent")
        return status

    def _auto_callback(self, sid: str) -> None:
        with self._lock:
            to = self._by_id[sid]["to"] if sid in self._by_id else None
            code = self._undeliverable_numbers.get(to or "")
        if to is None:
            return  # reset() since
        self.send_status_callback(sid, "sent")
        if code is None:
            self.send_status_callback(sid, "delivered")
        else:
            self.send_status_callback(sid, "undelivered", code)


def main(argv: list[str] | None = None) -> None:
    p = parser("Fake Twilio Messages API server.", 8099)
    p.add_argument(
        "--account",
        action="append",
        type=pair,
        metavar="SID:TOKEN",
        help=f"repeatable; default {DEFAULT_ACCOUNT_SID}:{DEFAULT_AUTH_TOKEN}",
    )
    add_fault_options(p, fail="NUMBER:CODE", undeliverable="NUMBER:CODE")
    p.add_argument("--auto-callbacks", action="store_true")
    p.add_argument("--callback-delay", type=float, default=0.0)
    args, options = parse(p, argv)
    fake = FakeTwilio(
        dict(args.account) if args.account else None,
        auto_callbacks=args.auto_callbacks,
        callback_delay=args.callback_delay,
        **options,
    )
    run(fake, args.port, [f"account {sid}  token {token}" for sid, token in fake.accounts.items()])


if __name__ == "__main__":
    main()
