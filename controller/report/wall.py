"""The picture of the wall: cabinets, their modules, addresses, temperatures and dead LEDs.

One function, :func:`wall_svg`, draws the wall as seen from the front, in
screen pixel coordinates scaled to a page: the acceptance report and the
quarterly self-test report both embed it, so an installer and a service
engineer look at the same picture of the same wall.

Choices that make it readable on walls from 2 to a few hundred cabinets:

- Temperature is a fill tint (normal, warm ≥ 70 °C, hot ≥ 85 °C) rather than
  a number alone, so a hot corner stands out before anything is read.
- Labels are sized to fit, once per cabinet size so equal cabinets match:
  address and temperature; the address alone when only one line fits;
  nothing when even that would be unreadable (the tables carry every value
  anyway).  Module grid lines are left out below a few pixels per module for
  the same reason.
- Dead LEDs are markers with a minimum size, centred on the LED: one pixel
  of a 4K wall is a quarter of a pixel at page size and would otherwise be
  invisible.  Each colour has its own shape (red circle, green square, blue
  diamond) and a white halo, so they survive a black-and-white print and
  any cabinet tint.
- Every dead LED stays visible and belongs to one cabinet (:func:`_place`):
  a marker lies wholly inside its cabinet (one on the border is moved
  inward), and one that would cover another (adjacent LEDs are closer than
  a marker is wide) moves aside, with a thin leader from its LED.  Labels
  are placed where no marker is (:func:`_label_spot`): the centre, else a
  side or corner, else the address alone, else none (the tables carry it).
- A cabinet that did not answer is hatched grey with "no answer" on it; one
  that answered with problems gets an amber inner outline.
- A dead LED marked ``new`` (the inspection report: not there at the
  previous inspection) gets a black ring around its marker, the way an
  engineer circles a new fault on a printout; the legend lists the ring
  only when a picture has one, so acceptance pictures are unchanged.

The result is one ``<svg>`` element that is valid XML and references nothing
outside itself; its only id (the hatch pattern) is defined identically in
every picture, so several pictures on one page cannot clash.
"""

from __future__ import annotations

import math

from controller.cardaddress import hex_address
from controller.errors import ReportError
from controller.jsonin import JsonObject
from controller.limits import HOT_C, WARM_C
from controller.report.html import Markup, el, join, num
from controller.report.i18n import (FONTS, check_lang, fmt_number, fmt_temperature, label,
                                    plural, t)
from controller.report.placement import MIN_MARKER_R, NEW_RING_GAP, layout, marker_radius, text_em

PAD = 10                     # px around the wall
MIN_GRID_CELL = 4.0          # px: below this, module grid lines would merge into a grey blur
MAX_LABEL_PX = 16.0
MIN_TWO_LINE_PX = 7.5        # below this the temperature line is dropped …
MIN_ONE_LINE_PX = 5.5        # … and below this the address too
WIDEST_ADDRESS = "0xFF"
WIDEST_READING = "188.8 °C"
LEGEND_FONT_PX = 12.0
LEGEND_ROW_PX = 22.0

INK = "#0f172a"
FILLS = {"normal": "#dce9f7", "warm": "#fde3a7", "hot": "#f7b8ae", "none": "#e6e9ee"}
STROKE = "#334155"
GRID = "#5b6b82"
PROBLEM = "#d97706"
SCREEN_BG = "#f8fafc"
CHANNEL_COLOURS = {"r": "#dc2626", "g": "#15803d", "b": "#1d4ed8"}
OTHER_CHANNEL = "#111827"
NEW_RING = INK

_DEFS = Markup(
    '<defs><pattern id="lw-hatch" width="7" height="7" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="7" height="7" fill="#eceff3"/>'
    '<line x1="0" y1="0" x2="0" y2="7" stroke="#a3adbb" stroke-width="2.5"/></pattern></defs>'
)


def temperature_level(cabinet: JsonObject) -> str:
    """``normal``, ``warm`` or ``hot`` from the cabinet's reading; ``none`` without one."""
    temp = _temperature(cabinet)
    if temp is None:
        return "none"
    return "hot" if temp >= HOT_C else "warm" if temp >= WARM_C else "normal"


def address_text(address: int) -> str:
    """A card address from a report's JSON as installers see it on the card's label and in the CLI:
    ``0x03`` (:func:`controller.cardaddress.hex_address` of it as a whole number)."""
    return hex_address(int(address))


def cabinet_size(cabinet: JsonObject) -> tuple[int, int]:
    """The cabinet's pixel size: from the report, else from its modules."""
    w, h = cabinet.get("width"), cabinet.get("height")
    if w is None or h is None:
        module = cabinet["module"]
        w, h = cabinet["modules_x"] * module["width"], cabinet["modules_y"] * module["height"]
    return int(w), int(h)


def dead_led_screen_xy(cabinet: JsonObject, led: JsonObject) -> tuple[int, int]:
    """Where a dead LED sits on the screen: the report's ``screen_x/y``, else derived.

    The derivation follows the module order of ``correction.md`` section 5
    (module rows top to bottom, serpentine rows alternating direction, the
    cabinet's pixels turned as a whole when it is mounted at 180°), so a
    report from a job that left the screen position out still draws right.
    """
    if led.get("screen_x") is not None and led.get("screen_y") is not None:
        return int(led["screen_x"]), int(led["screen_y"])
    module = cabinet["module"]
    mx = cabinet["modules_x"]
    row, col = divmod(int(led["module"]), mx)
    if cabinet.get("chain") == "serpentine" and row % 2:
        col = mx - 1 - col
    px = col * module["width"] + int(led["x"])
    py = row * module["height"] + int(led["y"])
    if cabinet.get("rotation") == 180:
        w, h = cabinet_size(cabinet)
        px, py = w - 1 - px, h - 1 - py
    return int(cabinet["x"]) + px, int(cabinet["y"]) + py


def wall_svg(screen: JsonObject, cabinets: list[JsonObject], *, lang: str = "en", max_width_px: int = 960,
             max_height_px: int | None = None) -> str:
    """The wall as an ``<svg>`` element, ``max_width_px`` wide, legend underneath.

    The wall keeps its aspect ratio and is at most ``max_height_px`` tall
    (default: as tall as it is wide), so a portrait wall does not run over a
    page.  ``cabinets`` are the report's cabinet dicts; ``found``, ``status``,
    ``dead_leds`` and ``problems`` are optional, so a bare layout also draws.
    """
    check_lang(lang)
    sw, sh = int(screen["width"]), int(screen["height"])
    if sw <= 0 or sh <= 0:
        raise ReportError(f"screen size {sw} × {sh} cannot be drawn: both must be positive")
    max_h = max_height_px or max_width_px
    scale = min((max_width_px - 2 * PAD) / sw, (max_h - 2 * PAD) / sh)
    wall_w, wall_h = sw * scale, sh * scale
    ox, oy = (max_width_px - wall_w) / 2, PAD

    def box(x: float, y: float) -> tuple[float, float]:
        return ox + x * scale, oy + y * scale

    parts: list[Markup] = [_DEFS]
    parts.append(el("rect", {"class": "screen", "x": ox, "y": oy, "width": wall_w, "height": wall_h,
                             "fill": SCREEN_BG, "stroke": INK, "stroke_width": 1.5}))
    markers: list[Markup] = []
    missing = dead = 0
    sizes = {size: _label_size(size[0] * scale, size[1] * scale) for size in map(cabinet_size, cabinets)}
    for cab in cabinets:
        found = cab.get("found", True)
        missing += not found
        w, h = cabinet_size(cab)
        x0, y0 = box(cab["x"], cab["y"])
        rect = (x0, y0, w * scale, h * scale)
        leds = list(cab.get("dead_leds") or ())
        at = [box(x + 0.5, y + 0.5) for x, y in (dead_led_screen_xy(cab, led) for led in leds)]
        blocks = _label_blocks(cab, found, rect[2], sizes[cabinet_size(cab)], lang)
        r, spots, rows, centre = layout(at, [bool(led.get("new")) for led in leds], rect,
                                        marker_radius(scale, rect[2], rect[3]), blocks)
        parts.append(_cabinet(cab, found, rect, _labels(rows, centre), lang))
        for led, true_xy, spot in zip(leds, at, spots, strict=True):
            dead += 1
            markers.append(_marker(cab, led, true_xy, spot, r, lang))
    parts.extend(markers)

    rotated = any(c.get("rotation") == 180 for c in cabinets)
    new = any(led.get("new") for c in cabinets for led in c.get("dead_leds") or ())
    legend, legend_h = _legend(PAD, oy + wall_h + 14, max_width_px - 2 * PAD, rotated, new, lang)
    parts.append(legend)
    height = oy + wall_h + 14 + legend_h + 4
    title = t("fmt.wall_title", lang, name=screen.get("name", ""), n=len(cabinets), missing=missing,
              dead=dead, cabinets=plural(len(cabinets), "cabinet", lang), leds=plural(dead, "dead_led", lang))
    return el("svg", {"xmlns": "http://www.w3.org/2000/svg", "class": "wall",
                      "width": num(max_width_px), "height": num(height),
                      "viewBox": f"0 0 {num(max_width_px)} {num(height)}", "role": "img",
                      "font_family": FONTS[lang], "fill": INK},
              el("title", None, title), *parts)


def _temperature(cab: JsonObject) -> float | None:
    status = cab.get("status") or {}
    temp = status.get("temperature_c")
    return None if temp is None else float(temp)


def _cabinet(cab: JsonObject, found: bool, rect: tuple[float, float, float, float], labels: Markup | None,
             lang: str) -> Markup:
    """One cabinet: tinted (or hatched) rectangle, module grid, labels (placed already), marks."""
    x0, y0, cw, ch = rect
    addr = address_text(cab["address"])
    temp = _temperature(cab)
    second = fmt_temperature(temp) if found else t("value.no_answer", lang)
    body: list[Markup | None] = []   # el() leaves a None child out
    fill = FILLS[temperature_level(cab)] if found else "url(#lw-hatch)"
    body.append(el("rect", {"x": x0, "y": y0, "width": cw, "height": ch, "fill": fill,
                            "stroke": STROKE, "stroke_width": 1.2 if cw >= 24 else 0.8}))
    body.append(_grid(cab, x0, y0, cw, ch))
    if found and cab.get("problems"):
        inset = 2.0 if min(cw, ch) >= 16 else 1.0
        body.append(el("rect", {"class": "problem", "x": x0 + inset, "y": y0 + inset,
                                "width": max(cw - 2 * inset, 0), "height": max(ch - 2 * inset, 0),
                                "fill": "none", "stroke": PROBLEM, "stroke_width": 2 * inset}))
    body.append(labels)
    if cab.get("rotation") == 180:
        body.append(_rotation_mark(x0 + cw, y0, cw, ch))
    tip = f"{addr} · {second}"
    klass = "cabinet" if found else "cabinet missing"
    return el("g", {"class": klass, "data_address": int(cab["address"])}, el("title", None, tip), *body)


def _grid(cab: JsonObject, x0: float, y0: float, cw: float, ch: float) -> Markup | None:
    """The module boundaries inside a cabinet, as one path (thousands of lines on big walls)."""
    module = cab.get("module") or {}
    nx, ny = int(cab.get("modules_x") or 1), int(cab.get("modules_y") or 1)
    cell_w, cell_h = cw / nx, ch / ny
    if min(cell_w, cell_h) < MIN_GRID_CELL or (nx == 1 and ny == 1) or not module:
        return None
    d = [f"M{num(x0 + i * cell_w)} {num(y0)}v{num(ch)}" for i in range(1, nx)]
    d += [f"M{num(x0)} {num(y0 + j * cell_h)}h{num(cw)}" for j in range(1, ny)]
    return el("path", {"class": "modules", "d": "".join(d), "stroke": GRID, "stroke_width": 0.6,
                       "stroke_opacity": 0.55, "fill": "none"})


def _label_size(cw: float, ch: float) -> tuple[int, float]:
    """How many label lines (0, 1, 2) fit a cabinet drawn ``cw`` × ``ch`` px, and at what size.

    Sized for the widest address and reading rather than the cabinet's own,
    so every cabinet of one size gets the same font: a wall whose labels
    jump in size with the digits they show looks broken.
    """
    room_w = cw - 6
    two = min(MAX_LABEL_PX, (ch - 4) / 2.5,
              room_w / max(text_em(WIDEST_ADDRESS) * 1.08, text_em(WIDEST_READING)))
    if two >= MIN_TWO_LINE_PX:
        return 2, two
    one = min(MAX_LABEL_PX, (ch - 2) / 1.2, room_w / (text_em(WIDEST_ADDRESS) * 1.08))
    return (1, one) if one >= MIN_ONE_LINE_PX else (0, 0.0)


def _label_blocks(cab: JsonObject, found: bool, cw: float, size: tuple[int, float], lang: str) -> list[list]:
    """The label blocks a cabinet may show, preferred first: address (bold) over temperature or
    "no answer", then the address alone at the same size; on small cabinets only the address.

    "no answer" may be wider than a reading; it shrinks on its own rather
    than shrinking every cabinet's labels.
    """
    lines, fs = size
    addr = address_text(cab["address"])
    missing_colour = None if found else "#7f1d1d"
    if lines == 2:
        second = fmt_temperature(_temperature(cab)) if found else t("value.no_answer", lang)
        fs2 = min(fs, (cw - 6) / text_em(second))
        return [[(addr, -fs * 0.6, fs * 1.08, 700, None),
                 (second, fs * 0.7, fs2, 400 if found else 700, missing_colour)],
                [(addr, 0.0, fs * 1.08, 700, missing_colour)]]
    if lines == 1:
        return [[(addr, 0.0, fs, 700, missing_colour)]]
    return []


def _labels(rows, centre: tuple[float, float] | None) -> Markup | None:
    """The planned label lines (:func:`.placement.layout`) as text with a white halo."""
    if centre is None:
        return None
    cx, cy = centre
    halo = {"stroke": "#ffffff", "stroke_linejoin": "round", "paint_order": "stroke",
            "text_anchor": "middle", "dominant_baseline": "central"}
    return join(el("text", {"x": cx, "y": cy + dy, "font_size": size, "font_weight": weight, "fill": colour,
                            **halo, "stroke_width": min(3.0, size / 3.5)}, text)
                for text, dy, size, weight, colour in rows)


def _rotation_mark(right: float, top: float, cw: float, ch: float) -> Markup | None:
    """A small clockwise arrow in the top right corner (↻, drawn: no font needed)."""
    r = min(6.0, cw / 10, ch / 8)
    if r < 2.5:
        return None
    cx, cy = right - r - 4, top + r + 4
    a = r * 0.55
    arc = f"M{num(cx)} {num(cy - r)}A{num(r)} {num(r)} 0 1 1 {num(cx - r)} {num(cy)}"
    tip = ((cx - r - a, cy + a * 0.2), (cx - r, cy - a), (cx - r + a, cy + a * 0.2))
    d = arc + "M" + "L".join(f"{num(x)} {num(y)}" for x, y in tip)
    return el("path", {"class": "rotated", "d": d, "fill": "none", "stroke": INK,
                       "stroke_width": max(1.0, r / 4), "stroke_linecap": "round",
                       "stroke_linejoin": "round"})


def _shape(channel: str, cx: float, cy: float, r: float, attrs: dict[str, object]) -> Markup:
    """The marker shape for a channel: red circle, green square, blue diamond."""
    if channel == "g":
        s = r * 0.9
        return el("rect", {"x": cx - s, "y": cy - s, "width": 2 * s, "height": 2 * s, **attrs})
    if channel == "b":
        r2 = r * 1.2
        pts = " ".join(f"{num(x)},{num(y)}" for x, y in
                       ((cx, cy - r2), (cx + r2, cy), (cx, cy + r2), (cx - r2, cy)))
        return el("polygon", {"points": pts, **attrs})
    return el("circle", {"cx": cx, "cy": cy, "r": r, **attrs})


def marker_shapes(channel: str, cx: float, cy: float, r: float) -> Markup:
    """A dead-LED marker without its group: also the icon in the report's dead-LED list."""
    colour = CHANNEL_COLOURS.get(channel, OTHER_CHANNEL)
    return join([
        _shape(channel, cx, cy, r, {"fill": "none", "stroke": "#ffffff", "stroke_width": 4.5}),
        _shape(channel, cx, cy, r, {"fill": colour, "fill_opacity": 0.2, "stroke": colour,
                                    "stroke_width": 2}),
        el("circle", {"cx": cx, "cy": cy, "r": 1.3, "fill": colour}),
    ])


def new_ring(cx: float, cy: float, r: float) -> Markup:
    """The ring around a marker of radius ``r`` that says "new since the last inspection"."""
    ring = r * 1.2 + NEW_RING_GAP           # clears the blue diamond, the widest shape
    return join([el("circle", {"cx": cx, "cy": cy, "r": ring, "fill": "none", "stroke": "#ffffff",
                               "stroke_width": 5}),
                 el("circle", {"class": "new-ring", "cx": cx, "cy": cy, "r": ring, "fill": "none",
                               "stroke": NEW_RING, "stroke_width": 2})])


def _marker(cab: JsonObject, led: JsonObject, at: tuple[float, float], spot: tuple[float, float], r: float,
            lang: str) -> Markup:
    """A dead LED's marker at ``spot``; if that is not its LED (``at``), a thin leader joins them."""
    channel = str(led.get("channel", ""))
    tip = (f"{address_text(cab['address'])} · {t('col.module', lang)} {led.get('module')} · "
           f"({led.get('x')}, {led.get('y')}) · {label('channel', channel, lang)}")
    cx, cy = spot
    leader = None
    if math.hypot(at[0] - cx, at[1] - cy) > 1.0:
        colour = CHANNEL_COLOURS.get(channel, OTHER_CHANNEL)
        leader = join([el("line", {"class": "leader", "x1": at[0], "y1": at[1], "x2": cx, "y2": cy,
                                   "stroke": colour, "stroke_width": 1}),
                       el("circle", {"class": "leader", "cx": at[0], "cy": at[1], "r": 1.2, "fill": colour})])
    attrs = {"data_channel": channel, "data_address": int(cab["address"])}
    if led.get("new"):
        return el("g", {"class": "dead-led new", **attrs},
                  el("title", None, f"{tip} · {t('legend.dead_new', lang)}"),
                  leader, new_ring(cx, cy, r), marker_shapes(channel, cx, cy, r))
    return el("g", {"class": "dead-led", **attrs}, el("title", None, tip), leader,
              marker_shapes(channel, cx, cy, r))


def _legend(x0: float, y0: float, width: float, rotated: bool, new: bool,
            lang: str) -> tuple[Markup, float]:
    """Swatches and words, flowed left to right and wrapped; returns markup and height."""
    warm, hot = fmt_number(WARM_C), fmt_number(HOT_C)
    items: list[tuple[str, tuple[str, str | None]]] = [
        (t("legend.normal", lang, warm=warm), ("fill", FILLS["normal"])),
        (t("legend.warm", lang, warm=warm), ("fill", FILLS["warm"])),
        (t("legend.hot", lang, hot=hot), ("fill", FILLS["hot"])),
        (t("legend.no_reading", lang), ("fill", FILLS["none"])),
        (t("legend.missing", lang), ("fill", "url(#lw-hatch)")),
        (t("legend.problem", lang), ("problem", None)),
        (t("legend.dead_r", lang), ("dead", "r")),
        (t("legend.dead_g", lang), ("dead", "g")),
        (t("legend.dead_b", lang), ("dead", "b")),
    ]
    if new:
        items.append((t("legend.dead_new", lang), ("new", None)))
    if rotated:
        items.append((t("legend.rotated", lang), ("rotated", None)))
    out: list[Markup] = []
    x, y = x0, y0
    for text, (kind, arg) in items:
        w = 22 + text_em(text) * LEGEND_FONT_PX + 18
        if x > x0 and x + w > x0 + width:
            x, y = x0, y + LEGEND_ROW_PX
        out.append(_swatch(kind, arg, x, y))
        out.append(el("text", {"x": x + 22, "y": y + 7, "font_size": LEGEND_FONT_PX,
                               "dominant_baseline": "central", "fill": "#334155"}, text))
        x += w
    return el("g", {"class": "legend"}, *out), y - y0 + LEGEND_ROW_PX


def _swatch(kind: str, arg: str | None, x: float, y: float) -> Markup:
    """The legend's sample of a fill, the problem outline, a marker or the rotation mark."""
    if kind == "fill":
        return el("rect", {"x": x, "y": y, "width": 16, "height": 14, "fill": arg, "stroke": STROKE,
                           "stroke_width": 1})
    if kind == "problem":
        return join([el("rect", {"x": x, "y": y, "width": 16, "height": 14, "fill": FILLS["normal"],
                                 "stroke": STROKE, "stroke_width": 1}),
                     el("rect", {"x": x + 2, "y": y + 2, "width": 12, "height": 10, "fill": "none",
                                 "stroke": PROBLEM, "stroke_width": 2})])
    if kind == "dead":
        assert arg is not None  # a dead-LED swatch always names its channel
        return marker_shapes(arg, x + 8, y + 7, MIN_MARKER_R)
    if kind == "new":
        return join([new_ring(x + 8, y + 7, 2.0),
                     el("circle", {"cx": x + 8, "cy": y + 7, "r": 1.3, "fill": NEW_RING})])
    return _rotation_mark(x + 18, y - 3, 60, 48) or Markup("")

