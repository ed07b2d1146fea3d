"""``ledwarden bench``: how fast this machine corrects frames, measured side by side.

For each screen (one per ``--resolution``, or ``--screen FILE``) and each
calibration mode, in one run: the fused pipeline on one thread and on all
cores, ``correct`` then ``module_scan`` as separate calls, the NumPy
reference, and the floor — a plain copy of exactly the bytes the pipeline
must read (the covered frame pixels and the coefficients) and write (the
card buffers), which no correction can beat on this memory system.

Why the measurement is shaped this way: the board is shared with the rest
of the controller and, in CI, with other machines' jobs, so one timing is
noise.  Every variant is timed in batches of at least ``--min-time`` in
each of ``--rounds`` rounds, the variants interleaved within a round so a
slow moment hurts them alike; the median round is the figure, the fastest
is shown beside it.  The NumPy
reference is timed on ``--numpy-rounds`` single frames (it takes seconds).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from controller.cliout import Progress, emit_json, table
from controller.config import Layout, parse_screen, load_screen

MODES = ("none", "gain", "matrix")
#: The cabinet of the generated walls: 3 × 3 modules of 160 × 90 pixels at
#: 1/45 scan (a P1.875 COB product), 480 × 270 pixels, 16:9.
MODULE = {"width": 160, "height": 90, "scan": 45}
CABINET_MODULES = (3, 3)


def wall_layout(width: int, height: int, name: str | None = None) -> Layout:
    """The bench's wall for a resolution: as many standard cabinets as fit.

    Cabinets are addressed along a serpentine data chain (left to right,
    then back), modules chained serpentine inside, and the bottom row hangs
    upside down (rotation 180) as walls cabled from the floor do.  The files
    ``examples/lobby.toml`` and ``examples/atrium-4k.toml`` are this layout
    at 1920 × 1080 and 3840 × 2160.
    """
    cw, ch = MODULE["width"] * CABINET_MODULES[0], MODULE["height"] * CABINET_MODULES[1]
    cols, rows = width // cw, height // ch
    if not cols or not rows:
        raise ValueError(f"resolution: {width}x{height} is smaller than one {cw}x{ch} cabinet")
    cabinets: list[dict[str, Any]] = []
    for row in range(rows):
        order = range(cols) if row % 2 == 0 else reversed(range(cols))
        for col in order:
            cabinets.append({"address": len(cabinets) + 1, "x": col * cw, "y": row * ch,
                             "module": "p1875", "modules_x": CABINET_MODULES[0],
                             "modules_y": CABINET_MODULES[1], "chain": "serpentine",
                             "rotation": 180 if row == rows - 1 and rows > 1 else 0})
    return parse_screen({"screen": {"name": name or f"{width}x{height} wall", "width": width,
                                    "height": height},
                         "modules": {"p1875": dict(MODULE)}, "cabinets": cabinets})


def bench_inputs(layout: Layout, mode: str, seed: int = 1):
    """A frame, a curve, gains and a plausible calibration of the given mode."""
    from controller.fastpath.settings import gains_from, power_lut

    rng = np.random.default_rng(seed)
    h, w = layout.height, layout.width
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lut, gains = power_lut(2.2), gains_from(0.9, (1.0, 0.94, 0.88))
    calib = None
    if mode == "gain":       # uniformity trims around 1.0
        calib = rng.integers(16384 - 2000, 16384 + 2000, (h, w, 3), dtype=np.int16)
    elif mode == "matrix":   # trims on the diagonal, a little cross-talk off it
        calib = rng.integers(-600, 600, (h, w, 3, 3), dtype=np.int16)
        diag = np.arange(3)
        calib[:, :, diag, diag] = rng.integers(14000, 18000, (h, w, 3), dtype=np.int16)
    return frame, lut, gains, calib


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class _Timer:
    """Interleaved rounds of batches: per variant, each round's seconds per call."""

    def __init__(self, rounds: int, min_time: float) -> None:
        self.rounds, self.min_time = rounds, min_time
        self.variants: list[tuple[str, Callable[[], object], int, Callable[[], float]]] = []

    def add(self, name: str, fn, clock: Callable[[], float] = time.perf_counter) -> None:
        """``clock``: wall time by default; a CPU-time clock counts only this process's work,
        which other jobs on a shared machine do not inflate (``bench --limiting``)."""
        start = time.perf_counter()
        fn()                                   # warm up: caches, pages, thread start
        once = max(time.perf_counter() - start, 1e-6)
        self.variants.append((name, fn, max(1, math.ceil(self.min_time / once)), clock))

    def run(self, progress=None) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {name: [] for name, _, _, _ in self.variants}
        for r in range(self.rounds):
            for name, fn, n, clock in self.variants:
                start = clock()
                for _ in range(n):
                    fn()
                times[name].append((clock() - start) / n)
            if progress:
                progress(r + 1, self.rounds)
        return times


def measure(layout: Layout, mode: str, threads: int, args) -> list[dict]:
    """Every variant on one screen and calibration mode, as result rows."""
    from controller import fastpath
    from controller.fastpath import reference

    frame, lut, gains, calib = bench_inputs(layout, mode)
    label = f"{layout.width}x{layout.height} {mode}"
    kernel = {"kernel": args.kernel} if args.kernel else {}
    timer = _Timer(args.rounds, args.min_time)
    pipes = {t: fastpath.Pipeline(layout, lut, gains, calib, threads=t, **kernel)
             for t in dict.fromkeys((threads, 1))}
    for t, pipe in pipes.items():
        timer.add(f"fused:{t}", lambda pipe=pipe: pipe.process(frame))
    corrected = np.empty(frame.shape, np.uint16)
    timer.add("separate", lambda: fastpath.module_scan(
        fastpath.correct(frame, lut, gains, calib, out=corrected), layout))
    floor_sources = None
    if fastpath.backend == "cffi":
        pipe = pipes[1]
        read, written = pipe.bytes_touched
        covered = frame.reshape(-1)[:read - (0 if pipe.coef is None else pipe.coef.nbytes)]
        floor_sources = [covered] + ([] if pipe.coef is None else [pipe.coef])
        floor_dst = np.empty(written, np.uint8)
        timer.add("floor", lambda: fastpath.floor_copy(floor_sources, floor_dst))
    results = timer.run(Progress(f"bench {label}", enabled=not args.json))

    results["numpy"] = []
    for _ in range(args.numpy_rounds):
        start = time.perf_counter()
        reference.module_scan(reference.correct(frame, lut, gains, calib), layout)
        results["numpy"].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in results.items()}

    rows = []
    names = [(f"fused:{t}", "fused pipeline", t) for t in pipes]
    names += [("separate", "correct + module_scan", 1), ("numpy", "NumPy reference", 1)]
    names += [("floor", "floor (memory copy)", 1)] if floor_sources else []
    pixels = layout.width * layout.height
    for key, what, t in names:
        sec = median[key]
        rows.append({
            "resolution": f"{layout.width}x{layout.height}", "screen": layout.name,
            "cabinets": len(layout.cabinets), "calibration": mode, "variant": what,
            "threads": t, "ms_per_frame": sec * 1e3, "best_ms": min(results[key]) * 1e3,
            "fps": 1 / sec, "mpix_per_s": pixels / sec / 1e6,
            "speedup_vs_numpy": median["numpy"] / sec,
            "ratio_to_floor": sec / median["floor"] if floor_sources else None,
        })
    return rows


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure frame-correction throughput on this machine",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--resolution", action="append", metavar="WxH", type=_resolution,
                   help="screen size to bench, repeatable (default 1920x1080 and 3840x2160)")
    p.add_argument("--screen", action="append", metavar="FILE",
                   help="bench this screen file instead of generated walls (repeatable)")
    p.add_argument("--calibration", default=list(MODES), metavar="MODES", type=_modes,
                   help="comma-separated calibration modes (default none,gain,matrix)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for the all-cores run (default: every core available)")
    p.add_argument("--kernel", default=None, help="force a kernel (see --json 'kernels')")
    p.add_argument("--rounds", type=int, default=9, help="timing rounds (default 9)")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="seconds per batch within a round (default 0.05)")
    p.add_argument("--numpy-rounds", type=int, default=2,
                   help="frames through the NumPy reference (default 2)")
    p.add_argument("--limiting", action="store_true",
                   help="instead: what current limiting adds per frame (the per-cabinet scale "
                        "and the limiter's update), as ratios to the plain pipeline")
    p.add_argument("--cpu-time", action="store_true",
                   help="with --limiting: time CPU used rather than wall time, so other jobs on "
                        "a shared machine do not blur the ratios (all-cores rows then count "
                        "every thread's CPU)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a resolution like 1920x1080") from None
    cw, ch = MODULE["width"] * CABINET_MODULES[0], MODULE["height"] * CABINET_MODULES[1]
    if w < cw or h < ch:
        raise argparse.ArgumentTypeError(f"{text}: the generated wall needs at least one "
                                         f"{cw}x{ch} cabinet")
    return w, h


def _modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(MODES)}")
    return modes


def run(args: argparse.Namespace) -> int:
    from controller import fastpath

    if args.screen:
        layouts = [load_screen(path) for path in args.screen]
    else:
        layouts = [wall_layout(w, h) for w, h in args.resolution or [(1920, 1080), (3840, 2160)]]
    threads = (args.threads or fastpath.default_threads()) if fastpath.backend == "cffi" else 1
    kernels, build = fastpath.kernels(), fastpath.build_info()
    if args.limiting:
        from host.benchlimit import measure_limiting
        rows = [row for layout in layouts for mode in args.calibration
                for row in measure_limiting(layout, mode, bench_inputs(layout, mode), threads,
                                            args, _Timer)]
    else:
        rows = [row for layout in layouts for mode in args.calibration
                for row in measure(layout, mode, threads, args)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "threads": threads, "load_before": load,
            "backend": fastpath.backend, "kernel": args.kernel or kernels[0], "kernels": list(kernels),
            "build": build, "numpy": np.__version__}
    if args.json:
        emit_json({**info, "results": rows})
        return 0
    print(f"CPU      {info['cpu']} ({info['cores']} cores; all-cores runs use {threads} threads)")
    if load is not None:
        print(f"load     {load:.2f} before the run (1-minute average): other work on these "
              f"cores slows the all-cores rows most")
    print(f"backend  {info['backend']}, kernel {info['kernel']} (available: {', '.join(kernels)})")
    print(f"build    {build}")
    for layout in layouts:
        print(f"screen   {layout.width}x{layout.height} {layout.name!r}: {len(layout.cabinets)} "
              f"cabinets, {sum(c.module_count for c in layout.cabinets)} modules")
    print()
    if args.limiting:
        from host.benchlimit import print_limiting
        print_limiting(rows)
        return 0
    print(table([(r["resolution"], r["calibration"], r["variant"], r["threads"],
                  round(r["ms_per_frame"], 2), round(r["best_ms"], 2), round(r["fps"], 1),
                  round(r["mpix_per_s"], 1),
                  round(r["speedup_vs_numpy"], 1),
                  "-" if r["ratio_to_floor"] is None else round(r["ratio_to_floor"], 2))
                 for r in rows],
                ["resolution", "calib", "variant", "threads", "ms/frame", "best", "fps", "Mpix/s",
                 "x NumPy", "x floor"]))
    print("\nms/frame is the median round, best the fastest; fps, Mpix/s and the ratios use "
          "the median.")
    return 0
