"""A small screen and calibration files for the picture tests: two cabinets of 32 x 16
pixels, the second hung upside down, so a test sees rotation and the cabinets apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCREEN = """
[screen]
name = "Picture test wall"
width = 64
height = 16

[modules.m]
width = 16
height = 8
scan = 4

[[cabinets]]
address = 1
x = 0
y = 0
module = "m"
modules_x = 2
modules_y = 2
chain = "serpentine"
rotation = 0

[[cabinets]]
address = 2
x = 32
y = 0
module = "m"
modules_x = 2
modules_y = 2
chain = "rows"
rotation = 180
"""
CAB_W, CAB_H = 32, 16


def matrix(seed: int, h: int = CAB_H, w: int = CAB_W) -> np.ndarray:
    """A valid matrix calibration: strong diagonal, small crosstalk, each row within 2.0."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(-0.05, 0.05, size=(h, w, 3, 3))
    for c in range(3):
        m[:, :, c, c] = rng.uniform(0.7, 1.2, size=(h, w))
    return m


def csv_text(m: np.ndarray) -> str:
    """``m`` (factors) as the CSV import form, pixels in a shuffled order as tools may write."""
    h, w = m.shape[:2]
    lines = ["x,y,rr,rg,rb,gr,gg,gb,br,bg,bb"]
    order = np.random.default_rng(1).permutation(h * w)
    for k in order:
        y, x = divmod(int(k), w)
        lines.append(f"{x},{y}," + ",".join(repr(float(v)) for v in m[y, x].reshape(9)))
    return "\n".join(lines) + "\n"


def q14(m: np.ndarray) -> np.ndarray:
    """The Q1.14 integers the importer makes of factors ``m``."""
    return np.floor(m * 16384 + 0.5).astype(np.int16)


def write_screen(folder: Path, correction: str = "") -> Path:
    path = folder / "screen.toml"
    path.write_text(SCREEN + correction)
    return path
