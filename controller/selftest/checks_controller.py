"""Checks of the controller itself: frame correction, frame budget, storage, clock."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from controller import fastpath
from controller.fastpath import reference
from controller.fastpath.settings import gains_from, power_lut
from controller.selftest.model import CheckResult

FREE_WARN_MB = 500
FREE_FAIL_MB = 50
OVERRUN_FAIL = 0.01
#: The software's own files are no newer than its build; a clock before that is surely wrong.
BUILD_STAMP = Path(__file__).resolve().parents[1] / "version.py"


def golden_frame(height: int, width: int) -> np.ndarray:
    """The fixed frame: every code value on every channel, in a pattern no layout aligns with."""
    rng = np.random.default_rng(0x4C57)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _compare_with_reference(layout, picture=None) -> tuple[int, str]:
    """Bytes in which the live kind of pipeline and the NumPy reference differ on the golden frame.

    With a live picture, both are built from the inputs the wall is showing (its curve, white
    balance and every cabinet's calibration), on the same kernel as the frame loop's; a new
    pipeline of that kind, not the frame loop's own, whose buffers are the sink's to read.
    """
    if picture is not None:
        inputs = picture.inputs
        lut, gains, calib = inputs.lut(), inputs.gains(), inputs.calib(layout)
        kernel = getattr(picture.pipeline, "kernel", None)
    else:
        lut, gains, calib, kernel = power_lut(2.2), gains_from(1.0), None, None
    frame = golden_frame(layout.height, layout.width)
    options = {"kernel": kernel} if kernel and fastpath.backend == "cffi" else {}
    live = fastpath.Pipeline(layout, lut, gains, calib, threads=1, **options).process(frame)
    ref = reference.Pipeline(layout, lut, gains, calib).process(frame)
    differ = 0
    for part in ("buffers", "sums", "peaks"):
        for address, want in getattr(ref, part).items():
            got = np.asarray(getattr(live, part)[address])
            differ += (int(np.count_nonzero(got.view(np.uint8) != want.view(np.uint8)))
                       if got.shape == want.shape and got.dtype == want.dtype else want.nbytes)
    return differ, getattr(live, "kernel", fastpath.backend)


async def fastpath_golden(ix, result: CheckResult) -> None:
    differ, _ = await asyncio.get_running_loop().run_in_executor(
        None, _compare_with_reference, ix.layout, ix.picture)
    result.values.update(backend=fastpath.backend, bytes_differing=differ)
    picture = ix.picture
    if picture is not None:      # what was checked: the settings and calibration on the wall
        result.values.update(settings=picture.inputs.settings.as_dict(),
                             calibrated_cabinets=sorted(picture.inputs.arrays))
    if differ:
        result.add("fail", "fastpath.mismatch", backend=fastpath.backend, count=differ)
    else:
        result.add("pass", "fastpath.ok", backend=fastpath.backend)


async def frameloop_budget(ix, result: CheckResult) -> None:
    loop = ix.frame_loop
    if loop is None or not loop.stats()["running"]:
        result.add("pass", "frameloop.off")
        return
    before = loop.stats()
    await asyncio.sleep(ix.params["frame_window_s"])
    after = loop.stats()
    frames = after["frames"] - before["frames"]
    overruns = after["overruns"] - before["overruns"]
    result.values.update(frames=frames, overruns=overruns, window_s=ix.params["frame_window_s"],
                         p99_ms=after["p99_ms"], budget_ms=after["budget_ms"], fps=after["fps"])
    common = dict(frames=frames, budget_ms=after["budget_ms"], p99_ms=after["p99_ms"])
    if overruns:
        outcome = "fail" if overruns > OVERRUN_FAIL * max(frames, 1) else "warn"
        result.add(outcome, "frameloop.overruns", overruns=overruns, **common)
    else:
        result.add("pass", "frameloop.ok", fps=after["fps"], **common)


async def storage(ix, result: CheckResult) -> None:
    state = ix.state_dir
    usage = shutil.disk_usage(state)
    free_mb = usage.free // (1024 * 1024)
    result.values.update(free_mb=free_mb, total_mb=usage.total // (1024 * 1024))
    if free_mb < FREE_WARN_MB:
        result.add("fail" if free_mb < FREE_FAIL_MB else "warn", "storage.low", free_mb=free_mb,
                   path=str(state), limit_mb=FREE_WARN_MB)
    probe = state / f".selftest-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"ledwarden")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        result.add("fail", "storage.readonly", path=str(state), error=exc.strerror or str(exc))
    faults = ix.faults
    if faults is not None:
        verdict = await asyncio.get_running_loop().run_in_executor(None, faults.integrity)
        result.values["fault_log"] = verdict
        if verdict != "ok":
            result.add("fail", "storage.faultlog", detail=verdict)
    if not result.findings:
        result.add("pass", "storage.ok", free_mb=free_mb)


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def clock(ix, result: CheckResult) -> None:
    now = time.time()
    built = BUILD_STAMP.stat().st_mtime
    last = ix.history.last_started()
    result.values.update(now=_stamp(now), built=_stamp(built), last_run=last)
    if now < built:
        result.add("fail", "clock.before_build", now=_stamp(now), built=_stamp(built))
    if last and _stamp(now) < last:
        result.add("fail", "clock.backwards", now=_stamp(now), last=last)
    if not result.findings:
        result.add("pass", "clock.ok", now=_stamp(now))
