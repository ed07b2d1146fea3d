"""From settings people choose to the fast path's inputs (correction.md section 3).

Curves and gains are computed in float64 exactly as the spec writes them,
then rounded once, so the same settings give the same integers on every
machine.  Calibration files are ``.npz`` archives holding one array, named
``gain`` (``int16[H][W][3]``) or ``matrix`` (``int16[H][W][3][3]``), Q1.14;
loading one checks it against the row-sum bound and names the first
offending pixel, because a bad row would overflow the kernel's int32 sum.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from controller.errors import ConfigError
from controller.fastpath import common

_V = np.arange(256, dtype=np.float64)


def _per_channel(lut_row: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(lut_row, (3, 256)), dtype=np.uint16)


def power_lut(gamma: float | Sequence[float] = 2.2) -> np.ndarray:
    """``lut[c][v] = floor(65535 * (v / 255) ** gamma + 0.5)``; one gamma or one per channel."""
    gammas = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (3,))
    if not np.all(np.isfinite(gammas)) or np.any(gammas <= 0):
        raise ValueError(f"gamma: must be positive and finite, got {gamma!r}")
    return np.floor(65535 * (_V / 255)[None, :] ** gammas[:, None] + 0.5).astype(np.uint16)


def cie1931_lut() -> np.ndarray:
    """CIE 1931 lightness to luminance, as LED-matrix drivers use it."""
    lightness = 100 * _V / 255
    y = np.where(lightness <= 8, lightness / 903.3, ((lightness + 16) / 116) ** 3)
    return _per_channel(np.floor(65535 * y + 0.5))


def gains_from(brightness: float, white: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """``gains[c] = floor(65536 * brightness * white[c] + 0.5)``, each factor in 0 … 1."""
    w = np.asarray(white, dtype=np.float64)
    if w.shape != (3,) or not np.all((w >= 0) & (w <= 1)):
        raise ValueError(f"white: expected three values in 0 … 1, got {white!r}")
    if not 0 <= brightness <= 1:
        raise ValueError(f"brightness: expected a value in 0 … 1, got {brightness!r}")
    return np.floor(65536 * float(brightness) * w + 0.5).astype(np.int64)


def npz_array(source: str | Path | BinaryIO, label: str, dims: str = "h, w") -> np.ndarray:
    """The one calibration array of an ``.npz`` file (``gain`` or ``matrix``), its shape and
    dtype checked; the bound is the caller's to check (it knows the cabinet or the screen).

    One reader for the screen-wide file here and the per-cabinet files of
    :mod:`controller.picture.calibration`, so both refuse the same files with
    the same sentence, prefixed with ``label``; ``dims`` names the first two
    axes in that sentence.
    """
    try:
        with np.load(source, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{label}: not a readable .npz calibration file ({exc})") from None
    names = sorted(arrays)
    if names not in (["gain"], ["matrix"]):
        raise ConfigError(f"{label}: an .npz calibration holds exactly one array, 'gain' or "
                          f"'matrix'; this one has {names or 'none'}")
    calib: np.ndarray = np.asarray(arrays[names[0]])
    tail = (3,) if names == ["gain"] else (3, 3)
    if calib.ndim != 2 + len(tail) or calib.shape[2:] != tail:
        raise ConfigError(f"{label}: '{names[0]}' must have shape ({dims}, "
                          f"{', '.join(map(str, tail))}), not {calib.shape}")
    if calib.dtype != np.int16:
        raise ConfigError(f"{label}: '{names[0]}' must be int16 (Q1.14, 16384 = 1.0), not "
                          f"{calib.dtype}")
    return calib


def load_calibration(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a calibration ``.npz``; :class:`ConfigError` says what is wrong and where.

    With ``shape`` (the screen's height and width) the array must cover it.
    """
    path = Path(path)
    calib = npz_array(path, str(path), "H, W")
    if shape is not None and calib.shape[:2] != tuple(shape):
        raise ConfigError(f"{path}: calibration is {calib.shape[1]}x{calib.shape[0]} pixels, the "
                          f"screen {shape[1]}x{shape[0]}")
    try:
        checked = common.check_calib(calib, calib.shape[:2])
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    assert checked is not None  # calib is an array here, never None
    return checked


def save_calibration(path: str | Path, calib: np.ndarray) -> None:
    """Write ``calib`` (checked first) in the form :func:`load_calibration` reads."""
    checked = common.check_calib(calib, np.shape(calib)[:2])
    assert checked is not None  # only a None calibration checks to None
    if checked.ndim == 3:
        np.savez(path, gain=checked)
    else:
        np.savez(path, matrix=checked)
