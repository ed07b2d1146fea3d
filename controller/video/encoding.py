"""8-bit sinks encode straight from the frame: correction and the card's curve in one pass.

Colorlight cards and DDP receivers apply their own gamma to the 8-bit values
they get.  The frame loop hands such a sink the source frame and the live
pipeline (``send_frame``) instead of card buffers, and :class:`FrameEncoder`
runs :class:`controller.fastpath.Encoder` with the pipeline's own settings
and the card's inverse curve, writing bytes straight into the sink's packet
payloads (docs/correction.md, "Cards with their own curve").  The LWV1 sink
keeps taking card buffers.

A pipeline is replaced on every live correction change, so the encoder is
rebuilt for the first frame after one (a matrix calibration takes a moment
to re-lay; the frame loop's worker thread pays it, once).  Screen areas no
cabinet covers are sent black, as :class:`~controller.video.picture.ScreenPicture`
sends them: those bytes are cleared after each encode (usually none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from controller import fastpath
from controller.config import Layout
from controller.fastpath.reencode import Payloads


def uncovered_bytes(layout: Layout, payloads: Payloads) -> np.ndarray:
    """Offsets in the payload buffer of every byte of a pixel no cabinet covers."""
    open_ = np.ones((layout.height, layout.width), bool)
    for cab in layout.cabinets:
        open_[cab.y:cab.y + cab.height, cab.x:cab.x + cab.width] = False
    p = np.flatnonzero(open_)
    seg, in_seg = np.divmod(p, payloads.segment)
    j, k = np.divmod(in_seg, payloads.chunk)
    start = payloads.first + (seg * payloads.per_segment + j) * payloads.stride + 3 * k
    offsets: np.ndarray = (start[:, None] + np.arange(3)).reshape(-1)
    return offsets


class FrameEncoder:
    """One sink's encoder: its payload layout and card table, the pipeline's settings."""

    def __init__(self, layout: Layout, payloads: Payloads, table: np.ndarray) -> None:
        self.layout, self.payloads, self.table = layout, payloads, table
        self.size = payloads.size(layout.height * layout.width)
        self.black = uncovered_bytes(layout, payloads)
        self._for: Any = None
        self._encoder: Any = None

    def usable(self, pipeline: Any) -> bool:
        """Whether ``pipeline`` says what it was built from (``fastpath.Pipeline`` does)."""
        return getattr(pipeline, "inputs", None) is not None

    def encode(self, frame: np.ndarray, pipeline: Any, out: np.ndarray) -> None:
        """Correct ``frame`` as ``pipeline`` would and write the card's bytes into ``out``."""
        if pipeline is not self._for:
            lut, gains, calib = pipeline.inputs
            self._encoder = fastpath.Encoder((self.layout.height, self.layout.width), lut, gains,
                                             calib, self.table, self.payloads,
                                             threads=getattr(pipeline, "threads", None))
            self._for = pipeline
        self._encoder.encode_into(frame, out)
        if self.black.size:
            out[self.black] = 0
