"""Pure helpers: no Flask, no database, no Redis (a test checks it).

- ``clock``: the current time, settable by tests; ISO 8601 output.
- ``phones``: reading phone numbers as people and Excel write them, to E.164.
- ``localtime``: time zones, local wall-clock times to UTC and back across DST.
- ``schedule``: repeating schedules (daily, weekly, monthly) in local time.
- ``quiet_hours``: the hours a recipient must not be texted, in their zone.
- ``templating``: message placeholders (``{case.name}``), checked and rendered.
- ``segments``: SMS encoding (GSM-7 or UCS-2) and segment counts.
- ``text``: cleaning a participant's reply for matching.
- ``emails``: the one rule for what an e-mail address may be.
- ``xlsx``: Excel uploads checked, read and written (see its package).
"""
