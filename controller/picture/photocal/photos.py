"""What the calibration is given: the patterns the wall shows, the photos, the camera's profile.

A set of photos covers one rectangle of LEDs (a region: the whole wall, a
cabinet, a module with its neighbours), photographed with the camera on a
tripod, unmoved, at one manual exposure:

1. ``registration``: :func:`registration_pattern` — a 3x3 block of lit LEDs
   in each corner of the region and single LEDs every :data:`STEP` LEDs
   between, everything else dark.  The corner blocks fix which way round the
   region is; the single LEDs pin the grid down everywhere (a few dead ones
   do not matter) and, being isolated, show how much of an LED's light the
   lens spreads onto its neighbours;
2. ``red``, ``green``, ``blue``: every LED of the region at full drive in that
   primary (:func:`full_field`), with the calibration off, so the photo
   shows the LEDs' own primaries.

Photos are linear 16-bit RGB (PNG or TIFF, as a RAW converter writes them:
no white balance, no tone curve).  :class:`CameraProfile` is what was
measured once about the camera: its colour response (a 3x3 matrix from XYZ
to its R, G, B, against a colorimeter) and its lens's vignetting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.errors import LedwardenError

#: Lattice step of the registration pattern's single LEDs, in LEDs.
STEP = 8
#: Side of the corner blocks, in LEDs.
MARK = 3
PRIMARIES = ("red", "green", "blue")
#: A pixel at or above this code is clipped: 12-bit left-aligned tops out at 65520.
CLIP_LEVEL = 65520


class PhotoError(LedwardenError, ValueError):
    """A photo (or the camera profile) cannot be used; the message names it and what to do."""


@dataclass(frozen=True)
class Photo:
    name: str
    image: np.ndarray       # uint16[h][w][3], R, G, B


@dataclass(frozen=True)
class CameraProfile:
    """The camera, measured once: ``colour`` maps XYZ to camera R, G, B; ``vignetting`` is
    (k1, k2) of ``1 + k1 r² + k2 r⁴`` (r: distance from the centre over the half diagonal)."""

    colour: np.ndarray = field(default_factory=lambda: np.eye(3))
    vignetting: tuple[float, float] = (0.0, 0.0)
    clip_level: int = CLIP_LEVEL

    def __post_init__(self) -> None:
        colour = np.asarray(self.colour, float)
        if colour.shape != (3, 3) or not np.isfinite(colour).all() \
                or abs(np.linalg.det(colour)) < 1e-9:
            raise PhotoError("the camera profile's colour matrix must be 3x3, finite and "
                             "invertible; measure it again against the colorimeter")
        object.__setattr__(self, "colour", colour)

    @classmethod
    def read(cls, path: Path) -> CameraProfile:
        """A profile from JSON: ``{"colour": [[...], [...], [...]], "vignetting": [k1, k2]}``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(np.array(data["colour"], float),
                       (float(data.get("vignetting", [0, 0])[0]),
                        float(data.get("vignetting", [0, 0])[1])))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise PhotoError(f"{path}: not a camera profile ({exc}); it is JSON with a 3x3 "
                             f"'colour' matrix and optional 'vignetting' [k1, k2]") from None

    def flat(self, height: int, width: int) -> np.ndarray:
        """``float32[h][w]``: the share of light the lens passes at each pixel."""
        gy, gx = np.mgrid[0:height, 0:width].astype(np.float32)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        rr = ((gx - cx) ** 2 + (gy - cy) ** 2) / (cx ** 2 + cy ** 2)
        k1, k2 = self.vignetting
        out: np.ndarray = (1 + k1 * rr + k2 * rr ** 2).astype(np.float32)
        return out


def read_photo(path: Path) -> Photo:
    """A linear 16-bit RGB photo from a PNG or TIFF file."""
    import cv2     # here, not at the top: the frame loop imports this module for its patterns
    name = Path(path).name
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise PhotoError(f"{name}: cannot be read as an image; give the linear 16-bit PNG or "
                         f"TIFF the RAW converter wrote")
    if image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise PhotoError(f"{name}: is {image.dtype} with {1 if image.ndim == 2 else image.shape[2]}"
                         f" channel(s); convert the RAW file to linear 16-bit RGB (no white "
                         f"balance, no tone curve)")
    return Photo(name, np.ascontiguousarray(image[..., 2::-1]))


def registration_lit(width: int, height: int) -> np.ndarray:
    """``bool[h][w]``: the LEDs the registration pattern lights."""
    lit = np.zeros((height, width), bool)
    lit[STEP // 2::STEP, STEP // 2::STEP] = True
    clear = MARK + 2                      # no single LED next to a block: it would join it
    for y0, x0 in ((0, 0), (0, width - clear), (height - clear, 0), (height - clear, width - clear)):
        lit[y0:y0 + clear, x0:x0 + clear] = False
    for y0 in (0, height - MARK):
        for x0 in (0, width - MARK):
            lit[y0:y0 + MARK, x0:x0 + MARK] = True
    return lit


def registration_pattern(width: int, height: int) -> np.ndarray:
    """``uint8[h][w][3]``: the registration frame for a region of ``width`` x ``height`` LEDs."""
    if width < 2 * MARK + 2 or height < 2 * MARK + 2:
        raise PhotoError(f"a region of {width}x{height} LEDs is too small to photograph for "
                         f"calibration; take at least {2 * MARK + 2}x{2 * MARK + 2}")
    frame = np.zeros((height, width, 3), np.uint8)
    frame[registration_lit(width, height)] = 255
    return frame


def full_field(width: int, height: int, primary: str) -> np.ndarray:
    """``uint8[h][w][3]``: every LED at full drive in ``primary`` (red, green or blue)."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., PRIMARIES.index(primary)] = 255
    return frame
