"""The send journal: what became of each attempt at a gateway that cannot be asked, until recorded.

Rules:
- Twilio and the others that can be asked about a message (``resolves``)
  settle an uncertain outcome by asking. Africa's Talking, Vonage, Telerivet
  (by id only) and the generic HTTP gateway cannot be asked, so a send job notes each attempt in
  Redis (per message and attempt, kept a day): ``sending`` before the request
  leaves, then the gateway's answer (its id) once it comes, or nothing when it
  was surely not sent (the gateway refused it, or the request never left).
- One Redis round trip per message: the answer to one message and the
  ``sending`` mark of the next go together; the last answer of a run goes
  alone (``Journal.flush``), before the chunk's outcomes are written.
- The sweep, finding a message stuck in ``sending`` (its worker was killed
  before it recorded the chunk), reads the journal: an id means it was sent
  (adopted, never sent again); ``sending`` means the request may have left
  and the gateway cannot say, so it fails ``unknown_outcome``; nothing means
  it never left, and it is queued again. So a killed worker never causes a
  second send; the price is that a message in flight when it died, or sent
  just before, may be marked failed though it went.
- A request that may have arrived but got no answer (a read timeout) is not
  sent again either: it fails ``unknown_outcome`` (``messaging.sms.pacing``).
- Redis away: the notes are skipped (logged); the sweep then treats the
  message as never sent.
"""

from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError

from messaging import jobs
from messaging.gateways.base import SendResult

log = logging.getLogger(__name__)

KEY = "sms:journal:{project_id}:{message_id}:{attempt}"
KEEP_SECONDS = 86_400
SENDING = b"sending"


def _key(project_id: int, message_id: int, attempt: int) -> str:
    return KEY.format(project_id=project_id, message_id=message_id, attempt=attempt)


class Journal:
    """One send job's notes: ``before`` each attempt, ``answered`` or ``not_sent`` after it."""

    def __init__(self, project_id: int):
        self.project_id = project_id
        self.pending: list[tuple[str, bytes | None]] = []  # (key, value; None deletes)

    def before(self, message_id: int, attempt: int) -> None:
        """Mark the attempt as leaving now (with the previous attempt's outcome, in one round trip)."""
        self.pending.append((_key(self.project_id, message_id, attempt), SENDING))
        self.flush()

    def answered(self, message_id: int, attempt: int, result: SendResult) -> None:
        record = {"sid": result.sid, "status": result.status, "from": result.from_number}
        self.pending.append((_key(self.project_id, message_id, attempt), json.dumps(record).encode()))

    def not_sent(self, message_id: int, attempt: int) -> None:
        self.pending.append((_key(self.project_id, message_id, attempt), None))

    def flush(self) -> None:
        if not self.pending:
            return
        try:
            pipe = jobs.redis_conn().pipeline(transaction=False)
            for key, value in self.pending:
                if value is None:
                    pipe.delete(key)
                else:
                    pipe.set(key, value, ex=KEEP_SECONDS)
            pipe.execute()
        except RedisError as exc:
            log.warning(
                "send journal not written project_id=%s notes=%s: %s", self.project_id, len(self.pending), exc
            )
        self.pending.clear()


def recall(project_id: int, message_id: int, attempt: int) -> dict | str | None:
    """What is known of this attempt: the gateway's answer ({sid, status, from}), ``"sending"``
    (it may have left, no answer was noted), or None (it never left)."""
    raw = jobs.redis_conn().get(_key(project_id, message_id, attempt))
    if raw is None:
        return None
    if raw == SENDING:
        return "sending"
    return json.loads(raw)
