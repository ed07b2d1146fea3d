"""The calibration report's record: the wall measured before and after, as the JSON dict that
:mod:`controller.report.calibration` renders (the record is the JSON; the HTML is redrawn
from it in either language).

Maps are the white's luminance deviation (%) and colour deviation (Δu′v′) from the wall's
mean, averaged over blocks of LEDs so that a map has at most :data:`MAP_CELLS` cells across
(a 1080p wall: blocks of 40 x 40 LEDs); blocks with no cabinet are ``null``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from controller.config import Layout
from controller.jsonin import JsonObject

MAP_CELLS = 48
#: The verdict's limit: every primary's luminance sd / mean under this, in %.
LIMIT_PERCENT = 1.0


def _upvp(xyz: np.ndarray) -> np.ndarray:
    d = xyz[..., 0] + 15 * xyz[..., 1] + 3 * xyz[..., 2]
    return np.stack([4 * xyz[..., 0] / d, 9 * xyz[..., 1] / d], axis=-1)


def _maps(primaries: np.ndarray, shown: np.ndarray) -> tuple[list[Any], list[Any]]:
    white = primaries.sum(axis=2)                               # XYZ of white per LED
    h, w = shown.shape
    block = max(1, math.ceil(w / MAP_CELLS), math.ceil(h / MAP_CELLS))
    mean_y = white[shown][:, 1].mean()
    mean_uv = _upvp(white[shown].mean(axis=0))
    lum: list[Any] = []
    col: list[Any] = []
    for y in range(0, h, block):
        lrow: list[float | None] = []
        crow: list[float | None] = []
        for x in range(0, w, block):
            cell = shown[y:y + block, x:x + block]
            if not cell.any():
                lrow.append(None)
                crow.append(None)
                continue
            xyz = white[y:y + block, x:x + block][cell].mean(axis=0)
            lrow.append(round(float(100 * (xyz[1] / mean_y - 1)), 3))
            crow.append(round(float(np.linalg.norm(_upvp(xyz) - mean_uv)), 5))
        lum.append(lrow)
        col.append(crow)
    return lum, col


def _spread(primaries: np.ndarray, shown: np.ndarray) -> list[float]:
    y = primaries[shown][..., 1]
    return [round(float(100 * y[:, k].std() / y[:, k].mean()), 3) for k in range(3)]


def _worst_module(primaries: np.ndarray, shown: np.ndarray, layout: Layout) -> float:
    white = primaries.sum(axis=2)
    mean_uv = _upvp(white[shown].mean(axis=0))
    worst = 0.0
    for cab in layout.cabinets:
        mw, mh = cab.module.width, cab.module.height
        for y in range(cab.y, cab.y + cab.height, mh):
            for x in range(cab.x, cab.x + cab.width, mw):
                uv = _upvp(white[y:y + mh, x:x + mw].reshape(-1, 3).mean(axis=0))
                worst = max(worst, float(np.linalg.norm(uv - mean_uv)))
    return round(worst, 5)


def calibration_report(layout: Layout, screen_file: str, before: np.ndarray, after: np.ndarray,
                       shown: np.ndarray, *, photos_before: list[str], photos_after: list[str],
                       profile: str, settings: dict[str, Any], software: str, started: str,
                       finished: str, duration_s: float, lang: str = "en") -> JsonObject:
    """The report's record from the wall's primaries measured ``before`` and ``after``."""
    spread_after = _spread(after, shown)
    lum_b, col_b = _maps(before, shown)
    lum_a, col_a = _maps(after, shown)
    return {
        "kind": "calibration", "version": 1, "lang": lang,
        "screen": {"name": layout.name, "file": screen_file, "width": layout.width,
                   "height": layout.height},
        "cabinets": [{"address": c.address} for c in layout.cabinets],
        "started": started, "finished": finished, "duration_s": round(duration_s, 1),
        "controller": {"software": software},
        "result": "pass" if max(spread_after) < LIMIT_PERCENT else "fail",
        "limit_percent": LIMIT_PERCENT,
        "camera": {"profile": profile, "settings": settings},
        "photos": {"before": photos_before, "after": photos_after},
        "figures": {"spread_percent": {"before": _spread(before, shown), "after": spread_after},
                    "worst_module_delta_uv": {"before": _worst_module(before, shown, layout),
                                              "after": _worst_module(after, shown, layout)}},
        "maps": {"luminance": {"before": lum_b, "after": lum_a},
                 "colour": {"before": col_b, "after": col_a}},
        "signatures": ["installer", "customer"],
    }
