"""One brightness for people, in percent: the screen file's default, the command line and the
card level agree, and the retired ``[cards] brightness`` key says what to write instead."""

from __future__ import annotations

import argparse

import pytest

from controller.brightness import (LEVEL_MAX, is_level, level_of_fraction, level_of_percent,
                                   percent_of_level, screen_file_level)
from controller.errors import ConfigError, LedwardenError, PayloadError
from controller.protocol import commands as c
from controller.screenmap import CardSettings
from host.brightnesscli import parse_percent
from host.buscli import parse_level


@pytest.mark.parametrize("percent", [1, 25, 33.3, 50, 80, 100])
def test_the_screen_file_and_the_command_lines_give_the_same_level(percent):
    from_file = CardSettings.from_screen_file({"correction": {"brightness": percent}}).default_level
    assert from_file == level_of_percent(parse_percent(f"{percent}%")) == parse_level(f"{percent}%")
    assert from_file == level_of_fraction(percent / 100)


def test_every_whole_percent_reads_back_as_itself():
    assert [percent_of_level(level_of_percent(p)) for p in range(101)] == list(range(101))
    assert level_of_percent(40) == 26214 and level_of_percent(80) == 52428


def test_no_correction_table_means_full_brightness():
    assert screen_file_level({}) == LEVEL_MAX
    assert CardSettings.from_screen_file({"cards": {"refresh_hz": 1920}}).default_level == LEVEL_MAX


def test_the_retired_cards_key_is_refused_with_what_to_write():
    with pytest.raises(ConfigError) as err:
        CardSettings.from_screen_file({"cards": {"brightness": 0.8}})
    assert str(err.value) == ("[cards] brightness is retired: brightness is a percentage of full in "
                              "the [correction] table now; write [correction] brightness = 80 "
                              "(for the old 0.8) and remove the [cards] key")
    # also beside a [correction] brightness: never two opinions, silently reconciled
    with pytest.raises(ConfigError, match="retired"):
        CardSettings.from_screen_file({"cards": {"brightness": 1}, "correction": {"brightness": 90}})
    with pytest.raises(ConfigError, match="brightness = a percentage 1..100"):
        CardSettings.from_screen_file({"cards": {"brightness": "bright"}})


@pytest.mark.parametrize("bad", [0, 0.5, 101, -3, "80", True, None])
def test_a_screen_file_brightness_out_of_range_is_refused(bad):
    with pytest.raises(ConfigError, match=r"\[correction\] brightness = .* must be a percentage 1\.\.100"):
        screen_file_level({"correction": {"brightness": bad}})


@pytest.mark.parametrize("text,reason", [("140%", "not a percentage 0..100$"),
                                         ("26214", "looks like a card level"),
                                         ("-1", "not a percentage"), ("bright", "not a brightness")])
def test_the_command_line_takes_percent_only(text, reason):
    with pytest.raises(LedwardenError, match=reason):
        parse_percent(text)


def test_the_range_is_the_wires_16_bits_everywhere():
    assert LEVEL_MAX == 0xFFFF and is_level(0) and is_level(LEVEL_MAX) and not is_level(LEVEL_MAX + 1)
    assert parse_level(str(LEVEL_MAX)) == LEVEL_MAX
    with pytest.raises(argparse.ArgumentTypeError, match=r"outside 0\.\.65535"):
        parse_level(str(LEVEL_MAX + 1))
    c.Brightness(LEVEL_MAX)
    with pytest.raises(PayloadError):
        c.Brightness(LEVEL_MAX + 1)
