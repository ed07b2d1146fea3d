"""Re-encoding for cards with their own curve: the 16 → 8 bit table and the payload layout.

Colorlight cards and DDP receivers take 8 bits a channel and apply their own
gamma.  The pipeline's output is *linear* light in 16 bits, so for such a
sink it is re-encoded through the inverse of the card's curve: the card then
undoes exactly what we did and shows the light we computed (docs/correction.md,
"Cards with their own curve", is the definition this module implements).

:func:`encode_table` is the one place the table is computed.  It is defined
in integers, not floating point, so the same card gamma gives the same 65 536
bytes on every machine (x86 build server, ARM board): ``pow`` in a C library
may differ in the last bit, and at a rounding tie that is a different byte.

:class:`Payloads` says where the encoded picture goes: straight into packet
payloads (Colorlight row packets of at most 497 pixels, DDP packets of 480),
so the sink sends views of one buffer and never copies a picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

#: Card gammas are decimals with at most this many places (2.2, 2.35): the
#: exact rational a gamma stands for, and so the table, is then unambiguous.
GAMMA_PLACES = 2
GAMMA_MIN, GAMMA_MAX = 0.5, 4.0


def card_gamma(value: float | str | Fraction) -> Fraction:
    """A card gamma as the exact fraction it denotes; ValueError says what is accepted."""
    try:
        gamma = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"gamma: {value!r} is not a number; give the card's gamma "
                         f"as 2.2 (1.0 for a linear card)") from None
    if (gamma * 10 ** GAMMA_PLACES).denominator != 1 or not GAMMA_MIN <= gamma <= GAMMA_MAX:
        raise ValueError(f"gamma: {value!r} must be between {GAMMA_MIN} and {GAMMA_MAX} with at "
                         f"most {GAMMA_PLACES} decimal places, as 2.2 (1.0 for a linear card)")
    return gamma


@lru_cache(maxsize=8)
def _table(gamma: Fraction) -> bytes:
    # e = round-half-up(255 * y), y = (v / 65535) ** (1 / gamma), counts the k in 1 … 255
    # with y >= (2k - 1) / 510.  With gamma = p / q that is, in integers,
    #     v ** q * 510 ** p >= (2k - 1) ** p * 65535 ** q,
    # monotonic in v, so each k has a threshold t_k (the least such v) found by
    # bisection, and T[v] is the number of thresholds <= v.
    p, q = gamma.numerator, gamma.denominator
    scale = 510 ** p
    thresholds = []
    for k in range(1, 256):
        need = (2 * k - 1) ** p * 65535 ** q
        lo, hi = 0, 65536          # the least v in [lo, hi) that reaches need; 65536: none
        while lo < hi:
            mid = (lo + hi) // 2
            if mid ** q * scale >= need:
                hi = mid
            else:
                lo = mid + 1
        thresholds.append(lo)
    v = np.arange(65536)
    return np.searchsorted(np.array(thresholds), v, side="right").astype(np.uint8).tobytes()


def encode_table(gamma: float | str | Fraction = 1) -> np.ndarray:
    """``uint8[65536]``: ``T[v] = round-half-up(255 * (v / 65535) ** (1 / gamma))``, exactly.

    ``gamma`` is the card's own (1.0 for a card that shows values as they
    come).  ``gamma = 1`` gives ``round(v * 255 / 65535)``, so ``T[x * 257] = x``.
    A fresh, writeable array each call (the computation is cached).
    """
    return np.frombuffer(_table(card_gamma(gamma)), np.uint8).copy()


def check_table(table: object) -> np.ndarray:
    """The table argument of the encoders: ``uint8[65536]``."""
    if not isinstance(table, np.ndarray) or table.dtype != np.uint8 or table.shape != (65536,):
        shape = getattr(table, "shape", None)
        raise ValueError(f"table: expected a uint8[65536] table from 16-bit output to 8 bits "
                         f"(fastpath.encode_table(gamma)), got {type(table).__name__} {shape}")
    return table


ORDERS = {"rgb": (0, 1, 2), "bgr": (2, 1, 0)}


@dataclass(frozen=True)
class Payloads:
    """Where each pixel of an ``H`` × ``W`` picture goes in one output buffer of bytes.

    The picture's pixels are taken in reading order (pixel ``p = y * W + x``)
    and cut into *segments* of ``segment`` pixels (a Colorlight row: ``W``;
    DDP's whole frame: ``H * W``), each segment into *chunks* of at most
    ``chunk`` pixels (one packet's payload).  Chunk ``j`` of segment ``s`` is
    packet number ``s * per_segment + j``, whose pixel bytes start at
    ``first + packet * stride``; ``stride`` leaves room for the next packet's
    header, ``first`` for the first one's.  Pixel ``k`` of a chunk is the 3
    bytes at ``+ 3k``, byte ``i`` holding channel ``order[i]`` (BGR:
    ``(2, 1, 0)``).  Bytes between chunks are never written.
    """

    segment: int
    chunk: int
    stride: int
    first: int = 0
    order: tuple[int, int, int] = (0, 1, 2)

    def __post_init__(self) -> None:
        for name in ("segment", "chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"payloads: {name} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.first, int) or self.first < 0:
            raise ValueError(f"payloads: first must be a byte offset >= 0, got {self.first!r}")
        if not isinstance(self.stride, int) or self.stride < 3 * min(self.chunk, self.segment):
            raise ValueError(f"payloads: stride {self.stride!r} is shorter than a chunk's "
                             f"{3 * min(self.chunk, self.segment)} pixel bytes")
        if sorted(self.order) != [0, 1, 2] or len(self.order) != 3:
            raise ValueError(f"payloads: order must be a permutation of (0, 1, 2), "
                             f"got {self.order!r}")

    @property
    def per_segment(self) -> int:
        """Packets (chunks) in a full segment."""
        return -(-self.segment // self.chunk)

    def packets(self, pixels: int) -> list[tuple[int, int, int]]:
        """(byte offset of the pixel bytes, first pixel, pixel count) of each packet, in order."""
        found = []
        for s0 in range(0, pixels, self.segment):
            s1 = min(pixels, s0 + self.segment)
            for j, c0 in enumerate(range(s0, s1, self.chunk)):
                packet = s0 // self.segment * self.per_segment + j
                found.append((self.first + packet * self.stride, c0, min(self.chunk, s1 - c0)))
        return found

    def size(self, pixels: int) -> int:
        """Bytes an output buffer needs for a picture of ``pixels`` pixels (0 for none)."""
        if pixels <= 0:
            return 0
        seg, in_seg = divmod(pixels - 1, self.segment)     # where the last pixel goes
        j, k = divmod(in_seg, self.chunk)
        return self.first + (seg * self.per_segment + j) * self.stride + 3 * k + 3


def check_out(out: object, payloads: Payloads, pixels: int) -> np.ndarray:
    """The encoders' output buffer: C-contiguous, writeable ``uint8``, long enough."""
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.ndim != 1:
        raise ValueError(f"payloads: the output must be a 1-D uint8 numpy array, "
                         f"got {type(out).__name__} {getattr(out, 'dtype', '')}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("payloads: the output must be a C-contiguous, writeable array")
    need = payloads.size(pixels)
    if out.size < need:
        raise ValueError(f"payloads: the output holds {out.size} bytes; this picture and "
                         f"layout need {need}")
    return out
