"""What each recipient of a broadcast gets, and when: rendered text or a survey's first question.

Rules:
- **Content** is an SMS text with placeholders (``{case.name}``,
  ``{case.<property>}``, ``{user.username}``), or translations chosen by the
  recipient's language (exact, then base language, then the default), or an
  SMS survey (the first question goes out and a session opens, in the recipient's
  language, else the project's default language).
- Placeholder contexts are loaded per batch, in two queries (cases, mobile
  workers); a broadcast whose texts have no placeholder loads none.
- A broadcast whose survey was deleted has no text: its messages fail as
  ``empty_body``, with their reason.
- **Quiet hours** (optional): a message due outside the window in the
  recipient's local time (zone from the phone number, else the project's)
  gets ``due_at`` at the next opening; the SMS sweep sends it then.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from messaging.broadcasts.spec import quiet_window
from messaging.cases.serialize import PLACEHOLDER_FIELDS, placeholder_context
from messaging.extensions import db
from messaging.lib import templating
from messaging.lib.quiet_hours import next_allowed, recipient_timezone
from messaging.models import Broadcast, Case, MobileWorker, Project, Survey
from messaging.projects import texts as wordings


class Content:
    """What each recipient gets: rendered text, or a survey's first question."""

    def __init__(self, b: Broadcast):
        self.broadcast = b
        self.survey = db.session.get(Survey, b.survey_id) if b.survey_id else None
        self.window = quiet_window(b)
        project = db.session.get(Project, b.project_id)
        self.project_tz = project.timezone or "UTC"
        texts = [b.text] if b.text else list((b.translations or {}).values())
        self.needs_context = any(templating.placeholders(t) for t in texts if t)
        self.bodies: dict | None = None  # {language: text} when the fan-out is set-based
        if self.survey is not None:
            from messaging.surveys.definitions import survey_questions

            self._first = survey_questions(self.survey)[0]
            self._first_by_language: dict = {}
            self.first_question = self.first_question_for(None)

    def first_question_for(self, language: str | None) -> str:
        """The survey's first question in a recipient's language (made once per language), else
        the project's default language; the hints as the project words them."""
        from messaging.surveys.answers import question_prompt

        if language not in self._first_by_language:
            speaker = wordings.speaker(self.broadcast.project_id, language)
            self._first_by_language[language] = question_prompt(self._first, speaker)
        return self._first_by_language[language]

    def text_for(self, language: str | None) -> str:
        """The text for a recipient's language: the broadcast's text, else the chosen translation."""
        return text_in(self.broadcast, language)

    def contexts(self, rows) -> dict:
        """Placeholder contexts by (case_pk, worker_id), loaded in two queries per batch."""
        if not self.needs_context:
            return {}
        case_pks = [r.case_pk for r in rows if r.case_pk is not None]
        worker_ids = [r.worker_id for r in rows if r.worker_id is not None]
        out = {}
        if case_pks:
            columns = [Case.id, Case.properties, *(getattr(Case, n) for n in PLACEHOLDER_FIELDS)]
            for c in db.session.execute(select(*columns).where(Case.id.in_(case_pks))):
                out[(c.id, None)] = placeholder_context(c)
        if worker_ids:
            for w in db.session.execute(
                select(MobileWorker.id, MobileWorker.username, MobileWorker.phone_number).where(
                    MobileWorker.id.in_(worker_ids)
                )
            ):
                out[(None, w.id)] = {"user": {"username": w.username, "phone_number": w.phone_number}}
        return out

    def render(self, row, contexts: dict) -> templating.RenderResult:
        """The text for one recipient row (``case_pk``, ``worker_id``, ``language``), placeholders filled."""
        return templating.render(self.text_for(row.language), contexts.get((row.case_pk, row.worker_id), {}))

    def due_at(self, phone: str, now: datetime, cache: dict) -> datetime | None:
        """When quiet hours let a message to ``phone`` go (None: now); ``cache`` holds one per zone."""
        return held_until(self.window, self.project_tz, phone, now, cache)


def text_in(source, language: str | None) -> str:
    """The text of a broadcast or an alert rule (``text``, ``translations``,
    ``default_language``) for a recipient's language: its text, else the chosen translation."""
    if source.text:
        return source.text
    if not source.translations:
        return ""  # the survey was deleted: the message fails as empty_body, with its reason
    return templating.choose_text(source.translations, source.default_language, language)[1]


def held_until(window, project_tz: str, phone: str, now: datetime, cache: dict) -> datetime | None:
    """When quiet hours ``window`` let a message to ``phone`` due ``now`` go (None: now, or no
    window); ``cache`` keeps one answer per zone and moment."""
    if window is None:
        return None
    zone = recipient_timezone(phone, project_tz)
    if (zone, now) not in cache:
        cache[(zone, now)] = next_allowed(now, zone, window)
    due = cache[(zone, now)]
    return due if due > now else None
