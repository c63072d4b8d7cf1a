"""A project's gateways: reading, validating and saving them, and the gateway objects they make.

Rules:
- A project has any number of gateways; exactly one is its default
  (``is_default``, one per project by a unique index). Adding a gateway that
  is not to be the default to a project that saved none saves its transient
  console first, which stays the default. A project that saved
  none gets a transient console gateway (the ``SMS_GATEWAY`` setting when it
  names a known kind); nothing is written.
- ``name`` is 1-80 characters, unique in the project (defaults to the kind's
  label). ``prefixes`` are ``+`` and 1-7 digits, each taken by one gateway of
  the project only (a number goes to the gateway with its longest prefix,
  ``messaging.gateways.routing``).
- Sender numbers (``from_numbers``) are E.164; blanks are ignored and repeats
  dropped. ``mps`` (per sender) and ``project_mps`` (the whole
  gateway) 1 to 10,000. ``allowed_ips``: addresses or CIDR ranges that alone
  may call its webhooks (empty: any).
- Each kind's settings are its ``fields`` (``messaging.gateways.base.Field``):
  required ones must be given, unknown ones are refused, and the kind checks
  the rest (``check_settings``). Secrets are stored encrypted (``crypto``) and
  never shown again: saving without one keeps the stored one.
- Twilio keeps its account in its own columns (the Twilio webhooks look a
  gateway up by Account SID); the auth token is kept only for the same Account SID.
- Every saved gateway has a ``webhook_secret`` (random, 32 characters), the
  secret of its inbound and status URLs.
- Settings that cannot make a gateway (a missing or unreadable secret) raise
  ``GatewayError`` (not retryable) when a send job builds its gateway.
- Saving does not commit: the caller owns the transaction.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets as token_source
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from sqlalchemy import select, update

from messaging.errors import NotFound, field_error
from messaging.extensions import db
from messaging.gateways.base import Gateway, GatewayError, GatewaySettings
from messaging.gateways.registry import KINDS, provider
from messaging.lib import clock
from messaging.models import GatewayConfig
from messaging.sms import crypto
from messaging.sms.e164 import E164
from messaging.sms.tuning import setting

log = logging.getLogger(__name__)

PREFIX = re.compile(r"\+[0-9]{1,7}")
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
# Twilio's settings live in columns of their own.
TWILIO_COLUMNS = ("account_sid", "messaging_service_sid")


def gateways_of(project_id: int) -> list[GatewayConfig]:
    """The project's saved gateways, the default first, then by id."""
    return list(
        db.session.execute(
            select(GatewayConfig)
            .where(GatewayConfig.project_id == project_id)
            .order_by(GatewayConfig.is_default.desc(), GatewayConfig.id)
            .execution_options(all_projects=True)
        ).scalars()
    )


def get_gateway(project_id: int, gateway_id: int) -> GatewayConfig:
    """One of the project's gateways; NotFound for another project's or an unknown id."""
    cfg = db.session.get(GatewayConfig, gateway_id)
    if cfg is None or cfg.project_id != project_id:
        raise NotFound("not_found", "No such gateway in this project.", field="gateway_id")
    return cfg


def transient_console(project_id: int) -> GatewayConfig:
    """The gateway of a project that saved none (not added to the session)."""
    default = setting("SMS_GATEWAY", "console")
    kind = default if default in ("console", "twilio") else "console"
    return GatewayConfig(
        id=None,
        project_id=project_id,
        kind=kind,
        name="Console" if kind == "console" else kind,
        is_default=True,
        prefixes=[],
        settings={},
        allowed_ips=[],
        from_numbers=[],
        mps=10,
    )


def gateway_config(project_id: int) -> GatewayConfig:
    """The project's default gateway; a transient console (``SMS_GATEWAY``) when none is saved."""
    saved = gateways_of(project_id)
    return saved[0] if saved else transient_console(project_id)


def project_gateways(project_id: int) -> list[GatewayConfig]:
    """Every gateway a message of the project may take: the saved ones, or the transient console."""
    return gateways_of(project_id) or [transient_console(project_id)]


@dataclass
class GatewayInput:
    """What a user gives for one gateway (None: keep, or the default for a new one)."""

    kind: str
    name: str | None = None
    is_default: bool | None = None
    prefixes: list[str] | None = None
    from_numbers: list[str] | None = None
    mps: int | None = None
    project_mps: int | None = None
    # The kind's fields (a secret left empty keeps the stored one).
    values: dict = dataclass_field(default_factory=dict)
    allowed_ips: list[str] | None = None


def save_gateway(
    project_id: int, given: GatewayInput, gateway_id: int | None = None, *, add: bool = False
) -> GatewayConfig:
    """Validate and save one gateway: ``gateway_id`` names the one to change; ``add`` adds a new
    one; else the default is changed (made when there is none). A project's first gateway is its
    default. No commit."""
    kind, name, is_default = given.kind, given.name, given.is_default
    prefixes, from_numbers, mps, project_mps = (
        given.prefixes,
        given.from_numbers,
        given.mps,
        given.project_mps,
    )
    values, allowed_ips = given.values, given.allowed_ips
    if kind not in KINDS:
        raise field_error("kind", f"must be one of {', '.join(KINDS)}.")
    if mps is not None and not 1 <= mps <= 10000:
        raise field_error("mps", "must be between 1 and 10000.")
    if project_mps is not None and not 1 <= project_mps <= 10000:
        raise field_error("project_mps", "must be between 1 and 10000.")
    numbers = _sender_numbers(from_numbers)
    saved, cfg = _the_one_to_save(project_id, gateway_id, add, is_default)
    is_new = cfg is None
    if cfg is None:
        cfg = GatewayConfig(
            project_id=project_id,
            from_numbers=[],
            mps=10,
            prefixes=[],
            settings={},
            allowed_ips=[],
            is_default=not saved,
            webhook_secret=token_source.token_urlsafe(24),
        )
    others = [g for g in saved if g.id != cfg.id]
    cfg.name = _name(name, cfg.name if not is_new and cfg.kind == kind else None, kind, others)
    if prefixes is not None:
        cfg.prefixes = _prefixes(prefixes, others)
    if allowed_ips is not None:
        cfg.allowed_ips = _allowed_ips(allowed_ips)
    _set_values(cfg, kind, dict(values or {}), numbers)
    cfg.kind = kind
    cfg.from_numbers = numbers
    if mps is not None:
        cfg.mps = mps
    cfg.project_mps = project_mps
    cfg.updated_at = clock.now()
    cfg.webhook_secret = cfg.webhook_secret or token_source.token_urlsafe(24)
    if is_default and not cfg.is_default:
        # Only one default: the others stop being it first (the unique index checks each row).
        db.session.execute(
            update(GatewayConfig)
            .where(GatewayConfig.project_id == project_id, GatewayConfig.is_default.is_(True))
            .values(is_default=False)
            .execution_options(synchronize_session="fetch")
        )
        cfg.is_default = True
    if is_new:
        db.session.add(cfg)
    db.session.flush()
    log.info(
        "gateway saved project_id=%s gateway_id=%s kind=%s senders=%s prefixes=%s",
        project_id,
        cfg.id,
        kind,
        len(numbers),
        len(cfg.prefixes or []),
    )
    return cfg


def _the_one_to_save(
    project_id: int, gateway_id: int | None, add: bool, is_default: bool | None
) -> tuple[list[GatewayConfig], GatewayConfig | None]:
    """The project's saved gateways, and the one a save changes (None: a new one)."""
    saved = gateways_of(project_id)
    if add and not saved and is_default is not True:
        saved = _keep_transient_default(project_id)
    if gateway_id is not None:
        return saved, get_gateway(project_id, gateway_id)
    if add:
        return saved, None
    return saved, saved[0] if saved else None


def _keep_transient_default(project_id: int) -> list[GatewayConfig]:
    """Save the project's transient console before another gateway is added beside it, so it
    stays the default instead of the newcomer taking every number (a transient Twilio, which
    has no account to save, is not kept)."""
    cfg = transient_console(project_id)
    if cfg.kind != "console":
        return []
    cfg.webhook_secret = token_source.token_urlsafe(24)
    db.session.add(cfg)
    db.session.flush()
    return [cfg]


def delete_gateway(project_id: int, gateway_id: int) -> None:
    """Remove a gateway that is not the default (the default goes last, or after another is made
    default). Messages it took keep its kind. No commit."""
    cfg = get_gateway(project_id, gateway_id)
    if cfg.is_default and len(gateways_of(project_id)) > 1:
        raise field_error("is_default", "make another gateway the default before removing this one.")
    db.session.delete(cfg)
    db.session.flush()
    log.info("gateway removed project_id=%s gateway_id=%s", project_id, gateway_id)


def _name(name: str | None, current: str | None, kind: str, others: list[GatewayConfig]) -> str:
    text = (name or "").strip() or current or provider(kind).label
    if len(text) > 80:
        raise field_error("name", "at most 80 characters.")
    if any(g.name == text for g in others):
        if name:
            raise field_error("name", f"another gateway is called {text!r}.")
        text = f"{text} {len(others) + 1}"
    return text


def _prefixes(raw: list[str], others: list[GatewayConfig]) -> list[str]:
    taken = {p: g.name for g in others for p in (g.prefixes or [])}
    found: list[str] = []
    for item in raw:
        prefix = str(item or "").strip().replace(" ", "")
        if not prefix:
            continue
        if not prefix.startswith("+"):
            prefix = "+" + prefix
        if not PREFIX.fullmatch(prefix):
            raise field_error(
                "prefixes", f"{item!r} is not a number prefix like +254 (a plus and 1 to 7 digits)."
            )
        if prefix in taken:
            raise field_error("prefixes", f"{prefix} is already taken by the gateway {taken[prefix]!r}.")
        if prefix not in found:
            found.append(prefix)
    return found


def _allowed_ips(raw: list[str]) -> list[str]:
    found = []
    for item in raw:
        text = str(item or "").strip()
        if not text:
            continue
        try:
            found.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise field_error(
                "allowed_ips", f"{item!r} is not an address or a range like 196.201.214.0/24."
            ) from None
    return found


def _sender_numbers(from_numbers: list[str] | None) -> list[str]:
    """The given sender numbers without spaces, blanks and repeats; Invalid for one that is not E.164."""
    numbers = []
    for raw in from_numbers or []:
        number = (raw or "").strip().replace(" ", "")
        if not number:
            continue
        if not E164.match(number):
            raise field_error("from_numbers", f"{raw!r} is not an E.164 number like +15005550006.")
        if number not in numbers:
            numbers.append(number)
    return numbers


def _set_values(cfg: GatewayConfig, kind: str, values: dict, numbers: list[str]) -> None:
    """Check the kind's fields in ``values`` and set them on ``cfg`` (secrets encrypted)."""
    cls = provider(kind)
    known = {f.name: f for f in cls.fields}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise field_error(unknown[0], f"not a setting of a {cls.label} gateway.")
    same_kind = cfg.kind == kind
    kept_secrets = stored_secrets(cfg) if same_kind else {}
    plain, secret = {}, {}
    for field in cls.fields:
        value = values.get(field.name)
        text = value.strip() if isinstance(value, str) else value
        if field.secret:
            if text:
                secret[field.name] = text
            elif field.name in kept_secrets and _keeps_secrets(cfg, kind, values):
                secret[field.name] = kept_secrets[field.name]
        elif text not in (None, ""):
            plain[field.name] = text
    if kind == "twilio":
        _check_twilio(plain, numbers)
    for field in cls.fields:
        if field.required and field.name not in plain and field.name not in secret:
            raise field_error(field.name, "is required.")
    cls.check_settings(plain, secret)
    if kind == "twilio":
        cfg.account_sid = plain.pop("account_sid")
        cfg.messaging_service_sid = plain.pop("messaging_service_sid", None)
        cfg.auth_token_encrypted = crypto.encrypt(secret.pop("auth_token"))
    else:
        cfg.account_sid = None
        cfg.messaging_service_sid = None
        cfg.auth_token_encrypted = None
    cfg.settings = plain
    cfg.secrets_encrypted = crypto.encrypt(json.dumps(secret)) if secret else None


def _keeps_secrets(cfg: GatewayConfig, kind: str, values: dict) -> bool:
    """Stored secrets are kept when the kind is the same, and for Twilio the Account SID too."""
    if kind != "twilio":
        return True
    return cfg.account_sid == (values.get("account_sid") or "").strip()


def _check_twilio(plain: dict, numbers: list[str]) -> None:
    if not ACCOUNT_SID.fullmatch(plain.get("account_sid", "")):
        raise field_error("account_sid", "a Twilio Account SID is AC followed by 32 hex characters.")
    service = plain.get("messaging_service_sid")
    if service and not SERVICE_SID.fullmatch(service):
        raise field_error(
            "messaging_service_sid", "a Messaging Service SID is MG followed by 32 hex characters."
        )
    if not numbers and not service:
        raise field_error("from_numbers", "give at least one number, or a messaging_service_sid.")


def stored_settings(cfg: GatewayConfig) -> dict:
    """The kind's plain settings of a saved gateway (Twilio's from its columns)."""
    if cfg.kind == "twilio":
        found = {"account_sid": cfg.account_sid}
        if cfg.messaging_service_sid:
            found["messaging_service_sid"] = cfg.messaging_service_sid
        return found
    return dict(cfg.settings or {})


def stored_secrets(cfg: GatewayConfig) -> dict:
    """The decrypted secrets of a saved gateway; empty when unreadable (another SECRET_KEY)."""
    if cfg.kind == "twilio":
        token = crypto.decrypt(cfg.auth_token_encrypted) if cfg.auth_token_encrypted else None
        return {"auth_token": token} if token else {}
    if not cfg.secrets_encrypted:
        return {}
    plain = crypto.decrypt(cfg.secrets_encrypted)
    return json.loads(plain) if plain else {}


def build_gateway(cfg: GatewayConfig, *, without_secrets: bool = False) -> Gateway:
    """The gateway object for these settings; GatewayError (not retryable) when unusable.
    ``without_secrets``: one that only reads webhooks, made without its secrets."""
    cls = provider(cfg.kind)
    secrets = {} if without_secrets else stored_secrets(cfg)
    missing = [f.label.lower() for f in cls.fields if f.secret and f.required and not secrets.get(f.name)]
    if missing and not without_secrets:
        raise GatewayError(
            "no_gateway",
            f"The {cls.label} gateway's {missing[0]} is missing or unreadable; enter it again.",
            retryable=False,
        )
    return cls(
        GatewaySettings(
            id=cfg.id,
            project_id=cfg.project_id,
            kind=cfg.kind,
            settings=stored_settings(cfg),
            secrets=secrets,
            from_numbers=list(cfg.from_numbers or []),
        )
    )


def sender_pool(cfg: GatewayConfig) -> list[str]:
    """The numbers messages of this gateway go from (empty: the provider or a setting picks)."""
    return list(cfg.from_numbers or []) if provider(cfg.kind).uses_number_pool else []


def messages_per_second(cfg: GatewayConfig, unset_mps: int = 10) -> float:
    """What the gateway allows: ``mps`` for each sender of its pool (one sender without a pool),
    capped by its ``project_mps``; ``unset_mps`` when a transient gateway has no ``mps``."""
    rate = float((cfg.mps or unset_mps) * max(1, len(sender_pool(cfg))))
    return min(rate, float(cfg.project_mps)) if cfg.project_mps else rate


def webhook_url(cfg: GatewayConfig, which: str) -> str | None:
    """Where the provider calls for ``which`` (``inbound`` or ``status``): the public base URL,
    the gateway's path and its secret. Twilio's status goes to ``/twilio/status`` (signed, found
    by its Account SID). None without ``PUBLIC_BASE_URL`` or for an unsaved gateway."""
    base = setting("PUBLIC_BASE_URL", "")
    if not base:
        return None
    if cfg.kind == "twilio" and which == "status":
        return f"{base.rstrip('/')}/twilio/status"
    if cfg.id is None:
        return None
    return f"{base.rstrip('/')}/gateways/{cfg.kind}/{cfg.id}/{which}?secret={cfg.webhook_secret}"


def status_callback_url(cfg: GatewayConfig) -> str | None:
    """The delivery-report URL given with each message, for kinds that take one per message."""
    return None if cfg.kind == "console" else webhook_url(cfg, "status")
