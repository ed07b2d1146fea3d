"""What both backends share: the checks on every input and the scan result.

Checks come before any work, so an input of the wrong shape, dtype or range
raises :class:`ValueError` naming the argument and nothing is written.
Dtypes are never converted silently: a float frame or a big-endian LUT is a
caller's mistake worth hearing about, not something to round away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.config import Layout

#: Calibration modes by the number of coefficients per pixel.
MODES = {0: "none", 3: "gain", 9: "matrix"}
#: Largest row sum (gain for "gain") a calibration may have: 2.0 in Q1.14.
CALIB_BOUND = 32768
GAIN_ONE = 65536


@dataclass(frozen=True)
class ScanResult:
    """Card buffers and per-module power figures, keyed by card address.

    ``buffers[a]`` is ``uint16[Hc * Wc * 3]`` in scan order, ``sums[a]`` is
    ``uint64[modules, 3]`` and ``peaks[a]`` ``uint16[modules, 3]``.
    """

    buffers: Mapping[int, np.ndarray]
    sums: Mapping[int, np.ndarray]
    peaks: Mapping[int, np.ndarray]


def _array(value: object, name: str, dtype: npt.DTypeLike, ndim: int | None = None) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array of {np.dtype(dtype)}, "
                         f"got {type(value).__name__}")
    if value.dtype != np.dtype(dtype):
        raise ValueError(f"{name}: dtype must be {np.dtype(dtype)} (native byte order), "
                         f"not {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {value.shape}")
    return value


def check_frame(frame: object, shape: tuple[int, int] | None = None) -> np.ndarray:
    """``uint8[H][W][3]``; with ``shape``, H and W must equal it."""
    frame = _array(frame, "frame", np.uint8, 3)
    if frame.shape[2] != 3 or (shape is not None and frame.shape[:2] != tuple(shape)):
        want = f"({shape[0]}, {shape[1]}, 3)" if shape is not None else "(H, W, 3)"
        raise ValueError(f"frame: shape must be {want}, not {frame.shape}")
    return frame


def check_lut(lut: object) -> np.ndarray:
    lut = _array(lut, "lut", np.uint16)
    if lut.shape != (3, 256):
        raise ValueError(f"lut: shape must be (3, 256), not {lut.shape}")
    return lut


def check_gains(gains: object) -> np.ndarray:
    """Three whole numbers in 0 … 65536 (Q16), as ``int64[3]``."""
    arr = np.asarray(gains)
    if arr.shape != (3,) or arr.dtype.kind not in "iu":
        raise ValueError(f"gains: expected 3 whole numbers in 0 … {GAIN_ONE}, got {gains!r}")
    if arr.min() < 0 or arr.max() > GAIN_ONE:
        raise ValueError(f"gains: {arr.tolist()} has a value outside 0 … {GAIN_ONE} (Q16, 65536 = 1.0)")
    return arr.astype(np.int64)


def check_scale(scale: object, cabinets: int) -> np.ndarray | None:
    """``None`` or ``uint32[cabinets]`` in 0 … 65536: each cabinet's gain multiplier, Q16.

    Above 1.0 is refused: the scale exists to lower a cabinet's current, and a
    product of two Q16 gains that stays within 65536 is what keeps the
    kernel's 16-bit-lane arithmetic exact (``docs/correction.md``).
    """
    if scale is None:
        return None
    scale = _array(scale, "scale", np.uint32, 1)
    if scale.shape != (cabinets,):
        raise ValueError(f"scale: expected one value per cabinet, shape ({cabinets},), "
                         f"not {scale.shape}")
    if cabinets and int(scale.max()) > GAIN_ONE:
        index = int(np.argmax(scale))
        raise ValueError(f"scale: cabinet {index + 1} has {int(scale[index])}; a scale is "
                         f"0 … {GAIN_ONE} (Q16, 65536 = 1.0) and can only lower a cabinet")
    return scale


def first_bad_calib(calib: np.ndarray) -> int:
    """Flat index (pixel * 3 + channel) of the first coefficient row out of bounds, or -1."""
    if calib.ndim == 3:
        bad = calib < 0  # int16 cannot exceed the bound from above
    else:
        bad = np.abs(calib.astype(np.int32)).sum(axis=-1) > CALIB_BOUND
    flat = np.flatnonzero(bad)
    return int(flat[0]) if flat.size else -1


def check_calib(calib: object, hw: tuple[int, int],
                first_bad: Callable[[np.ndarray], int] = first_bad_calib) -> np.ndarray | None:
    """``None``, ``int16[H][W][3]`` (gain) or ``int16[H][W][3][3]`` (matrix), within the bound.

    ``first_bad`` finds the first offending row; the compiled backend passes
    its own, which is much faster on a full frame than the NumPy one.
    """
    if calib is None:
        return None
    calib = _array(calib, "calib", np.int16)
    h, w = hw
    if calib.shape not in ((h, w, 3), (h, w, 3, 3)):
        raise ValueError(f"calib: shape must be ({h}, {w}, 3) for gains or ({h}, {w}, 3, 3) "
                         f"for a matrix, not {calib.shape}")
    index = first_bad(calib)
    if index >= 0:
        pixel, channel = divmod(index, 3)
        y, x = divmod(pixel, w)
        rgb = "RGB"[channel]
        if calib.ndim == 3:
            raise ValueError(f"calib: gain at pixel (y={y}, x={x}) channel {rgb} is "
                             f"{int(calib[y, x, channel])}; gains must be 0 … {CALIB_BOUND}")
        row = calib[y, x, channel].tolist()
        raise ValueError(f"calib: matrix row {rgb} at pixel (y={y}, x={x}) is {row}, absolute sum "
                         f"{sum(abs(v) for v in row)} > {CALIB_BOUND} (2.0 in Q1.14); such a "
                         f"row could overflow the int32 sum")
    return calib


def check_out(out: object, shape: tuple[int, ...]) -> np.ndarray:
    """A caller's output array: ``uint16`` of ``shape``, C-contiguous and writeable."""
    out = _array(out, "out", np.uint16)
    if out.shape != tuple(shape):
        raise ValueError(f"out: shape must be {tuple(shape)}, not {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out: must be a C-contiguous, writeable array")
    return out


def check_layout(layout: object) -> Layout:
    if not isinstance(layout, Layout):
        raise ValueError(f"layout: expected a controller.config.Layout (from load_screen), "
                         f"got {type(layout).__name__}")
    return layout


def check_corrected(out: object, layout: Layout) -> np.ndarray:
    """The input of ``module_scan``: a corrected frame the size of the screen."""
    out = _array(out, "out", np.uint16, 3)
    if out.shape != (layout.height, layout.width, 3):
        raise ValueError(f"out: shape must be ({layout.height}, {layout.width}, 3) for screen "
                         f"{layout.name!r}, not {out.shape}")
    return out


def check_no_overlap(out: np.ndarray, *inputs: np.ndarray | None) -> None:
    """Writing ``out`` must not change an input while it is being read."""
    if any(a is not None and np.may_share_memory(out, a) for a in inputs):
        raise ValueError("out: shares memory with an input; pass a separate array")
