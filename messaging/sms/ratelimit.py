"""Messages-per-second limits shared by every worker, in Redis.

A GCRA (virtual scheduling) limiter in one Lua script: each key holds the
theoretical arrival time (TAT, microseconds of Redis' own clock) of its next
free slot. A caller reserves the next slot that is free on *all* its keys (the
sender's and the project's) if it starts within ``max_ahead`` seconds, and
then sleeps until it. Slots are spaced exactly ``1/rate`` apart with no burst,
so N workers together never send more than ``rate`` messages in any second
(give or take one at a window edge). Using Redis' clock means the workers'
clocks do not matter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_ahead = tonumber(ARGV[1])
local slot = now
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat > slot then slot = tat end
end
local wait = slot - now
if wait > max_ahead then
  return {0, string.format('%.0f', wait)}
end
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i + 1])
  local ttl = math.ceil((slot + interval - now) / 1000) + 1000
  redis.call('SET', key, string.format('%.0f', slot + interval), 'PX', ttl)
end
return {1, string.format('%.0f', wait)}
"""


@dataclass
class Reservation:
    granted: bool
    wait: float  # seconds until the slot (granted) or until one may be free (not granted)


class RateLimiter:
    """Reserve send slots on several keys at once (e.g. per sender and per project)."""

    def __init__(self, redis):
        self.redis = redis
        self._script = redis.register_script(_SCRIPT)

    def reserve(self, limits: dict[str, float], max_ahead: float = 1.0) -> Reservation:
        """Reserve the next slot free on every key of ``limits`` ({key: messages per second}).

        Granted when it starts within ``max_ahead`` seconds; the caller then
        waits ``wait`` seconds before sending.
        """
        keys = [k for k, rate in limits.items() if rate and rate > 0]
        if not keys:
            return Reservation(True, 0.0)
        args = [int(max_ahead * 1_000_000)] + [int(1_000_000 / float(limits[k])) for k in keys]
        granted, wait_us = self._script(keys=keys, args=args)
        return Reservation(bool(int(granted)), int(wait_us) / 1_000_000)

    def acquire(self, limits: dict[str, float], max_wait: float, sleep=time.sleep) -> bool:
        """Wait for a slot for at most ``max_wait`` seconds; True when one was taken."""
        deadline = time.monotonic() + max_wait
        while True:
            res = self.reserve(limits, max_ahead=min(1.0, max(0.0, deadline - time.monotonic())))
            if res.granted:
                if res.wait > 0:
                    sleep(res.wait)
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            sleep(max(0.01, min(res.wait - 0.9, remaining, 0.5)))


def sender_key(project_id: int, sender: str) -> str:
    return f"sms:rate:sender:{sender}"


def project_key(project_id: int) -> str:
    return f"sms:rate:project:{project_id}"
