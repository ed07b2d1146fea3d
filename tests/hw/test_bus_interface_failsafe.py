"""The worst-case bus calculation (hw/schematics/failsafe.py) against hand results.

``tests/hw/test_schematic.py`` trusts ``failsafe.py`` to say whether the
board's bias holds; these tests are why it may: the nodal solver agrees with
circuits simple enough to solve by hand, and the worst case found at the
corners of the tolerance box is not beaten anywhere inside it.
"""

from __future__ import annotations

import random

import pytest

from hw.schematics import failsafe
from hw.schematics.failsafe import Bus, Corner


def _corner(**changes) -> Corner:
    base = dict(rail=3.3, bias_up=390.0, bias_down=390.0, termination=120.0, far_termination=120.0,
                card_ohms=None, own_ohms=None, cable_ohms=0.0, v_x=1.65)
    return Corner(**{**base, **changes})


def _differential(c: Corner, end: str = "n") -> float:
    v = failsafe.node_voltages(c)
    return v[f"A{end}"] - v[f"B{end}"]


def test_unloaded_bus_is_a_divider():
    """Both terminators and the bias, nothing else: 3.3 V x 60 / 840, the old docs' 236 mV."""
    assert _differential(_corner()) == pytest.approx(3.3 * 60 / 840, rel=1e-12)


def test_receivers_biased_at_the_lines_midpoint_act_as_a_differential_shunt():
    """Loads of R from each line to the bus's own common-mode voltage are 2R across A-B."""
    r = 400.0
    mid = 3.3 / 2  # equal bias resistors hold the line's midpoint at half the rail
    across = 1 / (1 / 60 + 1 / (2 * r))
    expected = 3.3 * across / (780 + across)
    assert _differential(_corner(card_ohms=r, v_x=mid)) == pytest.approx(expected, rel=1e-12)


def test_cable_resistance_lowers_the_far_end():
    """With cable, the far terminator is a divider behind it: near x 120 / (120 + 2 Rc)."""
    rc = 8.42
    c = _corner(cable_ohms=rc)
    near_load = 1 / (1 / 120 + 1 / (120 + 2 * rc))
    near = 3.3 * near_load / (780 + near_load)
    assert _differential(c, "n") == pytest.approx(near, rel=1e-12)
    assert _differential(c, "f") == pytest.approx(near * 120 / (120 + 2 * rc), rel=1e-12)
    assert failsafe.idle_differential(c) == pytest.approx(near * 120 / (120 + 2 * rc), rel=1e-12)


def test_weakest_driver_from_the_datasheet_minimums():
    """1.5 V into 54 ohm and 2 V into 100 ohm at a 3.0 V supply: at most 50 ohm inside."""
    assert failsafe.driver_output_ohms() == pytest.approx(50.0)
    c = _corner(bias_up=1e12, bias_down=1e12, termination=1e12, far_termination=54.0)
    v = failsafe.node_voltages(c, (1, 3.0, failsafe.driver_output_ohms()))
    assert v["An"] - v["Bn"] >= 1.5 - 1e-9


def test_bias_fights_the_driver_sending_a_zero():
    """Driving A low against the bias gives less swing than driving A high with it."""
    c = _corner()
    r_out = failsafe.driver_output_ohms()
    high = failsafe.node_voltages(c, (1, 3.3, r_out))
    low = failsafe.node_voltages(c, (-1, 3.3, r_out))
    assert abs(low["An"] - low["Bn"]) < high["An"] - high["Bn"]


def test_no_point_inside_the_tolerance_box_is_worse_than_its_worst_corner():
    """The corner search is the worst case: random interior points never fall below it."""
    bus = failsafe.fully_loaded(330.0, 330.0, 160.0)
    worst, _ = failsafe.worst_idle(bus)
    rng = random.Random(12)

    def anywhere(nominal: float) -> float:
        return nominal * rng.uniform(1 - failsafe.TOLERANCE, 1 + failsafe.TOLERANCE)

    card_ohms = failsafe.UNIT_LOAD_OHMS / bus.card_unit_loads
    own_ohms = failsafe.UNIT_LOAD_OHMS / bus.own_unit_loads
    cable = bus.cable_metres * failsafe.CABLE_OHMS_PER_METRE
    for _ in range(300):
        c = Corner(rng.uniform(*failsafe.RAIL), anywhere(bus.bias_up), anywhere(bus.bias_down),
                   anywhere(bus.termination), anywhere(bus.far_termination),
                   card_ohms * rng.uniform(1, 20), own_ohms * rng.uniform(1, 20),
                   rng.uniform(0, cable), rng.uniform(*failsafe.COMMON_MODE))
        assert failsafe.idle_differential(c) >= worst - 1e-12


def test_more_load_never_helps():
    """Unloaded, loaded and loaded on a long cable: each worst case no better than the last."""
    bench = Bus(330.0, 330.0, 160.0, own_unit_loads=1 / 8)  # the board alone keeps its own receiver
    cards = Bus(330.0, 330.0, 160.0, card_unit_loads=30, own_unit_loads=1 / 8)
    far = Bus(330.0, 330.0, 160.0, card_unit_loads=30, own_unit_loads=1 / 8, cable_metres=100)
    figures = [failsafe.worst_idle(b)[0] for b in (bench, cards, far)]
    assert figures == sorted(figures, reverse=True)
    assert failsafe.worst_idle(failsafe.unloaded(far))[0] == figures[0]


def test_the_documented_maximum_bus():
    """240 cards of 1/8 unit load and the controller's own 1/8, on 100 m: what the docs allow."""
    bus = failsafe.fully_loaded(330.0, 330.0, 160.0)
    assert bus.card_unit_loads == 30 and bus.own_unit_loads == 1 / 8
    assert bus.cable_metres == 100
    assert bus.card_unit_loads + bus.own_unit_loads <= 32  # what an RS-485 driver may drive
