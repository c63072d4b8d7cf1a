"""Survey pages: list, create/edit with questions, results (every response) and .xlsx export."""

import io
import json
import logging

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_login import login_required
from sqlalchemy import func, select

from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.errors import ApiError
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, flash_refusal, require_role
from messaging.lib import clock
from messaging.lib.xlsx import XLSX_MIMETYPE, write_report
from messaging.models import Case, Keyword, Survey, SurveySession
from messaging.surveys import branching, definitions
from messaging.surveys.answers import TYPES, Question

log = logging.getLogger(__name__)

BLANK_ROWS = 3
RESULTS_LIMIT = 5000


@bp.route("/surveys")
@login_required
def surveys():
    rows = db.session.execute(select(Survey).order_by(Survey.created_at.desc())).scalars().all()
    counts = {}
    for survey_id, status, count in db.session.execute(
        select(SurveySession.survey_id, SurveySession.status, func.count()).group_by(
            SurveySession.survey_id, SurveySession.status
        )
    ):
        counts.setdefault(survey_id, {})[status] = count
    keywords = db.session.execute(select(Keyword).where(Keyword.survey_id.is_not(None))).scalars().all()
    by_survey = {}
    for k in keywords:
        by_survey.setdefault(k.survey_id, []).append(k.keyword)
    return render_template("surveys/index.html", surveys=rows, counts=counts, keywords=by_survey)


def _questions_from_form() -> list[dict]:
    questions = []
    index = 0
    while f"q-{index}-type" in request.form:
        get = lambda name, i=index: (request.form.get(f"q-{i}-{name}") or "").strip()  # noqa: E731
        text, qid = get("text"), get("id")
        if text or qid:
            q = {"id": qid or f"q{index + 1}", "type": get("type"), "text": text}
            choices = [c.strip() for c in get("choices").splitlines() if c.strip()]
            if q["type"] in ("select", "multiselect"):
                q["choices"] = choices
            for bound in ("min", "max"):
                raw = get(bound)
                if raw and q["type"] in ("integer", "decimal"):
                    try:
                        q[bound] = int(raw) if q["type"] == "integer" else float(raw)
                    except ValueError:
                        raise ApiError(
                            400, "validation_error", f"Question {index + 1}: {bound} must be a number."
                        ) from None
            q["required"] = request.form.get(f"q-{index}-required") == "on"
            q["case_property"] = get("case_property") or None
            q.update(_flow_from_form(index, get))
            q.update(_languages_from_form(index, q, get("translations")))
            questions.append(q)
        index += 1
    return questions


def _languages_from_form(index: int, question: dict, lines: str) -> dict:
    """The question's text and choices by language, from its "Other languages" lines
    (``sw: Una mimba? | Ndiyo | Hapana``: the text, then each choice in order); the
    text and choices above are in the survey's ``text_language``."""
    if not lines.strip():
        return {}
    main = (request.form.get("text_language") or "en").strip() or "en"
    text = {main: question["text"]}
    choices = [{main: c} for c in question.get("choices") or []]
    for line in lines.splitlines():
        if not line.strip():
            continue
        lang, sep, rest = line.partition(":")
        parts = [p.strip() for p in rest.split("|")]
        if not sep or not lang.strip() or not parts[0]:
            raise ApiError(
                400,
                "validation_error",
                f"Question {index + 1}, other languages: write each as "
                "'sw: the question | choice 1 | choice 2'.",
            )
        if len(parts) > 1 and len(parts) - 1 != len(choices):
            raise ApiError(
                400,
                "validation_error",
                f"Question {index + 1}, other languages: {lang.strip()} gives {len(parts) - 1} choices "
                f"for the {len(choices)} above.",
            )
        text[lang.strip()] = parts[0]
        for choice, translated in zip(choices, parts[1:], strict=False):
            choice[lang.strip()] = translated
    result = {"text": text}
    if choices:
        result["choices"] = choices
    return result


def _editor_row(q: dict) -> dict:
    """A question as the editor shows it: the text and choices of its first language above,
    the other languages as lines."""
    if not isinstance(q.get("text"), dict) and not any(isinstance(c, dict) for c in q.get("choices") or []):
        return q
    try:
        question = Question.from_dict(q)
    except (ValueError, TypeError):
        return q  # a refused body shown again: as it was typed
    default = question.default_language
    lines = []
    for lang in dict.fromkeys(
        [*(question.texts or {}), *(k for t in question.choice_texts or [] if t for k in t)]
    ):
        if lang == default:
            continue
        parts = [question.text_in(lang), *question.choices_in(lang)]
        lines.append(f"{lang}: " + " | ".join(parts))
    return {**q, "text": question.text, "choices": question.choices, "translations": "\n".join(lines)}


def _flow_from_form(index: int, get) -> dict:
    """A row's branching (``show_if``, ``end_if``, ``end_text``) and the ``flag_if`` it carries
    unchanged (the editor has no field for it, and must not drop it)."""
    flow = {}
    for name, field in (("show_if", "Ask only if"), ("end_if", "End the survey if")):
        try:
            conditions = branching.parse_condition_text(get(name))
        except ValueError as exc:
            raise ApiError(400, "validation_error", f"Question {index + 1}, {field}: {exc}") from None
        if conditions is not None:
            flow[name] = conditions
    if get("end_text"):
        flow["end_text"] = get("end_text")
    if get("flag_if"):
        try:
            flow["flag_if"] = json.loads(get("flag_if"))
        except ValueError:
            raise ApiError(400, "validation_error", f"Question {index + 1}: flag_if is not JSON.") from None
    return flow


def _body_from_form() -> dict:
    def number(name, default=None):
        raw = (request.form.get(name) or "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(400, "validation_error", f"{name}: must be a whole number.") from None

    hours = number("expire_after_hours", 24)
    return {
        "name": request.form.get("name", ""),
        "questions": _questions_from_form(),
        "expire_after_minutes": hours * 60 if isinstance(hours, int) else hours,
        "reminder_minutes": number("reminder_minutes"),
        "max_invalid_attempts": number("max_invalid_attempts", 3),
        "save_partial_on_expiry": request.form.get("save_partial_on_expiry") == "on",
        "case_type": (request.form.get("case_type") or "").strip() or None,
        "completion_text": (request.form.get("completion_text") or "").strip() or None,
    }


def _editor(survey, body=None):
    questions = (body or {}).get("questions") or (survey.questions if survey else [])
    rows = [_editor_row(q) for q in questions] + [{"type": "text", "required": True}] * BLANK_ROWS
    languages = [Question.from_dict(q).default_language for q in (survey.questions if survey else [])]
    text_language = (
        next((lang for lang in languages if lang), None) or request.form.get("text_language") or "en"
    )
    return render_template(
        "surveys/edit.html",
        survey=survey,
        body=body,
        rows=rows,
        types=TYPES,
        condition_text=branching.condition_text,
        as_json=json.dumps,
        text_language=text_language,
    )


@bp.route("/surveys/new", methods=["GET", "POST"])
@require_role("manager")
def survey_new():
    if request.method == "GET":
        return _editor(None)
    return _submit(None)


@bp.route("/surveys/<survey_id>/edit", methods=["GET", "POST"])
@require_role("manager")
def survey_edit(survey_id):
    survey = get_or_404(Survey, survey_id)
    if request.method == "GET":
        return _editor(survey)
    return _submit(survey)


def _submit(survey: Survey | None):
    """The editor's POST: create a survey (``survey`` None) or save it; a refusal shows the editor again."""
    try:
        body = _body_from_form()
    except DomainError as refusal:  # a number field that is not a number: nothing to save
        flash_refusal(refusal)
        return _editor(survey), 400
    if survey is None:
        saved = commit_or_flash(lambda: definitions.create_survey(body))
    else:
        saved = commit_or_flash(lambda: definitions.update_survey(survey, body))
    if saved is REFUSED:
        return _editor(survey, body), 400
    flash(f"Survey {saved.name} created." if survey is None else "Survey saved.", "success")
    return redirect(url_for("web.survey_detail", survey_id=saved.id))


def _responses(survey):
    return db.session.execute(
        select(SurveySession, Case)
        .outerjoin(Case, Case.id == SurveySession.case_pk)
        .where(SurveySession.survey_id == survey.id)
        .order_by(SurveySession.started_at.desc(), SurveySession.id)
        .limit(RESULTS_LIMIT)
    ).all()


def _show(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value


@bp.route("/surveys/<survey_id>")
@login_required
def survey_detail(survey_id):
    survey = get_or_404(Survey, survey_id)
    return render_template(
        "surveys/detail.html",
        survey=survey,
        responses=_responses(survey),
        show=_show,
        limit=RESULTS_LIMIT,
        condition_text=branching.condition_text,
    )


@bp.route("/surveys/<survey_id>/export.xlsx")
@login_required
def survey_export(survey_id):
    survey = get_or_404(Survey, survey_id)
    qids = [q["id"] for q in survey.questions]
    headers = [
        "session_id",
        "phone",
        "case_id",
        "case_name",
        "status",
        "started_at",
        "ended_at",
        "form_id",
        *qids,
    ]
    rows = []
    for session, case in _responses(survey):
        answers = session.answers or {}
        rows.append(
            [
                session.id,
                session.phone,
                case.case_id if case else "",
                case.name if case else "",
                session.status,
                clock.isoformat(session.started_at),
                clock.isoformat(session.ended_at) or "",
                session.form_id or "",
                *[_show(answers.get(q)) for q in qids],
            ]
        )
    buffer = io.BytesIO()
    write_report(buffer, headers, rows, sheet_title="Responses")
    buffer.seek(0)
    log.info("survey export survey_id=%s rows=%s", survey.id, len(rows))
    return send_file(
        buffer,
        mimetype=XLSX_MIMETYPE,
        as_attachment=True,
        download_name=f"survey-{survey.id[:8]}-responses.xlsx",
    )
