"""The controller's RS-485 bus interface, as data, and its KiCad netlist via SKiDL.

Why the design is plain data first and SKiDL second: the same description
feeds three consumers — SKiDL, which writes the KiCad netlist
(``bus_interface.net``, readable by KiCad's PCB editor and by kinparse), the
SVG drawing (``render_svg.py``), and the tests — and only one of them needs
SKiDL.  Parts are defined here pin by pin, as SKiDL part templates built in
code, so no KiCad symbol library is needed to generate the netlist.

The circuit (``docs/hardware.md`` gives the reasons for each value):

- J1, the Pi's 40-pin header: TXD0 (pin 8) to DI, RXD0 (pin 10) from RO,
  RTS0 (pin 11) to DE and /RE together, 3.3 V (pins 1, 17) and every ground
  pin; 5 V (pins 2, 4) is deliberately left unconnected;
- U1, an LTC2862-1: a 3.3 V half-duplex transceiver good for 20 Mbit/s
  whose A and B survive +-60 V (the TVS below clamps at 26 V at most), with
  a 1/8-unit-load receiver; C1 (100 nF) at its supply pin;
- R1, 160 ohm across A and B, always fitted: the controller is the master
  at one end of the daisy chain, so it always terminates its end (the last
  card terminates the other); a jumper would only be one more thing to get
  wrong on site.  To a signal, R2 + R3 (returned through the rail's
  decoupling) are in parallel with it: 160 || 660 = 129 ohm;
- R2 and R3, 330 ohm fail-safe bias (A up to 3.3 V, B down to ground), so
  an idle bus reads as a stop bit: at least 245 mV across A-B on the
  largest bus the docs allow, by ``failsafe.py``'s worst-case analysis;
- R4 pulls RO (RXD0) up while the receiver is disabled during sending, so the
  UART sees an idle line and not a floating one; R5 holds DE low (receive)
  while the Pi boots and GPIO17 is not yet RTS0 (``docs/hardware.md``,
  "Driver enable from power-on", says what DE does after that);
- D1, an SM712: a TVS for RS-485's asymmetric -7 … +12 V common-mode range,
  from A and B to ground, at the connector; it lets a surge reach 26 V,
  which U1's +-60 V rating takes and a MAX3485's -7.5 … +12.5 V would not;
- J2, the card connector: 1 A, 2 B, 3 GND (signal common), 4 SHIELD, a
  4-way 5.08 mm pluggable terminal block; the cable shield goes to ground
  through C2 (4.7 nF, 2 kV) and R7 (1 Mohm), so it drains ESD and noise
  without a DC ground loop between controller and cards;
- D2 and R6, a status LED on GPIO27 (pin 13).

+3V3 and GND come from the Pi, off this sheet, so SKiDL's electrical rules
check would find nothing driving them: ``POWER_FLAGS`` says they are supplied
(KiCad's PWR_FLAG), and :func:`erc` must come back with no error and no
warning before a netlist is written.

Run ``python -m hw.schematics.bus_interface`` (or ``python3 dev.py
schematic``) to check and regenerate ``bus_interface.net``; SKiDL is pinned
because the netlist is compared byte for byte with a fresh one in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETLIST = HERE / "bus_interface.net"
#: The SKiDL release the committed netlist was written with (its text format
#: changes between releases; 2.0.1 is also the last without a SPICE stack).
SKIDL_VERSION = "2.0.1"
#: What the netlist's header says in place of an absolute path and the time
#: of generation, so a regenerated netlist is byte for byte the committed one.
SOURCE_NAME = "hw/schematics/bus_interface.py"


@dataclass(frozen=True)
class Pin:
    number: str
    name: str
    kind: str  # SKiDL pin type: INPUT, OUTPUT, BIDIR, PASSIVE, PWRIN, NOCONNECT


@dataclass(frozen=True)
class Part:
    ref: str
    name: str          # symbol name, as a KiCad library would call it
    value: str
    footprint: str
    pins: tuple[Pin, ...]
    description: str

    def pin(self, key: str) -> Pin:
        """A pin by number or by name (names must then be unique on the part)."""
        by_number = [p for p in self.pins if p.number == key]
        by_name = [p for p in self.pins if p.name == key]
        found = by_number or by_name
        if len(found) != 1:
            raise KeyError(f"{self.ref} has {len(found)} pins called {key!r}")
        return found[0]


def _passive(ref: str, name: str, value: str, footprint: str, description: str,
             names: tuple[str, str] = ("1", "2")) -> Part:
    return Part(ref, name, value, footprint,
                (Pin("1", names[0], "PASSIVE"), Pin("2", names[1], "PASSIVE")), description)


#: The Pi's 40-pin header, by physical pin: (name, type).  The same on every
#: Pi with a 40-pin header; GPIOs are given by their BCM numbers.
PI_HEADER = {
    1: "3V3", 2: "5V", 3: "GPIO2", 4: "5V", 5: "GPIO3", 6: "GND", 7: "GPIO4", 8: "GPIO14",
    9: "GND", 10: "GPIO15", 11: "GPIO17", 12: "GPIO18", 13: "GPIO27", 14: "GND",
    15: "GPIO22", 16: "GPIO23", 17: "3V3", 18: "GPIO24", 19: "GPIO10", 20: "GND",
    21: "GPIO9", 22: "GPIO25", 23: "GPIO11", 24: "GPIO8", 25: "GND", 26: "GPIO7",
    27: "ID_SD", 28: "ID_SC", 29: "GPIO5", 30: "GND", 31: "GPIO6", 32: "GPIO12",
    33: "GPIO13", 34: "GND", 35: "GPIO19", 36: "GPIO16", 37: "GPIO26", 38: "GPIO20",
    39: "GND", 40: "GPIO21",
}


def _header_kind(name: str) -> str:
    return "PWRIN" if name in ("3V3", "5V", "GND") else "BIDIR"


PARTS = (
    Part("J1", "Raspberry_Pi_40pin", "RPi 40-pin header",
         "Connector_PinSocket_2.54mm:PinSocket_2x20_P2.54mm_Vertical",
         tuple(Pin(str(n), name, _header_kind(name)) for n, name in PI_HEADER.items()),
         "Raspberry Pi GPIO header (the board plugs on as a HAT)"),
    Part("U1", "LTC2862-1", "LTC2862IS8-1", "Package_SO:SOIC-8_3.9x4.9mm_P1.27mm",
         (Pin("1", "RO", "OUTPUT"), Pin("2", "~{RE}", "INPUT"), Pin("3", "DE", "INPUT"),
          Pin("4", "DI", "INPUT"), Pin("5", "GND", "PWRIN"), Pin("6", "A", "BIDIR"),
          Pin("7", "B", "BIDIR"), Pin("8", "VCC", "PWRIN")),
         "RS-485 transceiver, 3.3 V, 20 Mbit/s, A/B fault-protected to +-60 V, 1/8 unit load"),
    _passive("C1", "C", "100nF", "Capacitor_SMD:C_0603_1608Metric", "U1 supply decoupling"),
    _passive("R1", "R", "160R", "Resistor_SMD:R_1206_3216Metric",
             "bus termination across A-B, always fitted (the controller ends the bus)"),
    _passive("R2", "R", "330R", "Resistor_SMD:R_1206_3216Metric", "fail-safe bias: A to 3.3 V"),
    _passive("R3", "R", "330R", "Resistor_SMD:R_1206_3216Metric", "fail-safe bias: B to GND"),
    _passive("R4", "R", "10k", "Resistor_SMD:R_0603_1608Metric",
             "RO pull-up: RXD0 idles high while the receiver is off"),
    _passive("R5", "R", "10k", "Resistor_SMD:R_0603_1608Metric",
             "DE pull-down: driver off until RTS0 takes over"),
    _passive("R6", "R", "330R", "Resistor_SMD:R_0603_1608Metric", "status LED current (~4 mA)"),
    _passive("R7", "R", "1M", "Resistor_SMD:R_1206_3216Metric", "shield bleed to GND"),
    _passive("C2", "C", "4.7nF 2kV", "Capacitor_SMD:C_1812_4532Metric", "shield to GND, AC only"),
    Part("D1", "SM712", "SM712", "Package_TO_SOT_SMD:SOT-23",
         (Pin("1", "IO1", "PASSIVE"), Pin("2", "IO2", "PASSIVE"), Pin("3", "COM", "PASSIVE")),
         "TVS for RS-485 (-7 V … +12 V), A and B to GND"),
    _passive("D2", "LED", "green", "LED_SMD:LED_0805_2012Metric", "status LED",
             names=("K", "A")),
    Part("J2", "Conn_01x04", "card bus",
         "Connector_Phoenix_MSTB:PhoenixContact_MSTBA_2,5_4-G-5,08_1x04_P5.08mm_Horizontal",
         (Pin("1", "A", "PASSIVE"), Pin("2", "B", "PASSIVE"), Pin("3", "GND", "PASSIVE"),
          Pin("4", "SHIELD", "PASSIVE")),
         "card bus connector: 1 A, 2 B, 3 GND, 4 SHIELD"),
)

#: Nets supplied from off the board (the Pi's 3.3 V regulator and its ground):
#: KiCad's PWR_FLAG, SKiDL's POWER drive.  Without them ERC finds nothing driving
#: the power-input pins on these nets.
POWER_FLAGS = ("+3V3", "GND")

_GROUND_PINS = tuple(("J1", str(n)) for n, name in PI_HEADER.items() if name == "GND")

#: Net name -> (part ref, pin number or name) it connects.
NETS = {
    "+3V3": (("J1", "1"), ("J1", "17"), ("U1", "VCC"), ("C1", "1"), ("R2", "1"), ("R4", "1")),
    "GND": (*_GROUND_PINS, ("U1", "GND"), ("C1", "2"), ("R3", "2"), ("R5", "2"),
            ("D1", "COM"), ("D2", "K"), ("J2", "GND"), ("C2", "2"), ("R7", "2")),
    "UART_TXD": (("J1", "8"), ("U1", "DI")),
    "UART_RXD": (("J1", "10"), ("U1", "RO"), ("R4", "2")),
    "RS485_DE": (("J1", "11"), ("U1", "~{RE}"), ("U1", "DE"), ("R5", "1")),
    "RS485_A": (("U1", "A"), ("R1", "1"), ("R2", "2"), ("D1", "IO1"), ("J2", "A")),
    "RS485_B": (("U1", "B"), ("R1", "2"), ("R3", "1"), ("D1", "IO2"), ("J2", "B")),
    "LED_DRIVE": (("J1", "13"), ("R6", "1")),
    "LED_ANODE": (("R6", "2"), ("D2", "A")),
    "SHIELD": (("J2", "SHIELD"), ("C2", "1"), ("R7", "1")),
}


def part(ref: str) -> Part:
    for p in PARTS:
        if p.ref == ref:
            return p
    raise KeyError(f"no part {ref}")


def resistance(ref: str) -> float:
    """A resistor's value in ohms, from its value text ("330R", "10k", "1M")."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([RkM])", part(ref).value)
    if part(ref).name != "R" or not m:
        raise ValueError(f"{ref} is not a resistor with a value like 330R, 10k or 1M")
    return float(m[1]) * {"R": 1.0, "k": 1e3, "M": 1e6}[m[2]]


def connections() -> dict[str, list[tuple[str, str]]]:
    """Every net as ``(ref, pin number)`` pairs, sorted: the form a netlist has."""
    out = {}
    for net, nodes in NETS.items():
        out[net] = sorted((ref, part(ref).pin(key).number) for ref, key in nodes)
    return out


def unconnected() -> list[tuple[str, str]]:
    """Pins on no net (the header's spare GPIOs and its 5 V pins)."""
    used = {node for nodes in connections().values() for node in nodes}
    return [(p.ref, pin.number) for p in PARTS for pin in p.pins if (p.ref, pin.number) not in used]


# ------------------------------------------------------------------ SKiDL

def build_netlist() -> str:
    """The KiCad netlist text, as SKiDL writes it, with a reproducible header."""
    text, report = _in_scratch_dir(lambda: _skidl_circuit(POWER_FLAGS).generate_netlist(
        tool=_skidl().KICAD8))
    if any("ERROR" in line for line in report):
        raise RuntimeError("SKiDL reported errors:\n" + "\n".join(report))
    for line in report:
        print(line, file=sys.stderr)
    text = re.sub(r'\(source "[^"]*"\)', f'(source "{SOURCE_NAME}")', text, count=1)
    return re.sub(r'\(date "[^"]*"\)', '(date "")', text, count=1)


@dataclass(frozen=True)
class ErcReport:
    """What SKiDL's electrical rules check said: counts, and its ERC lines."""

    errors: int
    warnings: int
    lines: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return self.errors == 0 and self.warnings == 0


def erc(power_flags: tuple[str, ...] = POWER_FLAGS) -> ErcReport:
    """Run SKiDL's ERC on the circuit; ``power_flags`` is there so a test can drop one."""
    def check():
        circuit = _skidl_circuit(power_flags)
        circuit.ERC()
        from skidl.logger import erc_logger
        return erc_logger.error.count, erc_logger.warning.count

    (errors, warnings), report = _in_scratch_dir(check)
    return ErcReport(errors, warnings, tuple(line for line in report if line.startswith("ERC")))


def _in_scratch_dir(work):
    """Run ``work()`` in a temporary directory (SKiDL leaves logs in the cwd), catching stderr.

    Returns its result and SKiDL's report lines, less its complaint that no
    KiCad library is installed (none is needed: every part is defined above).
    """
    cwd, said = os.getcwd(), io.StringIO()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            with contextlib.redirect_stderr(said):
                result = work()
        finally:
            os.chdir(cwd)
    report = [line for line in said.getvalue().splitlines()
              if line.strip() and "SYMBOL_DIR environment variable is missing" not in line]
    return result, report


def _skidl():
    import skidl  # only this needs SKiDL

    if skidl.__version__ != SKIDL_VERSION:
        raise RuntimeError(f"SKiDL {skidl.__version__} is installed; the committed netlist is "
                           f"from SKiDL {SKIDL_VERSION}: pip install skidl=={SKIDL_VERSION}")
    return skidl


def _skidl_circuit(power_flags: tuple[str, ...]):
    """The board as a SKiDL circuit, with the named nets marked as supplied from off the board."""
    skidl = _skidl()
    from skidl.pin import pin_types

    circuit = skidl.Circuit()
    made = {}
    for spec in PARTS:
        template = skidl.Part(
            tool=skidl.SKIDL, name=spec.name, ref_prefix=re.sub(r"\d+$", "", spec.ref),
            dest=skidl.TEMPLATE, description=spec.description,
            pins=[skidl.Pin(num=p.number, name=p.name, func=getattr(pin_types, p.kind))
                  for p in spec.pins])
        made[spec.ref] = template(ref=spec.ref, value=spec.value, footprint=spec.footprint,
                                  circuit=circuit)
        made[spec.ref].tag = spec.ref  # ties symbol to footprint in KiCad; random otherwise
    for name, nodes in connections().items():
        net = skidl.Net(name, circuit=circuit)
        for ref, number in nodes:
            net += made[ref][number]
        if name in power_flags:
            net.drive = skidl.POWER
    for ref, number in unconnected():
        circuit.NC += made[ref][number]
    return circuit


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check the bus interface (ERC) and write its KiCad netlist.")
    ap.add_argument("--out", type=Path, default=NETLIST, help=f"where to write (default {NETLIST})")
    args = ap.parse_args(argv)
    report = erc()
    for line in report.lines:
        print(line)
    if not report.clean:
        print(f"error: SKiDL's ERC found {report.errors} errors and {report.warnings} warnings; "
              f"fix the circuit in {SOURCE_NAME} before writing a netlist", file=sys.stderr)
        return 1
    args.out.write_text(build_netlist(), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
