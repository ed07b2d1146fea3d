"""The screen file's ``[correction]`` table: transfer curve, white balance, brightness.

::

    [correction]
    curve = "power"          # or "cie1931"
    gamma = 2.2              # with curve = "power" only; 0 < gamma <= 5
    white = [1.0, 0.92, 0.85]  # per channel, 0 < w <= 1
    brightness = 100         # percent 1 … 100: the cards' dimming (controller.brightness)

    [correction.calibration] # per-cabinet calibration files, by card address
    1 = "calibration/cab01.csv"

Every key is optional and the defaults are what the controller did before the
table existed (power curve, gamma 2.2, white 1, 1, 1), so a screen file without
it shows the same picture.  ``brightness`` is validated here but not applied to
the pipeline's gains: it is the cards' dimming level, which keeps every grey level
(see ``docs/correction.md``).  Problems are named like the rest of the screen
file's, ``[correction]: gamma = 0 is out of range (0 < gamma <= 5)``, all at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD
from controller.errors import ConfigError
from controller.fastpath.settings import cie1931_lut, gains_from, power_lut

CURVES = ("power", "cie1931")
#: Beyond 5 the curve leaves most of the 8-bit codes black: surely a typo (22 for 2.2).
GAMMA_MAX = 5.0
KEYS = ("curve", "gamma", "white", "brightness", "calibration")


@dataclass(frozen=True)
class Correction:
    """What the pipeline's curve and gains are built from; ``gamma`` is None with cie1931."""

    curve: str = "power"
    gamma: float | None = 2.2
    white: tuple[float, float, float] = (1.0, 1.0, 1.0)
    #: Percent, the cards' dimming (owned by controller.brightness); never in the gains.
    brightness: float | None = None

    def lut(self) -> np.ndarray:
        return cie1931_lut() if self.curve == "cie1931" else power_lut(self.gamma or 2.2)

    def gains(self) -> np.ndarray:
        return gains_from(1.0, self.white)

    def as_dict(self) -> dict[str, Any]:
        return {"curve": self.curve, "gamma": self.gamma, "white": list(self.white),
                "brightness": self.brightness}

    def changed(self, changes: Mapping[str, Any], where: str = "correction") -> Correction:
        """These settings with ``changes`` (curve, gamma, white) applied, checked as a whole.

        A gamma without a curve means the power curve (a gamma has no other
        meaning); a curve of cie1931 drops the gamma.
        """
        problems: list[str] = []
        unknown = sorted(set(changes) - {"curve", "gamma", "white"})
        for key in unknown:
            problems.append(f"{where}: unknown key {key!r} (curve, gamma, white)")
        curve = changes.get("curve", "power" if "gamma" in changes else self.curve)
        curve = _curve(curve, where, problems)
        gamma: float | None = self.gamma if curve == "power" else None
        if "gamma" in changes:
            if curve == "cie1931":
                problems.append(f"{where}: gamma applies to curve \"power\" only, not \"cie1931\" "
                                f"(rule: leave gamma out with cie1931)")
            else:
                gamma = _gamma(changes["gamma"], where, problems)
        if curve == "power" and gamma is None:
            gamma = 2.2
        white = _white(changes["white"], where, problems) if "white" in changes else self.white
        _raise(problems)
        assert curve is not None and white is not None
        return replace(self, curve=curve, gamma=gamma, white=white)


@dataclass(frozen=True)
class ScreenCorrection:
    """The ``[correction]`` table as read: the settings and the calibration files it names."""

    settings: Correction
    #: Card address → calibration file (resolved against the screen file's folder).
    calibration: dict[int, Path]


def parse_correction(data: Mapping[str, Any], source: str = "<screen>",
                     addresses: tuple[int, ...] | None = None) -> ScreenCorrection:
    """The ``[correction]`` table of a parsed screen file (defaults when it is absent).

    ``addresses`` (the screen's cards) lets a calibration entry for a cabinet the
    screen does not have be refused by name.  Relative file names are taken
    from the screen file's folder, as an installer writes them next to it.
    """
    raw = data.get("correction")
    if raw is None:
        return ScreenCorrection(Correction(), {})
    where = "[correction]"
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        _raise([f"{where}: must be a table, not {type(raw).__name__}"], source)
    for key in raw:
        if key not in KEYS:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(KEYS)})")
    curve = _curve(raw.get("curve", "power"), where, problems)
    gamma: float | None = None
    if "gamma" in raw:
        if curve == "cie1931":
            problems.append(f"{where}: gamma applies to curve \"power\" only, not \"cie1931\" "
                            f"(rule: leave gamma out with cie1931)")
        else:
            gamma = _gamma(raw["gamma"], where, problems)
    elif curve == "power":
        gamma = 2.2
    white = _white(raw.get("white", [1.0, 1.0, 1.0]), where, problems)
    brightness = None
    if "brightness" in raw:
        b = raw["brightness"]
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not 1 <= b <= 100:
            problems.append(f"{where}: brightness = {b!r} is out of range (percent, 1 … 100)")
        else:
            brightness = b     # as written: the level is controller.brightness's to compute
    files = _calibration_files(raw.get("calibration", {}), Path(source).parent, addresses,
                               problems)
    _raise(problems, source)
    assert curve is not None and white is not None
    return ScreenCorrection(Correction(curve, gamma, white, brightness), files)


def _curve(value: Any, where: str, problems: list[str]) -> str | None:
    if value not in CURVES or not isinstance(value, str):
        problems.append(f"{where}: curve = {value!r} is not one of \"power\", \"cie1931\"")
        return None
    return value


def _gamma(value: Any, where: str, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where}: gamma must be a number, not {value!r}")
        return None
    if not (math.isfinite(value) and 0 < value <= GAMMA_MAX):
        problems.append(f"{where}: gamma = {value!r} is out of range (0 < gamma <= {GAMMA_MAX:g})")
        return None
    return float(value)


def _white(value: Any, where: str, problems: list[str]) -> tuple[float, float, float] | None:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        problems.append(f"{where}: white must be three numbers [r, g, b], not {value!r}")
        return None
    bad = [f"{'rgb'[i]} = {v!r}" for i, v in enumerate(value)
           if not (math.isfinite(v) and 0 < v <= 1)]
    if bad:
        problems.append(f"{where}: white {', '.join(bad)} out of range (0 < w <= 1)")
        return None
    r, g, b = (float(v) for v in value)
    return (r, g, b)


def _calibration_files(raw: Any, folder: Path, addresses: tuple[int, ...] | None,
                       problems: list[str]) -> dict[int, Path]:
    where = "[correction.calibration]"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a table of card address = \"file\"")
        return {}
    out: dict[int, Path] = {}
    for key, value in raw.items():
        try:
            address = int(key, 0)
        except ValueError:
            problems.append(f"{where}: {key!r} is not a card address (1 … 240, or 0x01 …)")
            continue
        if not ADDR_FIRST_CARD <= address <= ADDR_LAST_CARD:
            problems.append(f"{where}: address {key} is out of range "
                            f"({ADDR_FIRST_CARD} … {ADDR_LAST_CARD})")
        elif addresses is not None and address not in addresses:
            problems.append(f"{where}: the screen has no cabinet at address {key}")
        elif not isinstance(value, str) or not value:
            problems.append(f"{where}: {key} must name a calibration file, not {value!r}")
        else:
            path = Path(value)
            out[address] = path if path.is_absolute() else folder / path
    return out


def _raise(problems: list[str], source: str = "") -> None:
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        head = f"{source}: " if source else ""
        err = ConfigError(f"{head}{len(problems)} {noun} in the correction settings:\n  "
                          + "\n  ".join(problems))
        err.problems = [f"{head}{p}" for p in problems]
        raise err
