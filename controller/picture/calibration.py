"""Per-cabinet calibration: reading ``.npz`` and CSV files, and the screen's array from them.

A calibration belongs to a cabinet, not to the screen: a camera measures one
cabinet at a time, and a replaced cabinet brings its own.  So files hold one
cabinet's pixels, **in the cabinet's own orientation** (its top-left LED is
``x = 0, y = 0`` as the cabinet is built; a cabinet mounted at 180° has its
array turned when it is placed on the screen), and the screen's
``int16[H][W][3][3]`` array is put together from them when a pipeline is
built.  Cabinets without a calibration get the identity.

Two forms are read, both checked against the spec's row bound (an absolute
row sum of at most 2.0, so the kernel's int32 sum cannot overflow) with the
cabinet, pixel and rule named:

- ``.npz`` with one array ``gain`` (``int16[h][w][3]``) or ``matrix``
  (``int16[h][w][3][3]``), Q1.14 (16384 = 1.0) — the fast path's own form;
- CSV, one row per pixel: ``x,y,rr,rg,rb,gr,gg,gb,br,bg,bb``, coefficients as
  decimal factors (1.0, -0.0312 …), which is what camera calibration tools
  export.  Why CSV and not 16-bit PNG coefficient maps: see docs/correction.md.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from controller.config import Cabinet, Layout
from controller.errors import ConfigError
from controller.fastpath.common import CALIB_BOUND
from controller.fastpath.settings import npz_array

ONE = 16384          # Q1.14
CSV_HEADER = ("x", "y", "rr", "rg", "rb", "gr", "gg", "gb", "br", "bg", "bb")
#: Largest calibration file read, by form, per cabinet pixel (a CSV row is at most 11 numbers
#: of up to 24 characters, as a float printed in full takes); bounds what an upload may make
#: the board parse.
MAX_CSV_BYTES_PER_PIXEL = 256
MAX_NPZ_BYTES_PER_PIXEL = 18 + 64


def identity(height: int, width: int) -> np.ndarray:
    """The matrix calibration that changes nothing."""
    out = np.zeros((height, width, 3, 3), np.int16)
    for c in range(3):
        out[:, :, c, c] = ONE
    return out


def as_matrix(calib: np.ndarray) -> np.ndarray:
    """A gain calibration as the matrix with those gains on its diagonal."""
    if calib.ndim == 4:
        return calib
    out = np.zeros(calib.shape + (3,), np.int16)
    for c in range(3):
        out[:, :, c, c] = calib[:, :, c]
    return out


def check(calib: np.ndarray, cab: Cabinet, what: str) -> np.ndarray:
    """Shape and row bound, with the cabinet and the first offending pixel named."""
    label = f"cabinet {cab.address} ({what})"
    want = (cab.height, cab.width)
    if calib.shape[:2] != want:
        raise ConfigError(f"{label}: the calibration is {calib.shape[1]}x{calib.shape[0]} pixels, "
                          f"the cabinet {cab.width}x{cab.height} (rule: one coefficient set per "
                          f"cabinet pixel)")
    if calib.ndim == 3:
        bad = np.argwhere((calib < 0) | (calib > CALIB_BOUND))
        if len(bad):
            y, x, c = (int(v) for v in bad[0])
            raise ConfigError(f"{label}: pixel (x={x}, y={y}) gain {'RGB'[c]} is "
                              f"{int(calib[y, x, c])} (Q1.14), outside 0 … {CALIB_BOUND} "
                              f"(rule: 0 <= gain <= 2.0)")
        return calib
    sums = np.abs(calib.astype(np.int32)).sum(axis=3)
    bad = np.argwhere(sums > CALIB_BOUND)
    if len(bad):
        y, x, c = (int(v) for v in bad[0])
        row = [round(int(v) / ONE, 4) for v in calib[y, x, c]]
        raise ConfigError(f"{label}: pixel (x={x}, y={y}) row {'RGB'[c]} is {row}, absolute "
                          f"sum {int(sums[y, x, c]) / ONE:.4f} > 2.0 (rule: every row's "
                          f"absolute sum within 2.0, or the kernel's sum could overflow)")
    return calib


def read_npz(data: bytes, cab: Cabinet, what: str = "npz") -> np.ndarray:
    """A cabinet's calibration from the bytes of an ``.npz`` file."""
    label = f"cabinet {cab.address} ({what})"
    calib = npz_array(io.BytesIO(data), label)
    return check(np.ascontiguousarray(calib), cab, what)


def read_csv(data: bytes, cab: Cabinet, what: str = "csv") -> np.ndarray:
    """A cabinet's matrix calibration from CSV text: a header, then one row per pixel.

    NumPy's C parser reads a good file (a 480 x 270 cabinet in a fraction of a second);
    a file it refuses, or one that breaks a rule, is read again line by line to name
    the first line, pixel and rule that are wrong.
    """
    label = f"cabinet {cab.address} ({what})"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{label}: not UTF-8 text; a CSV calibration is plain text") from None
    first, _, body = text.partition("\n")
    header = [h.strip().lower() for h in first.strip().split(",")]
    if tuple(header) != CSV_HEADER:
        raise ConfigError(f"{label}: the first line must be the header {','.join(CSV_HEADER)}, "
                          f"not {','.join(header)[:80]!r}")
    h, w = cab.height, cab.width
    try:
        table = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2, dtype=np.float64,
                           comments=None)
    except ValueError:
        table = None
    if table is not None and table.shape == (h * w, len(CSV_HEADER)):
        xy = table[:, :2]
        coeffs = table[:, 2:]
        if (np.array_equal(xy, np.floor(xy)) and xy[:, 0].min() >= 0 and xy[:, 0].max() < w
                and xy[:, 1].min() >= 0 and xy[:, 1].max() < h and np.isfinite(coeffs).all()):
            flat = xy[:, 1].astype(np.int64) * w + xy[:, 0].astype(np.int64)
            q = np.floor(coeffs * ONE + 0.5)
            if (np.bincount(flat, minlength=h * w) == 1).all() and (np.abs(q) <= 32767).all():
                out = np.empty((h * w, 9), np.int16)
                out[flat] = q.astype(np.int16)
                return check(out.reshape(h, w, 3, 3), cab, what)
    return _read_csv_rows(text, cab, label, what)


def _read_csv_rows(text: str, cab: Cabinet, label: str, what: str) -> np.ndarray:
    """The line-by-line reading that names what is wrong (and reads what is right)."""
    rows = csv.reader(io.StringIO(text))
    next(rows, None)
    h, w = cab.height, cab.width
    values = np.zeros((h, w, 9), np.float64)
    seen = np.zeros((h, w), bool)
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_HEADER):
            raise ConfigError(f"{label}: line {line} has {len(row)} fields, not "
                              f"{len(CSV_HEADER)} (x, y and 9 coefficients)")
        try:
            x, y = int(row[0]), int(row[1])
            coeffs = [float(v) for v in row[2:]]
        except ValueError:
            raise ConfigError(f"{label}: line {line}: x and y must be whole numbers and the "
                              f"coefficients decimal numbers: {','.join(row)[:80]!r}") from None
        if not (0 <= x < w and 0 <= y < h):
            raise ConfigError(f"{label}: line {line}: pixel (x={x}, y={y}) is outside the "
                              f"cabinet's {w}x{h} pixels")
        if not all(np.isfinite(coeffs)):
            raise ConfigError(f"{label}: line {line}: pixel (x={x}, y={y}) has a coefficient "
                              f"that is not a number (NaN or infinite)")
        if seen[y, x]:
            raise ConfigError(f"{label}: line {line}: pixel (x={x}, y={y}) is given twice")
        seen[y, x] = True
        values[y, x] = coeffs
    if not seen.all():
        y, x = (int(v) for v in np.argwhere(~seen)[0])
        raise ConfigError(f"{label}: {int((~seen).sum())} of the cabinet's {w * h} pixels have no "
                          f"row, the first (x={x}, y={y}) (rule: one row per cabinet pixel)")
    q = np.floor(values * ONE + 0.5)
    if np.any(np.abs(q) > 32767):
        y, x, k = (int(v) for v in np.argwhere(np.abs(q) > 32767)[0])
        raise ConfigError(f"{label}: pixel (x={x}, y={y}) coefficient {CSV_HEADER[2 + k]} is "
                          f"{values[y, x, k]:g}, outside -2.0 … 2.0 (rule: every row's absolute "
                          f"sum within 2.0)")
    return check(q.astype(np.int16).reshape(h, w, 3, 3), cab, what)


def read_file(path: Path, cab: Cabinet) -> np.ndarray:
    """A calibration file named in the screen file, by its suffix (``.npz`` or ``.csv``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cabinet {cab.address}: cannot read the calibration file {path}: "
                          f"{exc.strerror or exc}") from None
    return parse(data, file_format(path.name), cab, str(path))


def file_format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise ConfigError(f"{name}: a calibration file is .npz or .csv, not {suffix or 'nothing'}")
    return suffix[1:]


def parse(data: bytes, fmt: str, cab: Cabinet, what: str) -> np.ndarray:
    """A cabinet's calibration from a file's bytes in ``fmt`` (``npz`` or ``csv``)."""
    if fmt not in ("npz", "csv"):
        raise ConfigError(f"a calibration's format is npz or csv, not {fmt!r}")
    limit = cab.width * cab.height * (MAX_CSV_BYTES_PER_PIXEL if fmt == "csv"
                                      else MAX_NPZ_BYTES_PER_PIXEL) + 4096
    if len(data) > limit:
        raise ConfigError(f"cabinet {cab.address} ({what}): {len(data)} bytes is more than a "
                          f"{cab.width}x{cab.height} cabinet's calibration can take ({limit})")
    return read_npz(data, cab, what) if fmt == "npz" else read_csv(data, cab, what)


def to_npz(calib: np.ndarray) -> bytes:
    """The ``.npz`` bytes of a cabinet's calibration (uncompressed: loads with no inflate)."""
    buf = io.BytesIO()
    if calib.ndim == 3:
        np.savez(buf, gain=calib)
    else:
        np.savez(buf, matrix=calib)
    return buf.getvalue()


def screen_array(layout: Layout, per_cabinet: dict[int, np.ndarray]) -> np.ndarray | None:
    """The screen's calibration from each cabinet's (None when no cabinet has one).

    All gain calibrations stay gains; any matrix makes the whole screen matrix
    form (a gain is a diagonal matrix), because the kernel takes one form.
    """
    if not per_cabinet:
        return None
    matrix = any(c.ndim == 4 for c in per_cabinet.values())
    if matrix:
        out = identity(layout.height, layout.width)
    else:
        out = np.full((layout.height, layout.width, 3), ONE, np.int16)
    for cab in layout.cabinets:
        calib = per_cabinet.get(cab.address)
        if calib is None:
            continue
        if matrix:
            calib = as_matrix(calib)
        if cab.rotation == 180:
            calib = calib[::-1, ::-1]
        out[cab.y:cab.y + cab.height, cab.x:cab.x + cab.width] = calib
    return out
