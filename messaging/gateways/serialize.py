"""THE JSON of a gateway: one shape for the API and the gateway page.

Rules:
- Secrets are never shown, only which are stored (``secrets_set``; Twilio's
  ``auth_token_set`` as before). Plain settings are shown as saved.
- A saved gateway shows its webhook URLs (with its secret) to admins only, when
  ``PUBLIC_BASE_URL`` is set; the project's unsaved console has none. A viewer
  holding them could post inbound messages and reports as the provider.
"""

from __future__ import annotations

from messaging.gateways import testing
from messaging.gateways.registry import provider
from messaging.gateways.settings import stored_secrets, stored_settings, webhook_url
from messaging.lib import clock
from messaging.models import GatewayConfig


def gateway_json(cfg: GatewayConfig, with_urls: bool = False) -> dict:
    """The settings as shown to users: never a secret, only whether it is stored; the webhook
    URLs (which carry the gateway's secret) when ``with_urls`` (an admin asks)."""
    secret_names = [f.name for f in provider(cfg.kind).fields if f.secret]
    stored = stored_secrets(cfg) if cfg.id is not None else {}
    return {
        "id": cfg.id,
        "kind": cfg.kind,
        "name": cfg.name,
        "is_default": bool(cfg.is_default),
        "prefixes": list(cfg.prefixes or []),
        "settings": stored_settings(cfg) if cfg.id is not None else {},
        "secrets_set": [name for name in secret_names if stored.get(name)],
        "account_sid": cfg.account_sid,
        "auth_token_set": bool(cfg.auth_token_encrypted),
        "from_numbers": list(cfg.from_numbers or []),
        "messaging_service_sid": cfg.messaging_service_sid,
        "mps": cfg.mps,
        "project_mps": cfg.project_mps,
        "allowed_ips": list(cfg.allowed_ips or []),
        "inbound_url": webhook_url(cfg, "inbound") if with_urls else None,
        "status_url": webhook_url(cfg, "status") if with_urls else None,
        "updated_at": clock.isoformat(cfg.updated_at),
    }


def kind_json(kind: str) -> dict:
    """What a gateway kind takes (the gateway page's form)."""
    cls = provider(kind)
    return {
        "kind": kind,
        "label": cls.label,
        "uses_number_pool": cls.uses_number_pool,
        "fields": [
            {
                "name": f.name,
                "label": f.label,
                "required": f.required,
                "secret": f.secret,
                "help": f.help,
                "choices": list(f.choices),
                "multiline": f.multiline,
            }
            for f in cls.fields
        ],
    }


def test_send_json(message) -> dict:
    """A gateway page's test message as the page follows it: its status, whether it is final,
    and why it failed in plain words."""
    failed = message.status in ("failed", "undelivered")
    return {
        "message_id": message.id,
        "gateway_id": message.gateway_id,
        "status": message.status,
        "final": message.status in ("sent", "delivered", "undelivered", "failed"),
        "explanation": testing.explain(message.error_code, message.error_message) if failed else None,
    }
