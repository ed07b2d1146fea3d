"""A camera photographing the simulated wall: what an engineer's camera gives after RAW conversion.

The calibration from photographs (issue 19) is tested against photos made
here and judged against the wall's own light (:mod:`hw.sim.photometry`), so
this model puts in what a real photo has and the calibration must undo or
survive, each from its physical cause:

- **perspective**: the camera is not exactly square to the wall; the wall's
  plane maps to the sensor by a homography (:func:`view`: scale, rotation,
  keystone in both directions, offset);
- **a spot per LED with dark gaps**: each LED is a small emitter
  (``emitter`` of the pitch) blurred by the lens (``psf_sigma``, in pitches),
  so a spot is a Gaussian of both widths, integrated exactly over each pixel
  (the error function), which keeps every LED's light;
- **vignetting**: the lens passes less light towards the corners,
  ``1 + k1 r² + k2 r⁴`` with r the distance from the centre over the half
  diagonal;
- **colour response**: the sensor's R, G, B are a 3x3 matrix of XYZ
  (``colour``), not XYZ itself — the matrix a calibration must be given,
  measured once against a colorimeter;
- **stray light, noise, quantisation, clipping**: a uniform ambient level,
  photon shot noise (Poisson in electrons), read noise, a ``bits``-deep ADC
  that clips at the full well, written left-aligned in 16 bits (as RAW
  converters write linear 16-bit files).

Photos are ``uint16[h][w][3]`` in R, G, B order; :func:`write_png` stores one
as a 16-bit PNG (OpenCV writes B, G, R, so it is turned around).  Seeded: the
same camera, seed and shot number give the same photo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hw.sim.photometry import nominal_primaries

#: Camera R, G, B (rows) of the nominal LED primaries (columns): broad filters overlap.
_CAMERA_OF_PRIMARIES = np.array([[0.80, 0.09, 0.02],
                                 [0.14, 0.88, 0.10],
                                 [0.01, 0.07, 0.95]])


def default_colour() -> np.ndarray:
    """The simulated sensor's ``XYZ -> camera RGB`` matrix."""
    out: np.ndarray = _CAMERA_OF_PRIMARIES @ np.linalg.inv(nominal_primaries().T)
    return out


@dataclass(frozen=True)
class Camera:
    width: int = 640
    height: int = 480
    colour: np.ndarray = field(default_factory=default_colour)
    bits: int = 12
    full_well: float = 50000.0       # electrons at which a pixel clips
    read_noise: float = 4.0          # electrons rms
    psf_sigma: float = 0.15          # lens blur, LED pitches
    emitter: float = 0.3             # emitting square's side, LED pitches
    vignetting: tuple[float, float] = (-0.25, 0.04)
    ambient: float = 0.002           # stray light per pixel, share of the full well
    seed: int = 0


def view(camera: Camera, leds_w: int, leds_h: int, *, px_per_led: float = 6.0,
         rotation_deg: float = 0.0, keystone: tuple[float, float] = (0.0, 0.0),
         shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The homography from the wall's plane (LED units, LED (x, y) centred at x + 0.5, y + 0.5)
    to the photo's pixels (pixel centres at whole numbers).

    ``keystone`` shortens the right edge (first) and the bottom edge (second)
    by that share, as turning the camera off the wall's axis does.
    """
    w, h = leds_w * px_per_led, leds_h * px_per_led
    kx, ky = keystone
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2 * (1 - kx)],
                        [w / 2 * (1 - ky), h / 2 * (1 - kx)], [-w / 2, h / 2]])
    corners[3, 0] *= 1 - ky
    a = np.radians(rotation_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = np.array([(camera.width - 1) / 2 + shift[0], (camera.height - 1) / 2 + shift[1]])
    dst = corners @ rot.T + centre
    src = np.array([[0, 0], [leds_w, 0], [leds_w, leds_h], [0, leds_h]], float)
    out: np.ndarray = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    return out


def _phi(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF (Abramowitz and Stegun 7.1.26, error below 2e-7)."""
    x = np.abs(z) / np.sqrt(2)
    t = 1 / (1 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                         + t * 1.061405429))))
    erf = 1 - poly * np.exp(-x * x)
    out: np.ndarray = 0.5 * (1 + np.sign(z) * erf)
    return out


def _project(homography: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """Image position and the local scale (pixels per LED pitch) of wall points."""
    hm = homography
    w = hm[2, 0] * u + hm[2, 1] * v + hm[2, 2]
    x = (hm[0, 0] * u + hm[0, 1] * v + hm[0, 2]) / w
    y = (hm[1, 0] * u + hm[1, 1] * v + hm[1, 2]) / w
    scale = np.sqrt(np.abs(np.linalg.det(hm) / w ** 3))
    return x, y, scale


def exposure_for(camera: Camera, homography: np.ndarray, xyz: np.ndarray,
                 peak: float = 0.5) -> float:
    """Electrons per unit of camera signal that put the average LED's brightest pixel, in its
    brightest channel, at ``peak`` of the full well (what an engineer sets by the histogram)."""
    rgb = np.einsum("ck,yxk->yxc", camera.colour, xyz).mean(axis=(0, 1)).max()
    h, w = xyz.shape[:2]
    _, _, scale = _project(homography, np.array(w / 2), np.array(h / 2))
    sigma = float(np.sqrt(camera.psf_sigma ** 2 + camera.emitter ** 2 / 12) * scale)
    centre = float(_phi(np.array(0.5 / sigma)) - _phi(np.array(-0.5 / sigma))) ** 2
    return peak * camera.full_well / (rgb * centre)


def photograph(camera: Camera, homography: np.ndarray, xyz: np.ndarray, exposure: float,
               *, shot: int = 0) -> np.ndarray:
    """``uint16[h][w][3]``: the photo of LEDs emitting ``xyz`` (``float[H][W][3]``)."""
    leds_h, leds_w = xyz.shape[:2]
    v, u = np.mgrid[0:leds_h, 0:leds_w]
    cx, cy, scale = (a.ravel() for a in _project(homography, u.ravel() + 0.5, v.ravel() + 0.5))
    sigma = np.sqrt(camera.psf_sigma ** 2 + camera.emitter ** 2 / 12) * scale
    flux = exposure * np.einsum("ck,nk->nc", camera.colour, xyz.reshape(-1, 3))
    r = int(np.ceil(4.5 * sigma.max())) + 1
    d = np.arange(-r, r + 1)
    px = np.rint(cx)[:, None].astype(np.int64) + d          # pixels around each spot
    py = np.rint(cy)[:, None].astype(np.int64) + d
    s = sigma[:, None]
    wx = _phi((px + 0.5 - cx[:, None]) / s) - _phi((px - 0.5 - cx[:, None]) / s)
    wy = _phi((py + 0.5 - cy[:, None]) / s) - _phi((py - 0.5 - cy[:, None]) / s)
    inside = ((px[:, None, :] >= 0) & (px[:, None, :] < camera.width)
              & (py[:, :, None] >= 0) & (py[:, :, None] < camera.height))
    flat = (py[:, :, None] * camera.width + px[:, None, :])[inside]
    spot = (wy[:, :, None] * wx[:, None, :])
    image = np.empty((camera.height, camera.width, 3))
    for c in range(3):
        weights = (spot * flux[:, c, None, None])[inside]
        image[..., c] = np.bincount(flat, weights, camera.width * camera.height).reshape(
            camera.height, camera.width)
    gy, gx = np.mgrid[0:camera.height, 0:camera.width]
    rr = (((gx - (camera.width - 1) / 2) ** 2 + (gy - (camera.height - 1) / 2) ** 2)
          / (((camera.width - 1) / 2) ** 2 + ((camera.height - 1) / 2) ** 2))
    k1, k2 = camera.vignetting
    electrons = (image + camera.ambient * camera.full_well) * (1 + k1 * rr + k2 * rr ** 2)[..., None]
    rng = np.random.default_rng([camera.seed, shot, 7])
    electrons = rng.poisson(np.maximum(electrons, 0)) + rng.normal(0, camera.read_noise,
                                                                    electrons.shape)
    top = (1 << camera.bits) - 1
    dn = np.clip(np.rint(electrons * top / camera.full_well), 0, top).astype(np.uint16)
    out: np.ndarray = dn << np.uint16(16 - camera.bits)
    return out


def write_png(path: Path, photo: np.ndarray) -> None:
    """A photo as a linear 16-bit RGB PNG."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(photo[..., ::-1])):
        raise OSError(f"cannot write {path}")
