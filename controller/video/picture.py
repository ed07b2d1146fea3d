"""From the pipeline's card buffers back to the screen's picture, in 8 bits per channel.

DDP receivers and Colorlight cards take a picture (rows of RGB bytes), while
the pipeline's output is each card's ``uint16`` buffer in scan order.  Rather
than a second copy of the scan rules, the map from buffer positions to screen
positions is *measured* once by pushing an index image through the NumPy
reference's own ``module_scan``: whatever the reference does (chains,
rotation, scan groups), the inverse follows it by construction.

The 16 → 8 bit step is the card's table, ``fastpath.encode_table(gamma)``
(the inverse of the card's own curve; 1.0, the default, gives
``round(v * 255 / 65535)``, so with gamma 1.0, no calibration and full
brightness the picture that arrives equals the picture that went in).  This
is the path for card buffers (``send(scan)``); the frame loop gives the
8-bit sinks the frame instead, and :class:`controller.fastpath.Encoder` does
correction and table in one C pass straight into the packets, with the same
bytes (tests/video check both).
"""

from __future__ import annotations

import numpy as np

from controller.config import Layout
from controller.fastpath import reference
from controller.fastpath.common import ScanResult
from controller.fastpath.reencode import encode_table


def linear_encode_table() -> np.ndarray:
    """``uint8[65536]``: ``round(v * 255 / 65535)``, exact for ``v = x * 257`` (a linear card)."""
    return encode_table(1)


def _scan_positions(layout: Layout) -> dict[int, np.ndarray]:
    """For each card, the flat screen index (``(y * W + x) * 3 + c``) of every buffer entry."""
    size = layout.height * layout.width * 3
    index = np.arange(size, dtype=np.int64).reshape(layout.height, layout.width, 3)
    low = reference.module_scan((index & 0xFFFF).astype(np.uint16), layout)
    high = reference.module_scan((index >> 16).astype(np.uint16), layout)
    return {a: (high.buffers[a].astype(np.int64) << 16) | low.buffers[a]
            for a in low.buffers}


def _pixel_gather(layout: Layout, positions: dict[int, np.ndarray]) -> np.ndarray:
    """For each screen pixel, its pixel's place in the cards' buffers laid end to end.

    A buffer holds each pixel's three channels together, so whole pixels are
    gathered (a third of the indices of gathering channels).  Pixels no card
    covers point one past the end, where the picture step puts a black pixel.
    """
    pixels = layout.height * layout.width
    gather = np.full(pixels, sum(len(p) for p in positions.values()) // 3, np.intp)
    start = 0
    for where in positions.values():
        triples = where.reshape(-1, 3)
        if not (np.all(triples[:, 0] % 3 == 0) and np.all(np.diff(triples, axis=1) == 1)):
            raise ValueError("a card buffer does not keep each pixel's channels together")
        gather[triples[:, 0] // 3] = np.arange(start, start + len(triples))
        start += len(triples)
    return gather


class ScreenPicture:
    """Turns a :class:`ScanResult` into ``uint8[H][W][3]``; screen areas no card covers are black."""

    def __init__(self, layout: Layout, encode: np.ndarray | None = None) -> None:
        self.layout = layout
        self.encode = linear_encode_table() if encode is None else encode
        if self.encode.dtype != np.uint8 or self.encode.shape != (65536,):
            raise ValueError("encode: expected a uint8[65536] table from 16-bit output to 8 bits")
        positions = _scan_positions(layout)
        self.cards = list(positions)
        self.gather = _pixel_gather(layout, positions)

    def picture(self, scan: ScanResult) -> np.ndarray:
        encoded = [self.encode.take(scan.buffers[a]) for a in self.cards]
        pixels = np.concatenate(encoded + [np.zeros(3, np.uint8)]).reshape(-1, 3)
        return pixels.take(self.gather, axis=0).reshape(self.layout.height, self.layout.width, 3)
