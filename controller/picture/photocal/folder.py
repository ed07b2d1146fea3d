"""A whole wall calibrated from a folder of photos: what ``ledwarden calibrate`` runs.

The folder holds one set of photos per camera position, named by step:

- the whole screen from one position: ``registration.png``, ``red.png``,
  ``green.png``, ``blue.png`` (several of a primary as ``red-1.png``,
  ``red-2.png`` …, averaged; ``.tif``/``.tiff`` as well) directly in it;
- or cabinet by cabinet, when the camera cannot resolve the whole wall: the
  same files in ``cabinet-<address>/``, one folder per cabinet, each
  photographed with only that cabinet showing the pattern.

Every set is measured before anything is computed, and everything is
computed and checked against the spec's bound before anything is returned,
so a bad photo stops the run with the running calibration untouched.  The
target is common to all the sets: one exposure for every photo of every set
(what the camera profile and the docs ask) keeps their scales comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from controller.config import Cabinet, Layout
from controller.picture import calibration
from controller.picture.photocal import measure, solve
from controller.picture.photocal.photos import PRIMARIES, CameraProfile, PhotoError, read_photo

SUFFIXES = (".png", ".tif", ".tiff")


@dataclass(frozen=True)
class WallResult:
    result: solve.Result
    cabinets: dict[int, np.ndarray]       # address -> int16[h][w][3][3], cabinet's orientation
    sets: list[str]                       # the folders measured
    before: list[float]                   # measured luminance sd/mean per primary, in %


def _step(folder: Path, step: str) -> list[Path]:
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES
                   and (p.stem.lower() == step or p.stem.lower().startswith(step + "-")))
    if not found:
        raise PhotoError(f"{folder}: no {step} photo ({step}.png, or {step}-1.png, {step}-2.png "
                         f"… for several); take it and name it so")
    return found


def _sets(folder: Path, layout: Layout) -> list[tuple[Path, int, int, int, int]]:
    """(folder, x, y, width, height) of every photo set in ``folder``."""
    if not folder.is_dir():
        raise PhotoError(f"{folder}: not a folder of photos")
    by_cabinet = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("cabinet-"))
    if not by_cabinet:
        return [(folder, 0, 0, layout.width, layout.height)]
    cabinets = {cab.address: cab for cab in layout.cabinets}
    out = []
    for sub in by_cabinet:
        try:
            cab = cabinets[int(sub.name.removeprefix("cabinet-"), 0)]
        except (ValueError, KeyError):
            raise PhotoError(f"{sub}: not a cabinet of the screen file (cabinet folders are "
                             f"cabinet-<address>: {', '.join(str(a) for a in cabinets)})") from None
        out.append((sub, cab.x, cab.y, cab.width, cab.height))
    missing = sorted(set(cabinets) - {int(s.name.removeprefix('cabinet-'), 0) for s in by_cabinet})
    if missing:
        raise PhotoError(f"{folder}: no photos of cabinet(s) {', '.join(map(str, missing))}; a "
                         f"common target needs every cabinet (folders cabinet-<address>)")
    return out


def measure_wall(folder: Path, layout: Layout, profile: CameraProfile
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every LED's primaries from the photo sets in ``folder``, the mask of LEDs on cabinets,
    and the sets' folders."""
    primaries = np.zeros((layout.height, layout.width, 3, 3))
    covered = np.zeros((layout.height, layout.width), bool)
    sets = _sets(Path(folder), layout)
    for where, x, y, w, h in sets:
        reg = _step(where, "registration")
        if len(reg) > 1:
            raise PhotoError(f"{where}: {len(reg)} registration photos; keep one")
        fields = [[read_photo(p) for p in _step(where, k)] for k in PRIMARIES]
        found = measure.measure(read_photo(reg[0]), fields, w, h, profile)
        primaries[y:y + h, x:x + w] = found.primaries
        covered[y:y + h, x:x + w] = True
    shown = np.zeros_like(covered)
    for cab in layout.cabinets:
        shown[cab.y:cab.y + cab.height, cab.x:cab.x + cab.width] = True
    if not covered[shown].all():
        raise PhotoError(f"{folder}: the photos do not cover every cabinet's LEDs")
    return primaries, shown, [str(s[0]) for s in sets]


def _spread(primaries: np.ndarray) -> list[float]:
    """Luminance sd / mean per primary, in %."""
    lum = primaries[..., 1]
    return [float(100 * lum[:, k].std() / lum[:, k].mean()) for k in range(3)]


def calibrate_folder(folder: Path, layout: Layout, profile: CameraProfile) -> WallResult:
    """Every cabinet's coefficients from the photos in ``folder`` (see the module docstring)."""
    primaries, shown, sets = measure_wall(folder, layout, profile)
    result = solve.calibrate(np.where(shown[..., None, None], primaries,
                                      np.median(primaries[shown], axis=0)))
    cabinets = solve.per_cabinet(layout, result.q14())
    return WallResult(result, cabinets, sets, _spread(primaries[shown]))


@dataclass(frozen=True)
class Verification:
    sets: list[str]
    spread: list[float]            # luminance sd / mean per primary, %
    worst_module: tuple[int, int]  # screen pixel of the module whose white is farthest off
    worst_delta_uv: float          # its white's Δu′v′ from the wall's


def verify_folder(folder: Path, layout: Layout, profile: CameraProfile) -> Verification:
    """The wall as it shows now, from photos of the full fields shown through the video (with
    the calibration applied): the second round of photos that checks a calibration."""
    primaries, shown, sets = measure_wall(folder, layout, profile)
    p = solve.matrices(primaries)
    wall = _white_upvp(p[shown], np.eye(3))
    worst, where = -1.0, (0, 0)
    for cab in layout.cabinets:
        mw, mh = cab.module.width, cab.module.height
        for y in range(cab.y, cab.y + cab.height, mh):
            for x in range(cab.x, cab.x + cab.width, mw):
                d = float(np.linalg.norm(_white_upvp(p[y:y + mh, x:x + mw], np.eye(3)) - wall))
                if d > worst:
                    worst, where = d, (x, y)
    return Verification(sets, _spread(primaries[shown]), where, worst)


@dataclass(frozen=True)
class ModuleArea:
    """A module on the screen and the region photographed to match it: the module and the
    modules around it (clipped to the screen), in screen pixels (x, y, width, height)."""

    cabinet: Cabinet
    module: tuple[int, int, int, int]
    region: tuple[int, int, int, int]


def module_area(layout: Layout, x: int, y: int) -> ModuleArea:
    """The module that screen pixel (x, y) belongs to, and its region."""
    for cab in layout.cabinets:
        if cab.x <= x < cab.x + cab.width and cab.y <= y < cab.y + cab.height:
            mw, mh = cab.module.width, cab.module.height
            mx, my = cab.x + (x - cab.x) // mw * mw, cab.y + (y - cab.y) // mh * mh
            x0, y0 = max(0, mx - mw), max(0, my - mh)
            x1, y1 = min(layout.width, mx + 2 * mw), min(layout.height, my + 2 * mh)
            return ModuleArea(cab, (mx, my, mw, mh), (x0, y0, x1 - x0, y1 - y0))
    raise PhotoError(f"pixel (x={x}, y={y}) is on no cabinet of the screen file; give a pixel "
                     f"of the replaced module, in screen coordinates")


def current_calibration(folder: Path | None, layout: Layout) -> np.ndarray:
    """``float64[H][W][3][3]``: the screen's coefficients as factors, from the cabinets'
    ``cabinet-<address>.npz`` in ``folder`` (what ``--out`` wrote); identity elsewhere."""
    per_cabinet = {}
    if folder is not None:
        for cab in layout.cabinets:
            path = Path(folder) / f"cabinet-{cab.address}.npz"
            if path.exists():
                per_cabinet[cab.address] = calibration.read_file(path, cab)
    screen = calibration.screen_array(layout, per_cabinet)
    if screen is None:
        screen = calibration.identity(layout.height, layout.width)
    out: np.ndarray = calibration.as_matrix(screen).astype(np.float64) / calibration.ONE
    return out


def _white_upvp(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """u′v′ of the mean white (all inputs full) LEDs with matrices ``p`` show through ``m``."""
    xyz = (p @ m).sum(axis=-1).reshape(-1, 3).mean(axis=0)
    d = xyz[0] + 15 * xyz[1] + 3 * xyz[2]
    return np.array([4 * xyz[0] / d, 9 * xyz[1] / d])


@dataclass(frozen=True)
class ModuleResult:
    result: solve.Result
    address: int
    array: np.ndarray          # the cabinet's whole new int16 array, its own orientation
    before: float              # measured Δu′v′ of the module's white to its neighbours'
    after: float               # the same, predicted with the new coefficients


def match_folder(folder: Path, layout: Layout, profile: CameraProfile, area: ModuleArea,
                 current: np.ndarray) -> ModuleResult:
    """The replaced module matched to its neighbours from one photo set of ``area.region``;
    every other LED keeps ``current`` (the screen's coefficients as factors)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PhotoError(f"{folder}: not a folder of photos")
    reg = _step(folder, "registration")
    fields = [[read_photo(p) for p in _step(folder, k)] for k in PRIMARIES]
    x, y, w, h = area.region
    found = measure.measure(read_photo(reg[0]), fields, w, h, profile)
    shown = np.zeros((layout.height, layout.width), bool)
    for cab in layout.cabinets:
        shown[cab.y:cab.y + cab.height, cab.x:cab.x + cab.width] = True
    mx, my, mw, mh = area.module
    inner = (slice(my - y, my - y + mh), slice(mx - x, mx - x + mw))
    around = shown[y:y + h, x:x + w].copy()
    around[inner] = False
    cur = current[y:y + h, x:x + w]
    result = solve.match_module(found.primaries, cur, inner, around)
    p = solve.matrices(found.primaries)
    before = float(np.linalg.norm(_white_upvp(p[inner], cur[inner])
                                  - _white_upvp(p[around], cur[around])))
    after = float(np.linalg.norm(_white_upvp(p[inner], result.coefficients[inner])
                                 - _white_upvp(p[around], cur[around])))
    q = solve.to_q14(current)
    q[y:y + h, x:x + w][inner] = result.q14()[inner]
    cab = area.cabinet
    array = solve.per_cabinet(replace(layout, cabinets=(cab,)), q)[cab.address]
    return ModuleResult(result, cab.address, array, before, after)
