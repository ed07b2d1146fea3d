"""Draw the bus interface (``bus_interface.py``'s data) as the SVG in the docs.

Why our own drawing and not SKiDL's or KiCad's: SKiDL's schematic output
needs KiCad's symbol libraries and KiCad itself to render, neither of which
CI has.  This draws every part of the netlist from the same data, in the
style of a schematic with global labels: each pin ends in a flag naming its
net, and pins with the same name are connected.  Nothing is drawn that the
netlist does not say, and ``tests/hw/test_schematic.py`` checks that every
net, part and pin in the netlist appears here, and that the committed SVG is
what this module draws.

``python -m hw.schematics.render_svg`` (or ``python3 dev.py schematic``)
rewrites ``bus_interface.svg``.  The output is deterministic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from controller import board
from hw.schematics import bus_interface as design
from hw.schematics import failsafe

SVG = design.HERE / "bus_interface.svg"
WIDTH, HEIGHT = 1240, 980
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"

#: Net colours by role, so the eye follows a signal across the sheet.
COLOURS = {
    "+3V3": "#c0392b", "GND": "#2c3e50", "UART_TXD": "#1e8449", "UART_RXD": "#117a65",
    "RS485_DE": "#d35400", "RS485_A": "#1f4fbf", "RS485_B": "#7d3c98", "SHIELD": "#7f8c8d",
    "LED_DRIVE": "#b7950b", "LED_ANODE": "#b7950b",
}

#: What the board routes to each header GPIO it uses (from controller/board.py).
FUNCTIONS = {p.pin: f"{p.function} ({p.alt})" for p in
             (board.UART_TX, board.UART_RX, board.DRIVER_ENABLE, board.STATUS_LED)}


class Sheet:
    """An SVG being written: shapes appended in drawing order."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, item: str) -> None:
        self.items.append(item)

    def text(self, x: float, y: float, s: str, size: int = 13, anchor: str = "start",
             weight: str = "normal", fill: str = "#000") -> None:
        self.add(f'<text x="{x:g}" y="{y:g}" font-size="{size}" text-anchor="{anchor}" '
                 f'font-weight="{weight}" fill="{fill}">{escape(s)}</text>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#000",
             width: float = 1.5) -> None:
        self.add(f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{stroke}" '
                 f'stroke-width="{width:g}"/>')

    def rect(self, x: float, y: float, w: float, h: float, fill: str = "#fffdf0",
             stroke: str = "#000", width: float = 1.5) -> None:
        self.add(f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" fill="{fill}" '
                 f'stroke="{stroke}" stroke-width="{width:g}"/>')

    def label(self, x: float, y: float, net: str, side: str) -> None:
        """A net flag whose point touches (x, y); ``side`` is where the flag extends."""
        colour = COLOURS.get(net, "#000")
        w, h = 14 + 8 * len(net), 18
        sign = 1 if side == "right" else -1
        tip, body = x, x + sign * 8
        end = x + sign * (8 + w)
        points = [(tip, y), (body, y - h / 2), (end, y - h / 2), (end, y + h / 2), (body, y + h / 2)]
        self.add('<polygon points="%s" fill="#fff" stroke="%s" stroke-width="1.5"/>' % (
            " ".join(f"{px:g},{py:g}" for px, py in points), colour))
        self.text((body + end) / 2, y + 4.5, net, 12, "middle", "bold", colour)

    def render(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
                f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}">\n'
                f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>\n')
        return head + "\n".join(self.items) + "\n</svg>\n"


def _net_of(ref: str, number: str) -> str | None:
    for net, nodes in design.connections().items():
        if (ref, number) in nodes:
            return net
    return None


def _pin_stub(s: Sheet, x: float, y: float, ref: str, number: str, side: str,
              length: float = 34) -> None:
    """A pin line out of a box edge at (x, y), ending in its net's flag."""
    net = _net_of(ref, number)
    end = x + length if side == "right" else x - length
    s.line(x, y, end, y, COLOURS.get(net or "", "#000"))
    s.text((x + end) / 2, y - 4, number, 10, "middle", fill="#555")
    if net is None:
        s.text(end + (6 if side == "right" else -6), y + 4, "NC", 12,
               "start" if side == "right" else "end", fill="#999")
        return
    s.label(end, y, net, side)


def _header(s: Sheet, x: float, y: float) -> None:
    """J1 as the rows of header pins in use, grouped by net; unused ones summarised."""
    part = design.part("J1")
    groups: dict[str, list[int]] = {}
    for p in part.pins:
        net = _net_of("J1", p.number)
        if net is not None:
            groups.setdefault(net, []).append(int(p.number))
    rows = sorted(groups.items(), key=lambda kv: min(kv[1]))
    w, pitch = 330, 34
    h = pitch * (len(rows) + 1) + 34
    s.rect(x, y, w, h)
    s.text(x + w / 2, y - 26, "J1  Raspberry Pi 40-pin header", 15, "middle", "bold")
    s.text(x + w / 2, y - 9, part.footprint.split(":")[1], 10, "middle", fill="#555")
    for i, (net, pins) in enumerate(rows):
        ry = y + 28 + i * pitch
        name = part.pin(str(pins[0])).name
        func = FUNCTIONS.get(pins[0], "")
        numbers = ", ".join(str(n) for n in sorted(pins))
        s.text(x + 10, ry + 4, f"pin {numbers}", 12, weight="bold")
        s.text(x + w - 8, ry + 4, f"{name} {func}".strip(), 12, "end")
        s.line(x + w, ry, x + w + 30, ry, COLOURS.get(net, "#000"))
        s.label(x + w + 30, ry, net, "right")
    spare = [p for p in part.pins if _net_of("J1", p.number) is None]
    five = [p.number for p in spare if p.name == "5V"]
    ry = y + 28 + len(rows) * pitch
    s.text(x + 10, ry + 4, f"pin {', '.join(five)}  5V: not connected (GPIO is 3.3 V only)", 11,
           fill="#c0392b")
    s.text(x + 10, ry + 22, f"{len(spare) - len(five)} other pins not connected", 11, fill="#777")


def _ic(s: Sheet, x: float, y: float, ref: str) -> None:
    """An 8-pin IC: pins 1-4 down the left, 8-5 down the right, as on the package."""
    part = design.part(ref)
    n = len(part.pins)
    half = n // 2
    w, pitch = 150, 40
    h = pitch * half + 20
    s.rect(x, y, w, h)
    s.text(x + w / 2, y - 26, f"{ref}  {part.value}", 15, "middle", "bold")
    s.text(x + w / 2, y - 9, "3.3 V RS-485, A/B to +-60 V", 10, "middle", fill="#555")
    for i in range(half):
        left = part.pins[i]
        right = part.pins[n - 1 - i]
        ry = y + 30 + i * pitch
        s.text(x + 8, ry + 4, left.name.replace("~{RE}", "/RE"), 13)
        s.text(x + w - 8, ry + 4, right.name, 13, "end")
        _pin_stub(s, x, ry, ref, left.number, "left")
        _pin_stub(s, x + w, ry, ref, right.number, "right")


def _resistor(s: Sheet, x: float, y: float) -> None:
    s.rect(x - 8, y, 16, 40, fill="#ffffff")


def _capacitor(s: Sheet, x: float, y: float) -> None:
    s.line(x, y, x, y + 16)
    s.line(x - 14, y + 16, x + 14, y + 16, width=2.5)
    s.line(x - 14, y + 24, x + 14, y + 24, width=2.5)
    s.line(x, y + 24, x, y + 40)


def _led(s: Sheet, x: float, y: float) -> None:
    """Anode at the top (y), cathode at the bottom: current flows down."""
    s.line(x, y, x, y + 10)
    s.add(f'<polygon points="{x - 12:g},{y + 10:g} {x + 12:g},{y + 10:g} {x:g},{y + 28:g}" '
          f'fill="#ffffff" stroke="#000" stroke-width="1.5"/>')
    s.line(x - 12, y + 28, x + 12, y + 28, width=2)
    s.line(x, y + 28, x, y + 40)
    for dy in (12, 20):
        s.line(x + 15, y + dy, x + 25, y + dy - 8, width=1)


SYMBOLS = {"R": _resistor, "C": _capacitor, "LED": _led}


def _two_pin(s: Sheet, x: float, y: float, ref: str, top: str, note: str) -> None:
    """A two-terminal part drawn upright: pin ``top`` up, the other down, flags at both ends."""
    part = design.part(ref)
    bottom = next(p.number for p in part.pins if p.number != part.pin(top).number)
    top_number = part.pin(top).number
    top_net, bottom_net = _net_of(ref, top_number), _net_of(ref, bottom)
    s.line(x, y - 30, x, y, COLOURS.get(top_net or "", "#000"))
    s.line(x, y + 40, x, y + 70, COLOURS.get(bottom_net or "", "#000"))
    SYMBOLS[part.name](s, x, y)
    dx = 30 if part.name == "LED" else 18  # clear of the LED's light arrows
    s.text(x + dx, y + 16, ref, 13, weight="bold")
    s.text(x + dx, y + 31, part.value, 12)
    s.text(x, y + 180, note, 10, "middle", fill="#555")
    s.text(x - 5, y - 18, top_number, 10, "end", fill="#555")
    s.text(x - 5, y + 62, bottom, 10, "end", fill="#555")
    for net, py in ((top_net, y - 30), (bottom_net, y + 70)):
        if net is not None:
            s.add(f'<g transform="rotate(-90 {x:g} {py:g})">')
            s.label(x, py, net, "right" if py < y else "left")
            s.add("</g>")


def _tvs(s: Sheet, x: float, y: float, ref: str) -> None:
    """The 3-pin TVS: IO1 and IO2 on top, the common pin below."""
    part = design.part(ref)
    s.rect(x - 40, y, 80, 44)
    s.text(x, y + 19, part.value, 12, "middle", "bold")
    s.text(x, y + 35, "TVS", 11, "middle", fill="#555")
    s.text(x + 46, y + 60, ref, 13, weight="bold")
    for number, px in (("1", x - 20), ("2", x + 20)):
        net = _net_of(ref, number)
        s.line(px, y, px, y - 30, COLOURS.get(net or "", "#000"))
        s.text(px + 4, y - 6, number, 10, fill="#555")
        s.add(f'<g transform="rotate(-90 {px:g} {y - 30:g})">')
        s.label(px, y - 30, net or "", "right")
        s.add("</g>")
    net = _net_of(ref, "3")
    s.line(x, y + 44, x, y + 74, COLOURS.get(net or "", "#000"))
    s.text(x + 4, y + 58, "3", 10, fill="#555")
    s.add(f'<g transform="rotate(-90 {x:g} {y + 74:g})">')
    s.label(x, y + 74, net or "", "left")
    s.add("</g>")
    s.text(x, y + 180, "surge/ESD on A, B", 10, "middle", fill="#555")


def _connector(s: Sheet, x: float, y: float, ref: str) -> None:
    part = design.part(ref)
    w, pitch = 150, 36
    h = pitch * len(part.pins) + 12
    s.rect(x, y, w, h)
    s.text(x + w / 2, y - 26, f"{ref}  card bus connector", 15, "middle", "bold")
    s.text(x + w / 2, y - 9, "4-way 5.08 mm pluggable terminal", 10, "middle", fill="#555")
    for i, p in enumerate(part.pins):
        ry = y + 24 + i * pitch
        s.text(x + 12, ry + 4, f"{p.number}  {p.name}", 13, weight="bold")
        _pin_stub(s, x, ry, ref, p.number, "left")
        s.add(f'<circle cx="{x + w - 20:g}" cy="{ry:g}" r="7" fill="#ffffff" stroke="#000" '
              f'stroke-width="1.5"/>')


def _bias_figures() -> tuple[float, float]:
    """Worst-case idle A-B (volts) on the bench and on the largest bus, from failsafe.py."""
    ohms = design.resistance
    bus = failsafe.fully_loaded(ohms("R2"), ohms("R3"), ohms("R1"))
    return failsafe.worst_idle(failsafe.unloaded(bus))[0], failsafe.worst_idle(bus)[0]


def _notes(s: Sheet, x: float, y: float) -> None:
    bench, loaded = _bias_figures()
    bias, term = design.part("R2").value, design.part("R1").value
    lines = [
        "Nets connect by name: every flag with the same name is one net.",
        f"Bus: {board.BUS_PORT} ({board.BUS_UART}, PL011) at {board.BUS_BAUD} baud, 8N1.",
        "DE and /RE tied: RTS0 high while sending (kernel RS-485 mode), receive otherwise.",
        f"R1 {term} always fitted (|| R2+R3: ~120R to a signal): the controller ends the bus.",
        f"Bias R2/R3 {bias}: idle A-B >= {loaded * 1000:.0f} mV, worst case, with "
        f"{failsafe.MAX_CARDS} cards of 1/8 unit load",
        f"on {failsafe.MAX_CABLE_METRES:.0f} m of cable; >= {bench * 1000:.0f} mV on the bench "
        "(hw/schematics/failsafe.py).",
        "+3V3 and GND come from the Pi (PWR_FLAG). U1 A/B rated +-60 V, above D1's 26 V clamp.",
        "A = non-inverting (D+), B = inverting (D-), as on the transceiver.",
    ]
    s.rect(x, y, 760, 22 + 18 * len(lines), fill="#f7f9fb", stroke="#bbb", width=1)
    for i, text in enumerate(lines):
        s.text(x + 12, y + 20 + 18 * i, text, 12, fill="#333")


def draw() -> str:
    s = Sheet()
    s.text(40, 40, "ledwarden controller: RS-485 bus interface", 22, weight="bold")
    s.text(40, 62, f"generated from {design.SOURCE_NAME} (netlist: bus_interface.net)", 12,
           fill="#555")
    _header(s, 40, 130)
    _ic(s, 640, 150, "U1")
    _connector(s, 1030, 150, "J2")
    # passives: the supply pair, the bus network, the support resistors, LED and shield
    row = 540
    _two_pin(s, 70, row, "C1", "1", "U1 decoupling")
    _two_pin(s, 170, row, "R2", "1", "bias A up")
    _two_pin(s, 270, row, "R1", "1", "termination")
    _two_pin(s, 370, row, "R3", "1", "bias B down")
    _tvs(s, 490, row, "D1")
    _two_pin(s, 620, row, "R4", "1", "RXD idles high")
    _two_pin(s, 720, row, "R5", "1", "DE off at boot")
    _two_pin(s, 820, row, "R6", "1", "LED current")
    _two_pin(s, 920, row, "D2", "A", "status LED")
    _two_pin(s, 1030, row, "C2", "1", "shield AC")
    _two_pin(s, 1140, row, "R7", "1", "shield bleed")
    _notes(s, 40, 790)
    return s.render()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Draw the bus interface as SVG.")
    ap.add_argument("--out", type=Path, default=SVG, help=f"where to write (default {SVG})")
    args = ap.parse_args(argv)
    args.out.write_text(draw(), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
