"""Messages-per-second limits shared by every worker, in Redis.

A GCRA (virtual scheduling) limiter in one Lua script: each key holds the
theoretical arrival time (TAT, microseconds of Redis' own clock) of its next
free slot. A caller reserves the next slot that is free on *all* its keys (the
sender's and the project's) if it starts within ``max_ahead`` seconds, and
then sleeps until it. Slots are spaced ``(1 + HEADROOM)/rate`` apart with no
burst, so N workers together never send more than ``rate`` messages in any
second. The headroom is for the gateway's side of it: a message goes a little
after its slot (a few milliseconds of CPU, the network), and with slots exactly
``1/rate`` apart, one that goes late followed by one that goes on time made 11
arrive within a second at 10/s in the bench. With 2% the slots of any second
span 1.02 s, so a message may be up to 20 ms later than the one ``rate`` slots
after it. Using Redis' clock means the workers' clocks do not matter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_ahead = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local spacing = 0
local slot = now
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i + 2])
  if interval > spacing then spacing = interval end
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat > slot then slot = tat end
end
local wait = slot - now
if wait > max_ahead then
  return {0, string.format('%.0f', wait), string.format('%.0f', spacing)}
end
local next_free = slot + count * spacing
local ttl = math.ceil((next_free - now) / 1000) + 1000
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', next_free), 'PX', ttl)
end
return {1, string.format('%.0f', wait), string.format('%.0f', spacing)}
"""


# Slots are this much further apart than 1/rate (see the module's docstring).
HEADROOM = 0.02


@dataclass
class Reservation:
    granted: bool
    wait: float  # seconds until the first slot (granted) or until one may be free (not granted)
    spacing: float = 0.0  # seconds between the reserved slots
    start: float = 0.0  # time.monotonic() of the first slot (granted)

    def slot(self, index: int) -> float:
        """``time.monotonic()`` at which the ``index``-th reserved message may go."""
        return self.start + index * self.spacing


class RateLimiter:
    """Reserve send slots on several keys at once (e.g. per sender and per project)."""

    def __init__(self, redis):
        self.redis = redis
        self._script = redis.register_script(_SCRIPT)

    def reserve(self, limits: dict[str, float], max_ahead: float = 1.0, count: int = 1) -> Reservation:
        """Reserve ``count`` consecutive slots free on every key of ``limits`` ({key: messages/s}).

        Granted when the first starts within ``max_ahead`` seconds. The slots
        are spaced by the slowest key's interval; every key is booked until
        the last one, so no other caller can take a slot in between.
        """
        keys = [k for k, rate in limits.items() if rate and rate > 0]
        if not keys:
            return Reservation(True, 0.0, 0.0, time.monotonic())
        args = [int(max_ahead * 1_000_000), int(count)] + [
            int(1_000_000 * (1 + HEADROOM) / float(limits[k])) for k in keys
        ]
        asked = time.monotonic()
        granted, wait_us, spacing_us = self._script(keys=keys, args=args)
        wait = int(wait_us) / 1_000_000
        return Reservation(bool(int(granted)), wait, int(spacing_us) / 1_000_000, asked + wait)

    def acquire(
        self, limits: dict[str, float], max_wait: float, sleep=time.sleep, count: int = 1
    ) -> Reservation | None:
        """Reserve ``count`` slots, waiting at most ``max_wait`` seconds for the first to be near.

        Returns the reservation (the caller sends message ``i`` at
        ``reservation.slot(i)``), or None when no slot came in time. With
        ``count=1`` it also sleeps until the slot.
        """
        deadline = time.monotonic() + max_wait
        while True:
            res = self.reserve(limits, max_ahead=min(1.0, max(0.0, deadline - time.monotonic())), count=count)
            if res.granted:
                if count == 1 and res.wait > 0:
                    sleep(res.wait)
                return res
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sleep(max(0.01, min(res.wait - 0.9, remaining, 0.5)))


def sender_key(project_id: int, sender: str) -> str:
    return f"sms:rate:sender:{sender}"


def gateway_key(project_id: int, gateway_id: int | None) -> str:
    """The key of one gateway's whole rate (``project_mps``)."""
    return f"sms:rate:project:{project_id}:{gateway_id or 0}"
