"""A card's brightness (and a test pattern's) level: the one range and the one conversion.

LWP/1 carries a level as an unsigned 16-bit number (``SET_BRIGHTNESS``,
``TEST_PATTERN``), 0 = dark, 0xFFFF = full.  People give it three ways: the
screen file as a fraction 0..1 (``[cards] brightness``), the host's command
line as a number or a percentage (``50%``), the API as a whole number.  Each
input keeps its own form and message, but all of them check the range here and
turn a fraction into a level here, so a wall set to 50 % from the screen file
and from the command line gets the same level.
"""

from __future__ import annotations

#: Full brightness: the largest level LWP/1 carries.
LEVEL_MAX = 0xFFFF


def is_level(value: int) -> bool:
    """Whether ``value`` is a level the cards take (0..65535)."""
    return 0 <= value <= LEVEL_MAX


def level_of_fraction(fraction: float) -> int:
    """The level for a fraction of full brightness (0.5 → 32768), rounded to the nearest."""
    return round(fraction * LEVEL_MAX)
