"""The screen file's [correction] table: defaults, every problem named, run-time changes."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from controller.errors import ConfigError
from controller.fastpath.settings import cie1931_lut, gains_from, power_lut
from controller.picture.settings import Correction, parse_correction


def parse(text: str, addresses=(1, 2)):
    return parse_correction(tomllib.loads(text), "/walls/screen.toml", addresses)


def test_no_table_means_what_the_controller_did_before():
    sc = parse("")
    assert sc.settings == Correction()
    assert np.array_equal(sc.settings.lut(), power_lut(2.2))
    assert np.array_equal(sc.settings.gains(), gains_from(1.0))
    assert sc.calibration == {}


def test_a_full_table():
    sc = parse('[correction]\ncurve = "power"\ngamma = 2.4\nwhite = [1.0, 0.9, 0.8]\n'
               'brightness = 60\n[correction.calibration]\n1 = "cal/one.csv"\n0x02 = "/abs/two.npz"\n')
    assert sc.settings.gamma == 2.4 and sc.settings.white == (1.0, 0.9, 0.8)
    assert np.array_equal(sc.settings.gains(), gains_from(1.0, (1.0, 0.9, 0.8)))
    assert sc.settings.brightness == 60
    assert str(sc.calibration[1]) == "/walls/cal/one.csv"
    assert str(sc.calibration[2]) == "/abs/two.npz"


def test_brightness_is_accepted_but_never_in_the_gains():
    sc = parse("[correction]\nbrightness = 40\n")
    assert np.array_equal(sc.settings.gains(), gains_from(1.0))


def test_cie1931():
    sc = parse('[correction]\ncurve = "cie1931"\n')
    assert sc.settings.gamma is None
    assert np.array_equal(sc.settings.lut(), cie1931_lut())


def test_every_problem_is_named_at_once():
    with pytest.raises(ConfigError) as err:
        parse('[correction]\ncurve = "srgb"\ngamma = 0\nwhite = [1.0, 0.0, 1.5]\n'
              'brightness = 0\nsharpness = 3\n[correction.calibration]\n9 = "x.csv"\nabc = "y.csv"\n')
    text = str(err.value)
    assert text.startswith("/walls/screen.toml: ")
    for part in ("curve = 'srgb' is not one of \"power\", \"cie1931\"",
                 "gamma = 0 is out of range (0 < gamma <= 5)",
                 "white g = 0.0, b = 1.5 out of range (0 < w <= 1)",
                 "brightness = 0 is out of range (percent, 1 … 100)",
                 "unknown key 'sharpness'",
                 "the screen has no cabinet at address 9",
                 "'abc' is not a card address"):
        assert part in text, part
    assert len(err.value.problems) == 7


@pytest.mark.parametrize("text, words", [
    ('curve = "cie1931"\ngamma = 2.2', 'gamma applies to curve "power" only'),
    ("gamma = -1", "gamma = -1 is out of range"),
    ("gamma = 22", "gamma = 22 is out of range (0 < gamma <= 5)"),
    ('gamma = "2.2"', "gamma must be a number"),
    ("gamma = nan", "gamma = nan is out of range"),
    ("white = [1, 1]", "white must be three numbers"),
    ("brightness = true", "brightness = True is out of range"),
])
def test_one_bad_key(text, words):
    with pytest.raises(ConfigError, match="1 problem") as err:
        parse(f"[correction]\n{text}\n")
    assert words in str(err.value)


def test_changes_at_run_time():
    base = Correction()
    assert base.changed({"gamma": 2.4}) == Correction("power", 2.4)
    cie = base.changed({"curve": "cie1931"})
    assert cie.curve == "cie1931" and cie.gamma is None
    assert cie.changed({"gamma": 2.0}) == Correction("power", 2.0)       # gamma means power
    assert cie.changed({"curve": "power"}).gamma == 2.2
    assert base.changed({"white": [1, 0.5, 0.25]}).white == (1.0, 0.5, 0.25)
    with pytest.raises(ConfigError, match="gamma = 0 is out of range"):
        base.changed({"gamma": 0})
    with pytest.raises(ConfigError, match="gamma applies to curve"):
        base.changed({"curve": "cie1931", "gamma": 2.0})
    with pytest.raises(ConfigError, match="unknown key 'brightness'"):
        base.changed({"brightness": 50})
