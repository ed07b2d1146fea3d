"""``ledwarden bench --limiting``: what current limiting costs per frame, as ratios in one run.

Per screen and calibration mode, interleaved in the same rounds (so a busy
moment on a shared board hurts every variant alike): the fused pipeline
without a scale, with a per-cabinet scale (every cabinet a different one,
the kernel's worst case: one gain fold per cabinet), and with the scale plus
the limiter's per-frame update, each on all cores and on one; and the
limiter's update alone, in microseconds.  The ratios to the unscaled
pipeline on the same threads are the figures that matter; absolute times
move with the load.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from controller.cliout import Progress, table, wants_json
from controller.config import Layout
from controller.power import PowerLimiter, parse_power


def bench_power(layout: Layout) -> PowerLimiter:
    """A limiter for the bench's wall: a P1.875 module's plausible currents (about 2.4 A of
    light per 160 × 90 module at full white) and a cabinet budget a third of full white, so
    the random frame is limited on every cabinet."""
    modules = {m.name: {"current_ma": [900, 700, 800], "quiescent_ma": 120, "supply_v": 4.5}
               for m in layout.modules}
    full = max(c.module_count * 2.52 for c in layout.cabinets)
    model = parse_power({"power": {"cabinet_budget_a": round(full / 3, 2), "modules": modules}},
                        layout, "bench")
    assert model is not None
    return PowerLimiter(model, layout)


def measure_limiting(layout: Layout, mode: str, inputs: tuple, threads: int, args,
                     timer_cls) -> list[dict]:
    """Rows for one screen and calibration mode: ``inputs`` are bench's (frame, lut, gains,
    calib), ``timer_cls`` its interleaving timer."""
    from controller import fastpath

    frame, lut, gains, calib = inputs
    kernel = {"kernel": args.kernel} if args.kernel else {}
    n = len(layout.cabinets)
    scale = (65536 - (np.arange(n) * 997) % 32768).astype(np.uint32)    # all different, 0.5 … 1
    timer = timer_cls(args.rounds, args.min_time)
    for t in dict.fromkeys((threads, 1)):
        pipe = fastpath.Pipeline(layout, lut, gains, calib, threads=t, **kernel)
        clock = _clock(args, t)
        timer.add(f"plain:{t}", lambda pipe=pipe: pipe.process(frame), clock)
        timer.add(f"scale:{t}", lambda pipe=pipe: pipe.process(frame, scale), clock)

        def limited(pipe=pipe, limiter=bench_power(layout)) -> None:   # one per pipeline,
            scan, s = limiter.correct(pipe, frame)                        # as in the frame loop
            limiter.update(scan.sums, s)
        timer.add(f"limiter:{t}", limited, clock)
    sums = fastpath.Pipeline(layout, lut, gains, calib, threads=1).process(frame).sums
    alone = bench_power(layout)
    timer.add("update", lambda: alone.update(sums, scale), _clock(args, 1))
    results = timer.run(Progress(f"bench --limiting {layout.width}x{layout.height} {mode}",
                                 enabled=not wants_json(args)))
    median = {k: statistics.median(v) for k, v in results.items()}
    rows: list[dict[str, Any]] = []
    base = {"resolution": f"{layout.width}x{layout.height}", "screen": layout.name,
            "cabinets": n, "calibration": mode}
    for t in dict.fromkeys((threads, 1)):
        plain = median[f"plain:{t}"]
        for key, what in (("plain", "fused pipeline"), ("scale", "fused + scale"),
                          ("limiter", "fused + scale + limiter update")):
            sec = median[f"{key}:{t}"]
            best = min(results[f"{key}:{t}"])
            rows.append({**base, "variant": what, "threads": t, "ms_per_frame": sec * 1e3,
                         "best_ms": best * 1e3, "ratio_to_plain": sec / plain,
                         "best_ratio_to_plain": best / min(results[f"plain:{t}"])})
    rows.append({**base, "variant": "limiter update alone", "threads": 1,
                 "us_per_frame": median["update"] * 1e6, "best_us": min(results["update"]) * 1e6})
    return rows


def _clock(args, threads: int):
    """Wall time, or with ``--cpu-time`` the CPU time of this thread (one thread) or of the
    whole process (several): what the variants cost, not what other jobs took from them."""
    if not getattr(args, "cpu_time", False):
        return time.perf_counter
    return time.thread_time if threads == 1 else time.process_time


def print_limiting(rows: list[dict]) -> None:
    frames = [r for r in rows if "ms_per_frame" in r]
    print(table([(r["resolution"], r["calibration"], r["variant"], r["threads"],
                  round(r["ms_per_frame"], 3), round(r["best_ms"], 3),
                  f"{(r['ratio_to_plain'] - 1) * 100:+.1f} %",
                  f"{(r['best_ratio_to_plain'] - 1) * 100:+.1f} %") for r in frames],
                ["resolution", "calib", "variant", "threads", "ms/frame", "best", "extra",
                 "extra (best)"]))
    print()
    print(table([(r["resolution"], r["cabinets"], r["calibration"], round(r["us_per_frame"], 1),
                  round(r["best_us"], 1)) for r in rows if "us_per_frame" in r],
                ["resolution", "cabinets", "calib", "limiter update µs", "best µs"]))
    print("\nms/frame and µs are the median round, best the fastest; extra is the median "
          "against the fused pipeline without a scale on the same threads, in the same rounds, "
          "extra (best) the fastest against the fastest (on a busy machine, the steadier one).")
