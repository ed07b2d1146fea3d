"""Worst-case DC analysis of the card bus: the idle (fail-safe) voltage and the driver's swing.

Why a calculation in code: bias resistors that look right on an empty bench
(one card, short cable, nominal parts) can leave a fully loaded bus inside
the receivers' undefined band, where an idle line reads as noise.  So the
figures ``docs/hardware.md`` gives come from here, for the worst corner of
every tolerance, and ``tests/hw/test_schematic.py`` checks them against the
resistor values in the netlist.

The bus, as two nodal-analysis node pairs (controller end ``An``/``Bn``,
far end ``Af``/``Bf``)::

    +V ──R_up──┐                                  ┌── R_ul ── V_x  (every card's
               An ───── R_cable ───── Af ─────────┤                receiver)
V_x ── R_own ──┤                                  │
               R_term                           R_far (last card's 120 ohm)
V_x ── R_own ──┤                                  │
               Bn ───── R_cable ───── Bf ─────────┤
    0 V ─R_down┘                                  └── R_ul ── V_x

What each element stands for, and why the model is pessimistic:

- a **unit load** (TIA/EIA-485) is a receiver input of at least 12 kohm; a
  1/8-unit-load receiver is 96 kohm.  Each receiver input, A and B alike, is
  modelled as its resistance to an internal bias point ``V_x``; ``V_x`` is
  swept over the whole common-mode range -7 … +12 V, which covers any
  receiver's own bias and any ground offset the standard allows.  A and B of
  one receiver share ``V_x`` and the same resistance.  That is the one
  simplification that is not pessimistic: a mismatch between a receiver's
  A and B inputs pushes a differential current into the line.  With the
  receivers' bias within 1 V of the line's midpoint, a 10 % mismatch on all
  30 unit loads moves the idle voltage by about 14 mV (1 V / 400 ohm x 10 %
  x 55 ohm), well inside the margin the board keeps;
- all the cards' loads sit at the **far end**, behind the whole cable's
  resistance, where the cable drops the most of the bias current: the card
  there sees the least idle voltage;
- every resistor sits at the end of its tolerance that hurts, the rail at
  either end of 3.3 V ± 5 %, the cable at zero or full length, the loads on
  or off, each ``V_x`` at either end of its range.  Each node voltage is a
  ratio of linear functions of any one resistance and linear in each source,
  so it is monotonic in each parameter alone: the worst case is at a corner
  of that box, and :func:`worst_idle` tries every corner;
- the driver, for the swing check, is a Thevenin source: open-circuit swing
  at most the rail (a CMOS driver cannot exceed its supply), behind the
  largest output resistance that still meets the datasheet's minimum swings
  (:func:`driver_output_ohms`).  Into a load heavier than the test loads the
  largest resistance gives the least swing, so this is the weakest driver
  the datasheet allows.

Nothing here imports SKiDL: the numbers are plain Python.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

#: The Pi's 3.3 V rail: nominal ± 5 %.
RAIL = (3.3 * 0.95, 3.3 * 1.05)
#: Every resistor on the board, and the far end's terminator, are 1 % parts.
TOLERANCE = 0.01
#: TIA/EIA-485: one unit load is a receiver input of 12 kohm (at least).
UNIT_LOAD_OHMS = 12_000.0
#: The common-mode range a receiver's inputs may be biased or offset within.
COMMON_MODE = (-7.0, 12.0)
#: A standard receiver reads A - B above +200 mV as a 1 (idle, stop bit).
THRESHOLD = 0.200
#: What the transceiver's datasheet guarantees of its driver: (load across A-B in ohm,
#: least |A - B| in volts), at its lowest supply.  These are TIA/EIA-485's 54 ohm
#: and -422's 100 ohm points, which the LTC2862 specifies down to 3.0 V.
DRIVER_MIN_SWINGS = ((54.0, 1.5), (100.0, 2.0))
DRIVER_SPEC_SUPPLY = 3.0
#: What an RS-485 driver must put across the loaded bus.
DRIVER_REQUIRED_SWING = 1.5
#: 24 AWG twisted pair: ohm per metre of one conductor.
CABLE_OHMS_PER_METRE = 0.0842

#: The most the docs allow on one bus (``docs/hardware.md``): LWP/1's 240 card
#: addresses, each card's receiver at most 1/8 unit load (96 kohm), the
#: controller's own receiver (the LTC2862's, 96 kohm: 1/8), up to 100 m of cable.
MAX_CARDS = 240
CARD_UNIT_LOADS = 1 / 8
OWN_UNIT_LOADS = 1 / 8
MAX_CABLE_METRES = 100.0


@dataclass(frozen=True)
class Bus:
    """One bus: the controller's network, the last card's terminator, the cards, the cable."""

    bias_up: float                 # A to the rail, ohm (nominal)
    bias_down: float               # B to ground, ohm (nominal)
    termination: float             # across A-B at the controller, ohm (nominal)
    far_termination: float = 120.0  # across A-B at the last card, ohm (nominal)
    card_unit_loads: float = 0.0   # all cards' receivers together, in unit loads
    own_unit_loads: float = 0.0    # the controller's own receiver
    cable_metres: float = 0.0      # bus length (resistance of each conductor from this)


@dataclass(frozen=True)
class Corner:
    """One point of the tolerance box: the values a real board might have."""

    rail: float
    bias_up: float
    bias_down: float
    termination: float
    far_termination: float
    card_ohms: float | None    # each line's load to V_x at the far end; None: no cards
    own_ohms: float | None
    cable_ohms: float          # one conductor
    v_x: float


#: The reference node (0 V): the controller's ground.
GROUND = "0"


def _solve(conductances: dict[tuple[str, str], float], injected: dict[str, float]) -> dict[str, float]:
    """Node voltages of a resistor network, ground excluded: G v = i by Gaussian elimination."""
    nodes = sorted(({n for pair in conductances for n in pair} | set(injected)) - {GROUND})
    index = {n: i for i, n in enumerate(nodes)}
    size = len(nodes)
    g = [[0.0] * size for _ in range(size)]
    for (a, b), value in conductances.items():
        i, j = index.get(a), index.get(b)  # None: the reference node, which is not solved for
        for k, other in ((i, j), (j, i)):
            if k is not None:
                g[k][k] += value
                if other is not None:
                    g[k][other] -= value
    rhs = [injected.get(n, 0.0) for n in nodes]
    for col in range(size):  # partial pivoting keeps a stiff cable (tiny ohms) exact enough
        pivot = max(range(col, size), key=lambda r: abs(g[r][col]))
        g[col], g[pivot] = g[pivot], g[col]
        rhs[col], rhs[pivot] = rhs[pivot], rhs[col]
        for row in range(col + 1, size):
            f = g[row][col] / g[col][col]
            for k in range(col, size):
                g[row][k] -= f * g[col][k]
            rhs[row] -= f * rhs[col]
    v = [0.0] * size
    for row in reversed(range(size)):
        v[row] = (rhs[row] - sum(g[row][k] * v[k] for k in range(row + 1, size))) / g[row][row]
    return dict(zip(nodes, v))


def node_voltages(c: Corner, driver: tuple[float, float, float] | None = None) -> dict[str, float]:
    """Solve the bus at one corner; ``driver`` is (swing sign, open-circuit swing, output ohms).

    Sources to fixed voltages become Norton currents into the node (a source
    of ``v`` behind ``r`` injects ``v / r`` and adds ``1 / r`` to the node's
    own conductance, written here as a branch to the reference node).
    """
    g: dict[tuple[str, str], float] = {}
    i: dict[str, float] = {}

    def branch(a: str, b: str, ohms: float) -> None:
        g[(a, b)] = g.get((a, b), 0.0) + 1.0 / ohms

    def source(node: str, volts: float, ohms: float) -> None:
        branch(node, GROUND, ohms)
        i[node] = i.get(node, 0.0) + volts / ohms

    far_a, far_b = ("Af", "Bf") if c.cable_ohms > 0 else ("An", "Bn")
    source("An", c.rail, c.bias_up)
    branch("Bn", GROUND, c.bias_down)
    branch("An", "Bn", c.termination)
    if c.cable_ohms > 0:
        branch("An", "Af", c.cable_ohms)
        branch("Bn", "Bf", c.cable_ohms)
    branch(far_a, far_b, c.far_termination)
    for ohms, a, b in ((c.own_ohms, "An", "Bn"), (c.card_ohms, far_a, far_b)):
        if ohms is not None:
            source(a, c.v_x, ohms)
            source(b, c.v_x, ohms)
    if driver is not None:
        sign, swing, r_out = driver
        mid = c.rail / 2
        source("An", mid + sign * swing / 2, r_out / 2)
        source("Bn", mid - sign * swing / 2, r_out / 2)
    v = _solve(g, i)
    v.setdefault("Af", v["An"])
    v.setdefault("Bf", v["Bn"])
    return v


def corners(bus: Bus):
    """Every corner of the tolerance box (loads and cable each present or absent)."""
    def spread(nominal: float) -> tuple[float, float]:
        return nominal * (1 - TOLERANCE), nominal * (1 + TOLERANCE)

    def loads(unit_loads: float) -> tuple[float | None, ...]:
        return (None, UNIT_LOAD_OHMS / unit_loads) if unit_loads > 0 else (None,)

    cable = bus.cable_metres * CABLE_OHMS_PER_METRE
    for values in itertools.product(
            RAIL, spread(bus.bias_up), spread(bus.bias_down), spread(bus.termination),
            spread(bus.far_termination), loads(bus.card_unit_loads), loads(bus.own_unit_loads),
            sorted({0.0, cable}), COMMON_MODE):
        yield Corner(*values)


def idle_differential(c: Corner) -> float:
    """The least A - B any receiver sees on the idle bus at this corner (the nearer or far end)."""
    v = node_voltages(c)
    return min(v["An"] - v["Bn"], v["Af"] - v["Bf"])


def worst_idle(bus: Bus) -> tuple[float, Corner]:
    """The smallest idle A - B over every corner, and the corner that gives it."""
    return min(((idle_differential(c), c) for c in corners(bus)), key=lambda pair: pair[0])


def driver_output_ohms() -> float:
    """The weakest driver's differential output resistance, from the datasheet's minimum swings.

    Each (load, swing) minimum holds down to the lowest supply the datasheet
    covers; there the open-circuit swing can be at most that supply, so the
    output resistance is at most ``load * (supply / swing - 1)``.  The
    smallest of these bounds is what every compliant part meets, and at the
    board's higher rail the same transistors only get stronger.
    """
    return min(load * (DRIVER_SPEC_SUPPLY / swing - 1) for load, swing in DRIVER_MIN_SWINGS)


def worst_swing(bus: Bus) -> tuple[float, Corner]:
    """The least |A - B| at the controller's pins while it sends, either polarity, any corner.

    The polarity that drives A low fights the bias, so that one is the worst;
    the loads are the same as for the idle check (both terminators, every
    card's receiver, the bias).
    """
    r_out = driver_output_ohms()
    worst: tuple[float, Corner] | None = None
    for c in corners(bus):
        for sign in (1, -1):
            v = node_voltages(c, (sign, c.rail, r_out))
            got = abs(v["An"] - v["Bn"])
            if worst is None or got < worst[0]:
                worst = (got, c)
    assert worst is not None
    return worst


def bias_power(bus: Bus) -> float:
    """The most either bias resistor dissipates, watts, idle or driven, any corner.

    The worst is a card ground offset (``V_x`` at -7 V) pulling A down
    through every receiver at once, or the driver pulling A low against R_up.
    """
    r_out = driver_output_ohms()
    most = 0.0
    for c in corners(bus):
        for driver in (None, (1, c.rail, r_out), (-1, c.rail, r_out)):
            v = node_voltages(c, driver)
            most = max(most, (c.rail - v["An"]) ** 2 / c.bias_up, v["Bn"] ** 2 / c.bias_down)
    return most


def fully_loaded(bias_up: float, bias_down: float, termination: float) -> Bus:
    """The board's resistors on the largest bus the docs allow."""
    return Bus(bias_up, bias_down, termination, card_unit_loads=MAX_CARDS * CARD_UNIT_LOADS,
               own_unit_loads=OWN_UNIT_LOADS, cable_metres=MAX_CABLE_METRES)


def unloaded(bus: Bus) -> Bus:
    """The same bus with no cards and no cable: what the bench sees."""
    return replace(bus, card_unit_loads=0.0, cable_metres=0.0)
