"""The calibration-from-photos rig: a simulated wall of four cabinets, the camera on it, and the
ground truth the calibration is judged by.

The wall shows frames through the controller's own correction (the fast path's NumPy
reference, so calibrated drive values go through the spec's integer arithmetic) and emits
what :mod:`hw.sim.photometry` says; the camera (:mod:`hw.sim.camera`) photographs that.  The
figures (non-uniformity, Δu′v′) are computed from the wall's emitted XYZ, never from photos.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from controller.config import loads_screen
from controller.fastpath import reference
from controller.fastpath.settings import power_lut
from controller.picture.photocal import photos
from hw.sim import camera, photometry

MODULE = 16
SCREEN = """
[screen]
name = "Photo calibration wall"
width = 64
height = 64

[modules.m]
width = 16
height = 16
scan = 8
""" + "".join(f"""
[[cabinets]]
address = {i + 1}
x = {32 * (i % 2)}
y = {32 * (i // 2)}
module = "m"
modules_x = 2
modules_y = 2
chain = "serpentine"
rotation = {180 if i == 3 else 0}
""" for i in range(4))
LAYOUT = loads_screen(SCREEN)
#: The module replaced after a repair (module column 1, row 2: inside cabinet 3, with
#: neighbours in cabinets 3 and 4 and 1).
REPLACED = (1, 2)
LINEAR = power_lut(1.0)
UNITY = [65536, 65536, 65536]


def shown(wall: photometry.Wall, frame: np.ndarray, calib: np.ndarray | None = None,
          at: tuple[int, int] = (0, 0)) -> np.ndarray:
    """XYZ per LED of the whole wall showing ``frame`` at LED ``at`` (x, y), black elsewhere,
    through the correction with ``calib`` (Q1.14, the screen's) or none."""
    screen = np.zeros((wall.height, wall.width, 3), np.uint8)
    x, y = at
    screen[y:y + frame.shape[0], x:x + frame.shape[1]] = frame
    return photometry.emit(wall, reference.correct(screen, LINEAR, UNITY, calib))


@dataclass
class Rig:
    wall: photometry.Wall
    cam: camera.Camera = field(default_factory=lambda: camera.Camera(width=800, height=700))
    px_per_led: float = 8.0
    rotation_deg: float = 1.5
    keystone: tuple[float, float] = (0.04, 0.02)
    peak: float = 0.6
    shots: int = 2
    exposure: float = 0.0            # of the last photos taken

    def profile(self, error: float = 0.003) -> photos.CameraProfile:
        """The camera as measured once against a colorimeter (to within ``error``)."""
        noise = np.random.default_rng(99).normal(0, error, (3, 3))
        return photos.CameraProfile(self.cam.colour * (1 + noise), self.cam.vignetting)

    def photos(self, region: tuple[int, int, int, int] | None = None,
               calib: np.ndarray | None = None, exposure: float | None = None
               ) -> tuple[photos.Photo, list[list[photos.Photo]]]:
        """The registration photo and the full fields of ``region`` (x, y, w, h), at the
        ``exposure`` given (one for several regions) or the one :attr:`peak` asks for."""
        x, y, w, h = region or (0, 0, self.wall.width, self.wall.height)
        hom = camera.view(self.cam, w, h, px_per_led=self.px_per_led,
                          rotation_deg=self.rotation_deg, keystone=self.keystone)
        if exposure is None:
            white = shown(self.wall, np.full((h, w, 3), 255, np.uint8), calib, (x, y))
            exposure = camera.exposure_for(self.cam, hom, white[y:y + h, x:x + w], self.peak)
        count = [0]

        def take(frame: np.ndarray, name: str) -> photos.Photo:
            count[0] += 1
            xyz = shown(self.wall, frame, calib, (x, y))[y:y + h, x:x + w]
            return photos.Photo(name, camera.photograph(self.cam, hom, xyz, exposure,
                                                        shot=count[0]))

        reg = take(photos.registration_pattern(w, h), "registration.png")
        self.exposure = exposure
        fields = [[take(photos.full_field(w, h, p), f"{p}-{i + 1}.png") for i in range(self.shots)]
                  for p in photos.PRIMARIES]
        return reg, fields


def nonuniformity(wall: photometry.Wall, calib: np.ndarray | None,
                  skip: np.ndarray | None = None) -> np.ndarray:
    """sd / mean of luminance across LEDs, per primary shown alone (dead LEDs ``skip``-ped)."""
    out = []
    for k in range(3):
        frame = np.zeros((wall.height, wall.width, 3), np.uint8)
        frame[..., k] = 255
        y = shown(wall, frame, calib)[..., 1]
        if skip is not None:
            y = y[~skip]
        out.append(y.std() / y.mean())
    return np.array(out)


def neighbours(wall: photometry.Wall, mx: int, my: int) -> np.ndarray:
    """``bool[H][W]``: the LEDs of the (up to eight) modules around module (mx, my)."""
    mask = np.zeros((wall.height, wall.width), bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            nx, ny = mx + dx, my + dy
            if (dx or dy) and 0 <= nx < wall.width // MODULE and 0 <= ny < wall.height // MODULE:
                mask[wall.module_slice(nx, ny)] = True
    return mask


def white_difference(wall: photometry.Wall, calib: np.ndarray | None, mx: int, my: int) -> float:
    """Δu′v′ between module (mx, my)'s mean white and its neighbours'."""
    white = shown(wall, np.full((wall.height, wall.width, 3), 255, np.uint8), calib)
    inside = white[wall.module_slice(mx, my)].reshape(-1, 3).mean(axis=0)
    around = white[neighbours(wall, mx, my)].mean(axis=0)
    return float(np.linalg.norm(photometry.upvp(inside) - photometry.upvp(around)))
