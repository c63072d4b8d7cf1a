"""Configuration read from the environment, with safe defaults.

One place reads the environment; everything else reads ``app.config``.
Production (``APP_ENV=production``) refuses to start without a real SECRET_KEY.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = ROOT / "instance"


class ConfigError(RuntimeError):
    """Raised at start-up when the environment is unusable."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _floats(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return tuple(float(part) for part in raw.split(","))
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated seconds, got {raw!r}") from exc


def _int_list(name: str, default: list[int]) -> list[int]:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return list(default)
    try:
        values = [int(v) for v in raw.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError(f"{name} must be whole numbers separated by commas, got {raw!r}") from exc
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"{name} must list at least one delay of 0 seconds or more")
    return values


def normalize_database_url(url: str) -> str:
    """Accept Heroku-style ``postgres://`` URLs and pick the installed driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def from_environment() -> dict:
    """Build the config dict from the environment."""
    env = os.environ.get("APP_ENV", "production").strip().lower()
    default_db = f"sqlite:///{INSTANCE_DIR / 'messaging.sqlite3'}"
    secret = os.environ.get("SECRET_KEY", "")
    if not secret:
        if env in {"development", "test"}:
            secret = "dev-only-not-secret"
        else:
            raise ConfigError(
                "SECRET_KEY is required when APP_ENV is not 'development' "
                "(set APP_ENV=development for a local install)."
            )
    secure_cookies = env == "production" and _bool(os.environ.get("SESSION_COOKIE_SECURE"), True)
    return {
        "APP_ENV": env,
        "DEBUG": False,
        "TESTING": env == "test",
        "SECRET_KEY": secret,
        "PASSWORD_HASH_METHOD": os.environ.get("PASSWORD_HASH_METHOD", "scrypt"),
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(os.environ.get("DATABASE_URL") or default_db),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "RQ_QUEUE_PREFIX": os.environ.get("RQ_QUEUE_PREFIX", ""),
        "SMS_GATEWAY": os.environ.get("SMS_GATEWAY", "console"),
        "TWILIO_API_BASE_URL": os.environ.get("TWILIO_API_BASE_URL", ""),
        # Other providers' API hosts, for tests and benchmarks (messaging.gateways).
        "AFRICASTALKING_API_BASE_URL": os.environ.get("AFRICASTALKING_API_BASE_URL", ""),
        "VONAGE_API_BASE_URL": os.environ.get("VONAGE_API_BASE_URL", ""),
        "TELERIVET_API_BASE_URL": os.environ.get("TELERIVET_API_BASE_URL", ""),
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "").rstrip("/"),
        # Sending (see README "Sending and delivery guarantees").
        "SMS_HTTP_TIMEOUT": _float("SMS_HTTP_TIMEOUT", 10.0),
        "SMS_RETRY_DELAYS": _floats("SMS_RETRY_DELAYS", (30.0, 120.0, 600.0)),
        "SMS_SENDING_TIMEOUT": _float("SMS_SENDING_TIMEOUT", 120.0),
        "SMS_DEAD_CLAIMER_DELAY": _float("SMS_DEAD_CLAIMER_DELAY", 10.0),
        "SMS_JOB_STALE_SECONDS": _float("SMS_JOB_STALE_SECONDS", 900.0),
        "SMS_SWEEP_GRACE": _float("SMS_SWEEP_GRACE", 10.0),
        # How long after a timeout to ask Twilio whether the message left (Twilio must have settled it).
        "SMS_UNKNOWN_CHECK_DELAY": _float("SMS_UNKNOWN_CHECK_DELAY", 60.0),
        "SMS_BATCH_SIZE": _int("SMS_BATCH_SIZE", 500),
        # /healthz/workers answers 503 "stalled" once the oldest due queued message has waited longer.
        "HEALTH_MAX_DUE_SECONDS": _float("HEALTH_MAX_DUE_SECONDS", 300.0),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "MAX_CONTENT_LENGTH": _int("MAX_UPLOAD_BYTES", 20 * 1024 * 1024),
        "IMPORT_MAX_ROWS": _int("IMPORT_MAX_ROWS", 100_000),
        "WTF_CSRF_TIME_LIMIT": None,
        "SMTP_HOST": os.environ.get("SMTP_HOST", ""),
        "SMTP_PORT": _int("SMTP_PORT", 25),
        "SMTP_USER": os.environ.get("SMTP_USER", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "messaging@localhost"),
        "SMTP_STARTTLS": _bool(os.environ.get("SMTP_STARTTLS"), False),
        # Data forwarding: seconds to connect and to wait for each read of the answer;
        # the delays before each retry (the record gives up after the last one);
        # at most one "gave up" e-mail per location per interval.
        "FORWARDING_TIMEOUT": _float("FORWARDING_TIMEOUT", 10.0),
        # POSTs of one sender chunk at a time (records of different cases; each case keeps its order).
        "FORWARDING_PARALLEL": _int("FORWARDING_PARALLEL", 8),
        "FORWARDING_RETRY_DELAYS": _int_list("FORWARDING_RETRY_DELAYS", [60, 300, 1800, 7200, 43200]),
        "FORWARDING_NOTIFY_INTERVAL": _int("FORWARDING_NOTIFY_INTERVAL", 3600),
        "PROXY_FIX": _bool(os.environ.get("PROXY_FIX"), False),
        # Security (see README "Security").
        # Hosts, addresses or CIDR ranges that user-typed URLs (forwarding, webhooks,
        # HTTP gateways) may reach although they are not public, e.g. an OpenFn on the LAN.
        "OUTBOUND_ALLOW_HOSTS": _list(os.environ.get("OUTBOUND_ALLOW_HOSTS")),
        # Wrong passwords allowed per account and per client address before logins wait.
        "LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("LOGIN_LIMIT_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_LIMIT_PER_ADDRESS": os.environ.get("LOGIN_LIMIT_PER_ADDRESS", "30 per 15 minutes"),
        "REMEMBER_COOKIE_DAYS": _int("REMEMBER_COOKIE_DAYS", 30),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        # HSTS is sent in production only (a local http:// install must stay reachable).
        "HSTS": env == "production" and _bool(os.environ.get("HSTS"), True),
        # JSON bodies: nesting deeper than this is refused (400) before it is parsed.
        "MAX_JSON_DEPTH": _int("MAX_JSON_DEPTH", 64),
        "MAX_JSON_BYTES": _int("MAX_JSON_BYTES", 2 * 1024 * 1024),
        # Inbound SMS text is cut to this many characters (Twilio's own cap), with a note.
        "INBOUND_MAX_CHARS": _int("INBOUND_MAX_CHARS", 1600),
    }
