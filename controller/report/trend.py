"""A sparkline: how one number moved over the last runs, small enough to sit beside its table.

The inspection report shows dead LEDs and the hottest cabinet for up to
eight runs.  The table gives the numbers; the line shows the direction at a
glance, which is what a customer asks ("is it getting worse?").  It is an
inline ``<svg>`` without text (the table beside it carries the numbers and
the page's fonts), so nothing in it can overflow or depend on a font, and
it prints like the wall: colours kept, no external references.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.report.html import Markup, el, num

WIDTH, HEIGHT, PAD = 240.0, 56.0, 7.0
LINE = "#1f3b63"
MISSING = "#a3adbb"


def sparkline(values: Sequence[float | None], title: str, *, zero_based: bool = True,
              levels: Sequence[tuple[float, str]] = ()) -> Markup | None:
    """A line through ``values`` (oldest first), the last point drawn larger; ``None`` if under two.

    ``zero_based`` starts the scale at 0, so two dead LEDs against one does
    not look like a doubling of the wall's faults; temperatures leave it off
    to show their spread.  ``levels`` are ``(threshold, colour)`` pairs, in
    rising order, colouring a point at or above each threshold (the wall's
    warm and hot).  A run without a value is a grey tick on the base line.
    """
    known = [v for v in values if v is not None]
    if len(values) < 2 or not known:
        return None
    low = 0.0 if zero_based else min(known)
    high = max(known)
    span = (high - low) or 1.0
    step = (WIDTH - 2 * PAD) / (len(values) - 1)

    def y(v: float) -> float:
        return HEIGHT - PAD - (v - low) / span * (HEIGHT - 2 * PAD)

    points = [(PAD + i * step, None if v is None else y(v)) for i, v in enumerate(values)]
    parts = [el("title", None, title),
             el("line", {"x1": PAD, "y1": HEIGHT - PAD, "x2": WIDTH - PAD, "y2": HEIGHT - PAD,
                         "stroke": "#d7dde5", "stroke_width": 1})]
    for run in _runs(points):
        if len(run) > 1:
            parts.append(el("polyline", {"points": " ".join(f"{num(x)},{num(py)}" for x, py in run),
                                         "fill": "none", "stroke": LINE, "stroke_width": 1.8,
                                         "stroke_linejoin": "round"}))
    last = len(points) - 1
    for i, ((x, py), v) in enumerate(zip(points, values, strict=True)):
        if py is None or v is None:
            parts.append(el("line", {"x1": x, "y1": HEIGHT - PAD - 4, "x2": x, "y2": HEIGHT - PAD,
                                     "stroke": MISSING, "stroke_width": 2}))
            continue
        colour = LINE
        for threshold, level_colour in levels:
            if v >= threshold:
                colour = level_colour
        parts.append(el("circle", {"cx": x, "cy": py, "r": 4.5 if i == last else 2.8, "fill": colour,
                                   "stroke": "#ffffff", "stroke_width": 1.2}))
    return el("svg", {"xmlns": "http://www.w3.org/2000/svg", "class": "spark", "width": num(WIDTH),
                      "height": num(HEIGHT), "viewBox": f"0 0 {num(WIDTH)} {num(HEIGHT)}", "role": "img"},
              *parts)


def _runs(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Stretches of consecutive points with values: a run without a reading breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]
