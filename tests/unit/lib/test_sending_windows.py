"""Sending windows: parsing with the faulty field named, open or closed, and the next opening."""

from datetime import datetime, time

import pytest

from messaging.lib.sending_windows import (
    WindowError,
    is_open,
    next_open,
    parse_window_lines,
    parse_windows,
    window_lines,
    windows_json,
)

WEEKDAYS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}]


def test_a_window_is_open_from_its_start_to_just_before_its_end_on_its_days():
    [w] = parse_windows(WEEKDAYS)
    monday = datetime(2026, 12, 7)
    assert not w.open_at(monday.replace(hour=7, minute=59))
    assert w.open_at(monday.replace(hour=8))
    assert w.open_at(monday.replace(hour=17, minute=59))
    assert not w.open_at(monday.replace(hour=18))
    assert not w.open_at(datetime(2026, 12, 12, 10))  # a Saturday


def test_a_window_past_midnight_belongs_to_the_day_it_opens():
    [w] = parse_windows([{"days": ["fri"], "start": "20:00", "end": "02:00"}])
    assert w.open_at(datetime(2026, 12, 11, 21))  # Friday evening
    assert w.open_at(datetime(2026, 12, 12, 1, 30))  # early Saturday
    assert not w.open_at(datetime(2026, 12, 12, 21))  # Saturday evening
    assert not w.open_at(datetime(2026, 12, 11, 1, 30))  # early Friday: Thursday has no window


def test_no_windows_is_any_time_and_several_windows_are_any_of_them():
    assert is_open([], datetime(2026, 12, 7, 3))
    windows = parse_windows([*WEEKDAYS, {"days": ["sat"], "start": "09:00", "end": "12:00"}])
    assert is_open(windows, datetime(2026, 12, 12, 10))
    assert not is_open(windows, datetime(2026, 12, 13, 10))  # Sunday


def test_the_next_opening_is_in_the_projects_time_zone():
    windows = parse_windows(WEEKDAYS)
    friday_evening_utc = datetime(2026, 12, 11, 16)  # 19:00 in Nairobi: closed
    assert next_open(friday_evening_utc, "Africa/Nairobi", windows) == datetime(
        2026, 12, 14, 5
    )  # Mon 08:00 EAT
    inside = datetime(2026, 12, 7, 6)  # 09:00 Monday in Nairobi
    assert next_open(inside, "Africa/Nairobi", windows) == inside


def test_an_opening_in_a_spring_forward_gap_opens_when_the_clock_reaches_the_window():
    # New York skips 02:00-03:00 on 8 March 2026: a window opening at 02:30 opens at 03:00 EDT.
    windows = parse_windows([{"start": "02:30", "end": "05:00"}])
    assert next_open(datetime(2026, 3, 8, 5), "America/New_York", windows) == datetime(2026, 3, 8, 7)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"start": "08:00"}, "sending_windows"),
        ([{"start": "8am", "end": "18:00"}], "sending_windows[0].start"),
        ([{"start": "08:00", "end": "24:00"}], "sending_windows[0].end"),
        ([{"start": "08:00", "end": "08:00"}], "sending_windows[0].end"),
        ([WEEKDAYS[0], {"days": ["someday"], "start": "08:00", "end": "09:00"}], "sending_windows[1].days"),
        ([{"days": [], "start": "08:00", "end": "09:00"}], "sending_windows[0].days"),
        ([{"start": "08:00", "end": "09:00", "hours": 1}], "sending_windows[0].hours"),
        (["mon 08:00-09:00"], "sending_windows[0]"),
    ],
)
def test_a_bad_window_names_its_field(raw, field):
    with pytest.raises(WindowError) as caught:
        parse_windows(raw)
    assert caught.value.field == field


def test_the_line_form_reads_day_ranges_and_writes_them_back():
    windows = parse_window_lines(
        "Mon-Fri 08:00-18:00\n\nsat,sun 9:00-12:00\nfri-mon 20:00-22:00\n06:00-07:00"
    )
    assert [sorted(w.days) for w in windows] == [[0, 1, 2, 3, 4], [5, 6], [0, 4, 5, 6], list(range(7))]
    assert windows[1].start == time(9)
    assert window_lines(windows) == (
        "mon-fri 08:00-18:00\nsat-sun 09:00-12:00\nmon,fri-sun 20:00-22:00\n06:00-07:00"
    )
    assert parse_window_lines(window_lines(windows)) == windows
    assert windows_json(parse_window_lines("")) is None


def test_a_bad_line_is_named_by_its_number():
    with pytest.raises(WindowError) as caught:
        parse_window_lines("mon-fri 08:00-18:00\nweekdays 08:00-18:00")
    assert caught.value.field == "sending_windows (line 2)"
