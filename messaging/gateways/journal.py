"""The send journal: what a gateway that cannot be asked answered, kept until it is recorded.

Rules:
- Twilio and the others that can be asked about a message (``resolves``)
  settle an uncertain outcome by asking. Africa's Talking, Vonage and the
  generic HTTP gateway cannot be asked, so a send job notes each message's id at such a gateway in Redis
  the moment the gateway answers (one ``SET`` with a day's expiry), before
  the chunk's outcomes are written to the database.
- The sweep, finding a message stuck in ``sending`` (its worker was killed
  before it recorded the chunk), reads the journal: a noted id means the
  message was sent (it is adopted, never sent again); no note means the
  request never got an answer, so at most the one message in flight when the
  worker died may go twice.
- A request to such a gateway that may have arrived but got no answer (a read
  timeout) is not sent again: it fails ``unknown_outcome``, saying so
  (``messaging.sms.pacing``).
- Redis away: the note is skipped (logged); the sweep then treats the message
  as never sent.
"""

from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError

from messaging import jobs
from messaging.gateways.base import SendResult

log = logging.getLogger(__name__)

KEY = "sms:journal:{project_id}:{message_id}"
KEEP_SECONDS = 86_400


def note(project_id: int, message_id: int, result: SendResult) -> None:
    """Remember what the gateway answered for this message."""
    record = {
        "sid": result.sid,
        "status": result.status,
        "from": result.from_number,
        "segments": result.segments,
    }
    try:
        jobs.redis_conn().set(
            KEY.format(project_id=project_id, message_id=message_id), json.dumps(record), ex=KEEP_SECONDS
        )
    except RedisError as exc:
        log.warning("send journal not written project_id=%s message_id=%s: %s", project_id, message_id, exc)


def recall(project_id: int, message_id: int) -> dict | None:
    """What the gateway answered for this message ({sid, status, from, segments}), or None."""
    raw = jobs.redis_conn().get(KEY.format(project_id=project_id, message_id=message_id))
    return json.loads(raw) if raw else None
