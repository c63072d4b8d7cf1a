"""A send job's state: what it sends with, and what it has done so far.

Rules:
- A job reads its project's gateways once and builds each gateway once;
  settings that cannot make a gateway are kept as the error every claimed
  row routed to it then fails with (not retryable, ``no_gateway``).
- Each claimed row takes the gateway ``messaging.gateways.routing`` chooses
  (pinned, longest prefix, else the default) and, within it, its sticky
  sender of the gateway's pool (``pick_sender``).
- The status callback URL is given to the kinds that take one per message.
- ``BatchStats`` counts by outcome what the job did; it is the job's result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from messaging import jobs
from messaging.gateways import routing
from messaging.gateways.base import Gateway, GatewayError, pick_sender
from messaging.gateways.journal import Journal
from messaging.gateways.settings import build_gateway, project_gateways, sender_pool, status_callback_url
from messaging.models import GatewayConfig
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


@dataclass(eq=False)  # hashable by identity: a lane is (route, sender)
class Route:
    """One gateway of the job: its settings, the gateway (or why there is none), senders, callback."""

    cfg: GatewayConfig
    gateway: Gateway | None
    gateway_error: GatewayError | None
    pool: list[str]
    callback: str | None

    @classmethod
    def of(cls, cfg: GatewayConfig) -> Route:
        gateway, gateway_error = None, None
        try:
            gateway = build_gateway(cfg)
        except GatewayError as exc:
            gateway_error = exc
        return cls(cfg, gateway, gateway_error, sender_pool(cfg), status_callback_url(cfg))


@dataclass
class SendJob:
    """One send job of one project: its gateways, limiter and counts."""

    project_id: int
    job_id: str | None
    routes: list[Route]
    limiter: RateLimiter
    journal: Journal
    stats: BatchStats = field(default_factory=BatchStats)

    @classmethod
    def start(cls, project_id: int, job_id: str | None) -> SendJob:
        """The job's state for this project, read from its gateway settings."""
        return cls(
            project_id=project_id,
            job_id=job_id,
            routes=[Route.of(cfg) for cfg in project_gateways(project_id)],
            limiter=RateLimiter(jobs.redis_conn()),
            journal=Journal(project_id),
        )

    def lane(self, phone: str, pinned: int | None = None) -> tuple[Route, str | None]:
        """The gateway and sender a message to ``phone`` goes through (what pacing books slots for)."""
        route = self.route_for(phone, pinned)
        return route, pick_sender(phone, route.pool)

    def route_for(self, phone: str, pinned: int | None = None) -> Route:
        """The route a message to ``phone`` takes."""
        return choose_route(self.routes, phone, pinned)


def choose_route(routes: list[Route], phone: str, pinned: int | None = None) -> Route:
    """The route of ``routes`` a message to ``phone`` takes (``messaging.gateways.routing``)."""
    chosen = routing.choose(phone, [r.cfg for r in routes], pinned)
    return next(r for r in routes if r.cfg is chosen)
