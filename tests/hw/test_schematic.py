"""The bus-interface netlist against the software's defaults, the datasheets and the docs.

The committed KiCad netlist (``hw/schematics/bus_interface.net``) is read
here with a small s-expression reader of our own, so the electrical checks
do not trust the code that wrote it.  What the checks know independently:
the transceivers' and SM712's pinouts and ratings (from their datasheets),
which GPIO sits on which header pin and which pin-mux function makes it a
UART0 signal (the Pi's documented pinout), resistor power by package, and
the card connector's pinout as ``docs/hardware.md`` states it.  The bus's
worst-case idle voltage and driven swing come from
``hw/schematics/failsafe.py``, fed with the resistor values read from the
netlist, so a value changed on the board is a value checked.  ``controller/board.py`` names the pins the
software uses; every one of them must land where the netlist says.

Each check is a function of a parsed netlist, so the last tests can feed
them a deliberately broken one and see them fail.  Regeneration is checked
too: SKiDL (pinned, in the test extras) must write the committed file byte
for byte, its electrical rules check must find nothing (and must find the
missing supply when a power flag is dropped), and the SVG must be what
``render_svg`` draws.  Without SKiDL those tests are skipped on a
developer's machine and fail in CI.
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
from hw.schematics import failsafe, render_svg

ROOT = Path(__file__).resolve().parents[2]
NETLIST = design.NETLIST
DOC = ROOT / "docs" / "hardware.md"

#: Half-duplex RS-485 transceivers in SO-8 with the industry pinout (LTC2862-1 and
#: MAX3485 datasheets alike): pin numbers.
TRANSCEIVER_PINS = {"RO": "1", "RE": "2", "DE": "3", "DI": "4", "GND": "5", "A": "6", "B": "7",
                    "VCC": "8"}
#: Absolute maximum voltage on A and B, from each datasheet: (lowest, highest).
BUS_PIN_ABS_MAX = {"LTC2862-1": (-60.0, 60.0), "MAX3485": (-7.5, 12.5)}
#: SM712 (SOT-23): two line pins and the common (ground) pin.
SM712 = {"IO1": "1", "IO2": "2", "COM": "3"}
#: The most the SM712 lets a line reach at its rated 8/20 us surge current (17 A),
#: taking the larger of the datasheets' figures: -15 V (its 7 V side), +26 V (12 V side).
SM712_CLAMP = (-15.0, 26.0)
#: Thick-film chip resistors' rated power (70 degC), by KiCad footprint size.
RESISTOR_WATTS = {"R_0603": 0.1, "R_0805": 0.125, "R_1206": 0.25}
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
    refs = [ref for ref, info in n.parts.items() if info["symbol"] in BUS_PIN_ABS_MAX]
    assert len(refs) == 1, f"expected one RS-485 transceiver of {sorted(BUS_PIN_ABS_MAX)}, found {refs}"
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
    tx = n.header_pins(n.net(u, TRANSCEIVER_PINS["DI"]))
    rx = n.header_pins(n.net(u, TRANSCEIVER_PINS["RO"]))
    de = n.header_pins(n.net(u, TRANSCEIVER_PINS["DE"]))
    assert tx == {board.UART_TX.pin}, f"U1 DI reaches header pins {tx}; board.py sends on {board.UART_TX.pin}"
    assert rx == {board.UART_RX.pin}, f"U1 RO reaches header pins {rx}; board.py reads {board.UART_RX.pin}"
    assert de == {board.DRIVER_ENABLE.pin}, (
        f"U1 DE reaches header pins {de}; board.py drives it from {board.DRIVER_ENABLE.pin}")
    assert n.net(u, TRANSCEIVER_PINS["RE"]) == n.net(u, TRANSCEIVER_PINS["DE"]), (
        "/RE must follow DE: receiver off exactly while the driver is on")


def check_supply(n: Netlist) -> None:
    u = _transceiver(n)
    vcc = n.header_pins(n.net(u, TRANSCEIVER_PINS["VCC"]))
    gnd = n.header_pins(n.net(u, TRANSCEIVER_PINS["GND"]))
    assert vcc and vcc <= HEADER_3V3, f"U1 VCC is fed from header pins {vcc}, not the 3.3 V pins"
    assert gnd == HEADER_GND, f"U1 GND reaches header pins {gnd}; all ground pins expected"
    for pin in HEADER_5V:
        assert n.net("J1", str(pin)) is None, (
            f"header pin {pin} (5 V) is connected: the Pi's GPIOs are not 5 V tolerant")
    decoupling = frozenset((n.net(u, TRANSCEIVER_PINS["VCC"]), n.net(u, TRANSCEIVER_PINS["GND"])))
    assert any(nets == decoupling for _, nets in n.two_pin_parts("C")), "no decoupling capacitor on U1"


def check_connector(n: Netlist) -> None:
    u = _transceiver(n)
    want = _doc_connector_pinout()
    assert set(want) == {"A", "B", "GND", "SHIELD"}, want
    for signal in ("A", "B", "GND"):
        assert n.net("J2", want[signal]) == n.net(u, TRANSCEIVER_PINS[signal]), (
            f"U1 {signal} is not on J2 pin {want[signal]}, where docs/hardware.md puts it")
    shield = n.net("J2", want["SHIELD"])
    assert shield is not None and shield != n.net(u, TRANSCEIVER_PINS["GND"]), (
        "the shield must not be tied to GND directly (ground loops)")


def _bus_network(n: Netlist) -> dict[str, tuple[str, float]]:
    """The resistors across A-B, from A up to the supply, from B down to ground: (ref, ohms)."""
    u = _transceiver(n)
    a, b = n.net(u, TRANSCEIVER_PINS["A"]), n.net(u, TRANSCEIVER_PINS["B"])
    v33, gnd = n.net(u, TRANSCEIVER_PINS["VCC"]), n.net(u, TRANSCEIVER_PINS["GND"])
    found = {}
    for role, nets in (("across", (a, b)), ("up", (a, v33)), ("down", (b, gnd))):
        on = [ref for ref, pair in n.two_pin_parts("R") if pair == frozenset(nets)]
        assert len(on) == 1, f"expected one resistor {role} ({'-'.join(nets)}), found {on}"
        found[role] = (on[0], _ohms(n.parts[on[0]]["value"]))
    return found


def _fully_loaded(n: Netlist) -> failsafe.Bus:
    r = _bus_network(n)
    return failsafe.fully_loaded(r["up"][1], r["down"][1], r["across"][1])


def check_termination_and_bias(n: Netlist) -> None:
    r = _bus_network(n)
    across, up, down = r["across"][1], r["up"][1], r["down"][1]
    # to a signal, the bias pair (returned through the rail's decoupling) is across A-B too
    seen = 1 / (1 / across + 1 / (up + down))
    assert 110 <= seen <= 130, f"termination {seen:.0f} ohm (R across || bias pair); the cable wants ~120"


def check_failsafe_margin(n: Netlist) -> None:
    """On the largest bus the docs allow: idle A-B above the threshold, driven A-B above 1.5 V."""
    idle, corner = failsafe.worst_idle(_fully_loaded(n))
    assert idle >= failsafe.THRESHOLD, (
        f"idle A-B falls to {idle * 1000:.0f} mV on the largest bus the docs allow ({corner}); "
        f"receivers need {failsafe.THRESHOLD * 1000:.0f} mV to read a stop bit")
    swing, corner = failsafe.worst_swing(_fully_loaded(n))
    assert swing >= failsafe.DRIVER_REQUIRED_SWING, (
        f"the weakest compliant driver makes only {swing:.2f} V across the loaded bus ({corner})")


def check_bias_dissipation(n: Netlist) -> None:
    """Each bias resistor runs at no more than half its package's rating, at the worst corner."""
    watts = failsafe.bias_power(_fully_loaded(n))
    for role in ("up", "down"):
        ref = _bus_network(n)[role][0]
        size = re.search(r"R_(\d{4})", n.parts[ref]["footprint"])
        assert size, f"{ref}: cannot tell the package size from {n.parts[ref]['footprint']}"
        rating = RESISTOR_WATTS[f"R_{size[1]}"]
        assert watts <= rating / 2, f"{ref} may dissipate {watts * 1000:.0f} mW; its package is rated {rating * 1000:.0f} mW"


def check_protection(n: Netlist) -> None:
    u = _transceiver(n)
    tvs = [ref for ref, info in n.parts.items() if info["symbol"] == "SM712"]
    assert len(tvs) == 1, f"expected one SM712, found {tvs}"
    d = tvs[0]
    lines = {n.net(d, SM712["IO1"]), n.net(d, SM712["IO2"])}
    assert lines == {n.net(u, TRANSCEIVER_PINS["A"]), n.net(u, TRANSCEIVER_PINS["B"])}, "the TVS is not on A and B"
    assert n.net(d, SM712["COM"]) == n.net(u, TRANSCEIVER_PINS["GND"]), "the TVS common pin is not on GND"
    # the TVS and the transceiver's pins share A and B directly (no series part), so
    # whatever the TVS lets through in a surge, the transceiver's pins must bear
    low, high = BUS_PIN_ABS_MAX[n.parts[u]["symbol"]]
    assert low <= SM712_CLAMP[0] and SM712_CLAMP[1] <= high, (
        f"the SM712 clamps at {SM712_CLAMP[0]:g} … +{SM712_CLAMP[1]:g} V, beyond "
        f"{n.parts[u]['symbol']}'s absolute maximum of {low:g} … +{high:g} V on A and B")


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
          check_termination_and_bias, check_failsafe_margin, check_bias_dissipation,
          check_protection, check_status_led)


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
    # the transceiver: DE active high, /RE active low, tied: RTS must be high while sending
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
    _need_skidl()
    fresh = tmp_path / "bus_interface.net"
    done = subprocess.run([sys.executable, "-m", "hw.schematics.bus_interface", "--out", str(fresh)],
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert fresh.read_text(encoding="utf-8") == NETLIST.read_text(encoding="utf-8"), (
        "bus_interface.net is stale: run `python3 dev.py schematic` and commit the result")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bus_interface.net"], "SKiDL left files behind"


def _need_skidl() -> None:
    try:
        version = importlib.metadata.version("skidl")
    except importlib.metadata.PackageNotFoundError:
        _missing("SKiDL", f"pip install skidl=={design.SKIDL_VERSION}")
    if version != design.SKIDL_VERSION:
        _missing(f"SKiDL {design.SKIDL_VERSION} (found {version})",
                 f"pip install skidl=={design.SKIDL_VERSION}")


#: Run in a subprocess (SKiDL puts names into ``builtins``): ERC with every power
#: flag, then with each one dropped in turn.
_ERC_SCRIPT = """
import json
from hw.schematics import bus_interface as d
runs = {"all": d.POWER_FLAGS}
runs.update({f"without {f}": tuple(g for g in d.POWER_FLAGS if g != f) for f in d.POWER_FLAGS})
out = {}
for name, flags in runs.items():
    r = d.erc(flags)
    out[name] = {"errors": r.errors, "warnings": r.warnings, "lines": list(r.lines)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def erc_reports(tmp_path_factory):
    _need_skidl()
    import json

    cwd = tmp_path_factory.mktemp("erc")
    done = subprocess.run([sys.executable, "-c", _ERC_SCRIPT], cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(cwd.iterdir()) == [], "SKiDL's ERC left files behind"
    return json.loads(done.stdout)


def test_erc_is_clean(erc_reports):
    """SKiDL's electrical rules check finds no error and no warning on the board."""
    report = erc_reports["all"]
    assert (report["errors"], report["warnings"]) == (0, 0), "\n".join(report["lines"])
    assert report["lines"] == ["ERC INFO: No errors or warnings found while running ERC."]


@pytest.mark.parametrize("flag", design.POWER_FLAGS)
def test_erc_catches_a_supply_nothing_drives(erc_reports, flag):
    """Drop one power flag and ERC warns about every power pin on that net: the check can fail."""
    report = erc_reports[f"without {flag}"]
    pins = [pin for pin in design.connections()[flag]
            if design.part(pin[0]).pin(pin[1]).kind == "PWRIN"]
    assert report["warnings"] == len(pins) and report["errors"] == 0, report["lines"]
    assert all(f"Insufficient drive current on net {flag} " in line
               for line in report["lines"] if "WARNING" in line), report["lines"]


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


def _doc_bias_table() -> dict[str, tuple[str, str]]:
    """Row label -> (before, now) from the worst-case table under "Termination and bias"."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Termination and bias", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([a-z][^|]*?) \| ([\d.]+ m?[VW]) \| ([\d.]+ m?[VW]) \|$", section, re.M)
    assert len(rows) == 4, f"docs/hardware.md: expected the 4-row worst-case table, found {rows}"
    return {label: (before, now) for label, before, now in rows}


def _figures(up: float, down: float, across: float) -> list[str]:
    """The table's four figures, as the docs write them, for one set of resistors."""
    bus = failsafe.fully_loaded(up, down, across)
    return [f"{failsafe.worst_idle(failsafe.unloaded(bus))[0] * 1000:.0f} mV",
            f"{failsafe.worst_idle(bus)[0] * 1000:.0f} mV",
            f"{failsafe.worst_swing(bus)[0]:.2f} V",
            f"{failsafe.bias_power(bus) * 1000:.0f} mW"]


def test_docs_give_the_calculated_bias_figures(netlist):
    """The worst-case figures docs/hardware.md states are what failsafe.py computes."""
    table = _doc_bias_table()
    r = _bus_network(netlist)
    now = _figures(r["up"][1], r["down"][1], r["across"][1])
    before = _figures(390.0, 390.0, 120.0)  # the board before issue 12
    assert [pair[1] for pair in table.values()] == now, (table, now)
    assert [pair[0] for pair in table.values()] == before, (table, before)
    assert f"R1 {r['across'][1]:.0f} Ω, R2/R3 {r['up'][1]:.0f} Ω" in DOC.read_text(encoding="utf-8")


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


def _the_old_bias(n):
    """The board before issue 12: 390 ohm bias, 120 ohm termination (186 mV when fully loaded)."""
    n.parts["R1"]["value"] = "120R"
    n.parts["R2"]["value"] = "390R"
    n.parts["R3"]["value"] = "390R"


def _bias_overdriven(n):
    """Strong enough for the idle margin, too strong for the driver (1.45 V)."""
    n.parts["R2"]["value"] = "220R"
    n.parts["R3"]["value"] = "220R"


def _bias_in_0603(n):
    for ref in ("R2", "R3"):
        n.parts[ref]["footprint"] = "Resistor_SMD:R_0603_1608Metric"


def _unprotected_max3485(n):
    """The board before issue 12: a MAX3485 (abs. max. -7.5 … +12.5 V) behind the SM712."""
    n.parts["U1"]["symbol"] = "MAX3485"


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
    (_weak_bias, check_failsafe_margin),
    (_the_old_bias, check_failsafe_margin),
    (_bias_overdriven, check_failsafe_margin),
    (_bias_in_0603, check_bias_dissipation),
    (_unprotected_max3485, check_protection),
    (_tvs_off_b, check_protection),
    (_led_reversed, check_status_led),
], ids=lambda f: f.__name__.strip("_"))
def test_a_broken_netlist_is_caught(netlist, breakage, check):
    broken = copy.deepcopy(netlist)
    breakage(broken)
    with pytest.raises(AssertionError):
        check(broken)
