"""SMS surveys: survey definitions, project keywords, and the sessions that ask a number the questions.

A session is started by a keyword, a broadcast or the API, answered one SMS at a
time (handed over by ``messaging.inbound``), reminded and expired by a periodic
tick, and completed into a form on its case. Services join the caller's
transaction unless their docstring says they commit.

- ``answers``: a question's definition, the parsing of a reply to it, and its SMS text.
- ``definitions``: survey definitions: validation, create and update, the survey's questions.
- ``conditions``: a condition on one saved answer (``flag_if``, and each branch's test).
- ``branching``: ``show_if`` / ``end_if``: which question comes next, the survey's look-back
  check, and the editor's spelling of conditions.
- ``project_keywords``: the first word of an inbound SMS that replies and/or starts a survey.
- ``settings``: a project's inbound settings (default reply, the survey actor's ids).
- ``state``: an open session, its current question, its timings, its SMS and its end.
- ``starting``: opening sessions for one number or many; closing a number's open sessions.
- ``replies``: one reply applied to an open session (answer, retry, fail).
- ``completion``: a finished or expired session's answers become a form on its case.
- ``actor``: the system application and mobile worker that submit survey forms.
- ``timers``: the periodic tick: reminders and expiry, under the number's lock.
- ``serialize``: THE JSON of a survey, a keyword and a session.
"""
