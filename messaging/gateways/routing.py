"""Which of a project's gateways a message takes.

Rules:
- A message pinned to a gateway (``messages.gateway_id`` set when it was
  queued: a gateway page's test send) takes that one while it exists.
- Otherwise the gateway whose ``prefixes`` holds the longest prefix of the
  number takes it; a number no prefix matches takes the default gateway.
- The choice is made when a message is sent (and again when the sweep asks
  about it), so a change of prefixes applies to every message still queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Routable(Protocol):
    id: int | None
    is_default: bool
    prefixes: list


def choose(phone: str, gateways: Sequence[Routable], pinned: int | None = None) -> Routable:
    """The gateway of ``gateways`` (non-empty, the default among them) that ``phone`` takes."""
    if pinned is not None:
        for gateway in gateways:
            if gateway.id == pinned:
                return gateway
    best, best_length = None, 0
    for gateway in gateways:
        for prefix in gateway.prefixes or []:
            if len(prefix) > best_length and phone.startswith(prefix):
                best, best_length = gateway, len(prefix)
    if best is not None:
        return best
    return next((g for g in gateways if g.is_default), gateways[0])
