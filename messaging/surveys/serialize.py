"""THE JSON of a survey, a project keyword and a survey session (API and exports alike).

Rules:

- Times are ISO 8601 in UTC (``clock.isoformat``), ``null`` when unset.
- A survey's ``questions`` are their stored definitions, as
  :meth:`~messaging.surveys.answers.Question.to_dict` writes them.
- A session names its case by the case's ``case_id`` (given by the caller, who
  has the case), ``null`` for an unknown number; ``current_question`` is the
  index of the question it waits for.
"""

from __future__ import annotations

from messaging.lib import clock
from messaging.models import Keyword, Survey, SurveySession


def survey_json(survey: Survey) -> dict:
    return {
        "id": survey.id,
        "name": survey.name,
        "questions": list(survey.questions or []),
        "expire_after_minutes": survey.expire_after_minutes,
        "reminder_minutes": survey.reminder_minutes,
        "max_invalid_attempts": survey.max_invalid_attempts,
        "save_partial_on_expiry": survey.save_partial_on_expiry,
        "case_type": survey.case_type,
        "completion_text": survey.completion_text,
        "created_at": clock.isoformat(survey.created_at),
        "updated_at": clock.isoformat(survey.updated_at),
    }


def keyword_json(keyword: Keyword) -> dict:
    return {
        "id": keyword.id,
        "keyword": keyword.keyword,
        "reply_text": keyword.reply_text,
        "survey_id": keyword.survey_id,
        "yields_to_session": keyword.yields_to_session,
        "notify_owner": keyword.notify_owner,
        "created_at": clock.isoformat(keyword.created_at),
    }


def session_json(session: SurveySession, case_id: str | None = None) -> dict:
    return {
        "id": session.id,
        "survey_id": session.survey_id,
        "case_id": case_id,
        "phone": session.phone,
        "status": session.status,
        "answers": dict(session.answers or {}),
        "current_question": session.current_index,
        "invalid_attempts": session.invalid_attempts,
        "reminders_sent": session.reminders_sent,
        "source": session.source,
        "broadcast_id": session.broadcast_id,
        "form_id": session.form_id,
        "end_reason": session.end_reason,
        "started_at": clock.isoformat(session.started_at),
        "last_activity_at": clock.isoformat(session.last_activity_at),
        "ended_at": clock.isoformat(session.ended_at),
        "expires_at": clock.isoformat(session.expires_at),
    }
