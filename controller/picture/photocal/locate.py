"""Where every LED of a region is in the photos: the homography from the registration photo.

Found without knowing the camera's position: the lit LEDs are blobs above
the dark; blobs within about one LED pitch of each other are grouped, and
the four groups of several blobs are the corner blocks, which give a first
homography (the LEDs' plane to the photo's pixels).  Every blob is then
given the LED the homography puts nearest, and the homography is fitted
again to all of them (OpenCV's ``findHomography``, RANSAC against stray
blobs), twice.  A dead LED is a blob missing, nothing more; a corner block
still groups with a few of its nine LEDs dark.

LED (x, y) of the region is centred at (x + 0.5, y + 0.5) in the plane;
pixel centres are whole numbers (OpenCV's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from controller.picture.photocal.photos import MARK, STEP, Photo, PhotoError, registration_lit

#: Most a fitted LED may lie from its blob, in pitches, for the grid to count as found.
MAX_RESIDUAL = 0.15


@dataclass(frozen=True)
class Grid:
    homography: np.ndarray      # LED plane -> photo pixels
    matched: int                # lit LEDs found
    expected: int
    residual: float             # rms distance of found LEDs from the fit, in pitches


def _blobs(photo: Photo) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (intensity-weighted) and light (summed above the background) of bright blobs."""
    gray = photo.image.astype(np.float32).sum(axis=2)
    background = float(np.median(gray))
    noise = 1.4826 * float(np.median(np.abs(gray - background))) + 1.0
    peak = float(cv2.blur(gray, (3, 3)).max())
    threshold = background + max(0.2 * (peak - background), 10 * noise)
    count, labels = cv2.connectedComponents((gray > threshold).astype(np.uint8), connectivity=8)
    weight = np.maximum(gray - background, 0).ravel()
    flat = labels.ravel()
    gy, gx = np.indices(gray.shape)
    total = np.bincount(flat, weight, count)[1:]
    cx = np.bincount(flat, weight * gx.ravel(), count)[1:] / total
    cy = np.bincount(flat, weight * gy.ravel(), count)[1:] / total
    return np.stack([cx, cy], axis=1), total


def _nearest(centres: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Each centre's distance to its nearest other centre (in chunks: bounded memory)."""
    out = np.empty(len(centres))
    for i in range(0, len(centres), chunk):
        d = np.hypot(*(centres[i:i + chunk, None, :] - centres[None, :, :]).transpose(2, 0, 1))
        d[np.arange(len(d)), np.arange(i, i + len(d))] = np.inf
        out[i:i + chunk] = d.min(axis=1)
    return out


def _corner_blocks(photo: Photo, centres: np.ndarray, light: np.ndarray, lit: int) -> np.ndarray:
    """The four corner blocks' centres in the photo, ordered TL, TR, BR, BL.

    The pitch comes from the single LEDs, :data:`STEP` pitches from their nearest neighbour
    (they are most of the far-apart blobs); blobs closer than a pitch are grouped, and a block
    is a group with several LEDs' light — nine blobs when sharp, one when blurred.
    """
    if len(centres) < 8:
        raise PhotoError(f"{photo.name}: {len(centres)} lit spots found, not the registration "
                         f"pattern's corner blocks and grid; is it the registration photo, in "
                         f"focus, with the pattern shown?")
    if len(centres) > 2 * lit:
        raise PhotoError(f"{photo.name}: {len(centres)} lit spots, far more than the "
                         f"registration pattern's {lit}; is it a full-field photo? Show the "
                         f"registration pattern and take the photo again")
    pitch = float(np.percentile(_nearest(centres), 90)) / STEP
    h, w = photo.image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for x, y in np.rint(centres).astype(int):
        cv2.circle(mask, (int(x), int(y)), max(1, int(round(0.8 * pitch))), 1, -1)
    _, groups = cv2.connectedComponents(mask)
    ix = np.clip(np.rint(centres).astype(int), 0, [w - 1, h - 1])
    of_blob = groups[ix[:, 1], ix[:, 0]]
    group_light = np.bincount(of_blob, light)
    used = np.unique(of_blob)
    single = float(np.median(group_light[used]))
    blocks = [int(g) for g in used if group_light[g] >= 3.5 * single]
    if len(blocks) != 4:
        raise PhotoError(f"{photo.name}: the registration pattern's grid is not found "
                         f"({len(blocks)} of the four corner blocks seen); show the registration "
                         f"pattern, keep the whole region and a dark margin in the frame, focus, "
                         f"and take the photo again")
    marks = np.array([np.average(centres[of_blob == g], axis=0, weights=light[of_blob == g])
                      for g in blocks])
    s, t = marks.sum(axis=1), marks[:, 0] - marks[:, 1]
    order = [int(np.argmin(s)), int(np.argmax(t)), int(np.argmax(s)), int(np.argmin(t))]
    if len(set(order)) != 4:
        raise PhotoError(f"{photo.name}: the corner blocks do not make a quadrilateral; hold "
                         f"the camera level and square to the wall")
    return marks[order]


def locate(photo: Photo, width: int, height: int) -> Grid:
    """The homography of a ``width`` x ``height`` region from its registration photo."""
    lit = registration_lit(width, height)
    centres, light = _blobs(photo)
    marks = _corner_blocks(photo, centres, light, int(lit.sum()))
    m = MARK / 2
    plane = np.array([[m, m], [width - m, m], [width - m, height - m], [m, height - m]],
                     np.float32)
    hom = cv2.getPerspectiveTransform(plane, marks.astype(np.float32))
    matched = 0
    residual = np.inf
    for _ in range(3):
        uv = cv2.perspectiveTransform(centres[None].astype(np.float64), np.linalg.inv(hom))[0]
        led = np.floor(uv).astype(int)
        inside = (led[:, 0] >= 0) & (led[:, 0] < width) & (led[:, 1] >= 0) & (led[:, 1] < height)
        near = np.hypot(*(uv - led - 0.5).T) < 0.4
        ok = inside & near
        ok[ok] = lit[led[ok, 1], led[ok, 0]]
        if ok.sum() < 8:
            break
        src = (led[ok] + 0.5).astype(np.float64)
        found, _ = cv2.findHomography(src, centres[ok], cv2.RANSAC, 1.0)
        if found is None:
            break
        hom = found
        back = cv2.perspectiveTransform(centres[ok][None], np.linalg.inv(hom))[0]
        residual = float(np.sqrt(np.mean(np.sum((back - src) ** 2, axis=1))))
        matched = int(ok.sum())
    expected = int(lit.sum())
    seen = cv2.perspectiveTransform(marks[None].astype(np.float64), np.linalg.inv(hom))[0]
    if np.hypot(*(seen - plane).T).max() > 0.5:
        raise PhotoError(f"{photo.name}: the corner blocks are not where a {width}x{height} "
                         f"region's are; check the region's size in LEDs and that the photo "
                         f"shows that region's registration pattern, and take it again")
    if matched < 0.5 * expected or residual > MAX_RESIDUAL:
        raise PhotoError(f"{photo.name}: the LED grid is not found ({matched} of {expected} "
                         f"registration LEDs placed, {residual:.2f} pitch off); check that the "
                         f"region's size is right and the photo sharp, and take it again")
    return Grid(hom, matched, expected, residual)
