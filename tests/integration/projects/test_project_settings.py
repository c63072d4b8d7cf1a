"""A project's settings (``messaging.projects.setup.change_settings``): trimmed, the country in
upper case; a country phone numbers do not know or a name that is not a time zone (a zone
folder such as ``Europe`` too) changes nothing and is a flashed error on the settings page."""

import pytest

from messaging.errors import Invalid


def _settings(app, project):
    from messaging.extensions import db
    from messaging.models import Project

    with app.app_context():
        p = db.session.get(Project, project.id)
        values = (p.name, p.default_country, p.timezone, p.help_text)
        db.session.remove()
    return values


def test_values_are_trimmed_and_the_country_upper_cased(app, project):
    from messaging.extensions import db
    from messaging.models import Project
    from messaging.projects.setup import change_settings

    with project.scope():
        change_settings(
            db.session.get(Project, project.id),
            name=" Alpha Clinic ",
            default_country=" ug ",
            timezone=" Africa/Kampala ",
            help_text=" Call 0800 123 ",
        )
        db.session.commit()
    assert _settings(app, project) == ("Alpha Clinic", "UG", "Africa/Kampala", "Call 0800 123")


@pytest.mark.parametrize(
    ("country", "timezone", "code", "field"),
    [
        ("ZZ", "UTC", "invalid_country", "default_country"),
        ("KE", "Mars/Base", "invalid_timezone", "timezone"),
        ("KE", "Europe", "invalid_timezone", "timezone"),
        ("KE", "../etc", "invalid_timezone", "timezone"),
    ],
)
def test_a_bad_country_or_time_zone_is_refused_before_anything_changes(
    app, project, country, timezone, code, field
):
    from messaging.extensions import db
    from messaging.models import Project
    from messaging.projects.setup import change_settings

    before = _settings(app, project)
    with project.scope():
        target = db.session.get(Project, project.id)
        with pytest.raises(Invalid) as refused:
            change_settings(
                target, name="New name", default_country=country, timezone=timezone, help_text="x"
            )
        assert (refused.value.code, refused.value.field) == (code, field)
        assert target.name == before[0]
    assert _settings(app, project) == before


def test_the_settings_page_flashes_a_time_zone_folder_instead_of_failing(app, project, web):
    before = _settings(app, project)
    response = web.post(
        "/settings/project",
        data={"name": "X", "default_country": "KE", "timezone": "Europe", "help_text": "x"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "&#39;Europe&#39; is not a time zone" in response.get_data(as_text=True)
    assert _settings(app, project) == before
