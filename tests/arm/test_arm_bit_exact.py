"""The fast path, cross-compiled for ARM64 and run under qemu, is bit-exact with the NumPy reference.

The real board is ARM64, where ``lw.c`` builds without its x86 clones and
GCC vectorises it for NEON instead: different code, which the x86 tests
never run.  This test builds ``lw.c`` and ``lw_avx512.c`` (as ``_build.py``
lists them) with Debian's ``aarch64-linux-gnu-gcc`` and the same compile
flags pip gets, links them with ``lw_driver.c`` (statically, so qemu needs
no ARM64 root), draws cases with the x86 tests' own generators
(``fastpath_cases``), runs the driver under ``qemu-aarch64`` and compares
every output byte with :mod:`controller.fastpath.reference`.

Covered: the fused pipeline on 1, 2 and 3 threads with the pool kept over
two frames, with and without the per-cabinet scale, ``correct()`` alone and ``module_scan()`` alone, in all three
calibration modes with the spec's extremes, plus the calibration bound
check, and the fused re-encode for cards with their own curve
(``lw_encode``) over drawn payload layouts, card gammas and thread counts.  Everything runs in one qemu process, so it takes seconds.

Without the cross compiler or qemu (``apt-get install gcc-aarch64-linux-gnu
qemu-user``) the test is skipped on a developer's machine and fails in CI.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from controller.config import parse_screen
from controller.fastpath import _build, plan as plans, reencode, reference
from controller.fastpath._cffi import BANDS_PER_THREAD, _folded

from fastpath.fastpath_cases import MODES, inputs, layouts, scales  # tests/ is on the path

HERE = Path(__file__).resolve().parent
FASTPATH = Path(_build.HERE)
CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"
MAGIC = b"LWARMv1\0"
#: How many drawn layouts feed the pipeline and module_scan cases, and drawn
#: shapes the correct() cases.  qemu runs all of them in well under a second;
#: most of the time goes into the NumPy reference.
DRAWN_LAYOUTS = 360
DRAWN_FRAMES = 180
DRAWN_ENCODES = 150


def _missing(what: str, how: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed, and CI must run this test: {how}")
    pytest.skip(f"{what} is not installed ({how}); CI runs this test")


def compile_flags() -> list[str]:
    """``_build.py``'s flags (Python's CFLAGS and its own), minus anything x86-specific."""
    flags = [f for f in _build._flags_string().split() if not f.startswith("-m")]
    return [*flags, f'-DLW_CFLAGS="{" ".join(flags)}"']


def build_driver(out: Path) -> Path:
    sources = [FASTPATH / name for name in _build.SOURCES] + [HERE / "lw_driver.c"]
    cmd = [CC, *compile_flags(), "-static", f"-I{FASTPATH}", "-o", str(out),
           *map(str, sources), "-pthread"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"
    return out


# ------------------------------------------------------------------ cases

class CaseFile:
    """Cases written for lw_driver.c, and what each must produce, in order."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.expected: list[tuple[str, np.ndarray]] = []   # (label, array) per output
        self.count = 0

    def _put(self, *items) -> None:
        for item in items:
            self.parts.append(item if isinstance(item, bytes) else np.ascontiguousarray(item).tobytes())

    def _plan(self, plan: plans.Plan, mod_coef: np.ndarray | None) -> None:
        for g in plan.geoms:
            self._put(struct.pack("<5i2q", g.width, g.scan, g.groups, g.n, g.dir,
                                  g.line_step, g.group_step), g.off.astype("<i4"))
        self._put(plan.mod_geom.astype("<i4"), plan.mod_base.astype("<i8"),
                  plan.mod_out.astype("<i8"))
        if mod_coef is not None:
            self._put(mod_coef.astype("<i8"))

    def _expect_scan(self, label: str, scan) -> None:
        self.expected.append((f"{label} out", np.concatenate(list(scan.buffers.values()))))
        self.expected.append((f"{label} sums", np.concatenate(list(scan.sums.values()))))
        self.expected.append((f"{label} peaks", np.concatenate(list(scan.peaks.values()))))

    def pipeline(self, label, layout, frames, lut, gains, calib, threads: int,
                 frame_scales: list | None = None) -> None:
        """As _cffi.Pipeline builds and runs it, frame after frame on one pool; with
        ``frame_scales`` (one ``uint32[cabinets]`` per frame) as ``process(frame, scale)``."""
        plan = plans.build(layout)
        mode = 0 if calib is None else 1 if calib.ndim == 3 else 2
        q = (0, 3, 9)[mode]
        bands = plan.bands(1 if threads == 1 else BANDS_PER_THREAD * threads)
        c_lut = _folded(lut, gains) if mode == 0 else lut
        c_calib = np.zeros(0, np.int16) if calib is None else np.ascontiguousarray(calib)
        frame_bytes = frames[0].nbytes
        self._put(struct.pack("<I7i3q", 1 if frame_scales is None else 5, mode, threads, len(frames), len(plan.geoms),
                              plan.n_modules, len(bands) - 1, q, plan.pixels, frame_bytes,
                              c_calib.size))
        self._plan(plan, plan.coef_offsets(q))
        self._put(c_lut.astype("<u2"), np.asarray(gains, "<u4"), c_calib.astype("<i2"),
                  bands.astype("<i4"))
        if frame_scales is not None:
            counts = [m1 - m0 for m0, m1 in plan.cab_modules]
            mod_cab = np.repeat(np.arange(len(counts)), counts)
            self._put(struct.pack("<i", len(counts)), mod_cab.astype("<i4"), lut.astype("<u2"))
        numpy_pipe = reference.Pipeline(layout, lut, gains, calib)
        for k, frame in enumerate(frames):
            scale = None if frame_scales is None else frame_scales[k]
            if scale is not None:
                self._put(scale.astype("<u4"))
            self._put(frame)
            self._expect_scan(f"{label} frame {k}", numpy_pipe.process(frame, scale))
        self.count += 1

    def correct(self, label, frame, lut, gains, calib) -> None:
        mode = 0 if calib is None else 1 if calib.ndim == 3 else 2
        c_lut = _folded(lut, gains) if mode == 0 else lut
        c_calib = np.zeros(0, np.int16) if calib is None else np.ascontiguousarray(calib)
        h, w, _ = frame.shape
        self._put(struct.pack("<I3iq", 2, mode, h, w, c_calib.size), c_lut.astype("<u2"),
                  np.asarray(gains, "<u4"), c_calib.astype("<i2"), frame)
        self.expected.append((f"{label} status", np.zeros(1, "<i4")))
        self.expected.append((f"{label} out", reference.correct(frame, lut, gains, calib)))
        self.count += 1

    def scan(self, label, layout, image) -> None:
        plan = plans.build(layout)
        self._put(struct.pack("<I2i2q", 3, len(plan.geoms), plan.n_modules, plan.pixels, image.size))
        self._plan(plan, None)
        self._put(image.astype("<u2"))
        self._expect_scan(label, reference.module_scan(image, layout))
        self.count += 1

    def first_bad(self, label, calib) -> None:
        q = 1 if calib.ndim == 3 else 3
        calib = np.ascontiguousarray(calib)
        self._put(struct.pack("<Iiq", 4, q, calib.size // q), calib.astype("<i2"))
        flat = np.flatnonzero(calib < 0) if q == 1 else \
            np.flatnonzero(np.abs(calib.astype(np.int32)).sum(axis=-1) > 32768)
        self.expected.append((label, np.array([flat[0] if flat.size else -1], "<i8")))
        self.count += 1

    def encode(self, label, frame, lut, gains, calib, table, payloads, threads: int) -> None:
        """As _cffi.Encoder builds and runs it (issue 16 item 3: cards with their own curve)."""
        mode = 0 if calib is None else 1 if calib.ndim == 3 else 2
        c_lut = _folded(lut, gains) if mode == 0 else lut
        direct = table[_folded(lut, gains)].reshape(-1) if mode == 0 else np.zeros(768, np.uint8)
        c_calib = np.zeros(0, np.int16) if calib is None else np.ascontiguousarray(calib)
        h, w, _ = frame.shape
        size = payloads.size(h * w)
        bands = 1 if threads == 1 else BANDS_PER_THREAD * threads
        self._put(struct.pack("<I7i7q", 6, mode, h, w, threads, *payloads.order, payloads.segment,
                              payloads.chunk, payloads.stride, payloads.first, c_calib.size, size,
                              max(1, -(-h // bands))),
                  c_lut.astype("<u2"), np.asarray(gains, "<u4"), c_calib.astype("<i2"), table,
                  direct, frame)
        want = reference.Encoder((h, w), lut, gains, calib, table, payloads).encode_into(
            frame, np.full(size, 0xA5, np.uint8))
        self.expected.append((f"{label} status", np.zeros(1, "<i4")))
        self.expected.append((f"{label} out", want))
        self.count += 1

    def write(self, path: Path) -> None:
        path.write_bytes(MAGIC + struct.pack("<i", self.count) + b"".join(self.parts))


def _drawn(strategy, count: int) -> list:
    """``count`` examples of a Hypothesis strategy, the same on every run."""
    found = []

    @settings(max_examples=count, derandomize=True, database=None, phases=[Phase.generate],
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example):
        found.append(example)

    collect()
    return found


def _wall(module, rotation):
    """Two 2x1 serpentine cabinets covering the frame, as the x86 kernel tests build."""
    w, h, scan = module
    cabs = [{"address": 1 + c, "x": c * 2 * w, "y": 0, "module": "m", "modules_x": 2,
             "modules_y": 1, "chain": "serpentine", "rotation": rotation} for c in range(2)]
    return parse_screen({"screen": {"name": "w", "width": 4 * w, "height": h},
                         "modules": {"m": {"width": w, "height": h, "scan": scan}},
                         "cabinets": cabs})


def build_cases() -> CaseFile:
    cases = CaseFile()
    drawn = _drawn(st.tuples(layouts(), st.integers(0, 2**32 - 1)), DRAWN_LAYOUTS)
    for i, (layout, seed) in enumerate(drawn):
        # every mode on every thread count, with and without extremes, in turn
        mode, threads, extreme = MODES[i % 3], 1 + i // 3 % 3, i // 9 % 2 == 0
        frame, lut, gains, calib = inputs(seed, (layout.height, layout.width), mode, extreme)
        second = np.random.default_rng(seed + 1).integers(0, 256, frame.shape, dtype=np.uint8)
        cases.pipeline(f"pipeline {i} ({mode}, {threads} threads)", layout, [frame, second],
                       lut, gains, calib, threads)
        if i % 4 == 0:   # the per-cabinet scale: drawn, then the edges, on the same pool
            n = len(layout.cabinets)
            cases.pipeline(f"scaled pipeline {i} ({mode}, {threads} threads)", layout,
                           [frame, second], lut, gains, calib, threads,
                           [scales(seed, n), scales(seed, n, extreme=True)])
        image = np.random.default_rng(seed).integers(0, 65536, frame.shape, dtype=np.uint16)
        cases.scan(f"module_scan {i}", layout, image)
    for module in ((160, 90, 45), (64, 32, 16), (20, 6, 6), (7, 4, 4)):
        for rotation in (0, 180):
            layout = _wall(module, rotation)
            for mode in MODES:
                frame, lut, gains, calib = inputs(7, (layout.height, layout.width), mode, True)
                for threads in (1, 3):
                    cases.pipeline(f"wall {module} rot {rotation} ({mode}, {threads} threads)",
                                   layout, [frame], lut, gains, calib, threads)
    shapes = _drawn(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 9), st.integers(0, 80),
                              st.sampled_from(MODES), st.booleans()), DRAWN_FRAMES)
    for i, (seed, h, w, mode, extreme) in enumerate(shapes):
        frame, lut, gains, calib = inputs(seed, (h, w), mode, extreme)
        cases.correct(f"correct {i} ({mode}, {h}x{w})", frame, lut, gains, calib)
    encodes = _drawn(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 9), st.integers(0, 90),
                               st.sampled_from(MODES), st.booleans(), st.integers(1, 200),
                               st.integers(1, 70), st.integers(0, 9), st.integers(1, 3)),
                     DRAWN_ENCODES)
    for i, (seed, h, w, mode, extreme, segment, chunk, pad, threads) in enumerate(encodes):
        frame, lut, gains, calib = inputs(seed, (h, w), mode, extreme)
        segment = segment if i % 2 else max(1, w)        # every other one a row a segment
        order = ((0, 1, 2), (2, 1, 0), (1, 2, 0))[i % 3]
        payloads = reencode.Payloads(segment, chunk, 3 * min(chunk, segment) + pad, i % 13, order)
        table = reencode.encode_table(("1", "2.2", "2.8")[i // 3 % 3])
        cases.encode(f"encode {i} ({mode}, {h}x{w}, {threads} threads)", frame, lut, gains,
                     calib, table, payloads, threads)
    for mode in ("gain", "matrix"):
        _, _, _, calib = inputs(11, (40, 130), mode, extreme=True)
        cases.first_bad(f"first_bad {mode} in bounds", calib)
        broken = calib.copy()
        broken[37, 101] = -5 if mode == "gain" else [-20000, 20000, 10]
        cases.first_bad(f"first_bad {mode} out of bounds", broken)
    return cases


# ------------------------------------------------------------------ the test

def read_results(path: Path, expected: list[tuple[str, np.ndarray]]):
    data = path.read_bytes()
    pos = 0
    strings = []
    for _ in range(2):
        (n,) = struct.unpack_from("<I", data, pos)
        strings.append(data[pos + 4:pos + 4 + n].decode())
        pos += 4 + n
    got = []
    for label, want in expected:
        n = want.nbytes
        got.append(np.frombuffer(data[pos:pos + n], want.dtype.newbyteorder("<")).reshape(want.shape))
        pos += n
    assert pos == len(data), f"driver wrote {len(data) - pos} bytes more than expected"
    return strings, got


def test_fastpath_is_bit_exact_on_arm64(tmp_path):
    for tool, package in ((CC, "gcc-aarch64-linux-gnu"), (QEMU, "qemu-user")):
        if shutil.which(tool) is None:
            _missing(tool, f"apt-get install {package}")
    driver = build_driver(tmp_path / "lw_driver")
    assert b"\x7fELF\x02\x01\x01" in driver.read_bytes()[:8]  # ELF64 little-endian
    assert driver.read_bytes()[18:20] == struct.pack("<H", 183), "not an AArch64 binary"
    cases = build_cases()
    cases.write(tmp_path / "cases.bin")
    done = subprocess.run([QEMU, str(driver), str(tmp_path / "cases.bin"), str(tmp_path / "out.bin")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"lw_driver under qemu failed ({done.returncode}): {done.stderr}"
    (kernel, build), got = read_results(tmp_path / "out.bin", cases.expected)
    assert kernel == "portable/neon", kernel
    assert "-O3" in build and "march" not in build, build
    bad = []
    for (label, want), have in zip(cases.expected, got):
        if not np.array_equal(want, have):
            where = np.argwhere(want != have)[0].tolist() if want.shape == have.shape else "shape"
            bad.append(f"{label}: first difference at {where}")
    assert not bad, f"{len(bad)} of {len(got)} outputs differ on ARM64:\n" + "\n".join(bad[:20])
