"""Brightness: the one range, the one unit people use, and the screen file's default.

The wall has one brightness for people: a **percentage** of full, and it is
the receiving cards' dimming level (``SET_BRIGHTNESS``), never the pipeline's
gains.  The cards dim after the grey levels are chosen, so a wall at 30 %
still shows all 65 536 levels of each channel; a gain of 0.3 in the pipeline
would throw away the top bits of every pixel before the cards see it.  The
pipeline's gains are kept for what only they can do: white balance, per-pixel
calibration and current limiting (``docs/correction.md``, "Brightness").

LWP/1 carries a level as an unsigned 16-bit number (``SET_BRIGHTNESS``,
``TEST_PATTERN``), 0 = dark, 0xFFFF = full.  People give a percentage (the
screen file's ``[correction] brightness = 80``, ``ledwarden brightness
40%``, the API's ``percent``); this module turns one into the other, so every
command, check and report that shows a brightness shows the same number.
"""

from __future__ import annotations

from controller.errors import ConfigError

#: Full brightness: the largest level LWP/1 carries.
LEVEL_MAX = 0xFFFF
#: The least commissioning default the screen file may give, in percent: a wall commissioned dark
#: would show none of commissioning's test patterns.
SCREEN_FILE_MIN_PERCENT = 1
#: Why the old ``[cards] brightness`` key (a fraction 0..1) is refused: it said the same as
#: ``[correction] brightness`` in another unit, and two keys for one thing disagree sooner or later.
RETIRED_CARDS_KEY = ("[cards] brightness is retired: brightness is a percentage of full in the "
                     "[correction] table now; write [correction] brightness = {write} and remove "
                     "the [cards] key")


def is_level(value: int) -> bool:
    """Whether ``value`` is a level the cards take (0..65535)."""
    return 0 <= value <= LEVEL_MAX


def is_percent(value: object) -> bool:
    """Whether ``value`` is a brightness in percent, 0..100 (a number, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100


def level_of_fraction(fraction: float) -> int:
    """The level for a fraction of full brightness (0.5 → 32768), rounded to the nearest."""
    return round(fraction * LEVEL_MAX)


def level_of_percent(percent: float) -> int:
    """The level for a percentage of full brightness (40 → 26214), rounded to the nearest."""
    return level_of_fraction(percent / 100)


def percent_of_level(level: int) -> float:
    """The percentage a level stands for, to a tenth (26214 → 40.0): how every view shows it.

    A tenth is fine enough that a level set from a whole percentage reads back
    as that percentage, and coarse enough that nobody reads noise into it.
    """
    return round(level * 100 / LEVEL_MAX, 1)


def screen_file_level(data: dict) -> int:
    """The commissioning default: ``[correction] brightness`` (percent, 1..100) as a level.

    100 % when the key (or the table) is absent.  The old ``[cards]
    brightness`` key is refused with what to write instead, rather than read
    as a second opinion.  This is only the default: the wall's current
    brightness (set by hand or by the schedule) is controller state
    (``controller/service/brightness.py``), and the checks compare the cards
    with that.
    """
    cards = data.get("cards")
    if isinstance(cards, dict) and "brightness" in cards:
        raise ConfigError(retired_cards_key(cards["brightness"]))
    table = data.get("correction", {})
    if not isinstance(table, dict):
        raise ConfigError("[correction] must be a table")
    percent = table.get("brightness", 100)
    if not is_percent(percent) or percent < SCREEN_FILE_MIN_PERCENT:
        raise ConfigError(f"[correction] brightness = {percent!r} must be a percentage "
                          f"{SCREEN_FILE_MIN_PERCENT}..100 (80 for 80 %)")
    return level_of_percent(percent)


def retired_cards_key(value: object) -> str:
    """The sentence refusing ``[cards] brightness = value``, with the percentage to write."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1:
        return RETIRED_CARDS_KEY.format(write=f"{round(value * 100, 1):g} (for the old {value})")
    return RETIRED_CARDS_KEY.format(write="a percentage 1..100")
