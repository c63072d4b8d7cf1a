"""A project's gateway settings: reading, validating and saving them, and the gateway they make.

Rules:
- A project that saved no settings gets a transient console gateway (the
  ``SMS_GATEWAY`` setting when it names a known kind); nothing is written.
- Sender numbers (``from_numbers``) are E.164; blanks are ignored and repeats
  dropped. A Twilio gateway needs an Account SID (AC + 32 hex characters),
  an auth token, and at least one number or a Messaging Service SID (MG + 32
  hex characters). ``mps`` (per sender) is 1 to 1,000, ``project_mps`` 1 to
  10,000.
- The Twilio auth token is stored encrypted (``crypto``) and never shown
  again: saving with an empty ``auth_token`` keeps the stored one, for the
  same Account SID only.
- Settings that cannot make a gateway (a missing or unreadable token) raise
  ``GatewayError`` (not retryable) when a send job builds its gateway.
- Saving does not commit: the caller owns the transaction.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import select

from messaging.errors import Invalid
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import GatewayConfig
from messaging.models.sms import GATEWAY_KINDS
from messaging.sms import crypto
from messaging.sms.e164 import E164
from messaging.sms.gateways import ConsoleGateway, Gateway, GatewayError, TwilioGateway
from messaging.sms.tuning import setting

log = logging.getLogger(__name__)


def _saved(project_id: int) -> GatewayConfig | None:
    return db.session.execute(
        select(GatewayConfig)
        .where(GatewayConfig.project_id == project_id)
        .execution_options(all_projects=True)
    ).scalar_one_or_none()


def gateway_config(project_id: int) -> GatewayConfig:
    """The project's gateway settings; a transient console (``SMS_GATEWAY``) default when none are saved."""
    cfg = _saved(project_id)
    if cfg is None:
        default = setting("SMS_GATEWAY", "console")
        cfg = GatewayConfig(
            project_id=project_id,
            kind=default if default in GATEWAY_KINDS else "console",
            from_numbers=[],
            mps=10,
        )
    return cfg


def save_gateway(
    project_id: int,
    *,
    kind: str,
    account_sid: str | None = None,
    auth_token: str | None = None,
    from_numbers: list[str] | None = None,
    messaging_service_sid: str | None = None,
    mps: int | None = None,
    project_mps: int | None = None,
) -> GatewayConfig:
    """Validate and save the project's gateway (an empty ``auth_token`` keeps the stored one). No commit."""
    if kind not in GATEWAY_KINDS:
        raise Invalid("validation_error", f"kind: must be one of {', '.join(GATEWAY_KINDS)}.", field="kind")
    numbers = _sender_numbers(from_numbers)
    if mps is not None and not 1 <= mps <= 1000:
        raise Invalid("validation_error", "mps: must be between 1 and 1000.", field="mps")
    if project_mps is not None and not 1 <= project_mps <= 10000:
        raise Invalid("validation_error", "project_mps: must be between 1 and 10000.", field="project_mps")
    existing = _saved(project_id)
    cfg = existing or GatewayConfig(project_id=project_id, from_numbers=[], mps=10)
    if kind == "twilio":
        _set_twilio_account(cfg, account_sid, auth_token, messaging_service_sid, numbers)
    else:
        cfg.messaging_service_sid = (messaging_service_sid or "").strip() or None
    cfg.kind = kind
    cfg.from_numbers = numbers
    if mps is not None:
        cfg.mps = mps
    cfg.project_mps = project_mps
    cfg.updated_at = clock.now()
    if existing is None:
        db.session.add(cfg)
    db.session.flush()
    log.info("gateway saved project_id=%s kind=%s senders=%s", project_id, kind, len(numbers))
    return cfg


def _sender_numbers(from_numbers: list[str] | None) -> list[str]:
    """The given sender numbers without spaces, blanks and repeats; Invalid for one that is not E.164."""
    numbers = []
    for raw in from_numbers or []:
        number = (raw or "").strip().replace(" ", "")
        if not number:
            continue
        if not E164.match(number):
            raise Invalid(
                "validation_error",
                f"from_numbers: {raw!r} is not an E.164 number like +15005550006.",
                field="from_numbers",
            )
        if number not in numbers:
            numbers.append(number)
    return numbers


def _set_twilio_account(
    cfg: GatewayConfig,
    account_sid: str | None,
    auth_token: str | None,
    messaging_service_sid: str | None,
    numbers: list[str],
) -> None:
    """Check the Twilio account's fields and set them on ``cfg`` (the token encrypted)."""
    account_sid = (account_sid or "").strip()
    if not re.fullmatch(r"AC[0-9a-fA-F]{32}", account_sid):
        raise Invalid(
            "validation_error",
            "account_sid: a Twilio Account SID is AC followed by 32 hex characters.",
            field="account_sid",
        )
    service = (messaging_service_sid or "").strip() or None
    if service and not re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
        raise Invalid(
            "validation_error",
            "messaging_service_sid: a Messaging Service SID is MG followed by 32 hex characters.",
            field="messaging_service_sid",
        )
    if not numbers and not service:
        raise Invalid(
            "validation_error",
            "from_numbers: give at least one number, or a messaging_service_sid.",
            field="from_numbers",
        )
    token = (auth_token or "").strip()
    keeps_token = not token and cfg.auth_token_encrypted and cfg.account_sid == account_sid
    if not token and not keeps_token:
        raise Invalid("validation_error", "auth_token: is required.", field="auth_token")
    if token:
        cfg.auth_token_encrypted = crypto.encrypt(token)
    cfg.account_sid = account_sid
    cfg.messaging_service_sid = service


def build_gateway(cfg: GatewayConfig) -> Gateway:
    """The gateway object for these settings; GatewayError (not retryable) when unusable."""
    if cfg.kind == "twilio":
        token = crypto.decrypt(cfg.auth_token_encrypted) if cfg.auth_token_encrypted else None
        if not token or not cfg.account_sid:
            raise GatewayError(
                "no_gateway",
                "The Twilio auth token is missing or unreadable; enter it again.",
                retryable=False,
            )
        return TwilioGateway(cfg.account_sid, token, cfg.messaging_service_sid)
    return ConsoleGateway(cfg.project_id)


def status_callback_url() -> str | None:
    """Where the gateway reports delivery statuses: ``PUBLIC_BASE_URL`` + ``/twilio/status`` (None unset)."""
    base = setting("PUBLIC_BASE_URL", "")
    return f"{base.rstrip('/')}/twilio/status" if base else None
