"""The pure parts of a broadcast's definition: text, quiet hours and timing (no database)."""

from datetime import datetime, time
from types import SimpleNamespace

import pytest

from messaging.broadcasts import spec
from messaging.errors import DomainError
from messaging.http.errors import status_of
from messaging.lib import clock
from messaging.lib.quiet_hours import QuietHours
from messaging.models import Broadcast

NOW = datetime(2026, 3, 2, 9, 0)  # 12:00 in Nairobi
PROJECT = SimpleNamespace(timezone="Africa/Nairobi")


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(NOW)
    yield
    clock.set_now(None)


def _error(fn, *args):
    with pytest.raises(DomainError) as info:
        fn(*args)
    return info.value


def _field(error: DomainError) -> str:
    return error.details["field"]


# --- text -----------------------------------------------------------------------


def test_text_is_kept_as_written_when_valid():
    text = "Hi {case.name}, {{literal}} {user.username}"
    assert spec.parse_text("text", text) == text


@pytest.mark.parametrize("text", ["", "   ", None, 12, ["hi"]])
def test_text_must_be_a_non_empty_string(text):
    error = _error(spec.parse_text, "text", text)
    assert status_of(error) == 400 and error.code == "validation_error" and _field(error) == "text"


def test_text_has_a_length_limit():
    assert spec.parse_text("text", "x" * spec.MAX_TEXT)
    error = _error(spec.parse_text, "translations.sw", "x" * (spec.MAX_TEXT + 1))
    assert error.code == "validation_error" and _field(error) == "translations.sw"


@pytest.mark.parametrize("text", ["Hi {name}", "Hi {case.name", "Hi }", "Hi {visit.date}"])
def test_a_bad_template_is_invalid_template_with_its_problems(text):
    error = _error(spec.parse_text, "text", text)
    assert status_of(error) == 400 and error.code == "invalid_template"
    assert _field(error) == "text" and error.details["problems"]


# --- quiet hours -------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, {}, ""])
def test_no_quiet_hours(raw):
    assert spec.parse_quiet_hours(raw) == {"quiet_start": None, "quiet_end": None}


def test_quiet_hours_are_normalised_and_read_back_as_a_window():
    parsed = spec.parse_quiet_hours({"start": "8:00", "end": " 20:30 "})
    assert parsed == {"quiet_start": "08:00", "quiet_end": "20:30"}
    b = Broadcast(**parsed)
    assert spec.quiet_window(b) == QuietHours(time(8, 0), time(20, 30))
    overnight = Broadcast(**spec.parse_quiet_hours({"start": "20:00", "end": "06:00"}))
    window = spec.quiet_window(overnight)
    assert window.contains(time(23, 0)) and not window.contains(time(12, 0))
    assert spec.quiet_window(Broadcast()) is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"start": "8am", "end": "20:00"}, "quiet_hours.start"),
        ({"start": "08:00", "end": "24:00"}, "quiet_hours.end"),
        ({"start": "08:00"}, "quiet_hours.end"),
        ({"start": "08:00", "end": "08:00"}, "quiet_hours"),
        ("08:00-20:00", "quiet_hours"),
        (["08:00", "20:00"], "quiet_hours"),
    ],
)
def test_bad_quiet_hours_name_the_field(raw, field):
    error = _error(spec.parse_quiet_hours, raw)
    assert error.code == "validation_error" and _field(error) == field


# --- timing ------------------------------------------------------------------------


def test_no_time_means_now():
    assert spec.parse_timing(PROJECT, {}, None) == {
        "schedule": None,
        "send_at": None,
        "next_fire_at": None,
    }


def test_send_at_is_parsed_to_naive_utc():
    timing = spec.parse_timing(PROJECT, {"send_at": "2026-03-02T15:00:00+03:00"}, None)
    assert timing == {
        "schedule": None,
        "send_at": datetime(2026, 3, 2, 12, 0),
        "next_fire_at": datetime(2026, 3, 2, 12, 0),
    }


def test_send_at_up_to_a_minute_ago_fires_now():
    timing = spec.parse_timing(PROJECT, {"send_at": "2026-03-02T08:59:10Z"}, None)
    assert timing["send_at"] == datetime(2026, 3, 2, 8, 59, 10) and timing["next_fire_at"] == NOW
    error = _error(spec.parse_timing, PROJECT, {"send_at": "2026-03-02T08:58:59Z"}, None)
    assert _field(error) == "send_at"


def test_repeat_defaults_to_the_projects_zone_and_todays_local_date():
    timing = spec.parse_timing(PROJECT, {"repeat": {"kind": "daily", "time": "13:00"}}, None)
    assert timing["schedule"]["timezone"] == "Africa/Nairobi"
    assert timing["schedule"]["start_date"] == "2026-03-02"
    assert timing["send_at"] is None
    assert timing["next_fire_at"] == datetime(2026, 3, 2, 10, 0)  # 13:00 EAT today
    later = spec.parse_timing(PROJECT, {"repeat": {"kind": "daily", "time": "11:00"}}, None)
    assert later["next_fire_at"] == datetime(2026, 3, 3, 8, 0)  # 11:00 has passed today: tomorrow


def test_repeat_start_date_is_today_in_the_schedules_zone_not_utc():
    clock.set_now(datetime(2026, 3, 2, 23, 0))  # already 3 March in Nairobi, still 2 March in New York
    nairobi = spec.parse_timing(PROJECT, {"repeat": {"kind": "daily", "time": "09:00"}}, None)
    assert nairobi["schedule"]["start_date"] == "2026-03-03"
    repeat = {"kind": "daily", "time": "09:00", "timezone": "America/New_York"}
    new_york = spec.parse_timing(PROJECT, {"repeat": repeat}, None)
    assert new_york["schedule"]["start_date"] == "2026-03-02"


@pytest.mark.parametrize(
    ("merged", "field"),
    [
        ({"send_at": "2026-03-03T09:00:00Z", "repeat": {"kind": "daily", "time": "09:00"}}, "send_at"),
        ({"send_at": "next week"}, "send_at"),
        ({"send_at": 1700000000}, "send_at"),
        ({"repeat": ["daily"]}, "repeat"),
        ({"repeat": {"kind": "hourly", "time": "09:00"}}, "repeat.kind"),
        ({"repeat": {"kind": "daily"}}, "repeat.time"),
        ({"repeat": {"kind": "daily", "time": "09:00", "every": 2}}, "repeat.every"),
        ({"repeat": {"kind": "daily", "time": "09:00", "timezone": "Nowhere/City"}}, "repeat.timezone"),
        ({"repeat": {"kind": "monthly", "time": "09:00", "day_of_month": 32}}, "repeat.day_of_month"),
        ({"repeat": {"kind": "daily", "time": "09:00", "end_date": "2026-03-01"}}, "repeat.end_date"),
        (
            {
                "repeat": {
                    "kind": "daily",
                    "time": "08:00",
                    "start_date": "2026-03-02",
                    "end_date": "2026-03-02",
                }
            },
            "repeat",
        ),  # its only firing, 08:00 EAT (05:00Z) today, has passed
    ],
)
def test_bad_timing_names_the_field(merged, field):
    error = _error(spec.parse_timing, PROJECT, merged, None)
    assert error.code == "validation_error" and _field(error) == field, error.message


def test_an_edit_giving_send_at_or_repeat_replaces_the_other():
    repeat = {"kind": "daily", "time": "13:00"}
    merged = {"send_at": "2026-03-05T09:00:00Z", "repeat": repeat}
    to_once = spec.parse_timing(PROJECT, merged, {"send_at": "2026-03-05T09:00:00Z"})
    assert to_once["schedule"] is None and to_once["send_at"] == datetime(2026, 3, 5, 9, 0)
    to_repeat = spec.parse_timing(PROJECT, merged, {"repeat": repeat})
    assert to_repeat["send_at"] is None and to_repeat["schedule"]["kind"] == "daily"
    # An edit naming neither, over a stored body with both, is still an error.
    error = _error(spec.parse_timing, PROJECT, merged, {"name": "x"})
    assert _field(error) == "send_at"
