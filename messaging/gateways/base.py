"""What every gateway is: one interface, its results and its errors.

Rules:
- A gateway sends one message and answers a :class:`SendResult`, or raises
  :class:`GatewayError`, which says whether trying again later may pass
  (``retryable``), whether the request may have reached the provider anyway
  (``outcome_unknown``: a read timeout, a connection dropped after the request
  was written) and whether the recipient has opted out at the provider.
- A gateway that can be asked about a message it took (``resolves``) answers
  ``fetch`` and ``find_recent``: the sweep settles an uncertain outcome by
  asking, never by sending blindly. One that cannot be asked relies on the
  send journal (``messaging.gateways.journal``).
- Webhooks reach a gateway as a :class:`WebhookRequest` (the web layer builds
  it; no gateway reads Flask's request). ``verify`` checks the provider's own
  proof (a signature, a secret it posts); ``parse_inbound`` and
  ``parse_status`` turn the request into :class:`InboundSms` and
  :class:`StatusReport` items. Statuses are ours: ``sent``, ``delivered``,
  ``undelivered``, ``failed``; anything else is dropped by the provider module.
- An answer in a shape the provider module does not expect is a
  ``GatewayError`` (code ``unexpected_answer``, the raw answer kept in its
  message, cut to 500 characters), never a crash of the job.
- ``classify_requests_error`` is the one reading of ``requests``' own errors
  (a connect timeout never left; a read timeout or a dropped connection may
  have), shared by every provider that speaks HTTP with ``requests``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

import requests

# The longest raw answer kept on a failed message.
RAW_ANSWER_CHARS = 500


@dataclass
class SendResult:
    sid: str
    status: str  # the gateway's status (queued, accepted, sent...)
    from_number: str | None = None
    segments: int | None = None
    gateway: str | None = None  # the kind of gateway that took it (the usage report's column)
    # What the provider billed, when its answer says (decimal text, e.g. "0.8000", and a currency).
    price: str | None = None
    price_unit: str | None = None
    gateway_id: int | None = None  # the saved gateway (set by the send job)


@dataclass
class RemoteMessage:
    """A message as the gateway knows it (for resolving unknown outcomes)."""

    sid: str
    status: str
    to: str
    from_number: str | None
    body: str
    created_at: datetime | None
    error_code: str | None = None
    # What the gateway billed (Twilio: a negative decimal string, once the message is sent).
    price: str | None = None
    price_unit: str | None = None


class GatewayError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        outcome_unknown: bool = False,
        opted_out: bool = False,
        status: int | None = None,
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        self.opted_out = opted_out
        self.status = status
        # The saved gateway that answered (set by the send job): an unknown outcome is settled
        # by asking that gateway, whatever the routing says by then.
        self.gateway_id: int | None = None


def unexpected_answer(raw: str | bytes, why: str = "") -> GatewayError:
    """The error of an answer in a shape the provider module does not know (the message fails)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    detail = f" ({why})" if why else ""
    return GatewayError(
        "unexpected_answer",
        f"The gateway answered in an unexpected shape{detail}: {text[:RAW_ANSWER_CHARS]}",
        retryable=False,
    )


def classify_requests_error(exc: requests.exceptions.RequestException) -> GatewayError:
    """What ``requests`` raised, as a :class:`GatewayError`."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        # Never connected: the request did not leave.
        return GatewayError("connect_timeout", "Could not connect to the gateway in time.", retryable=True)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return GatewayError(
            "timeout",
            "The gateway did not answer in time; the message may have been sent.",
            retryable=True,
            outcome_unknown=True,
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        # A refused connection never left; a dropped one (reset, remote closed) might have.
        text = repr(exc)
        refused = "refused" in text.lower() or "NewConnectionError" in text or "NameResolution" in text
        return GatewayError(
            "connection_error",
            f"Connection to the gateway failed ({exc.__class__.__name__}).",
            retryable=True,
            outcome_unknown=not refused,
        )
    return GatewayError(
        "http_error", f"{exc.__class__.__name__}: {exc}", retryable=True, outcome_unknown=True
    )


def http_status_error(status: int, text: str) -> GatewayError:
    """An HTTP answer that is not a success, by its status alone: 429 and 5xx may pass later;
    401/403 are wrong credentials; any other 4xx is permanent."""
    detail = text.strip()[:RAW_ANSWER_CHARS] or f"HTTP {status}"
    if status == 429 or status >= 500:
        return GatewayError(str(status), detail, retryable=True, status=status)
    if status in (401, 403):
        return GatewayError(
            "bad_credentials",
            f"The gateway refused the credentials: {detail}",
            retryable=False,
            status=status,
        )
    return GatewayError(str(status), detail, retryable=False, status=status)


def pick_sender(phone: str, pool: list[str]) -> str | None:
    """The pool number for ``phone``: a stable hash, so a recipient always gets the same one."""
    if not pool:
        return None
    digest = hashlib.sha1(phone.encode()).digest()
    return pool[int.from_bytes(digest[:8], "big") % len(pool)]


@dataclass(frozen=True)
class Field:
    """One setting of a gateway kind, as the API and the gateway page take it."""

    name: str
    label: str
    required: bool = False
    secret: bool = False  # stored encrypted, never shown again
    help: str = ""
    multiline: bool = False
    choices: tuple[str, ...] = ()


@dataclass
class WebhookRequest:
    """A provider's request to ``/gateways/<kind>/<id>/inbound`` or ``/status``, as plain data."""

    method: str
    url: str  # as the provider called it (PUBLIC_BASE_URL-based when set)
    headers: dict[str, str]  # names lower-cased
    args: dict[str, str]
    form: dict[str, str]
    body: bytes
    remote_addr: str = ""

    def json(self) -> dict | list | None:
        import json

        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def values(self) -> dict[str, str]:
        """The query string and the form together (the form wins)."""
        return {**self.args, **self.form}


@dataclass
class InboundSms:
    sid: str  # the provider's message id, stored once per project
    from_number: str
    to_number: str
    body: str


@dataclass
class StatusReport:
    sid: str
    status: str  # ours: sent, delivered, undelivered, failed
    error_code: str | None = None
    opted_out: bool = False
    price: str | None = None
    price_unit: str | None = None


@dataclass
class GatewaySettings:
    """What a gateway object is made from: one saved gateway, its secrets decrypted."""

    id: int | None
    project_id: int
    kind: str
    settings: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)
    from_numbers: list[str] = field(default_factory=list)


class Gateway:
    """One provider. Subclasses set the class attributes and implement what their provider allows."""

    kind: ClassVar[str] = "base"
    label: ClassVar[str] = "Gateway"
    fields: ClassVar[tuple[Field, ...]] = ()
    # Whether the provider can be asked about a message (fetch, find_recent).
    resolves: ClassVar[bool] = False
    # Whether messages carry a sender from ``from_numbers`` (a pool), or the provider picks it.
    uses_number_pool: ClassVar[bool] = True
    # What the inbound endpoint answers the provider: (body, mimetype).
    inbound_answer: ClassVar[tuple[str, str]] = ("", "text/plain")

    def __init__(self, config: GatewaySettings):
        self.config = config

    @classmethod
    def check_settings(cls, settings: dict, secrets: dict) -> None:
        """Refuse settings this kind cannot use (``messaging.errors.Invalid``); the default takes
        what the fields allow."""

    def send(self, to: str, body: str, from_number: str | None, status_callback: str | None) -> SendResult:
        raise NotImplementedError

    def fetch(self, sid: str) -> RemoteMessage | None:
        """The gateway's record of ``sid``; None when it does not know it."""
        raise NotImplementedError

    def find_recent(self, to: str, from_number: str | None, limit: int = 20) -> list[RemoteMessage]:
        """The gateway's most recent messages to ``to`` (for resolving an unknown outcome)."""
        raise NotImplementedError

    def verify(self, request: WebhookRequest) -> bool:
        """True when the request carries the provider's own proof (a signature, a posted secret).
        Providers without one answer False: the secret in the URL is then required."""
        return False

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        raise NotImplementedError

    def parse_status(self, request: WebhookRequest) -> list[StatusReport]:
        raise NotImplementedError
