"""A per-phone-number lock in Redis, so one number's messages are handled one at a time.

Rules:

- ``SET key token NX PX ttl`` takes it (60 s by default, per project and phone);
  release and extend are Lua scripts that act only when the key still holds OUR
  token (a lock that expired and was taken by another worker is never released
  or extended by the old holder).
- The survey tick takes the same lock, so it never races with the handling of a
  reply from the same number.
"""

from __future__ import annotations

import uuid

from messaging.jobs import redis_conn

LOCK_KEY = "inbound:lock:{project_id}:{phone}"
DEFAULT_TTL_MS = 60_000

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


class NumberLock:
    """The lock of one number of one project, held by this instance's token."""

    def __init__(self, project_id: int, phone: str, ttl_ms: int = DEFAULT_TTL_MS):
        self.key = LOCK_KEY.format(project_id=project_id, phone=phone)
        self.token = uuid.uuid4().hex
        self.ttl_ms = ttl_ms
        self.held = False

    def acquire(self) -> bool:
        self.held = bool(redis_conn().set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    def extend(self) -> bool:
        ok = bool(redis_conn().eval(_EXTEND, 1, self.key, self.token, self.ttl_ms))
        self.held = ok
        return ok

    def release(self) -> bool:
        if not self.held:
            return False
        self.held = False
        return bool(redis_conn().eval(_RELEASE, 1, self.key, self.token))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
