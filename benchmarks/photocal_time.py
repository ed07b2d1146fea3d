"""How long does calibration from photographs take for a 1080p wall, photos to coefficients?

Run: ``.venv/bin/python benchmarks/photocal_time.py [--cabinets N]`` (all 36 cabinets by
default: several minutes, most of it making the photos, which is not timed).

The wall is 1920 x 1080 LEDs, 6 x 6 cabinets of 320 x 180 (5 x 5 modules of 64 x 36), aged
three years, from :mod:`hw.sim.photometry`.  A camera a few metres away resolves one cabinet
at a time (about 5 photo pixels per LED, 1.8 megapixels), so each cabinet is photographed
alone, as an installer does: its registration pattern and two full fields (``--shots``) each
of red, green and blue, averaged, the rest of the wall dark (:mod:`hw.sim.camera`).  Timed, per cabinet: reading one
PNG file per photo (decoding, as from the camera card), finding the grid and measuring every
LED (:func:`controller.picture.photocal.measure.measure`); then, once for the whole wall, the
common target and every LED's coefficients, and cutting them into the cabinets' checked Q1.14
arrays.  The photos are made in memory and one is written to PNG to time the decoding (the
252 files would take 2.6 GB).  Also printed: the wall's luminance non-uniformity before and
after, from the physical model (the ground truth), so a fast wrong answer shows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from controller.config import loads_screen
from controller.fastpath import reference
from controller.fastpath.settings import power_lut
from controller.picture.photocal import measure, photos, solve
from hw.sim import camera, photometry

W, H, CAB_W, CAB_H, MOD_W, MOD_H = 1920, 1080, 320, 180, 64, 36


def screen_text() -> str:
    cabs = "".join(f"""
[[cabinets]]
address = {i + 1}
x = {CAB_W * (i % 6)}
y = {CAB_H * (i // 6)}
module = "m"
modules_x = 5
modules_y = 5
chain = "serpentine"
rotation = 0
""" for i in range(36))
    return f"""
[screen]
name = "1080p photo calibration"
width = {W}
height = {H}

[modules.m]
width = {MOD_W}
height = {MOD_H}
scan = 9
""" + cabs


def nonuniformity(wall: photometry.Wall, calib: np.ndarray | None) -> list[float]:
    out = []
    for k in range(3):
        frame = np.zeros((H, W, 3), np.uint8)
        frame[..., k] = 255
        y = photometry.emit(wall, reference.correct(frame, power_lut(1.0), [65536] * 3,
                                                    calib))[..., 1]
        out.append(float(y.std() / y.mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cabinets", type=int, default=36, help="measure only the first N")
    parser.add_argument("--shots", type=int, default=2, help="full-field photos per primary")
    args = parser.parse_args()
    layout = loads_screen(screen_text())
    wall = photometry.make_wall(W, H, MOD_W, MOD_H, seed=19)
    cam = camera.Camera(width=1700, height=1000)
    hom = camera.view(cam, CAB_W, CAB_H, px_per_led=5.0, rotation_deg=1.0, keystone=(0.03, 0.02))
    profile = photos.CameraProfile(cam.colour, cam.vignetting)
    primaries = np.zeros((H, W, 3, 3))
    primaries[:] = np.eye(3)                 # unmeasured cabinets (with --cabinets) stay apart
    timed = made = decode = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for cab in layout.cabinets[:args.cabinets]:
            t0 = time.perf_counter()
            truth = wall.primaries[cab.y:cab.y + CAB_H, cab.x:cab.x + CAB_W]
            white = np.einsum("yxkc->yxc", truth)
            exposure = camera.exposure_for(cam, hom, white, 0.6)
            frames = [photos.registration_pattern(CAB_W, CAB_H)] + [
                photos.full_field(CAB_W, CAB_H, p) for p in photos.PRIMARIES
                for _ in range(args.shots)]
            shot = [photos.Photo(f"cab{cab.address}-{i}.png", camera.photograph(
                cam, hom, np.einsum("yxk,yxkc->yxc", f / 255.0, truth), exposure, shot=i))
                for i, f in enumerate(frames)]
            if not decode:
                path = Path(tmp) / "one.png"
                camera.write_png(path, shot[0].image)
                t = time.perf_counter()
                photos.read_photo(path)
                decode = time.perf_counter() - t
            t1 = time.perf_counter()
            fields = [shot[1 + k * args.shots:1 + (k + 1) * args.shots] for k in range(3)]
            found = measure.measure(shot[0], fields, CAB_W, CAB_H, profile)
            t2 = time.perf_counter()
            primaries[cab.y:cab.y + CAB_H, cab.x:cab.x + CAB_W] = found.primaries
            made += t1 - t0
            files = len(shot)
            timed += t2 - t1 + files * decode
            print(f"cabinet {cab.address}: measured in {t2 - t1:.2f} s (+ {files * decode:.2f} s "
                  f"reading {files} PNG files); photos made in {t1 - t0:.1f} s", flush=True)
    if args.cabinets < len(layout.cabinets):
        print(f"measured {args.cabinets} of {len(layout.cabinets)} cabinets: "
              f"{timed / args.cabinets * len(layout.cabinets):.1f} s for the wall, extrapolated")
        return
    t = time.perf_counter()
    result = solve.calibrate(primaries)
    q = result.q14()
    per_cabinet = solve.per_cabinet(layout, q)
    solved = time.perf_counter() - t
    print(f"target and coefficients for {W}x{H} LEDs, cut into {len(per_cabinet)} cabinets: "
          f"{solved:.2f} s (level {result.level:.3f}, desaturation {result.desaturation:.3f})")
    print(f"photos to coefficients, 1080p wall: {timed + solved:.1f} s "
          f"(making the photos, not timed: {made:.0f} s)")
    before, after = nonuniformity(wall, None), nonuniformity(wall, q)
    print("luminance sd/mean R G B: before "
          + " ".join(f"{100 * v:.2f} %" for v in before) + "; after "
          + " ".join(f"{100 * v:.2f} %" for v in after))


if __name__ == "__main__":
    main()
