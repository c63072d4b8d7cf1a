"""The survey editor answers a number field that is not a number with the editor again (400) and
its reason, saving nothing: never a 500."""

import pytest


def _survey_names(project) -> list[str]:
    from messaging.extensions import db
    from messaging.models import Survey

    with project.scope():
        return [s.name for s in db.session.query(Survey).all()]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("expire_after_hours", "soon", "expire_after_hours: must be a whole number."),
        ("q-0-max", "lots", "Question 1: max must be a number."),
    ],
)
def test_a_number_that_is_not_one_shows_the_editor_again(project, web, field, value, reason):
    form = {"name": "Bad numbers", "q-0-id": "n", "q-0-type": "integer", "q-0-text": "How many?"}
    response = web.post("/surveys/new", {**form, field: value})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert reason in page and 'id="survey-form"' in page
    assert _survey_names(project) == []
