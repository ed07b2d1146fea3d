"""The tables every report prints about the wall: cabinets with their readings, and every dead LED.

The acceptance report and the inspection report carry cabinets of one
shape, so they print them with the same code: a customer who signed the
acceptance page finds the same columns, words and tints a quarter later on
the inspection page, and the tables agree with the wall picture because
both take their levels, addresses and positions from :mod:`.wall`.
"""

from __future__ import annotations

from controller.brightness import percent_of_level
from controller.report.findings import message_text
from controller.report.html import Markup, el, join
from controller.report.i18n import fmt_fan, fmt_supply, fmt_temperature, label, plural, t
from controller.report.page import simple_table, status, sub, thead
from controller.report.wall import (address_text, cabinet_size, dead_led_screen_xy, marker_shapes,
                                    temperature_level)


def module_types(cabinets: list[dict], lang: str) -> str:
    """Each module type once (``p25: 64 × 32 px, 1/16 scan``): the table then needs only its name."""
    seen: dict[str, str] = {}
    for cab in cabinets:
        m = cab.get("module") or {}
        if m.get("name") is not None and m["name"] not in seen:
            size = t("fmt.pixels", lang, w=m.get("width"), h=m.get("height"))
            seen[m["name"]] = f"{m['name']}: {size}, {t('fmt.scan', lang, scan=m.get('scan'))}"
    return "; ".join(seen.values()) or "—"


def grid_positions(cabinets: list[dict]) -> dict[int, tuple[int, int]]:
    """Row and column (from 1) of each cabinet, keyed by ``id()``: the rank of its y and x among all."""
    rows = {y: i for i, y in enumerate(sorted({int(c["y"]) for c in cabinets}), 1)}
    cols = {x: i for i, x in enumerate(sorted({int(c["x"]) for c in cabinets}), 1)}
    return {id(c): (rows[int(c["y"])], cols[int(c["x"])]) for c in cabinets}


def cabinet_table(cabinets: list[dict], lang: str) -> Markup:
    cols = [("col.address", None), ("col.position", None), ("col.modules", None), ("col.card", None),
            ("col.config", None), ("col.temperature", "num"), ("col.supply", "num"), ("col.fan", "num"),
            ("col.flags", None), ("col.dead_leds", "num")]
    pos = grid_positions(cabinets)
    bodies = [_cabinet_rows(cab, pos[id(cab)], len(cols), lang) for cab in cabinets]
    return el("div", {"class": "scroll"}, el("table", {"class": "cabinets"}, thead(cols, lang), *bodies))


def _cabinet_rows(cab: dict, row_col: tuple[int, int], ncols: int, lang: str) -> Markup:
    """One cabinet's row, and under it a full-width row of its problems if it has any.

    Each cabinet is its own ``<tbody>`` so print never splits a cabinet from
    its problems across pages.
    """
    found = cab.get("found", True)
    cab_status = cab.get("status") or {}
    module = cab.get("module") or {}
    w, h = cabinet_size(cab)
    problems = cab.get("problems") or []
    dead = len(cab.get("dead_leds") or [])
    layout = [t("fmt.pixels", lang, w=w, h=h), label("chain", cab.get("chain"), lang)]
    if cab.get("rotation") == 180:
        layout.append(t("value.rotated", lang))
    config: list[Markup | str | None]
    temp: Markup | str
    if found:
        bank = t("fmt.bank", lang, bank=cab["bank"]) if cab.get("bank") else None
        card = [el("span", {"class": "mono"}, cab.get("serial") or "—"),
                sub(cab.get("model"), cab.get("firmware"), bank)]
        brightness = cab.get("brightness")
        config = [status(cab.get("config_ok"), lang),
                  sub(t("fmt.brightness", lang, pct=round(percent_of_level(brightness))))
                  if brightness is not None else None]
        temp = el("span", {"class": f"temp {temperature_level(cab)}"},
                  fmt_temperature(cab_status.get("temperature_c")))
        flags = cab_status.get("flags") or []
        flag_text = join((label("flag", f, lang) for f in flags), ", ") if flags else t("value.none", lang)
    else:
        card = [el("span", {"class": "noanswer"}, t("value.no_answer", lang))]
        config, temp, flag_text = ["—"], "—", "—"
    cells = [
        el("td", {"class": "addr mono"}, address_text(cab["address"])),
        el("td", {"class": "pos"}, t("fmt.row_col", lang, row=row_col[0], col=row_col[1]),
           sub(f"({cab['x']}, {cab['y']})")),
        el("td", None, f"{cab.get('modules_x')} × {cab.get('modules_y')} {module.get('name', '')}",
           sub(*layout)),
        el("td", None, *card),
        el("td", None, *config),
        el("td", {"class": "num"}, temp),
        el("td", {"class": "num"}, fmt_supply(cab_status.get("supply_mv"))),
        el("td", {"class": "num"}, fmt_fan(cab_status.get("fan_rpm"), lang, cab_status.get("flags") or ())),
        el("td", {"class": "flags"}, flag_text),
        el("td", {"class": "num dead" if dead else "num"}, str(dead) if found else "—"),
    ]
    klass = " ".join(k for k in ("missing" if not found else "", "has-problems" if problems else "") if k)
    rows = [el("tr", {"class": klass or None, "id": f"cabinet-{int(cab['address'])}"}, *cells)]
    if problems:
        rows.append(el("tr", {"class": "problems"},
                       el("td", {"colspan": ncols},
                          el("ul", None, *(el("li", None, message_text(p, lang)) for p in problems)))))
    return el("tbody", None, *rows)


def led_icon(channel: str) -> Markup:
    """The wall's marker for a channel, small, to start a table cell: the table and picture agree."""
    return el("svg", {"class": "icon", "width": 14, "height": 14, "viewBox": "0 0 16 16",
                      "aria-hidden": "true"}, marker_shapes(channel, 8, 8, 4.5))


def led_row(cab: dict, led: dict, lang: str) -> list:
    """Cabinet, module, place in the module, colour, place on the screen: how an engineer finds it."""
    channel = str(led.get("channel", ""))
    try:
        on_screen = "({}, {})".format(*dead_led_screen_xy(cab, led))
    except (KeyError, TypeError, ValueError):
        on_screen = "—"          # a comparison's LED on a cabinet no longer in the screen file
    return [address_text(cab["address"]), str(led.get("module")), f"({led.get('x')}, {led.get('y')})",
            join([led_icon(channel), label("channel", channel, lang)]), on_screen]


LED_COLS = [("col.cabinet", "mono"), ("col.module", "num"), ("col.in_module", "num"), ("col.channel", None),
            ("col.on_screen", "num")]


def dead_led_table(cabinets: list[dict], lang: str, *, mark_new: bool = False) -> Markup:
    """Every dead LED under a one-line total, or the sentence that there are none.

    With ``mark_new`` (the inspection report) a last column says which are
    new since the previous inspection, from each LED's ``new`` flag.
    """
    rows, with_dead = [], 0
    for cab in cabinets:
        leds = cab.get("dead_leds") or []
        with_dead += bool(leds)
        for led in leds:
            row = led_row(cab, led, lang)
            if mark_new:
                row.append(el("span", {"class": "tag new"}, t("value.new", lang)) if led.get("new") else "")
            rows.append(row)
    if not rows:
        return el("p", {"class": "empty"}, t("empty.dead_leds", lang))
    n = len(rows)
    total = el("p", {"class": "lead"}, t("fmt.dead_total", lang, n=n, c=with_dead,
                                         leds=plural(n, "dead_led", lang),
                                         cabinets=plural(with_dead, "cabinet", lang)))
    cols = LED_COLS + ([("col.change", None)] if mark_new else [])
    return join([total, simple_table("dead", cols, rows, lang, "empty.dead_leds")])
