"""Each LED's three primaries in XYZ, from the full-field photos of a located region.

Why the photos are rectified rather than sampled at each spot: turned into
the wall's plane (``warpPerspective``, the homography from :mod:`.locate`) at
a whole number of pixels per LED, every LED owns a square cell, and its light
is the sum over the cell — no spot shape to assume.  The plane is sampled
twice as finely as the photo: a cell's edge then falls inside photo pixels,
splitting their light, where giving each photo pixel wholly to one cell
made an LED's sum depend on where its edges fell (0.5 % per LED, measured).  Each cell's sum is then
multiplied by the homography's local area ratio (photo pixels per plane
pixel), since a tilted camera sees near LEDs larger but not brighter.
Before that, the photo is divided by the lens's vignetting (the camera
profile) and, after, the stray light is taken off: the median of the dark
margin around the region.

A lens blurs some of an LED's light into its neighbours' cells.  The
registration photo's isolated LEDs show how much (a 3x3 kernel, the share
of light landing in each neighbouring cell); in a full field every LED
spreads alike, so the cell sums are the LEDs' light convolved with that
kernel, which is undone by a few Jacobi iterations.  When an LED keeps less
than :data:`MIN_OWN` of its light the photo is called blurred.

Camera R, G, B become XYZ through the inverse of the profile's colour matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from controller.picture.photocal.locate import Grid, locate
from controller.picture.photocal.photos import (PRIMARIES, CameraProfile, Photo, PhotoError,
                                                registration_lit)

#: Plane pixels per photo pixel when the photo is turned into the wall's plane: finer than
#: the photo, so a cell's edge falls between photo pixels, as it does on the sensor.
SUPERSAMPLE = 2
#: Dark LEDs photographed around the region: where the stray light is measured.
MARGIN = 2
#: Least share of an LED's light on its own cell for a sharp photo.
MIN_OWN = 0.55
#: Least share of the region's LEDs lit in a full-field photo.
MIN_LIT = 0.8


@dataclass(frozen=True)
class Measurement:
    primaries: np.ndarray     # float64[h][w][3][3]: XYZ of R, G, B (rows) per LED, camera's scale
    own_share: float          # share of an LED's light on its own cell, before deconvolution
    grid: Grid


class _Cells:
    """Photos of one region, turned into per-LED cell sums (margin included)."""

    def __init__(self, grid: Grid, width: int, height: int, profile: CameraProfile,
                 shape: tuple[int, int]) -> None:
        hom = grid.homography
        self.width, self.height, self.profile, self.shape = width, height, profile, shape
        centre = hom @ np.array([width / 2, height / 2, 1.0])
        local = np.sqrt(abs(np.linalg.det(hom)) / abs(centre[2]) ** 3)
        self.scale = s = max(4, int(np.ceil(SUPERSAMPLE * local)))
        to_plane = np.array([[1 / s, 0, 0.5 / s - MARGIN], [0, 1 / s, 0.5 / s - MARGIN], [0, 0, 1]])
        self.warp = hom @ to_plane
        self.cells_w, self.cells_h = width + 2 * MARGIN, height + 2 * MARGIN
        v, u = np.mgrid[0:self.cells_h, 0:self.cells_w] + 0.5 - MARGIN
        w = hom[2, 0] * u + hom[2, 1] * v + hom[2, 2]
        self.area = np.abs(np.linalg.det(hom) / w ** 3) / s ** 2     # photo px per plane px
        self.hom = hom
        self.flat = profile.flat(*shape)

    def check_inside(self, photo: Photo) -> None:
        corners = np.array([[-MARGIN, -MARGIN], [self.width + MARGIN, -MARGIN],
                            [self.width + MARGIN, self.height + MARGIN],
                            [-MARGIN, self.height + MARGIN]], np.float64)
        xy = cv2.perspectiveTransform(corners[None], self.hom)[0]
        h, w = self.shape
        if (xy < 0).any() or (xy[:, 0] > w - 1).any() or (xy[:, 1] > h - 1).any():
            raise PhotoError(f"{photo.name}: the region runs out of the frame; leave a dark "
                             f"margin of {MARGIN} LEDs around it in every photo")

    def clipped(self, photo: Photo) -> int:
        """How many of the region's LEDs have a clipped pixel in their cell."""
        ys, xs = np.nonzero((photo.image >= self.profile.clip_level).any(axis=2))
        if not len(xs):
            return 0
        uv = cv2.perspectiveTransform(np.stack([xs, ys], 1)[None].astype(np.float64),
                                      np.linalg.inv(self.hom))[0]
        led = np.floor(uv).astype(int)
        ok = ((led[:, 0] >= 0) & (led[:, 0] < self.width) & (led[:, 1] >= 0)
              & (led[:, 1] < self.height))
        return len(np.unique(led[ok, 1] * self.width + led[ok, 0]))

    def cells(self, photo: Photo) -> np.ndarray:
        """``float64[h + 2m][w + 2m][3]``: each cell's light in camera R, G, B, stray light off."""
        if photo.image.shape[:2] != self.shape:
            raise PhotoError(f"{photo.name}: is {photo.image.shape[1]}x{photo.image.shape[0]} "
                             f"pixels, unlike the registration photo; take every photo with "
                             f"the same camera settings")
        self.check_inside(photo)
        image = photo.image.astype(np.float32) / self.flat[..., None]
        s = self.scale
        rect = cv2.warpPerspective(image, self.warp, (self.cells_w * s, self.cells_h * s),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        band = np.ones(rect.shape[:2], bool)
        band[s:-s, s:-s] = False
        stray = rect[band].mean(axis=0, dtype=np.float64)
        # block means by OpenCV's area resampling (an exact integer factor): ten times faster
        # than NumPy's reshape-and-sum on a cabinet's photo
        means = cv2.resize(rect, (self.cells_w, self.cells_h), interpolation=cv2.INTER_AREA)
        out: np.ndarray = (means.astype(np.float64) - stray) * (s * s) * self.area[..., None]
        return out


def _kernel(cells: np.ndarray, width: int, height: int) -> np.ndarray:
    """The 3x3 share of an isolated LED's light per cell around it (median over the LEDs)."""
    lit = registration_lit(width, height)
    padded = np.pad(lit, 2)
    luminous = cells.sum(axis=2)
    shares = []
    for y, x in np.argwhere(lit):
        if padded[y:y + 5, x:x + 5].sum() != 1:        # another lit LED within two
            continue
        around = luminous[y:y + 5, x:x + 5]            # cells has the margin: LED at y + 2
        total = around.sum()
        if total > 0:
            shares.append(around[1:4, 1:4] / total)
    if not shares:
        return np.pad(np.ones((1, 1)), 1)
    out: np.ndarray = np.median(np.array(shares), axis=0)
    return out


def _deconvolve(measured: np.ndarray, kernel: np.ndarray, rounds: int = 40) -> np.ndarray:
    """The LEDs' light ``t`` from cell sums ``m = K * t`` (LEDs outside the region dark)."""
    own = kernel[1, 1]
    spill = kernel[::-1, ::-1].copy()
    spill[1, 1] = 0
    t = measured / own
    for _ in range(rounds):
        t = (measured - cv2.filter2D(t, -1, spill, borderType=cv2.BORDER_CONSTANT)) / own
    return t


def _check_field(photo: Photo, xyz: np.ndarray, primary: str) -> None:
    luminous = xyz[..., 1]
    lit = luminous > 0.25 * np.percentile(luminous, 90)
    if lit.mean() < MIN_LIT:
        raise PhotoError(f"{photo.name}: only {100 * lit.mean():.0f} % of the region's LEDs are "
                         f"lit; is it the full-field {primary} photo of this region?")
    mean = xyz[lit].mean(axis=0)
    chroma = mean / mean.sum()
    seen = PRIMARIES[int(np.argmax(chroma))] if chroma.max() > 0.5 else "white"
    if seen != primary:
        raise PhotoError(f"{photo.name}: shows {seen}, not the full-field {primary}; check "
                         f"which photo is which and give them in the order red, green, blue")


def measure(registration: Photo, fields: Sequence[Sequence[Photo]], width: int, height: int,
            profile: CameraProfile) -> Measurement:
    """Every LED's primaries in a ``width`` x ``height`` region from its photos: the
    registration photo and, for red, green and blue in turn, one or more full-field photos.

    Several photos of one primary are averaged: the shot noise of the camera's weak channels
    (its green seeing the blue LEDs) is what limits how well blue's luminance is measured.
    """
    if len(fields) != 3 or not all(fields):
        raise PhotoError("give at least one full-field photo each of red, green and blue")
    grid = locate(registration, width, height)
    rect = _Cells(grid, width, height, profile, registration.image.shape[:2])
    kernel = _kernel(rect.cells(registration), width, height)
    own = float(kernel[1, 1])
    if own < MIN_OWN:
        raise PhotoError(f"{registration.name}: blurred — an LED keeps only {100 * own:.0f} % "
                         f"of its light on its own place; focus on the wall by hand, hold the "
                         f"camera still and take all the photos again")
    for photo in (registration, *(p for shots in fields for p in shots)):
        clipped = rect.clipped(photo)
        if clipped:
            raise PhotoError(f"{photo.name}: {clipped} LEDs are clipped (over-exposed); lower "
                             f"the exposure (shorter time or smaller aperture), keep it the same "
                             f"for every photo and take them all again")
        top = int(photo.image.max())
        if top < 0.03 * profile.clip_level:
            raise PhotoError(f"{photo.name}: under-exposed (brightest pixel {top} of "
                             f"{profile.clip_level}); lengthen the exposure until the brightest "
                             f"LEDs reach half of full scale, the same for every photo")
    inverse = np.linalg.inv(profile.colour)
    primaries = np.empty((height, width, 3, 3))
    for k, shots in enumerate(fields):
        taken = []
        for photo in shots:
            cells = rect.cells(photo)[MARGIN:MARGIN + height, MARGIN:MARGIN + width]
            _check_field(photo, cells @ inverse.T, PRIMARIES[k])
            taken.append(cells)
        cells = np.mean(taken, axis=0)
        rgb = np.stack([_deconvolve(np.ascontiguousarray(cells[..., c]), kernel)
                        for c in range(3)], axis=-1)
        primaries[:, :, k] = rgb @ inverse.T
    return Measurement(primaries, own, grid)
