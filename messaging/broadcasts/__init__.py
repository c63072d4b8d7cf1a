"""Broadcasts: content to recipients now, once later, or on a repeating schedule.

The API, the web UI, the jobs and the tests all call these modules:

- ``spec``: the body (API and web composer) validated into a broadcast's fields; quiet hours.
- ``manage``: create, edit, delete and cancel a broadcast (the caller commits).
- ``firing``: new firings, their job, the periodic tick, and the firing job (``run_firing``).
- ``recipients``: the one SELECT of a broadcast's recipients with skip reasons; the firing's snapshot.
- ``content``: what each recipient gets (rendered text, translation, a survey's first question), and when.
- ``fanout``: a firing's fan-out, set-based or row by row, batch by batch under the cursor's claim.
- ``reading``: a broadcast's status, a firing's counts, the list page by page, today's sends.
- ``preview``: what a broadcast would do now (recipients, skipped, segments, time needed).
- ``serialize``: the JSON of a broadcast and of its firings.
"""
