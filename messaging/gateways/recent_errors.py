"""Each gateway's recent errors, for the gateway page: the last 20, kept in Redis.

Rules:
- Every error a gateway answers a send with (retried or final) is noted: when,
  the code, the gateway's words, the message id and the number's last four
  digits (never the whole number, never the text).
- Kept per saved gateway (the unsaved console under 0), the newest first;
  Redis away: the note is skipped.
"""

from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError

from messaging import jobs
from messaging.gateways.base import GatewayError
from messaging.lib import clock
from messaging.lib.redact import mask_phone

log = logging.getLogger(__name__)

KEY = "sms:gateway-errors:{project_id}:{gateway_id}"
KEEP = 20


def note(project_id: int, gateway_id: int | None, message_id: int, phone: str, error: GatewayError) -> None:
    record = {
        "at": clock.isoformat(clock.now()),
        "code": error.code,
        "message": error.message[:500],
        "message_id": message_id,
        "phone": mask_phone(phone),
        "retryable": error.retryable,
    }
    key = KEY.format(project_id=project_id, gateway_id=gateway_id or 0)
    try:
        pipe = jobs.redis_conn().pipeline()
        pipe.lpush(key, json.dumps(record))
        pipe.ltrim(key, 0, KEEP - 1)
        pipe.execute()
    except RedisError as exc:
        log.warning("gateway error not noted project_id=%s gateway_id=%s: %s", project_id, gateway_id, exc)


def recent(project_id: int, gateway_id: int | None) -> list[dict]:
    """The gateway's last errors, newest first."""
    key = KEY.format(project_id=project_id, gateway_id=gateway_id or 0)
    try:
        return [json.loads(raw) for raw in jobs.redis_conn().lrange(key, 0, KEEP - 1)]
    except RedisError:
        return []
