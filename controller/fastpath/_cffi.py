"""The compiled backend: thin checked wrappers over ``controller.fastpath._lw``.

Every function checks its inputs with :mod:`~controller.fastpath.common`
before C sees a pointer, so the C trusts shapes, dtypes and bounds.  cffi
releases the GIL around each call into ``_lw``, so frames on other Python
threads, and the kernel's own worker threads, run truly in parallel.
"""

from __future__ import annotations

import os
import threading
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from cffi import FFI

from controller.config import Layout
from controller.fastpath import common, plan as plans, reencode
from controller.fastpath._lw import ffi, lib


#: Bands per thread in a frame: enough to even out a thread that starts
#: late, few enough that each is a long sequential stream.
BANDS_PER_THREAD = 8


def _supported() -> list[tuple[int, str]]:
    """(index, name) of the kernels this CPU runs, best first."""
    found, i = [], 0
    while (name := lib.lw_kernel_name(i)) != ffi.NULL:
        if lib.lw_kernel_supported(i):
            found.append((i, ffi.string(name).decode()))
        i += 1
    return found


def kernels() -> tuple[str, ...]:
    """Kernels this CPU can run, the default first (``"avx512"``, ``"portable/x86-64-v4"``, …)."""
    return tuple(name for _, name in _supported())


def build_info() -> str:
    """Compiler and flags the extension was built with."""
    info: bytes = ffi.string(lib.lw_build_info())
    return info.decode()


def _kernel_index(kernel: str | None) -> int:
    """A kernel by full name or family (``"portable"``); None for the default."""
    for index, name in _supported():
        if kernel is None or kernel in (name, name.split("/")[0]):
            return index
    raise ValueError(f"kernel: {kernel!r} is not available on this CPU; choose from {kernels()}")


def _ptr(ctype: str, array: np.ndarray) -> FFI.CData:
    pointer: FFI.CData = ffi.from_buffer(ctype, array)
    return pointer


def _aligned(count: int, dtype: npt.DTypeLike, alignment: int = 64) -> np.ndarray:
    """An empty array whose data starts on a cache line, so the kernel can stream to it."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(count * itemsize + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    aligned: np.ndarray = raw[start:start + count * itemsize].view(dtype)
    return aligned


def _mode(calib: np.ndarray | None) -> int:
    return 0 if calib is None else 1 if calib.ndim == 3 else 2


def _first_bad(calib: np.ndarray) -> int:
    calib = np.ascontiguousarray(calib)
    q = 1 if calib.ndim == 3 else 3
    return int(lib.lw_first_bad(_ptr("int16_t[]", calib), calib.size // q, q))


def _folded(lut: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Without calibration the gains fold into the curve: one lookup per channel."""
    folded: np.ndarray = ((lut.astype(np.int64) * gains[:, None] + 32768) >> 16).astype(np.uint16)
    return folded


def correct(frame: np.ndarray, lut: np.ndarray, gains: npt.ArrayLike,
            calib: np.ndarray | None = None, *, out: np.ndarray | None = None,
            kernel: str | None = None) -> np.ndarray:
    """See :func:`controller.fastpath.reference.correct`; same result, in C."""
    frame = common.check_frame(frame)
    lut = common.check_lut(lut)
    gains = common.check_gains(gains)
    calib = common.check_calib(calib, frame.shape[:2], _first_bad)
    index = _kernel_index(kernel)
    if out is None:
        out = np.empty(frame.shape, np.uint16)
    else:
        out = common.check_out(out, frame.shape)
        common.check_no_overlap(out, frame, lut, calib)
    frame = np.ascontiguousarray(frame)
    lut = _folded(lut, gains) if calib is None else np.ascontiguousarray(lut)
    c_calib = ffi.NULL if calib is None else _ptr("int16_t[]", np.ascontiguousarray(calib))
    status = lib.lw_correct(index, _ptr("uint8_t[]", frame), frame.shape[0], frame.shape[1],
                            _ptr("uint16_t[]", lut), ffi.new("uint32_t[3]", gains.tolist()),
                            _mode(calib), c_calib, _ptr("uint16_t[]", out))
    if status:
        raise MemoryError("fastpath.correct: out of memory for a row's scratch")
    return out


class _CPlan:
    """A plan as C structs, with every array it points into kept alive here."""

    def __init__(self, plan: plans.Plan, per_pixel: int) -> None:
        self.plan = plan
        self._keep: list[np.ndarray] = []
        self.geoms = ffi.new("lw_geom[]", len(plan.geoms))
        for g, c in zip(plan.geoms, self.geoms):
            c.width, c.scan, c.groups, c.n = g.width, g.scan, g.groups, g.n
            c.line_step, c.group_step, c.dir = g.line_step, g.group_step, g.dir
            c.off = self.hold("int32_t[]", g.off)
        self.mod_coef = plan.coef_offsets(per_pixel)
        self.struct = ffi.new("lw_plan *")
        s = self.struct
        s.n_modules = plan.n_modules
        s.geoms = self.geoms
        s.mod_geom = self.hold("int32_t[]", plan.mod_geom)
        s.mod_base = self.hold("int64_t[]", plan.mod_base)
        s.mod_out = self.hold("int64_t[]", plan.mod_out)
        s.mod_coef = self.hold("int64_t[]", self.mod_coef)

    def hold(self, ctype: str, array: np.ndarray) -> FFI.CData:
        self._keep.append(array)
        return _ptr(ctype, array)

    def outputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fresh output arrays, wired into the plan."""
        out = _aligned(3 * self.plan.pixels, np.uint16)
        sums = np.empty((self.plan.n_modules, 3), np.uint64)
        peaks = np.empty((self.plan.n_modules, 3), np.uint16)
        self.struct.out = self.hold("uint16_t[]", out)
        self.struct.sums = self.hold("uint64_t[]", sums)
        self.struct.peaks = self.hold("uint16_t[]", peaks)
        return out, sums, peaks


def _result(layout: Layout, plan: plans.Plan, out: np.ndarray, sums: np.ndarray,
            peaks: np.ndarray, readonly: bool) -> common.ScanResult:
    buffers: dict[int, np.ndarray] = {}
    s: dict[int, np.ndarray] = {}
    p: dict[int, np.ndarray] = {}
    for cab, (m0, m1), (o0, o1) in zip(layout.cabinets, plan.cab_modules, plan.cab_out):
        views = out[o0:o1], sums[m0:m1], peaks[m0:m1]
        if readonly:
            fixed = [v.view() for v in views]
            for v in fixed:
                v.setflags(write=False)
            views = fixed[0], fixed[1], fixed[2]
        buffers[cab.address], s[cab.address], p[cab.address] = views
    if readonly:
        return common.ScanResult(MappingProxyType(buffers), MappingProxyType(s),
                                 MappingProxyType(p))
    return common.ScanResult(buffers, s, p)


def module_scan(out: np.ndarray, layout: Layout) -> common.ScanResult:
    """See :func:`controller.fastpath.reference.module_scan`; same result, in C."""
    layout = common.check_layout(layout)
    image = np.ascontiguousarray(common.check_corrected(out, layout))
    c = _CPlan(plans.build(layout), 0)
    buffers, sums, peaks = c.outputs()
    lib.lw_module_scan(c.struct, _ptr("uint16_t[]", image))
    return _result(layout, c.plan, buffers, sums, peaks, readonly=False)


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        return os.cpu_count() or 1


class Pipeline:
    """Correction fused with module scan, for one layout and one set of inputs.

    Built once per screen and calibration, it re-lays the coefficients into
    kernel order and allocates the card buffers; :meth:`process` then does
    one pass per frame on ``threads`` threads (default: every core this
    process may use) with no allocation.  The result's arrays are read-only
    views of the pipeline's buffers, overwritten by the next ``process``:
    copy what must outlive a frame.  Calls from several threads are taken
    one at a time (each would overwrite the other's result anyway).
    """

    def __init__(self, layout: Layout, lut: np.ndarray, gains: npt.ArrayLike,
                 calib: np.ndarray | None = None, *,
                 threads: int | None = None, kernel: str | None = None) -> None:
        self.layout = common.check_layout(layout)
        lut = common.check_lut(lut)
        gains = common.check_gains(gains)
        calib = common.check_calib(calib, (layout.height, layout.width), _first_bad)
        #: What the pipeline was built from, for an Encoder with the same settings.
        self.inputs = (lut, gains, calib)
        if threads is None:
            threads = default_threads()
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads: expected a whole number of threads >= 1, got {threads!r}")
        self.threads = threads
        self._kernel = _kernel_index(kernel)
        name: bytes = ffi.string(lib.lw_kernel_name(self._kernel))
        self.kernel = name.decode()

        mode = _mode(calib)
        per_pixel = (0, 3, 9)[mode]
        self._c = _CPlan(plans.build(layout), per_pixel)
        s = self._c.struct
        s.mode = mode
        s.lut = self._c.hold("uint16_t[]", _folded(lut, gains) if mode == 0 else lut.copy())
        s.gains = gains.tolist()
        # the per-cabinet scale: its buffer and the module → cabinet map, wired in per frame
        counts = [m1 - m0 for m0, m1 in self._c.plan.cab_modules]
        mod_cab = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        s.mod_cab = self._c.hold("int32_t[]", mod_cab)
        self._scale = np.empty(len(counts), np.uint32)
        self._scale_ptr = self._c.hold("uint32_t[]", self._scale)
        s.raw_lut = self._c.hold("uint16_t[]", lut.copy())
        s.scale = ffi.NULL
        self.coef: np.ndarray | None = None
        if mode:
            self.coef = np.empty(self._c.plan.pixels * per_pixel, np.int16)
            lib.lw_relayout(s, _ptr("int16_t[]", np.ascontiguousarray(calib)), per_pixel,
                            _ptr("int16_t[]", self.coef))
            s.coef = self._c.hold("int16_t[]", self.coef)
        # several bands per thread, taken in turn, so a thread the OS delays
        # does less of the frame instead of holding up the rest
        self._bands = self._c.plan.bands(1 if threads == 1 else BANDS_PER_THREAD * threads)
        self._bands_ptr = self._c.hold("int32_t[]", self._bands)
        self._pool = ffi.NULL
        if threads > 1:
            pool = lib.lw_pool_new(threads)
            if pool == ffi.NULL:
                raise OSError(f"fastpath: could not start {threads} worker threads")
            self._pool = ffi.gc(pool, lib.lw_pool_free)
        self._result = _result(layout, self._c.plan, *self._c.outputs(), readonly=True)
        self._busy = threading.Lock()

    @property
    def bytes_touched(self) -> tuple[int, int]:
        """(read, written) bytes per frame: the covered frame pixels and coefficients, the buffers."""
        pixels = self._c.plan.pixels
        coef = 0 if self.coef is None else self.coef.nbytes
        return 3 * pixels + coef, 6 * pixels

    def process(self, frame: np.ndarray, scale: np.ndarray | None = None) -> common.ScanResult:
        """One frame; ``scale`` (``uint32[cabinets]``, Q16, 0 … 65536) lowers each cabinet's
        gains in the same pass (``docs/correction.md``), for current limiting."""
        frame = np.ascontiguousarray(common.check_frame(frame, (self.layout.height, self.layout.width)))
        scale = common.check_scale(scale, len(self.layout.cabinets))
        with self._busy:    # the pool and the buffers serve one frame at a time
            if scale is None:
                self._c.struct.scale = ffi.NULL
            else:
                self._scale[:] = scale
                self._c.struct.scale = self._scale_ptr
            lib.lw_process(self._pool, self._c.struct, self._kernel, self._bands_ptr,
                           len(self._bands) - 1, _ptr("uint8_t[]", frame))
        return self._result


def floor_copy(sources: list[np.ndarray], dst: np.ndarray) -> None:
    """The memory-copy floor (see lw.h): read every source byte once, fill ``dst``."""
    srcs = [np.ascontiguousarray(s).reshape(-1).view(np.uint8) for s in sources]
    held = [_ptr("uint8_t[]", s) for s in srcs]
    ptrs = ffi.new("const uint8_t *[]", held)
    lens = ffi.new("int64_t[]", [s.nbytes for s in srcs])
    flat = dst.reshape(-1).view(np.uint8)
    lib.lw_floor_copy(ptrs, lens, len(srcs), _ptr("uint8_t[]", flat), flat.nbytes)


def _padded(table: np.ndarray) -> np.ndarray:
    """A table with 64 more bytes after it: a gather's 32-bit load at the last entry reads 3."""
    padded = np.zeros(table.size + 64, np.uint8)
    padded[:table.size] = table
    return padded


class Encoder:
    """Correction fused with the re-encode for a card with its own curve (``lw_encode.c``).

    Built once per screen, settings and card table (the worker threads start
    here), so :meth:`encode_into` is one pass per frame.  It writes the encoded bytes where
    ``payloads`` says (packet payloads, ready to send) and nothing else, so
    headers written once stay.  Calls from several threads are taken one at
    a time.  Same results as :class:`controller.fastpath.reference.Encoder`.
    """

    def __init__(self, shape: tuple[int, int], lut: np.ndarray, gains: npt.ArrayLike,
                 calib: np.ndarray | None, table: np.ndarray, payloads: reencode.Payloads, *,
                 threads: int | None = None, kernel: str | None = None) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        lut = common.check_lut(lut)
        gains = common.check_gains(gains)
        calib = common.check_calib(calib, self.shape, _first_bad)
        self.table = reencode.check_table(table).copy()
        if not isinstance(payloads, reencode.Payloads):
            raise ValueError(f"payloads: expected fastpath.Payloads, got {type(payloads).__name__}")
        self.payloads = payloads
        self.size = payloads.size(self.shape[0] * self.shape[1])
        if threads is None:
            threads = default_threads()
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads: expected a whole number of threads >= 1, got {threads!r}")
        names = kernels()
        match = [k for k in names if kernel is None or kernel in (k, k.split("/")[0])]
        if not match:
            raise ValueError(f"kernel: {kernel!r} is not available on this CPU; choose from {names}")
        self.threads = threads
        self.kernel = match[0]
        mode = _mode(calib)
        self._keep: list[np.ndarray] = []
        e = self._enc = ffi.new("lw_encoding *")
        e.height, e.width = self.shape
        e.mode = mode
        e.order = list(payloads.order)
        e.lut = self._hold("uint16_t[]", _folded(lut, gains) if mode == 0 else lut.copy())
        e.gains = gains.tolist()
        if mode:        # into the order the kernel reads, once
            q = (0, 3, 9)[mode]
            coef = np.empty(self.shape[0] * self.shape[1] * q, np.int16)
            lib.lw_encode_relayout(_ptr("int16_t[]", np.ascontiguousarray(calib)),
                                   self.shape[0], self.shape[1], q, _ptr("int16_t[]", coef))
            e.coef = self._hold("int16_t[]", coef)
        e.kernel = _kernel_index(self.kernel)
        e.table = self._hold("uint8_t[]", _padded(self.table))
        if mode == 0:   # curve, gains and table compose: see lw_encode.c
            e.direct = self._hold("uint8_t[]", _padded(self.table[_folded(lut, gains)].reshape(-1)))
        e.segment, e.chunk = payloads.segment, payloads.chunk
        e.stride, e.first = payloads.stride, payloads.first
        bands = 1 if threads == 1 else BANDS_PER_THREAD * threads
        self._band_rows = max(1, -(-self.shape[0] // bands))
        self._pool = ffi.NULL
        if threads > 1:
            pool = lib.lw_pool_new(threads)
            if pool == ffi.NULL:
                raise OSError(f"fastpath: could not start {threads} worker threads")
            self._pool = ffi.gc(pool, lib.lw_pool_free)
        self._busy = threading.Lock()

    def _hold(self, ctype: str, array: np.ndarray) -> FFI.CData:
        self._keep.append(array)
        return _ptr(ctype, array)

    def encode_into(self, frame: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Correct ``frame`` and write its bytes into ``out`` (``uint8``, ``size`` bytes at least)."""
        frame = np.ascontiguousarray(common.check_frame(frame, self.shape))
        out = reencode.check_out(out, self.payloads, self.shape[0] * self.shape[1])
        if np.may_share_memory(out, frame):
            raise ValueError("payloads: the output shares memory with the frame; pass a separate array")
        with self._busy:
            self._enc.out = _ptr("uint8_t[]", out)
            status = lib.lw_encode(self._pool, self._enc, self._band_rows, _ptr("uint8_t[]", frame))
            self._enc.out = ffi.NULL
        if status == -2:
            raise MemoryError("fastpath.Encoder: out of memory for a row's scratch")
        if status:
            raise ValueError("fastpath.Encoder: the payload layout was refused by the kernel")
        return out
