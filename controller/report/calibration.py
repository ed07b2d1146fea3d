"""The calibration report: what a customer signs after a uniformity calibration from photographs.

``ledwarden calibrate --verify --before … --report …`` measures the wall from the photos taken
before the calibration and from the second round taken after it (the calibration applied)
and makes the report as a JSON dict (:mod:`controller.picture.photocal.record`); this module
turns it into one self-contained HTML page in English or Chinese, like the other reports:
the verdict (every primary's luminance spread under the limit), the figures before and
after, maps of the white's luminance and colour deviation before and after (inline SVG, one
cell per block of LEDs), the camera and the photos, and the signatures.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from controller.jsonin import JsonObject
from controller.report.html import Markup, el, join
from controller.report.i18n import check_lang, fmt_number, t
from controller.report.page import (badge, check_report, css, document, empty, footer, header, run_fields,
                                    screen_fields, section, signatures, simple_table, write_report)

KIND = "calibration"
VERSION = 1
RESULTS = ("pass", "fail")
#: Where the maps' colour scales saturate: luminance deviation in %, colour in Δu′v′.
LUMINANCE_SPAN = 5.0
COLOUR_SPAN = 0.01
#: Widest a map is drawn, in CSS pixels.
MAP_WIDTH = 260


def render_calibration_html(report: JsonObject, lang: str | None = None) -> str:
    """The whole HTML document for a calibration report, in ``lang`` (default: the report's)."""
    check_report(report, KIND, VERSION, "ledwarden calibrate --report")
    lang = check_lang(lang or report.get("lang") or "en")
    screen = report["screen"]
    running = f"{t('report.calibration', lang)} — {screen.get('name', '')}"
    limit = report.get("limit_percent")
    fields = [*screen_fields(report, lang),
              ("field.target", t("fmt.target", lang, limit=fmt_number(limit or 0, 2)), False, True),
              *run_fields(report, lang)]
    body = [
        header(f"ledwarden · {t('report.calibration', lang)}", screen.get("name"),
               badge(report.get("result"), RESULTS, lang), fields, lang),
        section("figures", t("section.figures", lang), _figures(report, lang)),
        section("maps", t("section.maps", lang), _maps(report, lang)),
        section("camera", t("section.camera", lang), _camera(report, lang)),
        section("signatures", t("section.signatures", lang),
                signatures(report.get("signatures") or [], "sig.calibration_statement", lang)),
        footer(report, KIND, lang),
    ]
    software = (report.get("controller") or {}).get("software", "")
    return document(lang, running, software, css(running, report.get("started"), lang, _CSS), body)


def write_calibration(report: JsonObject, directory: Path, stem: str = "calibration") -> tuple[Path, Path]:
    """Write ``stem.json`` and ``stem.html`` into ``directory`` (rendered first); both paths."""
    return write_report(report, render_calibration_html(report), directory, stem)


def _figures(report: JsonObject, lang: str) -> Markup:
    figs = report.get("figures") or {}
    spread = figs.get("spread_percent") or {}
    worst = figs.get("worst_module_delta_uv") or {}

    def pct(values: Any, k: int) -> str:
        return f"{fmt_number(values[k], 2)} %" if values else "—"

    rows = [[t(f"fig.spread_{name}", lang), pct(spread.get("before"), k), pct(spread.get("after"), k)]
            for k, name in enumerate(("red", "green", "blue"))]
    rows.append([t("fig.worst_module", lang),
                 *(f"{worst[w]:.4f}" if worst.get(w) is not None else "—" for w in ("before", "after"))])
    return simple_table("figures", [("col.measure", None), ("col.before", "num"), ("col.after", "num")],
                        rows, lang, "empty.summary")


def _colour_luminance(v: float) -> str:
    s = max(-1.0, min(1.0, v / LUMINANCE_SPAN))
    fade = round(255 * (1 - abs(s)))
    return f"rgb(255,{fade},{fade})" if s >= 0 else f"rgb({fade},{fade},255)"


def _colour_delta(v: float) -> str:
    s = max(0.0, min(1.0, v / COLOUR_SPAN))
    return f"rgb({round(255 - 51 * s)},{round(255 - 170 * s)},{round(255 - 255 * s)})"


def _map_svg(grid: list[list[float | None]], colour: Any) -> Markup:
    rows, cols = len(grid), max((len(r) for r in grid), default=0)
    if not rows or not cols:
        return Markup("")
    cell = min(12.0, MAP_WIDTH / cols)
    rects = [el("rect", {"x": c * cell, "y": r * cell, "width": cell, "height": cell,
                         "fill": "#d0d0d0" if v is None or not math.isfinite(v) else colour(v)})
             for r, row in enumerate(grid) for c, v in enumerate(row)]
    return el("svg", {"xmlns": "http://www.w3.org/2000/svg", "width": cols * cell, "height": rows * cell,
                      "viewBox": f"0 0 {cols * cell:.2f} {rows * cell:.2f}", "shape_rendering": "crispEdges"},
              *rects)


def _maps(report: JsonObject, lang: str) -> Markup:
    maps = report.get("maps") or {}
    figures = []
    for kind, colour, scale in (
            ("luminance", _colour_luminance, t("map.scale_luminance", lang, span=fmt_number(LUMINANCE_SPAN))),
            ("colour", _colour_delta, t("map.scale_colour", lang, span=fmt_number(COLOUR_SPAN, 3)))):
        grids = maps.get(kind) or {}
        for when in ("before", "after"):
            figures.append(el("figure", {"class": "map"}, _map_svg(grids.get(when) or [], colour),
                              el("figcaption", None,
                                 join([t(f"map.{kind}", lang), " · ", t(f"col.{when}", lang)]),
                                 el("span", {"class": "sub"}, scale))))
    if not any(maps.get(k) for k in ("luminance", "colour")):
        return empty("empty.summary", lang)
    return el("div", {"class": "maps"}, *figures)


def _camera(report: JsonObject, lang: str) -> Markup:
    camera = report.get("camera") or {}
    photos = report.get("photos") or {}
    rows = [[t("field.camera_profile", lang), camera.get("profile") or "—"],
            [t("field.photos_before", lang), ", ".join(photos.get("before") or []) or "—"],
            [t("field.photos_after", lang), ", ".join(photos.get("after") or []) or "—"]]
    rows += [[str(k), str(v)] for k, v in (camera.get("settings") or {}).items()]
    table = simple_table("camera", [("col.measure", None), ("col.detail", "mono")], rows, lang,
                         "empty.camera")
    return table if camera.get("settings") else join([table, empty("empty.camera", lang)])


_CSS = """\
.maps { display: grid; grid-template-columns: repeat(2, max-content); gap: 12px 28px; }
.map { margin: 0; break-inside: avoid; }
.map svg { display: block; border: 1px solid #bbb; }
.map figcaption { font-size: 12px; margin-top: 4px; max-width: 260px; }
.map figcaption .sub { display: block; }
"""
