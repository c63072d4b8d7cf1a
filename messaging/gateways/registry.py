"""The gateway registry: every kind of gateway, and the class that speaks to it.

Rules:
- Adding a provider is one module of this package with a ``Gateway`` subclass
  (``messaging.gateways.base``), one line here, and its fake in ``tests/fakes``.
- Provider modules are imported when first used, so a process that never
  sends through Vonage never loads Vonage's client.
"""

from __future__ import annotations

import importlib

from messaging.gateways.base import Gateway

# kind -> "module:Class"; the order is the gateway page's.
PROVIDERS = {
    "console": "messaging.gateways.console:ConsoleGateway",
    "twilio": "messaging.gateways.twilio:TwilioGateway",
    "africastalking": "messaging.gateways.africastalking:AfricasTalkingGateway",
    "vonage": "messaging.gateways.vonage:VonageGateway",
    "infobip": "messaging.gateways.infobip:InfobipGateway",
    "telerivet": "messaging.gateways.telerivet:TelerivetGateway",
    "http": "messaging.gateways.http_generic:HttpGateway",
}
KINDS = tuple(PROVIDERS)


def provider(kind: str) -> type[Gateway]:
    """The class of a gateway kind (KeyError for an unknown kind)."""
    module_name, _, class_name = PROVIDERS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
