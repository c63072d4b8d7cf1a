"""Conditional alerts: messages that follow each case (reminders on case dates, alerts on case changes).

The API, the web UI, the jobs and the tests all call these modules:

- ``rules``: pure functions: does a case match, and when are a rule's messages due.
- ``spec``: the body (API and web form) validated into a rule's fields.
- ``manage``: create, change, pause and delete a rule (the caller commits).
- ``schedules``: each case's occurrences made to agree with its rules, in the
  transaction that changes the case (forms, uploads) or by the rule's job.
- ``applying``: the job that applies a new or changed rule to the existing cases.
- ``sending``: the tick that turns due occurrences into messages.
- ``reading``: counts, history, a case's upcoming messages and why.
- ``serialize``: the JSON of a rule and of an occurrence.
"""
