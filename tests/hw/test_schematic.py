"""The bus-interface netlist against the software's defaults, the datasheets and the docs.

The committed KiCad netlist (``hw/schematics/bus_interface.net``) is read
here with a small s-expression reader of our own, so the electrical checks
do not trust the code that wrote it.  What the checks know independently:
the MAX3485's and SM712's pinouts (from their datasheets), which GPIO sits
on which header pin and which pin-mux function makes it a UART0 signal (the
Pi's documented pinout), and the card connector's pinout as
``docs/hardware.md`` states it.  ``controller/board.py`` names the pins the
software uses; every one of them must land where the netlist says.

Each check is a function of a parsed netlist, so the last tests can feed
them a deliberately broken one and see them fail.  Regeneration is checked
too: SKiDL (pinned, in the test extras) must write the committed file byte
for byte, and the SVG must be what ``render_svg`` draws.  Without SKiDL the
regeneration test is skipped on a developer's machine and fails in CI.
"""

from __future__ import annotations

import copy
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from controller import board
from controller.protocol.bus import DEFAULT_BAUD
from hw.schematics import bus_interface as design
from hw.schematics import render_svg

ROOT = Path(__file__).resolve().parents[2]
NETLIST = design.NETLIST
DOC = ROOT / "docs" / "hardware.md"

#: MAX3485 (SO-8/DIP-8) pin numbers, from the datasheet.
MAX3485 = {"RO": "1", "RE": "2", "DE": "3", "DI": "4", "GND": "5", "A": "6", "B": "7", "VCC": "8"}
#: SM712 (SOT-23): two line pins and the common (ground) pin.
SM712 = {"IO1": "1", "IO2": "2", "COM": "3"}
#: The Pi's 40-pin header: physical pin -> BCM GPIO (27 and 28 are the HAT ID EEPROM's).
HEADER_GPIO = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24,
               19: 10, 21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12,
               33: 13, 35: 19, 36: 16, 37: 26, 38: 20, 40: 21}
HEADER_3V3, HEADER_5V = {1, 17}, {2, 4}
HEADER_GND = {6, 9, 14, 20, 25, 30, 34, 39}
#: BCM283x/BCM2711 pin-mux: (GPIO, function select) -> UART0 signal.
UART0_MUX = {(14, "ALT0"): "TXD0", (15, "ALT0"): "RXD0", (17, "ALT3"): "RTS0", (16, "ALT3"): "CTS0"}


# ------------------------------------------------------------------ reading the netlist

def parse_sexp(text: str):
    """KiCad s-expressions as nested lists of strings (quoted strings unquoted)."""
    tokens = re.findall(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()"]+', text)
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == "(":
            stack.append([])
        elif tok == ")":
            done = stack.pop()
            stack[-1].append(done)
        elif tok.startswith('"'):
            stack[-1].append(re.sub(r"\\(.)", r"\1", tok[1:-1]))
        else:
            stack[-1].append(tok)
    assert len(stack) == 1 and len(stack[0]) == 1, "unbalanced parentheses"
    return stack[0][0]


def _field(node: list, key: str):
    for item in node[1:]:
        if isinstance(item, list) and item and item[0] == key:
            return item
    return None


class Netlist:
    """Parts (ref -> value, footprint, symbol) and nets (name -> {(ref, pin)}) of a .net file."""

    def __init__(self, text: str) -> None:
        tree = parse_sexp(text)
        assert tree[0] == "export", "not a KiCad netlist"
        self.parts = {}
        for comp in _field(tree, "components")[1:]:
            ref = _field(comp, "ref")[1]
            lib = _field(comp, "libsource")
            self.parts[ref] = {"value": _field(comp, "value")[1],
                               "footprint": _field(comp, "footprint")[1],
                               "symbol": _field(lib, "part")[1]}
        self.nets = {}
        for net in _field(tree, "nets")[1:]:
            nodes = {(_field(n, "ref")[1], _field(n, "pin")[1]) for n in net[1:]
                     if isinstance(n, list) and n[0] == "node"}
            self.nets[_field(net, "name")[1]] = nodes

    def net(self, ref: str, pin: str) -> str | None:
        """The name of the net (ref, pin) is on, None if it is unconnected."""
        for name, nodes in self.nets.items():
            if (ref, pin) in nodes:
                return name
        return None

    def header_pins(self, net: str | None) -> set[int]:
        """Header pins on a net."""
        return {int(pin) for ref, pin in self.nets.get(net, ()) if ref == "J1"}

    def two_pin_parts(self, symbol: str) -> list[tuple[str, frozenset]]:
        """(ref, {net of pin 1, net of pin 2}) of every part with this symbol name."""
        return [(ref, frozenset((self.net(ref, "1"), self.net(ref, "2"))))
                for ref, info in self.parts.items() if info["symbol"] == symbol]


@pytest.fixture(scope="module")
def netlist() -> Netlist:
    return Netlist(NETLIST.read_text(encoding="utf-8"))


def _ohms(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([RkM]?)(\d*)", value)
    assert m, f"cannot read resistor value {value!r}"
    scale = {"R": 1, "": 1, "k": 1e3, "M": 1e6}[m[2]]
    return float(m[1] + ("." + m[3] if m[3] else "")) * scale


def _transceiver(n: Netlist) -> str:
    refs = [ref for ref, info in n.parts.items() if info["symbol"] == "MAX3485"]
    assert len(refs) == 1, f"expected one MAX3485, found {refs}"
    return refs[0]


def _doc_connector_pinout() -> dict[str, str]:
    """signal -> J2 pin, from the pinout table under "Card connector" in docs/hardware.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Card connector", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(A|B|GND|SHIELD)\s*\|", section, re.M)
    assert rows, "docs/hardware.md has no connector pinout table under '## Card connector'"
    return {signal: pin for pin, signal in rows}


# ------------------------------------------------------------------ the checks

def check_uart_and_driver_enable(n: Netlist) -> None:
    u = _transceiver(n)
    tx = n.header_pins(n.net(u, MAX3485["DI"]))
    rx = n.header_pins(n.net(u, MAX3485["RO"]))
    de = n.header_pins(n.net(u, MAX3485["DE"]))
    assert tx == {board.UART_TX.pin}, f"U1 DI reaches header pins {tx}; board.py sends on {board.UART_TX.pin}"
    assert rx == {board.UART_RX.pin}, f"U1 RO reaches header pins {rx}; board.py reads {board.UART_RX.pin}"
    assert de == {board.DRIVER_ENABLE.pin}, (
        f"U1 DE reaches header pins {de}; board.py drives it from {board.DRIVER_ENABLE.pin}")
    assert n.net(u, MAX3485["RE"]) == n.net(u, MAX3485["DE"]), (
        "/RE must follow DE: receiver off exactly while the driver is on")


def check_supply(n: Netlist) -> None:
    u = _transceiver(n)
    vcc = n.header_pins(n.net(u, MAX3485["VCC"]))
    gnd = n.header_pins(n.net(u, MAX3485["GND"]))
    assert vcc and vcc <= HEADER_3V3, f"U1 VCC is fed from header pins {vcc}, not the 3.3 V pins"
    assert gnd == HEADER_GND, f"U1 GND reaches header pins {gnd}; all ground pins expected"
    for pin in HEADER_5V:
        assert n.net("J1", str(pin)) is None, (
            f"header pin {pin} (5 V) is connected: the Pi's GPIOs are not 5 V tolerant")
    decoupling = frozenset((n.net(u, MAX3485["VCC"]), n.net(u, MAX3485["GND"])))
    assert any(nets == decoupling for _, nets in n.two_pin_parts("C")), "no decoupling capacitor on U1"


def check_connector(n: Netlist) -> None:
    u = _transceiver(n)
    want = _doc_connector_pinout()
    assert set(want) == {"A", "B", "GND", "SHIELD"}, want
    for signal in ("A", "B", "GND"):
        assert n.net("J2", want[signal]) == n.net(u, MAX3485[signal]), (
            f"U1 {signal} is not on J2 pin {want[signal]}, where docs/hardware.md puts it")
    shield = n.net("J2", want["SHIELD"])
    assert shield is not None and shield != n.net(u, MAX3485["GND"]), (
        "the shield must not be tied to GND directly (ground loops)")


def check_termination_and_bias(n: Netlist) -> None:
    u = _transceiver(n)
    a, b = n.net(u, MAX3485["A"]), n.net(u, MAX3485["B"])
    v33, gnd = n.net(u, MAX3485["VCC"]), n.net(u, MAX3485["GND"])
    resistors = n.two_pin_parts("R")

    def values(*nets):
        return [_ohms(n.parts[ref]["value"]) for ref, on in resistors if on == frozenset(nets)]

    across = values(a, b)
    assert len(across) == 1, f"expected one resistor across A-B, found {len(across)}"
    assert 110 <= across[0] <= 130, f"termination {across[0]} ohm; the cable wants ~120"
    up, down = values(a, v33), values(b, gnd)
    assert len(up) == 1 and len(down) == 1, "fail-safe bias needs A pulled up and B pulled down"
    both_ends = across[0] / 2  # the last card terminates the other end
    idle = 3.3 * both_ends / (up[0] + down[0] + both_ends)
    assert idle > 0.200, f"idle A-B is {idle * 1000:.0f} mV; receivers need > 200 mV to read a stop bit"


def check_protection(n: Netlist) -> None:
    u = _transceiver(n)
    tvs = [ref for ref, info in n.parts.items() if info["symbol"] == "SM712"]
    assert len(tvs) == 1, f"expected one SM712, found {tvs}"
    d = tvs[0]
    lines = {n.net(d, SM712["IO1"]), n.net(d, SM712["IO2"])}
    assert lines == {n.net(u, MAX3485["A"]), n.net(u, MAX3485["B"])}, "the TVS is not on A and B"
    assert n.net(d, SM712["COM"]) == n.net(u, MAX3485["GND"]), "the TVS common pin is not on GND"


def check_status_led(n: Netlist) -> None:
    drive = n.net("J1", str(board.STATUS_LED.pin))
    series = [(ref, on) for ref, on in n.two_pin_parts("R") if drive is not None and drive in on]
    assert len(series) == 1, f"header pin {board.STATUS_LED.pin} should drive one series resistor"
    (other,) = series[0][1] - {drive}
    leds = [ref for ref, info in n.parts.items() if info["symbol"] == "LED"]
    assert len(leds) == 1, f"expected one status LED, found {leds}"
    # KiCad's LED symbol: pin 1 is the cathode, pin 2 the anode
    assert n.net(leds[0], "2") == other, "the LED's anode is not behind the series resistor"
    assert n.header_pins(n.net(leds[0], "1")) == HEADER_GND, "the LED's cathode is not on ground"


CHECKS = (check_uart_and_driver_enable, check_supply, check_connector,
          check_termination_and_bias, check_protection, check_status_led)


# ------------------------------------------------------------------ tests

def test_board_defaults_are_the_pis_uart0():
    """board.py's pins are UART0 on a real Pi: header pin -> GPIO -> pin-mux function."""
    for p in (board.UART_TX, board.UART_RX, board.DRIVER_ENABLE, board.STATUS_LED):
        assert HEADER_GPIO.get(p.pin) == p.gpio, f"header pin {p.pin} is not GPIO{p.gpio}"
    for p in (board.UART_TX, board.UART_RX, board.DRIVER_ENABLE):
        assert UART0_MUX.get((p.gpio, p.alt)) == p.function, (
            f"GPIO{p.gpio} in {p.alt} is not {p.function}")
    assert board.BUS_PORT == "/dev/ttyAMA0" and board.BUS_UART == "uart0"
    assert board.BUS_BAUD == DEFAULT_BAUD
    assert set(board.POWER_3V3) == HEADER_3V3 and set(board.POWER_5V) == HEADER_5V
    assert set(board.GROUND) == HEADER_GND
    # MAX3485: DE active high, /RE active low, tied: RTS must be high while sending
    settings = board.BUS_RS485.settings()
    assert settings.rts_level_for_tx is True and settings.rts_level_for_rx is False


def test_header_symbol_is_the_pis_pinout():
    """J1's pin names in bus_interface.py (what the drawing shows) are the real header's."""
    for pin, name in design.PI_HEADER.items():
        if pin in HEADER_GPIO:
            assert name in (f"GPIO{HEADER_GPIO[pin]}", "ID_SD", "ID_SC"), (pin, name)
        else:
            want = "3V3" if pin in HEADER_3V3 else "5V" if pin in HEADER_5V else "GND"
            assert pin in HEADER_3V3 | HEADER_5V | HEADER_GND and name == want, (pin, name)
    assert sorted(design.PI_HEADER) == list(range(1, 41))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_netlist(netlist, check):
    check(netlist)


def test_netlist_is_the_design(netlist):
    """The committed netlist holds exactly the parts and connections of bus_interface.py."""
    assert netlist.parts == {p.ref: {"value": p.value, "footprint": p.footprint, "symbol": p.name}
                             for p in design.PARTS}
    assert netlist.nets == {net: set(nodes) for net, nodes in design.connections().items()}


def _missing(what: str, how: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed, and CI must run this test: {how}")
    pytest.skip(f"{what} is not installed ({how}); CI runs this test")


def test_netlist_regenerates_byte_for_byte(tmp_path):
    """SKiDL, run on bus_interface.py now, writes the committed file: they cannot drift.

    In a subprocess, because importing SKiDL puts names into ``builtins``.
    """
    try:
        version = importlib.metadata.version("skidl")
    except importlib.metadata.PackageNotFoundError:
        _missing("SKiDL", f"pip install skidl=={design.SKIDL_VERSION}")
    if version != design.SKIDL_VERSION:
        _missing(f"SKiDL {design.SKIDL_VERSION} (found {version})",
                 f"pip install skidl=={design.SKIDL_VERSION}")
    fresh = tmp_path / "bus_interface.net"
    done = subprocess.run([sys.executable, "-m", "hw.schematics.bus_interface", "--out", str(fresh)],
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert fresh.read_text(encoding="utf-8") == NETLIST.read_text(encoding="utf-8"), (
        "bus_interface.net is stale: run `python3 dev.py schematic` and commit the result")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bus_interface.net"], "SKiDL left files behind"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # kinparse's pyparsing calls
def test_kinparse_reads_the_netlist(netlist):
    """kinparse, the KiCad netlist reader SKiDL's tools use, sees the same nets."""
    try:
        from kinparse import parse_netlist
    except ImportError:
        _missing("kinparse", f"it comes with skidl=={design.SKIDL_VERSION}")
    parsed = parse_netlist(NETLIST.read_text(encoding="utf-8"))
    nets = {n.name: {(p.ref, p.num) for p in n.pins} for n in parsed.nets}
    assert nets == netlist.nets
    assert {p.ref for p in parsed.parts} == set(netlist.parts)


def test_svg_is_drawn_from_the_design():
    svg = render_svg.SVG.read_text(encoding="utf-8")
    assert svg == render_svg.draw(), "bus_interface.svg is stale: run `python3 dev.py schematic`"
    for net in design.NETS:
        assert f">{net}<" in svg, f"net {net} is not drawn"
    for p in design.PARTS:
        assert re.search(rf">{p.ref}\b", svg), f"part {p.ref} is not drawn"
        if p.ref != "J1":
            assert p.value in svg, f"value of {p.ref} is not shown"


def test_docs_show_the_svg():
    assert "../hw/schematics/bus_interface.svg" in DOC.read_text(encoding="utf-8")


# ------------------------------------------------------------------ the checks can fail

def _swap_pins(n: Netlist, a: tuple[str, str], b: tuple[str, str]) -> None:
    for nodes in n.nets.values():
        has_a, has_b = a in nodes, b in nodes
        nodes.discard(a), nodes.discard(b)
        if has_a:
            nodes.add(b)
        if has_b:
            nodes.add(a)


def _tx_rx_swapped(n):
    _swap_pins(n, ("J1", "8"), ("J1", "10"))


def _fed_from_5v(n):
    _swap_pins(n, ("J1", "1"), ("J1", "2"))
    _swap_pins(n, ("J1", "17"), ("J1", "4"))


def _no_termination(n):
    for nodes in n.nets.values():
        nodes.discard(("R1", "2"))


def _a_b_crossed_at_connector(n):
    _swap_pins(n, ("J2", "1"), ("J2", "2"))


def _de_on_gpio18(n):
    _swap_pins(n, ("J1", "11"), ("J1", "12"))


def _re_left_floating(n):
    for nodes in n.nets.values():
        nodes.discard(("U1", "2"))


def _weak_bias(n):
    n.parts["R2"]["value"] = "680R"
    n.parts["R3"]["value"] = "680R"


def _led_reversed(n):
    _swap_pins(n, ("D2", "1"), ("D2", "2"))


def _tvs_off_b(n):
    for nodes in n.nets.values():
        nodes.discard(("D1", "2"))


@pytest.mark.parametrize("breakage, check", [
    (_tx_rx_swapped, check_uart_and_driver_enable),
    (_de_on_gpio18, check_uart_and_driver_enable),
    (_re_left_floating, check_uart_and_driver_enable),
    (_fed_from_5v, check_supply),
    (_a_b_crossed_at_connector, check_connector),
    (_no_termination, check_termination_and_bias),
    (_weak_bias, check_termination_and_bias),
    (_tvs_off_b, check_protection),
    (_led_reversed, check_status_led),
], ids=lambda f: f.__name__.strip("_"))
def test_a_broken_netlist_is_caught(netlist, breakage, check):
    broken = copy.deepcopy(netlist)
    breakage(broken)
    with pytest.raises(AssertionError):
        check(broken)
