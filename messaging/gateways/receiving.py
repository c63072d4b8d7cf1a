"""A provider's webhooks: who may call them, and what their requests change.

Rules:
- ``/gateways/<kind>/<gateway_id>/inbound`` and ``/status`` belong to one saved
  gateway. A request is taken when it carries the gateway's own proof (its
  provider's signature or posted secret, ``Gateway.verify``) or the gateway's
  ``webhook_secret`` in the URL (``?secret=``, compared in constant time); and,
  when the gateway lists ``allowed_ips``, only from one of them. Anything
  else (an unknown gateway, another kind, a wrong secret) is refused the same
  way, and nothing is read or written.
- Inbound messages are stored once per provider message id and handled in a
  job, per number in order, as Twilio's (``messaging.inbound.receive``).
- Delivery reports only move a message forward (``messaging.sms.status``); a
  report for an unknown message id is kept an hour (it may beat the send
  job's commit) and otherwise ignored.
- A gateway whose secrets cannot be read (``SECRET_KEY`` changed) cannot send,
  but its webhooks with the URL's secret are still read.
- A request the provider module cannot read yields no item: it is answered
  as usual, so the provider does not retry it forever, and logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from sqlalchemy import select

from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.gateways.base import Gateway, GatewayError, WebhookRequest
from messaging.gateways.settings import build_gateway
from messaging.models import GatewayConfig
from messaging.sms.status import handle_status_callback

log = logging.getLogger(__name__)


class Refused(Exception):
    """The request is not the gateway's (answered 403, nothing changed)."""


def authenticated_gateway(
    kind: str, gateway_id: int, request: WebhookRequest
) -> tuple[GatewayConfig, Gateway]:
    """The saved gateway this request is for and its object; Refused unless the request proves it."""
    cfg = db.session.execute(
        select(GatewayConfig)
        .where(GatewayConfig.id == gateway_id, GatewayConfig.kind == kind)
        .execution_options(all_projects=True)  # the project is what the gateway says
    ).scalar_one_or_none()
    if cfg is None:
        raise Refused(f"no {kind} gateway {gateway_id}")
    if cfg.allowed_ips and not address_allowed(request.remote_addr, cfg.allowed_ips):
        raise Refused(f"address not allowed gateway_id={gateway_id}")
    given = request.args.get("secret", "")
    secret_ok = bool(given) and bool(cfg.webhook_secret) and hmac.compare_digest(given, cfg.webhook_secret)
    try:
        gateway = build_gateway(cfg)
    except GatewayError as exc:
        if not secret_ok:
            raise Refused(f"gateway unusable gateway_id={gateway_id}: {exc.code}") from exc
        # Its secrets are unreadable (SECRET_KEY changed): it cannot send, but what the
        # provider posts to a URL with the right secret is still read, not lost.
        gateway = build_gateway(cfg, without_secrets=True)
    if not secret_ok and not gateway.verify(request):
        raise Refused(f"no valid secret or signature gateway_id={gateway_id}")
    return cfg, gateway


def address_allowed(address: str, allowed: list[str]) -> bool:
    """True when ``address`` is in one of the ``allowed`` addresses or ranges."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in allowed)


def take_inbound(cfg: GatewayConfig, gateway: Gateway, request: WebhookRequest) -> int:
    """Store the request's inbound messages (each once) and queue their handling; how many were new."""
    from messaging.inbound.receive import receive_inbound

    items = gateway.parse_inbound(request)
    if not items:
        log.warning("inbound request without a message gateway_id=%s kind=%s", cfg.id, cfg.kind)
    created = 0
    with project_scope(cfg.project_id):
        for item in items:
            _, is_new = receive_inbound(
                cfg.project_id, item.from_number, item.to_number, item.body, item.sid, (cfg.kind, cfg.id)
            )
            created += int(is_new)
    return created


def take_status(cfg: GatewayConfig, gateway: Gateway, request: WebhookRequest) -> list[str]:
    """Apply the request's delivery reports (does not commit); the outcome of each."""
    reports = gateway.parse_status(request)
    if not reports:
        log.info("status request without a report we use gateway_id=%s kind=%s", cfg.id, cfg.kind)
    with project_scope(cfg.project_id):
        return [handle_status_callback(cfg.project_id, report, gateway_id=cfg.id) for report in reports]
