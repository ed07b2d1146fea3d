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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.config import Layout
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


def calibrate_folder(folder: Path, layout: Layout, profile: CameraProfile) -> WallResult:
    """Every cabinet's coefficients from the photos in ``folder`` (see the module docstring)."""
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
    lum = primaries[shown][..., 1]
    before = [float(100 * lum[:, k].std() / lum[:, k].mean()) for k in range(3)]
    result = solve.calibrate(np.where(shown[..., None, None], primaries,
                                      np.median(primaries[shown], axis=0)))
    cabinets = solve.per_cabinet(layout, result.q14())
    return WallResult(result, cabinets, [str(s[0]) for s in sets], before)
