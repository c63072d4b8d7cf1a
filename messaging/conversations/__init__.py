"""Conversations: the people's side of inbound SMS (the inbox, replies from the web).

An inbound message that needs a person (nothing handled it, an unknown number
sent it, a survey answer was flagged) becomes an inbox item a case manager
triages. Receiving and handling the messages themselves is
``messaging.inbound``.

- ``inbox``: which inbound messages need a person; open, handled, archived; assignment; the open count.
- ``serialize``: THE JSON of an inbox item and of a canned reply.
- ``thread``: a case's conversation: its latest page, what is newer than a message, what each belongs to.
- ``replies``: a case manager's reply, through the send pipeline; opt-outs refuse it unless excepted.
- ``canned``: canned replies, the saved texts a case manager picks from.
- ``owner_alerts``: telling a case's owner (its worker, or its group's members) by SMS.
"""
