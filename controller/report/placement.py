"""Where a cabinet's dead-LED markers and its label go in the wall picture, so neither hides the other.

A dead LED is one pixel; its marker is drawn a dozen pixels wide so it can
be seen, which makes three things go wrong unless they are planned: two
adjacent dead LEDs become one marker, a marker on a cabinet's edge seems to
belong to the neighbour, and a marker sits on the label that says which
cabinet it is.  :func:`layout` plans one cabinet at a time:

- every marker lies wholly inside its own cabinet (one on the border is
  moved inward), so it is attributable;
- a marker that would cover one placed before it moves aside, on rings
  around its LED (the picture draws a thin leader back to the LED), so each
  dead LED has its own marker;
- the label (address over temperature) goes where no marker is: first the
  markers stay on their LEDs and the label tries the centre, the sides and
  the corners; then markers may step aside from the label; then markers
  shrink (never below :data:`FLOOR_MARKER_R`); then the address goes alone;
  only when nothing fits does the cabinet go without a label (the tables
  carry every value).

Sizes are estimates of ink, not font metrics: wide (CJK) characters one em,
others 0.6 em, halos included, so a plan that fits here fits on the page.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

MIN_MARKER_R = 6.0           # px: a dead LED stays visible however small a pixel is drawn …
FLOOR_MARKER_R = 3.0         # … unless its cabinet is too small for that; never below this
HALO = 2.25                  # px: half the white halo's stroke around a marker
NEW_RING_GAP = 4.5           # px between a marker's outline and the ring that marks it new
NEW_RING_STROKE = 2.5        # px: half the ring's white halo

Box = tuple[float, float, float, float]          # left, top, right, bottom
#: A label line: text, offset of its centre from the block's centre, font size, weight, colour.
Line = tuple[str, float, float, int, "str | None"]


def text_em(text: str) -> float:
    """Estimated width of ``text`` in ems: wide (CJK) characters 1, others about 0.6."""
    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6 for c in text)


def marker_radius(scale: float, cw: float, ch: float) -> float:
    """A marker's radius: the LED's own size, at least :data:`MIN_MARKER_R`, and small enough that a
    marker (the blue diamond, 1.2 r, and its halo) fits its cabinet, down to :data:`FLOOR_MARKER_R`."""
    fits = (min(cw, ch) / 2 - HALO) / 1.2
    return max(FLOOR_MARKER_R, min(max(MIN_MARKER_R, scale * 0.75), fits))


def marker_reach(r: float, new: bool) -> float:
    """How far a marker's ink reaches from its centre: the widest shape and its halo, or its ring."""
    return r * 1.2 + NEW_RING_GAP + NEW_RING_STROKE if new else r * 1.2 + HALO


def label_box(text: str, x: float, y: float, size: float) -> Box:
    """The box a centred label's ink (with its halo) covers."""
    halo = min(3.0, size / 3.5) / 2
    half_w, half_h = text_em(text) * size / 2 + halo, size * 0.6 + halo
    return x - half_w, y - half_h, x + half_w, y + half_h


def overlap(a: Box, b: Box) -> bool:
    """Whether two boxes share any area; touching edges do not count, so labels may sit side by
    side."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def layout(at: Sequence[tuple[float, float]], new: Sequence[bool], rect: Box, r: float,
           blocks: Sequence[Sequence[Line]]) -> tuple[float, list[tuple[float, float]], Sequence[Line],
                                                      tuple[float, float] | None]:
    """Plan one cabinet: marker radius, marker centres (one per LED in ``at``), and the label block
    of ``blocks`` (preferred first) with its centre, or no label (``()``, None).

    ``rect`` is the cabinet's box as (x, y, width, height).
    """
    x, y, cw, ch = rect
    cabinet = (x, y, x + cw, y + ch)
    shrinking = [r]
    while shrinking[-1] > FLOOR_MARKER_R:
        shrinking.append(max(FLOOR_MARKER_R, shrinking[-1] * 0.8))
    markers, ok = _markers(at, new, cabinet, r, None)
    if ok:      # 1. markers on their LEDs, the label where they leave room
        for rows in blocks:
            for centre, box in _label_spots(rows, cabinet):
                if not any(overlap(box, _reach_box(m, marker_reach(r, n))) for m, n in zip(markers, new)):
                    return r, markers, rows, centre
    for size in shrinking:      # 2. markers step aside from the label, 3. and shrink if they must
        for rows in blocks:
            for centre, box in _label_spots(rows, cabinet):
                markers, ok = _markers(at, new, cabinet, size, box)
                if ok:
                    return size, markers, rows, centre
    markers, _ok = _markers(at, new, cabinet, shrinking[-1], None)
    return shrinking[-1], markers, (), None


def _reach_box(centre: tuple[float, float], reach: float) -> Box:
    return centre[0] - reach, centre[1] - reach, centre[0] + reach, centre[1] + reach


def _label_spots(rows: Sequence[Line], cabinet: Box) -> list[tuple[tuple[float, float], Box]]:
    """Where a label block may go, best first (centre, sides, corners), with the box it covers there."""
    boxes = [label_box(text, 0.0, dy, size) for text, dy, size, _w, _c in rows]
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    x0, y0, x1, y1 = cabinet
    xs = ((x0 + x1) / 2, x0 + 2 - left, x1 - 2 - right)
    ys = ((y0 + y1) / 2, y0 + 2 - top, y1 - 2 - bottom)
    return [((cx, cy), (cx + left, cy + top, cx + right, cy + bottom)) for cy in ys for cx in xs]


def _markers(at: Sequence[tuple[float, float]], new: Sequence[bool], cabinet: Box, r: float,
             label: Box | None) -> tuple[list[tuple[float, float]], bool]:
    """Marker centres at radius ``r``: each on its LED, moved inside the cabinet, and aside from the
    markers before it and from ``label``; and whether every one found such room.

    One that finds none stays where it falls, still inside its cabinet.
    """
    x0, y0, x1, y1 = cabinet
    placed: list[tuple[float, float, float]] = []
    out, ok = [], True
    for (px, py), is_new in zip(at, new, strict=True):
        reach = marker_reach(r, is_new)

        def inside(x: float, y: float, reach: float = reach) -> tuple[float, float]:
            lo_x, hi_x, lo_y, hi_y = x0 + reach, x1 - reach, y0 + reach, y1 - reach
            return (min(max(x, lo_x), hi_x) if lo_x <= hi_x else (x0 + x1) / 2,
                    min(max(y, lo_y), hi_y) if lo_y <= hi_y else (y0 + y1) / 2)

        def free(spot: tuple[float, float], reach: float = reach) -> bool:
            if label is not None and overlap(_reach_box(spot, reach), label):
                return False
            return all(math.hypot(spot[0] - qx, spot[1] - qy) >= reach + q for qx, qy, q in placed)

        spot = inside(px, py)
        if not free(spot):
            rings = (inside(px + ring * reach * math.cos(k * math.pi / (4 * ring)),
                            py + ring * reach * math.sin(k * math.pi / (4 * ring)))
                     for ring in range(1, 12) for k in range(8 * ring))
            spot = next((c for c in rings if free(c)), spot)
            ok &= free(spot)
        placed.append((*spot, reach))
        out.append(spot)
    return out, ok
