"""The console gateway, for development: each message is recorded in Redis and shown on the console.

Rules:
- The last 1,000 messages per project are kept in Redis, so the sweep can ask
  the console gateway about a message like any provider (``resolves``).
- The text is printed only in development (``APP_ENV=development``, what
  ``make run`` sets); elsewhere the log line names the message's sid, the
  number's last four digits and the text's length, never the text.
"""

from __future__ import annotations

import json
import logging
import uuid

from flask import current_app

from messaging.gateways.base import Gateway, InboundSms, RemoteMessage, SendResult, WebhookRequest
from messaging.jobs import redis_conn
from messaging.lib import clock
from messaging.lib.redact import mask_phone

log = logging.getLogger(__name__)

CONSOLE_LOG_KEY = "sms:console:{project_id}"
CONSOLE_LOG_MAX = 1000


class ConsoleGateway(Gateway):
    """Development gateway: records each message in Redis (the last 1,000 per project) and shows
    it on the console in development."""

    kind = "console"
    label = "Console (development)"
    resolves = True

    def __init__(self, config):
        super().__init__(config)
        self.project_id = config.project_id

    def send(self, to, body, from_number, status_callback) -> SendResult:
        sid = "CO" + uuid.uuid4().hex
        record = {"sid": sid, "to": to, "from": from_number, "body": body, "at": clock.isoformat(clock.now())}
        key = CONSOLE_LOG_KEY.format(project_id=self.project_id)
        pipe = redis_conn().pipeline()
        pipe.lpush(key, json.dumps(record))
        pipe.ltrim(key, 0, CONSOLE_LOG_MAX - 1)
        pipe.execute()
        if current_app.config.get("APP_ENV") == "development":
            print(f"--- console sms {sid} to {to} from {from_number or '-'}\n{body}\n---", flush=True)
        log.info(
            "console sms project_id=%s sid=%s to=%s chars=%s", self.project_id, sid, mask_phone(to), len(body)
        )
        return SendResult(sid=sid, status="sent", from_number=from_number, gateway=self.kind)

    def _records(self) -> list[RemoteMessage]:
        key = CONSOLE_LOG_KEY.format(project_id=self.project_id)
        found = []
        for raw in redis_conn().lrange(key, 0, CONSOLE_LOG_MAX - 1):
            rec = json.loads(raw)
            found.append(
                RemoteMessage(
                    rec["sid"], "sent", rec["to"], rec["from"], rec["body"], clock.parse_iso(rec["at"])
                )
            )
        return found

    def fetch(self, sid):
        return next((rec for rec in self._records() if rec.sid == sid), None)

    def find_recent(self, to, from_number, limit=20):
        return [rec for rec in self._records() if rec.to == to][:limit]

    def parse_inbound(self, request: WebhookRequest) -> list[InboundSms]:
        """The console takes ``from``, ``to``, ``text`` and an optional ``id`` (form or query)."""
        values = request.values()
        sender, text = values.get("from", ""), values.get("text", "")
        if not sender:
            return []
        sid = values.get("id") or "CI" + uuid.uuid4().hex
        return [InboundSms(sid=sid, from_number=sender, to_number=values.get("to", ""), body=text)]

    def parse_status(self, request: WebhookRequest):
        return []
