"""The wall picture: valid SVG, every cabinet and dead LED drawn, legible from 2 to 240 cabinets."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from controller.report.placement import FLOOR_MARKER_R
from controller.report.wall import MIN_MARKER_R, dead_led_screen_xy, temperature_level, wall_svg
from report_cases import cabinet, grid_wall, sample_report

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def groups(root: ET.Element, klass: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if klass in g.get("class", "").split()]


def texts(element: ET.Element) -> list[str]:
    return [t.text for t in element.iter(f"{SVG}text")]


@pytest.fixture
def sample():
    report = sample_report()
    return report["screen"], report["cabinets"]


def test_parses_as_xml_and_keeps_the_aspect_ratio(sample):
    screen, cabinets = sample
    root = parse(wall_svg(screen, cabinets, max_width_px=800))
    assert root.get("width") == "800"
    outline = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "screen")
    w, h = float(outline.get("width")), float(outline.get("height"))
    assert w <= 800 and abs(w / h - 1024 / 512) < 0.01


def test_every_cabinet_drawn_with_its_address(sample):
    screen, cabinets = sample
    root = parse(wall_svg(screen, cabinets))
    cabs = groups(root, "cabinet")
    assert sorted(int(g.get("data-address")) for g in cabs) == list(range(1, 17))
    for g in cabs:
        assert f"0x{int(g.get('data-address')):02X}" in texts(g)


def test_one_marker_per_dead_led_in_its_colour(sample):
    screen, cabinets = sample
    root = parse(wall_svg(screen, cabinets))
    markers = groups(root, "dead-led")
    assert len(markers) == sum(len(c["dead_leds"]) for c in cabinets) == 4
    assert sorted(m.get("data-channel") for m in markers) == ["b", "g", "r", "r"]


def test_missing_cabinet_is_hatched_and_says_so(sample):
    screen, cabinets = sample
    for lang, words in (("en", "no answer"), ("zh", "无应答")):
        root = parse(wall_svg(screen, cabinets, lang=lang))
        (missing,) = groups(root, "missing")
        assert missing.get("data-address") == "6"
        assert words in texts(missing)
        assert missing.find(f"{SVG}rect").get("fill") == "url(#lw-hatch)"


def test_hot_and_warm_cabinets_are_tinted_and_rotated_ones_marked(sample):
    screen, cabinets = sample
    assert [temperature_level(c) for c in cabinets[:3]] == ["normal", "normal", "hot"]
    assert temperature_level(cabinets[6]) == "warm"
    assert temperature_level(cabinets[5]) == "none"        # no answer, no reading
    root = parse(wall_svg(screen, cabinets))
    fills = {g.get("data-address"): g.find(f"{SVG}rect").get("fill") for g in groups(root, "cabinet")}
    assert fills["3"] != fills["1"] != fills["7"] != fills["3"]
    rotated = [g.get("data-address") for g in groups(root, "cabinet")
               if any(p.get("class") == "rotated" for p in g.iter(f"{SVG}path"))]
    assert rotated == ["14"]


def test_text_from_the_report_is_escaped():
    screen, cabinets = grid_wall(2, 1)
    screen["name"] = "<script>alert(1)</script>"
    svg = wall_svg(screen, cabinets)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert parse(svg).find(f"{SVG}title").text.startswith("<script>")


def test_dead_led_markers_stay_visible_on_a_4k_wall():
    # One pixel of a 3840-px wall is a quarter pixel at 960: the marker keeps its minimum size.
    screen, cabinets = grid_wall(8, 8, 448, 256, overrides={10: {"dead": [(3, 5, 5, "r")]}})
    root = parse(wall_svg(screen, cabinets, max_width_px=960))
    (marker,) = groups(root, "dead-led")
    circles = [c for c in marker.iter(f"{SVG}circle") if float(c.get("r")) > 2]
    assert circles and all(float(c.get("r")) >= MIN_MARKER_R for c in circles)


@pytest.mark.parametrize("cols, rows, cab_w, cab_h, lines", [
    (2, 1, 512, 512, 2),       # two big cabinets: address and temperature, large
    (20, 10, 256, 128, 2),     # 200 cabinets, 48 × 24 px each: still both, small
    (24, 10, 128, 128, 1),     # 240 cabinets, 38 × 38 px: the address only
    (60, 4, 64, 64, 0),        # 240 cabinets in a 3840-px strip, 16 px: no labels; tints and table tell
])
def test_labels_shrink_then_hide_as_walls_grow(cols, rows, cab_w, cab_h, lines):
    screen, cabinets = grid_wall(cols, rows, cab_w, cab_h)
    root = parse(wall_svg(screen, cabinets))
    cabs = groups(root, "cabinet")
    assert len(cabs) == cols * rows
    counts = {len(texts(g)) for g in cabs}
    assert counts == {lines}
    sizes = {t.get("font-size") for g in cabs for t in g.iter(f"{SVG}text")}
    assert len(sizes) <= 2         # one size per line kind, whatever digits a cabinet shows
    if lines:
        assert all(float(s) >= 5.5 for s in sizes)


def test_portrait_wall_is_held_to_the_height_limit():
    screen, cabinets = grid_wall(1, 8, 256, 256)
    root = parse(wall_svg(screen, cabinets, max_width_px=600))
    outline = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "screen")
    assert float(outline.get("height")) <= 600


def test_legend_lists_the_rotation_mark_only_when_used(sample):
    screen, cabinets = sample
    with_rotation = texts(groups(parse(wall_svg(screen, cabinets)), "legend")[0])
    assert "mounted rotated 180°" in with_rotation and "no answer" in with_rotation
    for c in cabinets:
        c["rotation"] = 0
    assert "mounted rotated 180°" not in texts(groups(parse(wall_svg(screen, cabinets)), "legend")[0])


def test_two_pictures_on_one_page_share_identical_definitions(sample):
    screen, cabinets = sample
    a, b = wall_svg(screen, cabinets), wall_svg(*grid_wall(3, 1), lang="zh")
    assert a[a.index("<defs>"):a.index("</defs>")] == b[b.index("<defs>"):b.index("</defs>")]


@pytest.mark.parametrize("chain, rotation, led, expected", [
    ("rows", 0, (0, 0, 0), (1000, 2000)),
    ("rows", 0, (5, 3, 4), (1000 + 64 + 3, 2000 + 32 + 4)),          # module 5: row 1, column 1
    ("serpentine", 0, (5, 3, 4), (1000 + 2 * 64 + 3, 2000 + 32 + 4)),  # row 1 runs right to left
    ("rows", 180, (0, 0, 0), (1000 + 255, 2000 + 127)),               # turned: first pixel is last
    ("serpentine", 180, (5, 3, 4), (1000 + 255 - (2 * 64 + 3), 2000 + 127 - (32 + 4))),
])
def test_screen_position_derived_when_the_report_leaves_it_out(chain, rotation, led, expected):
    cab = cabinet(1, 1000, 2000, rotation=rotation)
    cab["chain"] = chain
    module, x, y = led
    assert dead_led_screen_xy(cab, {"module": module, "x": x, "y": y, "channel": "r"}) == expected
    given = {"module": module, "x": x, "y": y, "screen_x": 7, "screen_y": 9}
    assert dead_led_screen_xy(cab, given) == (7, 9)


def test_a_bare_layout_draws_too():
    # The self-test report may pass cabinets without status, found or dead_leds.
    cabs = [{"address": a, "x": (a - 1) * 128, "y": 0, "module": {"name": "m", "width": 64, "height": 64,
                                                                   "scan": 32},
             "modules_x": 2, "modules_y": 1} for a in (1, 2)]
    root = parse(wall_svg({"name": "bare", "width": 256, "height": 64}, cabs))
    assert len(groups(root, "cabinet")) == 2 and not groups(root, "missing")


# --- every dead LED visible and attributable (issue 15 item 8) ------------------------------------

def _em(text: str) -> float:
    return sum(1.0 if ord(c) > 0x2E7F else 0.6 for c in text)


def _box(el: ET.Element, halo: bool) -> tuple[float, float, float, float]:
    """The ink box of an SVG shape: circle, rect or polygon, with half its stroke if ``halo``."""
    grow = float(el.get("stroke-width", 0)) / 2 if halo else 0.0
    tag = el.tag.removeprefix(SVG)
    if tag == "circle":
        cx, cy, r = (float(el.get(k)) for k in ("cx", "cy", "r"))
        box = (cx - r, cy - r, cx + r, cy + r)
    elif tag == "rect":
        x, y, w, h = (float(el.get(k)) for k in ("x", "y", "width", "height"))
        box = (x, y, x + w, y + h)
    else:
        pts = [tuple(map(float, p.split(","))) for p in el.get("points").split()]
        box = (min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts))
    return box[0] - grow, box[1] - grow, box[2] + grow, box[3] + grow


def _union(boxes):
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(a, outer) -> bool:
    return outer[0] <= a[0] and outer[1] <= a[1] and a[2] <= outer[2] and a[3] <= outer[3]


def wall_geometry(root: ET.Element):
    """Cabinet rects by address; each marker's (address, ink box with halo, shape box); label boxes."""
    cabinets, labels = {}, []
    for g in groups(root, "cabinet"):
        rect = next(g.iter(f"{SVG}rect"))
        cabinets[int(g.get("data-address"))] = _box(rect, False)
        for t in g.iter(f"{SVG}text"):
            x, y, size = float(t.get("x")), float(t.get("y")), float(t.get("font-size"))
            half_w, half_h = _em(t.text) * size / 2, size * 0.6
            labels.append((x - half_w, y - half_h, x + half_w, y + half_h))
    markers = []
    for g in groups(root, "dead-led"):
        shapes = [e for e in g if e.tag.removeprefix(SVG) in ("circle", "rect", "polygon")
                  and e.get("class") != "leader" and float(e.get("r", 9)) > 1.3]
        ink = _union(_box(e, True) for e in shapes)
        body = _union(_box(e, False) for e in shapes if e.get("stroke") not in ("#ffffff",))
        markers.append((int(g.get("data-address")), ink, body))
    return cabinets, markers, labels


def assert_every_dead_led_visible_and_attributable(screen, cabinets, **kw):
    root = parse(wall_svg(screen, cabinets, **kw))
    rects, markers, labels = wall_geometry(root)
    assert len(markers) == sum(len(c["dead_leds"]) for c in cabinets)
    by_cabinet = {c["address"]: len(c["dead_leds"]) for c in cabinets}
    assert {a: sum(m[0] == a for m in markers) for a in by_cabinet} == by_cabinet
    for address, ink, _body in markers:
        assert _inside(ink, rects[address]), (address, ink, rects[address])     # on no border
        assert not any(_overlap(ink, label) for label in labels), (address, ink)
        assert min(ink[2] - ink[0], ink[3] - ink[1]) >= 3 * FLOOR_MARKER_R     # visible at any size
    for i, (_a, _ink, body) in enumerate(markers):
        for _b, _ink2, other in markers[i + 1:]:
            assert not _overlap(body, other), (body, other)                    # each its own marker
    return root, labels


def test_one_cabinet_every_dead_led_its_own_marker_clear_of_the_labels():
    # Adjacent LEDs, two colours of one pixel, a corner LED, and one at the centre where the labels sit.
    dead = [(0, 10, 5, "r"), (0, 11, 5, "g"), (5, 33, 17, "r"), (5, 33, 17, "b"), (0, 0, 0, "b"),
            (10, 0, 0, "g"), (10, 1, 0, "r"), (15, 63, 31, "r")]
    cab = cabinet(1, 0, 0, dead=dead)
    root, labels = assert_every_dead_led_visible_and_attributable(
        {"name": "one", "width": 256, "height": 128}, [cab])
    assert len(labels) == 2                               # address and temperature still shown


def test_two_hundred_cabinets_markers_inside_their_cabinet_and_clear_of_labels():
    # 20 × 10 cabinets of 48 × 24 px: LEDs on both sides of a border, adjacent ones, one at a centre.
    overrides = {1: {"dead": [(3, 63, 16, "r")]},                 # cabinet 1's right edge …
                 2: {"dead": [(0, 0, 16, "g")]},                  # … meets cabinet 2's left edge
                 21: {"dead": [(0, 0, 0, "b")]},                  # top-left corner, under cabinet 1
                 50: {"dead": [(1, 5, 5, "r"), (1, 6, 5, "r"), (1, 6, 6, "g")]},
                 77: {"dead": [(10, 0, 0, "r")]},                 # the cabinet's centre pixel
                 200: {"dead": [(15, 63, 31, "b"), (0, 0, 0, "r")]}}
    screen, cabinets = grid_wall(20, 10, 256, 128, overrides=overrides)
    root, labels = assert_every_dead_led_visible_and_attributable(screen, cabinets)
    with_leds = [g for g in groups(root, "cabinet") if int(g.get("data-address")) in overrides]
    assert all(texts(g) for g in with_leds)             # the address stays, moved clear of the marker
