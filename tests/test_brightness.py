"""One brightness range and one fraction-to-level conversion for the screen file, the CLI and the API."""

from __future__ import annotations

import argparse

import pytest

from controller.brightness import LEVEL_MAX, is_level, level_of_fraction
from controller.errors import PayloadError
from controller.protocol import commands as c
from controller.screenmap import CardSettings
from host.buscli import parse_level


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.333, 1.0])
def test_the_screen_file_and_the_command_line_give_the_same_level(fraction):
    from_file = CardSettings.from_screen_file({"cards": {"brightness": fraction}}).level
    from_cli = parse_level(f"{fraction * 100}%")
    assert from_file == from_cli == level_of_fraction(fraction)


def test_the_range_is_the_wires_16_bits_everywhere():
    assert LEVEL_MAX == 0xFFFF and is_level(0) and is_level(LEVEL_MAX) and not is_level(LEVEL_MAX + 1)
    assert parse_level(str(LEVEL_MAX)) == LEVEL_MAX
    with pytest.raises(argparse.ArgumentTypeError, match=r"outside 0\.\.65535"):
        parse_level(str(LEVEL_MAX + 1))
    c.Brightness(LEVEL_MAX)
    with pytest.raises(PayloadError):
        c.Brightness(LEVEL_MAX + 1)
