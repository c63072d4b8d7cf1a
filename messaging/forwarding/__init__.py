"""Data forwarding: POST each new form and each changed case as JSON to a project's URLs.

A transactional outbox: saving a form or changing a case inserts one ``pending``
record per location in the same transaction; after the commit a sender job per
location POSTs the records in order, retries failures with growing delays, gives up
after the last one and e-mails about it; a periodic sweep catches up after lost jobs
and dead workers. Delivery is at least once.

Modules:
- ``locations``: validate, mask, create, change and delete locations; their record counts.
- ``capture``: inside the caller's transaction, a form or case becomes one record per location.
- ``dispatch``: after the commit, queue a location's sender (a Redis marker); schedule its retries.
- ``sender``: the sender job: claim a chunk, POST each record, record the attempts and outcomes.
- ``resend``: resend or cancel a record by hand; resend every record that gave up.
- ``notify``: the failure e-mails, at most one per interval per location.
- ``sweep``: the periodic catch-up: stale ``sending`` records, lost senders, held-back e-mails.
- ``serialize``: the JSON of a location, a record and an attempt.
"""
