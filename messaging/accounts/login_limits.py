"""Limits on wrong passwords, shared by every web process through Redis.

Rules:
- Only wrong passwords count (a refused e-mail counts like a refused password,
  so the limit says nothing about which e-mails exist). Each one counts
  against the typed account (``LOGIN_LIMIT_PER_ACCOUNT``, default 10 per 15
  minutes) and the client's address (``LOGIN_LIMIT_PER_ADDRESS``, 30 per 15
  minutes), in a moving window.
- While either limit is reached, every login for that account or from that
  address is refused before the password is looked at, the right one too
  (``TooManyWrongPasswords``, with the minutes to wait).
- The counts live in Redis (the app's ``REDIS_URL``, keys under
  ``<RQ_QUEUE_PREFIX>login-limits``), so all web processes share them. An
  account is keyed by the SHA-256 of its normalized e-mail: Redis never holds
  a typed address.
- A successful login forgets the account's count, not the address's.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import current_app
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from messaging import jobs
from messaging.errors import DomainError

_EXTENSION = "messaging_login_limits"


class TooManyWrongPasswords(DomainError):
    """Logins for this account or from this address wait; ``retry_after`` is in seconds."""

    def __init__(self, scope: str, retry_after: int):
        minutes = max(1, math.ceil(retry_after / 60))
        unit = "minute" if minutes == 1 else "minutes"
        whose = "for this account" if scope == "account" else "from your address"
        super().__init__(
            "too_many_wrong_passwords",
            f"Too many wrong passwords {whose}; try again in {minutes} {unit}.",
            details={"scope": scope, "retry_after": retry_after},
        )
        self.scope = scope
        self.retry_after = retry_after


def init_app(app) -> None:
    """Bind the limits' Redis storage to ``app`` (on the app's Redis connection pool; no I/O here)."""
    storage = RedisStorage(
        app.config["REDIS_URL"],
        connection_pool=jobs.redis_conn(app).connection_pool,
        key_prefix=app.config.get("RQ_QUEUE_PREFIX", "") + "login-limits",
    )
    app.extensions[_EXTENSION] = MovingWindowRateLimiter(storage)


def account_key(email: str) -> str:
    """What an account is counted under: a digest of the e-mail, trimmed and in lower case."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def check(email: str, address: str | None) -> None:
    """Raise ``TooManyWrongPasswords`` while the account or the address has used up its wrong passwords."""
    limiter = _limiter()
    for scope, item, key in _counters(email, address):
        if not limiter.test(item, key):
            reset_at, _remaining = limiter.get_window_stats(item, key)
            raise TooManyWrongPasswords(scope, max(1, math.ceil(reset_at - time.time())))


def record_failure(email: str, address: str | None) -> None:
    """Count one wrong password against the account and the address."""
    limiter = _limiter()
    for _scope, item, key in _counters(email, address):
        limiter.hit(item, key)


def forget_account(email: str) -> None:
    """A successful login: the account's earlier wrong passwords no longer count."""
    _scope, item, key = _account_counter(email)
    _limiter().clear(item, key)


def _account_counter(email: str) -> tuple[str, RateLimitItem, str]:
    return "account", parse(current_app.config["LOGIN_LIMIT_PER_ACCOUNT"]), f"account/{account_key(email)}"


def _counters(email: str, address: str | None) -> list[tuple[str, RateLimitItem, str]]:
    counters = [_account_counter(email)]
    if address:
        counters.append(
            ("address", parse(current_app.config["LOGIN_LIMIT_PER_ADDRESS"]), f"address/{address}")
        )
    return counters


def _limiter() -> MovingWindowRateLimiter:
    return current_app.extensions[_EXTENSION]
