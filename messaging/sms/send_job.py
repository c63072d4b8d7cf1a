"""A send job's state: what it sends with, and what it has done so far.

Rules:
- A job reads its project's gateway settings once and builds the gateway
  once; settings that cannot make a gateway are kept as the error every
  claimed row of the job then fails with (not retryable, ``no_gateway``).
- The status callback URL is given to Twilio gateways only.
- ``BatchStats`` counts by outcome what the job did; it is the job's result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from messaging import jobs
from messaging.models import GatewayConfig
from messaging.sms.gateway_settings import build_gateway, gateway_config, status_callback_url
from messaging.sms.gateways import Gateway, GatewayError
from messaging.sms.ratelimit import RateLimiter


@dataclass
class BatchStats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    unknown: int = 0
    skipped_claim: int = 0
    handed_back: int = 0
    rate_wait: float = 0.0  # seconds spent waiting for rate-limit slots


@dataclass
class SendJob:
    """One send job of one project: its settings, gateway (or why there is none), limiter and counts."""

    project_id: int
    job_id: str | None
    cfg: GatewayConfig
    gateway: Gateway | None
    gateway_error: GatewayError | None
    limiter: RateLimiter
    callback: str | None
    pool: list[str]
    stats: BatchStats = field(default_factory=BatchStats)

    @classmethod
    def start(cls, project_id: int, job_id: str | None) -> SendJob:
        """The job's state for this project, read from its gateway settings."""
        cfg = gateway_config(project_id)
        gateway, gateway_error = None, None
        try:
            gateway = build_gateway(cfg)
        except GatewayError as exc:
            gateway_error = exc
        return cls(
            project_id=project_id,
            job_id=job_id,
            cfg=cfg,
            gateway=gateway,
            gateway_error=gateway_error,
            limiter=RateLimiter(jobs.redis_conn()),
            callback=status_callback_url() if cfg.kind == "twilio" else None,
            pool=list(cfg.from_numbers or []),
        )
