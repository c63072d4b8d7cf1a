"""Inbound SMS: receive (store once, enqueue), then handle one number's messages in order.

A text from a participant arrives by ``POST /twilio/inbound`` (or the phone
simulator), is stored once and handled by a worker: opt-out words, an open
survey session, a project keyword or the default reply. Surveys themselves are
``messaging.surveys``.

- ``receive``: store an inbound SMS once per MessageSid, enqueue its number; the sweep of lost jobs.
- ``per_number``: one number's messages handled one at a time, oldest first, under its lock.
- ``locks``: the per-number Redis lock.
- ``handle``: one message: opt-out/opt-in/help, the open survey, a keyword, the default reply.
- ``keywords``: classifying a message (opt-out, opt-in, help, keyword) and the confirmation texts.
- ``routing``: contact lookup: which case a sender's message belongs to, and why.
- ``conversation``: the messages of a phone or a case, both directions.
- ``serialize``: THE JSON of a conversation message.
"""
