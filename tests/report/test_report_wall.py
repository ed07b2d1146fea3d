"""The wall picture: valid SVG, every cabinet and dead LED drawn, legible from 2 to 240 cabinets."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from controller.report.wall import (MIN_MARKER_R, dead_led_screen_xy, temperature_level,
                                    wall_svg)
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
