"""Sending SMS: the outbound message log, the send pipeline, delivery statuses and opt-outs.

The database is the truth, the queue only a hint: every outbound SMS is a row
in ``messages`` before any job is queued; send jobs carry ids, claim each row
before sending it, and the sweep repairs what Redis or a dead worker lost.
See README "Sending and delivery guarantees". The gateways themselves are ``messaging.gateways``.

- ``outbox``: writing outbound rows (``send_sms``, ``queue_messages``), enqueuing their jobs, cancelling.
- ``sending``: the send job's body (``send_batch``): chunks, the lease, handing rows back.
- ``send_job``: a send job's state (``SendJob``) and counts (``BatchStats``).
- ``claims``: the conditional UPDATE that makes a row one job's to send, and giving it back.
- ``pacing``: sending a chunk at the rate-limit slots booked for each sender.
- ``outcomes``: recording a chunk's outcomes: sent, failed, retrying, unknown.
- ``status``: the gateway's delivery statuses (callbacks), only ever forward.
- ``sweep``: re-queuing rows whose job is gone; resolving rows stuck in ``sending``.
- ``optouts``: the numbers that opted out of a project (the current state).
- ``consent``: the append-only consent ledger: every opt-out, opt-in and confirmed exception.
- ``gateway_prices``: prices Twilio reports on its message resource, fetched after sending.
- ``ratelimit``: the messages-per-second limiter shared by every worker, in Redis.
- ``crypto``: gateway secrets encrypted at rest.
- ``tuning``: the settings (``SMS_*``) that tune sending.
- ``e164``: the shape of a phone number we send to or from.
- ``queries``: the message log's filters.
- ``serialize``: the JSON of a message and of gateway settings.
"""
