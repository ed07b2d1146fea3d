"""The NumPy reference: the definition of correct for frame correction and module scan.

Written to be read beside ``docs/spec/correction.md`` sections 2 and 5, line
for line, not to be fast.  The compiled kernel is tested bit for bit against
these two functions, so this module deliberately shares no logic with it
beyond the input checks: module order, scan order and the arithmetic are
worked out again here, the plain way.

Arithmetic runs in int64, which holds every intermediate value exactly; the
spec's int32/uint32 are the widths the bound on the coefficients guarantees
suffice, so the results are the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from controller.config import Cabinet, Layout
from controller.fastpath import common, reencode


def correct(frame: np.ndarray, lut: np.ndarray, gains: npt.ArrayLike, calib: np.ndarray | None = None,
            *, out: np.ndarray | None = None) -> np.ndarray:
    """Transfer curve, calibration, brightness: ``uint8[H][W][3]`` → ``uint16[H][W][3]``."""
    frame = common.check_frame(frame)
    lut = common.check_lut(lut)
    gains = common.check_gains(gains)
    calib = common.check_calib(calib, frame.shape[:2])
    if out is not None:
        out = common.check_out(out, frame.shape)
        common.check_no_overlap(out, frame, lut, calib)

    # 1. transfer curve, per channel
    g = np.stack([lut[k][frame[..., k]] for k in range(3)], axis=-1).astype(np.int64)
    # 2. calibration, then clamp
    if calib is None:
        a = g
    elif calib.ndim == 3:                      # gain: a[c] = (g[c] * K[c] + 8192) >> 14
        a = (g * calib + 8192) >> 14
    else:                                      # matrix: a[c] = (sum_k g[k] * M[c][k] + 8192) >> 14
        a = (np.einsum("yxk,yxck->yxc", g, calib.astype(np.int64)) + 8192) >> 14
    a = np.clip(a, 0, 65535)
    # 3. brightness and white balance
    o: np.ndarray = ((a * gains + 32768) >> 16).astype(np.uint16)
    if out is None:
        return o
    out[...] = o
    return out


def module_scan(out: np.ndarray, layout: Layout) -> common.ScanResult:
    """Cut the corrected frame into card buffers in scan order, with module sums and peaks."""
    layout = common.check_layout(layout)
    out = common.check_corrected(out, layout)
    buffers, sums, peaks = {}, {}, {}
    for cab in layout.cabinets:
        modules = list(_modules_in_chain_order(out, cab))
        buffers[cab.address] = np.concatenate([_scan_order(t, cab.module.scan) for t in modules])
        sums[cab.address] = np.array([t.reshape(-1, 3).sum(axis=0, dtype=np.uint64)
                                      for t in modules], dtype=np.uint64)
        peaks[cab.address] = np.array([t.reshape(-1, 3).max(axis=0) for t in modules],
                                      dtype=np.uint16)
    return common.ScanResult(buffers, sums, peaks)


def scaled_gains(gains: npt.ArrayLike, scale: int) -> np.ndarray:
    """A cabinet's gains under a per-cabinet scale ``s`` (Q16, 0 … 65536), an extension of the
    spec (``docs/correction.md``): ``gains'[c] = (gains[c] * s + 32768) >> 16``.

    Step 3 then runs with ``gains'`` in place of ``gains``; there is no second
    rounding per pixel.  ``s == 65536`` gives ``gains`` back exactly.
    """
    return (common.check_gains(gains) * int(scale) + 32768) >> 16


def _modules_in_chain_order(out: np.ndarray, cab: Cabinet) -> Iterator[np.ndarray]:
    """Spec 5.1–5.2: the cabinet's pixels (turned if mounted at 180°), module by module."""
    c = out[cab.y:cab.y + cab.height, cab.x:cab.x + cab.width]
    if cab.rotation == 180:
        c = c[::-1, ::-1]
    h, w = cab.module.height, cab.module.width
    for row in range(cab.modules_y):
        columns: Sequence[int] = range(cab.modules_x)
        if cab.chain == "serpentine" and row % 2 == 1:
            columns = columns[::-1]
        for col in columns:
            yield c[row * h:(row + 1) * h, col * w:(col + 1) * w]


def _scan_order(t: np.ndarray, scan: int) -> np.ndarray:
    """Spec 5.3: for line i, for column x, for group j: the three channels of T[i + j*scan][x]."""
    h, w, _ = t.shape
    groups = h // scan
    # row r = j * scan + i, so T viewed as [j][i][x][c] and emitted as [i][x][j][c]
    return t.reshape(groups, scan, w, 3).transpose(1, 2, 0, 3).reshape(-1)


class Pipeline:
    """The fused pipeline's interface over the two functions above, for the NumPy backend.

    Inputs are checked once, here, as the compiled pipeline checks them; each
    :meth:`process` returns fresh arrays.  ``threads`` is accepted for the
    same signature and ignored.
    """

    def __init__(self, layout: Layout, lut: np.ndarray, gains: npt.ArrayLike,
                 calib: np.ndarray | None = None, *,
                 threads: int | None = None, kernel: str | None = None) -> None:
        self.layout = common.check_layout(layout)
        self.lut = common.check_lut(lut)
        self.gains = common.check_gains(gains)
        self.calib = common.check_calib(calib, (layout.height, layout.width))
        #: What the pipeline was built from, for an Encoder with the same settings.
        self.inputs = (self.lut, self.gains, self.calib)
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                    or threads < 1):
            raise ValueError(f"threads: expected a whole number of threads >= 1, got {threads!r}")
        if kernel not in (None, "numpy"):
            raise ValueError(f"kernel: {kernel!r} is not available; the NumPy backend has 'numpy'")
        self.threads = 1
        self.kernel = "numpy"

    def process(self, frame: np.ndarray, scale: np.ndarray | None = None) -> common.ScanResult:
        """One frame; ``scale`` (``uint32[cabinets]``, Q16) lowers each cabinet's gains."""
        frame = common.check_frame(frame, (self.layout.height, self.layout.width))
        scale = common.check_scale(scale, len(self.layout.cabinets))
        if scale is None:
            return module_scan(correct(frame, self.lut, self.gains, self.calib), self.layout)
        # each cabinet corrected with its own gains; pixels no cabinet covers are never shown
        out = np.zeros(frame.shape, np.uint16)
        for cab, s in zip(self.layout.cabinets, scale):
            rows, cols = slice(cab.y, cab.y + cab.height), slice(cab.x, cab.x + cab.width)
            calib = None if self.calib is None else self.calib[rows, cols]
            out[rows, cols] = correct(frame[rows, cols], self.lut, scaled_gains(self.gains, s), calib)
        return module_scan(out, self.layout)



# ------------------------------------------------------------------ cards with their own curve

def correct_encode(frame: np.ndarray, lut: np.ndarray, gains: npt.ArrayLike,
                   calib: np.ndarray | None, table: np.ndarray) -> np.ndarray:
    """The picture an 8-bit sink is sent: ``table[correct(frame, …)]``, ``uint8[H][W][3]``.

    ``table`` is the card's inverse curve (:func:`~controller.fastpath.reencode.encode_table`).
    """
    table = reencode.check_table(table)
    encoded: np.ndarray = table[correct(frame, lut, gains, calib)]
    return encoded


def pack(picture: np.ndarray, payloads: reencode.Payloads, out: np.ndarray) -> np.ndarray:
    """Copy ``uint8[H][W][3]`` into ``out`` where ``payloads`` puts each pixel; other bytes stay."""
    pixels = picture.reshape(-1, 3)[:, list(payloads.order)]
    out = reencode.check_out(out, payloads, len(pixels))
    for offset, start, count in payloads.packets(len(pixels)):
        out[offset:offset + 3 * count] = pixels[start:start + count].reshape(-1)
    return out


class Encoder:
    """Frame → correction → the card's table → packet payloads, for the NumPy backend.

    The compiled :class:`controller.fastpath._cffi.Encoder` does it in one
    fused pass; this one is :func:`correct_encode` then :func:`pack`, the
    definition it is tested against.  ``threads`` and ``kernel`` as in
    :class:`Pipeline`.
    """

    def __init__(self, shape: tuple[int, int], lut: np.ndarray, gains: npt.ArrayLike,
                 calib: np.ndarray | None, table: np.ndarray, payloads: reencode.Payloads, *,
                 threads: int | None = None, kernel: str | None = None) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.lut = common.check_lut(lut)
        self.gains = common.check_gains(gains)
        self.calib = common.check_calib(calib, self.shape)
        self.table = reencode.check_table(table)
        if not isinstance(payloads, reencode.Payloads):
            raise ValueError(f"payloads: expected fastpath.Payloads, got {type(payloads).__name__}")
        self.payloads = payloads
        self.size = payloads.size(self.shape[0] * self.shape[1])
        if kernel not in (None, "numpy"):
            raise ValueError(f"kernel: {kernel!r} is not available; the NumPy backend has 'numpy'")
        self.threads = 1
        self.kernel = "numpy"

    def encode_into(self, frame: np.ndarray, out: np.ndarray) -> np.ndarray:
        frame = common.check_frame(frame, self.shape)
        reencode.check_out(out, self.payloads, self.shape[0] * self.shape[1])
        return pack(correct_encode(frame, self.lut, self.gains, self.calib, self.table),
                    self.payloads, out)
