"""The simulated wall's light: every LED's three primaries in CIE XYZ, and what it emits.

This is the ground truth the calibration from photographs (issue 19) is
judged against, so it is written from how LED modules are made and age, and
shares nothing with the calibration code: no target, no matrix solving, no
camera.  Units are relative (XYZ with the wall's nominal white at Y = 1 per
LED at full drive); only ratios between LEDs matter to uniformity.

Where the spread comes from, and the default sizes (all seeded, so a wall is
the same on every run):

- **LED binning**: LEDs of one reel still differ; each LED's primaries get
  their own luminance factor (log-normal, ``led_luminance_sd``, 7 %) and a
  small shift of chromaticity (``led_xy_sd``, 0.0015 in x and y);
- **module batch**: each module is built from one reel per colour, so it has
  its own luminance offset per primary (``module_luminance_sd``, 3 %) and
  chromaticity shift (``module_xy_sd``, 0.001);
- **ageing**: LEDs lose light with hours, red (AlInGaP) faster than green and
  blue (InGaN), and hot modules faster than cool ones; ``years`` of use with a
  per-module thermal factor;
- **a replaced module** (:meth:`Wall.replace_module`): a new module from
  another production batch, not aged, whose primaries are shifted so its white
  differs from the rest of the wall by ``delta_uv`` (Δu′v′, 0.01 by default) —
  the after-repair complaint the calibration exists for;
- **dead LEDs** (:meth:`Wall.kill`): every primary dark.

An LED is driven by PWM, so the light of a primary is proportional to its
16-bit drive value: :func:`emit` takes the drive values the modules show
(``uint16[H][W][3]``, what the controller's correction produced for the
frame) and returns the XYZ of every LED.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: Nominal chromaticities (x, y) of display LEDs' primaries.
NOMINAL_XY = ((0.700, 0.299), (0.170, 0.720), (0.135, 0.050))
#: The wall's nominal white (D65) the primaries' luminances are balanced to.
WHITE_XY = (0.3127, 0.3290)
#: Light lost per year of use, per primary (red ages fastest).
AGEING_PER_YEAR = (0.025, 0.015, 0.020)


def xy_to_xyz(x: np.ndarray | float, y: np.ndarray | float, big_y: np.ndarray | float = 1.0) -> np.ndarray:
    """XYZ of chromaticity (x, y) at luminance Y (arrays broadcast); last axis is X, Y, Z."""
    x, y, big_y = np.asarray(x, float), np.asarray(y, float), np.asarray(big_y, float)
    return np.stack(np.broadcast_arrays(big_y * x / y, big_y, big_y * (1 - x - y) / y), axis=-1)


def xyz_to_xy(xyz: np.ndarray) -> np.ndarray:
    total = xyz.sum(axis=-1, keepdims=True)
    out: np.ndarray = xyz[..., :2] / total
    return out


def upvp(xyz: np.ndarray) -> np.ndarray:
    """CIE 1976 u′v′ of XYZ (last axis), the space Δu′v′ is measured in."""
    d = xyz[..., 0] + 15 * xyz[..., 1] + 3 * xyz[..., 2]
    return np.stack([4 * xyz[..., 0] / d, 9 * xyz[..., 1] / d], axis=-1)


def nominal_primaries() -> np.ndarray:
    """``float[3][3]``: XYZ of R, G, B (rows) at full drive, summing to the white at Y = 1."""
    unit = np.array([xy_to_xyz(x, y) for x, y in NOMINAL_XY])       # rows: primaries at Y = 1
    white = xy_to_xyz(*WHITE_XY)
    weights = np.linalg.solve(unit.T, white)
    out: np.ndarray = unit * weights[:, None]
    return out


@dataclass(frozen=True)
class Wall:
    """A wall's LEDs: ``primaries[y][x][k]`` is the XYZ of primary k (R, G, B) at full drive."""

    primaries: np.ndarray        # float64[H][W][3][3]
    module_width: int
    module_height: int
    seed: int

    @property
    def height(self) -> int:
        return int(self.primaries.shape[0])

    @property
    def width(self) -> int:
        return int(self.primaries.shape[1])

    def module_slice(self, mx: int, my: int) -> tuple[slice, slice]:
        """The LEDs of module (mx, my) counted from the top-left of the wall."""
        return (slice(my * self.module_height, (my + 1) * self.module_height),
                slice(mx * self.module_width, (mx + 1) * self.module_width))

    def replace_module(self, mx: int, my: int, *, delta_uv: float = 0.01, seed: int = 1) -> Wall:
        """The wall with module (mx, my) swapped for a new one from another batch.

        The new module is not aged (so it is brighter) and its green and blue
        LEDs come from bins shifted towards yellow-green and its red from a
        stronger bin; the shift is scaled so the module's white differs from
        the rest of the wall's by ``delta_uv``.
        """
        rows, cols = self.module_slice(mx, my)
        rng = np.random.default_rng([self.seed, seed, 19])
        fresh = _module_leds(rng, self.module_height, self.module_width, years=0.0)
        others = np.ones((self.height, self.width), bool)
        others[rows, cols] = False
        wall_white = upvp(self.primaries[others].sum(axis=1).mean(axis=0))

        def shifted(a: float) -> np.ndarray:
            leds = fresh.copy()
            xy = xyz_to_xy(leds)
            lum = leds[..., 1] * np.array([1 + 0.6 * a, 1.0, 1 - 0.8 * a])
            xy = xy + np.array([[0.0, 0.0], [0.4 * a, -0.2 * a], [0.1 * a, 0.2 * a]])
            return xy_to_xyz(xy[..., 0], xy[..., 1], lum)

        lo, hi = 0.0, 1.0
        for _ in range(50):                       # Δu′v′ grows with the shift: bisection
            mid = (lo + hi) / 2
            d = np.linalg.norm(upvp(shifted(mid).sum(axis=2).mean(axis=(0, 1))) - wall_white)
            lo, hi = (mid, hi) if d < delta_uv else (lo, mid)
        primaries = self.primaries.copy()
        primaries[rows, cols] = shifted(lo)
        return replace(self, primaries=primaries)

    def kill(self, leds: list[tuple[int, int]]) -> Wall:
        """The wall with the LEDs at (x, y) dark in every primary."""
        primaries = self.primaries.copy()
        for x, y in leds:
            primaries[y, x] = 0.0
        return replace(self, primaries=primaries)


def _module_leds(rng: np.random.Generator, height: int, width: int, *, years: float,
                 led_luminance_sd: float = 0.07, led_xy_sd: float = 0.0015,
                 module_luminance_sd: float = 0.03, module_xy_sd: float = 0.001) -> np.ndarray:
    """One module's primaries: nominal, batch offset, each LED's own spread, ageing."""
    nominal = nominal_primaries()
    xy = np.array(NOMINAL_XY) + rng.normal(0, module_xy_sd, (3, 2))
    lum = nominal[:, 1] * np.exp(rng.normal(0, module_luminance_sd, 3))
    thermal = rng.uniform(0.7, 1.3)
    lum = lum * (1 - np.array(AGEING_PER_YEAR) * years * thermal)
    led_xy = xy + rng.normal(0, led_xy_sd, (height, width, 3, 2))
    led_lum = lum * np.exp(rng.normal(0, led_luminance_sd, (height, width, 3))
                           - led_luminance_sd ** 2 / 2)
    return xy_to_xyz(led_xy[..., 0], led_xy[..., 1], led_lum)


def make_wall(width: int, height: int, module_width: int, module_height: int, *, seed: int = 0,
              years: float = 3.0) -> Wall:
    """A wall of ``width`` x ``height`` LEDs tiled with modules from the top-left, aged ``years``."""
    if width % module_width or height % module_height:
        raise ValueError(f"a {width}x{height} wall is not a whole number of "
                         f"{module_width}x{module_height} modules")
    primaries = np.empty((height, width, 3, 3))
    for my in range(height // module_height):
        for mx in range(width // module_width):
            rng = np.random.default_rng([seed, my, mx])
            primaries[my * module_height:(my + 1) * module_height,
                      mx * module_width:(mx + 1) * module_width] = _module_leds(
                rng, module_height, module_width, years=years)
    return Wall(primaries, module_width, module_height, seed)


def emit(wall: Wall, drive: np.ndarray) -> np.ndarray:
    """``float64[H][W][3]``: the XYZ every LED emits for its drive values (``uint16[H][W][3]``).

    PWM makes each primary's light proportional to its drive; the three add.
    """
    if drive.shape != (wall.height, wall.width, 3) or drive.dtype != np.uint16:
        raise ValueError(f"drive must be uint16[{wall.height}][{wall.width}][3], not "
                         f"{drive.dtype}{list(drive.shape)}")
    out: np.ndarray = np.einsum("yxk,yxkc->yxc", drive / 65535.0, wall.primaries)
    return out
