"""The brightness schedule on its own (no bus, no clock): validation with reasons, the level at
any time, fades in at most 64 steps at most one a second, midnight."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from controller.brightness_schedule import FADE_STEPS_MAX, Schedule, parse_entry
from controller.errors import ConfigError

DAY = datetime(2026, 12, 5)


def at(hhmm: str, seconds: float = 0) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return DAY.replace(hour=h, minute=m) + timedelta(seconds=seconds)


@pytest.mark.parametrize("texts,fade,reason", [
    (["25:00=50"], 0, "25:00 is not a time of day: hours go 00..23"),
    (["07:60=50"], 0, "07:60 is not a time of day: minutes go 00..59"),
    (["07:00=120"], 0, "07:00: brightness 120.0 is not a percentage 0..100"),
    (["07:00=80", "7:00=30"], 0, "07:00 appears twice in the schedule"),
    (["seven=80"], 0, "'seven=80' is not a schedule entry: write TIME=PERCENT"),
    ([], 0, "needs at least one entry"),
    (["07:00=80", "07:01=30"], 60, "a fade of 60 s is not over before the next entry"),
    (["07:00=80"], -1, "the fade must be 0..21600 seconds"),
])
def test_bad_schedules_are_refused_with_the_reason(texts, fade, reason):
    with pytest.raises(ConfigError) as err:
        Schedule.parse(texts, fade)
    assert reason in str(err.value)


@pytest.mark.parametrize("data,reason", [
    ({"entries": [{"time": "07:00", "percent": True}]}, "not a percentage"),
    ({"entries": [{"time": "07:00"}]}, '{"time": "HH:MM", "percent": 0..100}'),
    ({"entries": [{"time": "7:00", "percent": 5}]}, "write HH:MM"),
    ({"entries": [{"time": "07:00", "percent": 5}], "fade_s": "60"}, "the fade must be"),
    ({"entries": [{"time": "07:00", "percent": 5}], "fade": 60}, "not 'fade'"),
    ([], "a schedule is"),
])
def test_the_stored_and_api_form_is_checked_alike(data, reason):
    with pytest.raises(ConfigError, match=re.escape(reason)):
        Schedule.from_dict(data)


def test_entries_accept_percent_signs_and_one_digit_hours_and_round_trip():
    s = Schedule.parse(["22:00=30%", "7:00=80"], 60)
    assert [str(e) for e in s.entries] == ["07:00=80", "22:00=30"]
    assert Schedule.from_dict(s.as_dict()) == s
    assert parse_entry(" 06:30 = 12.5 ").percent == 12.5


def test_the_level_holds_between_entries_and_past_midnight():
    s = Schedule.parse(["07:00=80", "22:00=30"], 0)
    assert s.percent_at(at("12:00")) == (80, False)
    assert s.percent_at(at("23:59")) == (30, False)
    assert s.percent_at(at("03:00")) == (30, False)          # yesterday's 22:00 still holds
    assert s.next_at(at("23:00")) == (at("07:00") + timedelta(days=1), s.entries[0])
    assert s.next_at(at("07:00")) == (at("22:00"), s.entries[1])   # strictly after


def test_a_fade_moves_in_equal_steps_at_most_one_a_second():
    s = Schedule.parse(["07:00=80", "22:00=30"], 10)       # 10 s: 10 steps of 5 %
    values = [s.percent_at(at("22:00", t / 10))[0] for t in range(0, 120)]
    assert values[0] == 75 and values[-1] == 30
    changes = [i / 10 for i in range(1, len(values)) if values[i] != values[i - 1]]
    assert changes == [float(k) for k in range(1, 10)]      # each whole second, then it holds
    assert s.percent_at(at("22:00", 8.5)) == (35, True)       # "fading": more steps to come
    assert s.percent_at(at("22:00", 9.5)) == (30, False)


def test_a_long_fade_takes_at_most_64_steps():
    s = Schedule.parse(["07:00=80", "22:00=30"], 3600)
    seen = {s.percent_at(at("22:00", t))[0] for t in range(0, 3601)}
    assert len(seen - {80}) == FADE_STEPS_MAX
    assert s.steps() == 64


def test_a_fade_starts_from_where_a_hand_setting_left_the_wall():
    s = Schedule.parse(["07:00=80", "22:00=30"], 60)
    assert s.percent_at(at("22:00", 0), start=90)[0] == pytest.approx(89)    # 60 steps of 1 %
    assert s.percent_at(at("22:00", 59.5), start=90) == (30, False)
