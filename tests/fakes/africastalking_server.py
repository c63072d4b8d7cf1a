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

Its lifecycle, controls, ``/_fake/`` endpoints and command line are every fake's: see ``fake_server.py``.
"""

from __future__ import annotations

import json
import random
import secrets
import sys
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

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
    raw_answer,
    run,
)

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


def _status_code(value: int | str) -> int:
    """A statusCode from a code or a status name ("UserInBlacklist")."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        return _CODE_BY_NAME[text.lower()]
    except KeyError:
        raise ValueError(f"unknown Africa's Talking status {value!r}") from None


class FakeAfricasTalking(FakeServer):
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
    ``reset()`` clears the failures, raw answers, sender IDs and rates.

    Records: ``messages`` are dicts with ``id`` (the messageId), ``username``,
    ``to``, ``from`` (None without one), ``body``, ``received_at`` (epoch
    seconds), ``status`` (the last delivery status), ``status_code``, ``parts``,
    ``cost``, ``headers`` (of the request, names lower-cased) and ``form`` (the
    fields posted, ``message`` included); ``callbacks`` (webhooks sent) have
    ``kind`` (status or inbound), ``url``, ``params``, ``response_status`` (None
    on a connection error), ``error``; ``stats`` counts ``connections`` (TCP
    connections accepted), ``requests``, ``created`` (accepted recipients),
    ``auth_failed``, ``rate_limited``, ``server_error``, ``invalid``,
    ``invalid_sender``, ``failed_number``, ``raw_answer``, ``hung``,
    ``not_found``, ``callbacks_sent``, ``callback_errors``, ``inbound_sent``.
    """

    name = "AfricasTalking"

    fail_numbers = Control(mapping(_status_code), reset=True)
    undeliverable_numbers = Control(mapping(str), reset=True)
    raw_answers = Control(mapping(raw_answer), reset=True)
    sender_ids = Control(optional(lambda ids: frozenset(str(v) for v in ids)), reset=True)
    auto_callbacks = Control(bool, False)
    delivery_report_url = Control(lambda v: str(v) if v else None)
    callback_delay = Control(float, 0.0)
    price_per_part = Control(float, 0.8)
    currency = Control(str, "KES")

    def __init__(self, accounts: Mapping[str, str] | None = None, **options: Any) -> None:
        """``accounts`` maps username -> API key (default: one account,
        :data:`DEFAULT_USERNAME`/:data:`DEFAULT_API_KEY`). ``options``: the
        controls, ``seed``, ``callback_timeout`` (10 s), ``host`` and ``verbose``."""
        self.accounts = dict(accounts or {DEFAULT_USERNAME: DEFAULT_API_KEY})
        super().__init__(**options)

    # -- HTTP ----------------------------------------------------------------

    def _api(self, h: Handler, method: str, url: urllib.parse.SplitResult, raw: bytes) -> None:
        if url.path.rstrip("/") != SEND_PATH or method != "POST":
            self._count("not_found")
            raise self._not_found(url.path)
        self._send(h, raw)

    def _not_found(self, path: str) -> Respond:
        return Respond(404, "Not Found")

    def _fault_answer(self, fault: str) -> Respond:
        if fault == "rate_limited":
            return Respond(429, "Too Many Requests")
        return Respond(500, "Internal Server Error")

    def _authenticate(self, headers: dict[str, str], form: dict[str, str]) -> None:
        username = form.get("username", "")
        key = headers.get("apikey", "")
        if not username or not key or self.accounts.get(username) != key:
            self._count("auth_failed")
            raise Respond(401, AUTH_FAILED)

    def _validate(self, form: dict[str, str]) -> list[str]:
        for name in ("username", "to", "message"):
            if not form.get(name):
                self._count("invalid")
                raise Respond(400, f"Request is missing required form field '{name}'")
        if len(form["message"]) > MAX_BODY:
            self._count("invalid")
            raise Respond(400, f"The message is longer than {MAX_BODY} characters")
        return [n.strip() for n in form["to"].split(",") if n.strip()]

    def _send(self, h: Handler, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        form = {
            k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()
        }
        self._authenticate(headers, form)
        self._draw_faults()
        numbers = self._validate(form)
        with self._lock:
            verbatim = next((self._raw_answers[n] for n in numbers if n in self._raw_answers), None)
            sender_ids = self._sender_ids
        if verbatim is not None:
            self._count("raw_answer")
            status, text = verbatim
            raise Respond(status, text, "application/json" if _is_json(text) else "text/html; charset=utf-8")
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
            self._queue_callbacks([msg["id"]])
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
            raise Respond(201, payload)
        raise Respond(201, _xml(payload), "application/xml")

    # -- webhooks to the app -------------------------------------------------

    def _post_form(self, kind: str, url: str, params: dict[str, str]) -> int:
        data = urllib.parse.urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "AfricasTalking/1.0"}
        return self._post_recorded({"kind": kind, "url": url, "params": params}, data, headers)

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

    def _auto_callback(self, message_id: str) -> None:
        with self._lock:
            msg = self._by_id.get(message_id)
            reason = self._undeliverable_numbers.get(msg["to"]) if msg else None
        if msg is None:
            return  # reset() since
        try:
            if reason is None:
                self.send_status_callback(None, message_id, "Success")
            else:
                self.send_status_callback(None, message_id, "Failed", failure_reason=reason)
        except ValueError:
            pass  # the delivery_report_url was unset since


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
    p = parser("Fake Africa's Talking SMS API server.", 8097)
    p.add_argument(
        "--account",
        action="append",
        type=pair,
        metavar="USERNAME:API_KEY",
        help=f"repeatable; default {DEFAULT_USERNAME}:{DEFAULT_API_KEY}",
    )
    add_fault_options(p, fail="NUMBER:CODE_OR_STATUS", undeliverable="NUMBER:FAILURE_REASON")
    p.add_argument(
        "--sender-id", action="append", metavar="SENDER", help="registered sender IDs (default: any)"
    )
    p.add_argument("--auto-callbacks", action="store_true")
    p.add_argument("--delivery-report-url", help="where auto callbacks go (the dashboard's setting)")
    p.add_argument("--callback-delay", type=float, default=0.0)
    args, options = parse(p, argv)
    fake = FakeAfricasTalking(
        dict(args.account) if args.account else None,
        sender_ids=args.sender_id,
        auto_callbacks=args.auto_callbacks,
        delivery_report_url=args.delivery_report_url,
        callback_delay=args.callback_delay,
        **options,
    )
    run(fake, args.port, [f"username {name}  apiKey {key}" for name, key in fake.accounts.items()])


if __name__ == "__main__":
    main()
