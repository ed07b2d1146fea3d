"""The power model (``[power]``) and the current limiter, on a synthetic clock.

The limiter is driven the way the frame loop drives it: each frame goes
through a real pipeline (the NumPy reference) with the limiter's scale, and
the frame's module sums come back to the limiter.  The clock is a number the
test moves, so attack, hold, release and the persistent-limiting fault are
checked to the frame without waiting.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from controller.config import parse_screen
from controller.errors import ConfigError
from controller.faultlog import FaultLog
from controller.fastpath import reference
from controller.fastpath.settings import gains_from, power_lut
from controller.power import FAULT_AFTER_S, HOLD_S, RELEASE_S, PowerLimiter, parse_power

SCREEN = """
[screen]
name = "test"
width = 64
height = 16
[modules.m]
width = 16
height = 16
scan = 8
[[cabinets]]
address = 1
x = 0
y = 0
module = "m"
modules_x = 2
modules_y = 1
chain = "rows"
rotation = 0
[[cabinets]]
address = 2
x = 32
y = 0
module = "m"
modules_x = 2
modules_y = 1
chain = "rows"
rotation = 0
"""

POWER = """
[power]
cabinet_budget_a = 1.0
WALL
[power.modules.m]
current_ma = [600, 500, 400]     # a module at full white: 1.5 A of light
quiescent_ma = 100
supply_v = 5.0
"""

FPS = 50


WALL = "wall_budget_a = {}\nmains_v = 230\npsu_efficiency = 0.9"


def load(power: str = POWER):
    """The test screen with ``power`` (its WALL line: top-level [power] keys, or none)."""
    data = tomllib.loads(SCREEN + power.replace("WALL", ""))
    layout = parse_screen(data)
    return data, layout


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Wall:
    """A limiter in a loop with the NumPy pipeline, one frame per call, at 50 fps."""

    def __init__(self, power: str = POWER, faults=None, **kw) -> None:
        data, self.layout = load(power)
        self.clock = Clock()
        self.limiter = PowerLimiter(parse_power(data, self.layout), self.layout, faults=faults,
                                    clock=self.clock, **kw)
        self.pipe = reference.Pipeline(self.layout, power_lut(1.0), gains_from(1.0))

    def show(self, rgb, frames: int = 1) -> None:
        frame = np.empty((self.layout.height, self.layout.width, 3), np.uint8)
        frame[:] = rgb
        for _ in range(frames):
            scale = self.limiter.scale()
            scan = self.pipe.process(frame, scale)
            self.limiter.update(scan.sums, scale)
            self.clock.now += 1 / FPS

    def sums_of(self, rgb, scale):
        """The module sums of a solid ``rgb`` frame corrected with ``scale`` (nothing updated)."""
        frame = np.empty((self.layout.height, self.layout.width, 3), np.uint8)
        frame[:] = rgb
        return self.pipe.process(frame, scale).sums

    def cabinet(self, address: int = 1) -> dict:
        return next(c for c in self.limiter.status()["cabinets"] if c["address"] == address)


# ------------------------------------------------------------------ the screen file

def test_no_power_table_means_no_limiter():
    data, layout = load("")
    assert parse_power(data, layout) is None


def test_a_power_table_is_read_with_overrides():
    data, layout = load(POWER.replace("WALL", WALL.format(3.0)) + """
[[power.cabinets]]
address = 2
budget_a = 1.4
""")
    model = parse_power(data, layout)
    assert [c.budget_a for c in model.cabinets] == [1.0, 1.4]
    assert model.cabinets[0].quiescent_a == pytest.approx(0.2)
    assert model.wall_budget_a == 3.0 and model.ac_per_dc_amp(model.cabinets[0]) == pytest.approx(
        5 / (0.9 * 230))


def test_every_problem_is_named_at_once():
    data, layout = load("""
[power]
cabinet_budget_a = 0.15
wall_budget_a = 2.0
psu_efficiency = 1.5
colour = "red"
[power.modules.m]
current_ma = [600, 500]
quiescent_ma = 100
supply_v = 0
[power.modules.q]
quiescent_ma = 1
[[power.cabinets]]
address = 9
budget_a = 2
""")
    with pytest.raises(ConfigError) as info:
        parse_power(data, layout, "wall.toml")
    text = str(info.value)
    for words in ("mains_v is missing", "psu_efficiency = 1.5 is out of range",
                  "unknown key 'colour'", "current_ma must be three currents",
                  "supply_v = 0 is out of range", "no module type 'q'",
                  "address 9 is not a cabinet of this screen"):
        assert words in text, words
    assert text.startswith("wall.toml: ")


def test_a_budget_below_the_quiescent_current_is_refused():
    data, layout = load(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 0.15"))
    with pytest.raises(ConfigError, match=r"cabinet 1 \(address 1\): budget 0.15 A is not above "
                                          r"its quiescent current 0.2 A \(2 modules × 100 mA\)"):
        parse_power(data, layout)
    data, layout = load(POWER.replace("WALL", WALL.format(0.001)))
    with pytest.raises(ConfigError, match="wall_budget_a 0.001 A is not above the wall's quiescent"):
        parse_power(data, layout)


def test_a_cabinet_without_a_power_model_and_no_budget_are_refused():
    data, layout = load("[power]\ncabinet_budget_a = 1.0\n")
    with pytest.raises(ConfigError, match=r"module type 'm' has no power model; add \[power.modules.m\]"):
        parse_power(data, layout)
    data, layout = load(POWER.replace("cabinet_budget_a = 1.0", ""))
    with pytest.raises(ConfigError, match="no budget"):
        parse_power(data, layout)


# ------------------------------------------------------------------ the envelope

def test_black_is_quiescent_and_white_is_the_model():
    wall = Wall(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 10.0"))
    wall.show((0, 0, 0))
    assert wall.cabinet()["estimate_a"] == pytest.approx(0.2)
    wall.show((255, 255, 255))
    assert wall.cabinet()["estimate_a"] == pytest.approx(0.2 + 2 * 1.5)
    assert wall.limiter.scale() is None and not wall.cabinet()["limiting"]


def test_attack_is_one_frame_then_the_budget_holds():
    wall = Wall()
    wall.show((255, 255, 255))            # the first white frame cannot be predicted
    assert wall.cabinet()["estimate_a"] > 1.0
    for _ in range(20):
        wall.show((255, 255, 255))
        assert wall.cabinet()["estimate_a"] <= 1.0 + 1e-3     # every later frame within budget
    assert wall.cabinet()["estimate_a"] > 0.98               # and not needlessly dark
    assert wall.cabinet()["limiting"] and wall.limiter.scale()[0] == pytest.approx(
        0.8 / 3.0 * 65536, rel=1e-3)


def test_hold_then_release_without_jumps():
    wall = Wall()
    wall.show((255, 255, 255), 10)
    low = wall.cabinet()["scale"]
    wall.show((0, 0, 0), int(HOLD_S * FPS) - 1)     # dark content: the scale holds for 0.5 s
    assert wall.cabinet()["scale"] == low
    steps = []
    for _ in range(int(RELEASE_S * FPS) + 5):
        before = wall.cabinet()["scale"]
        wall.show((0, 0, 0))
        steps.append(wall.cabinet()["scale"] - before)
    assert wall.cabinet()["scale"] == 1.0 and wall.limiter.scale() is None
    assert max(steps) <= 1 / (RELEASE_S * FPS) + 1e-3      # linear, full range in 2 s
    assert sum(s > 0 for s in steps) >= (1 - low) * RELEASE_S * FPS - 2


def test_release_never_goes_above_what_the_content_allows():
    wall = Wall()
    wall.show((255, 255, 255), 5)
    wall.show((128, 128, 128), 200)       # grey at 50 %: needs less limiting, not none
    cab = wall.cabinet()
    assert cab["estimate_a"] <= 1.0 + 1e-3 and cab["scale"] == pytest.approx(0.8 / 1.5, rel=0.02)


def test_the_wall_budget_dims_both_cabinets_evenly():
    power = POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 10.0").replace(
        "WALL", WALL.format(0.05))
    wall = Wall(power)
    wall.show((255, 255, 255), 10)
    status = wall.limiter.status()
    assert status["wall_estimate_a"] <= 0.05 + 1e-4 and status["limiting"]
    a, b = (c["scale"] for c in status["cabinets"])
    assert a == b and a < 1


def test_persistent_limiting_files_a_fault_and_clears_it(tmp_path):
    faults = FaultLog(tmp_path / "faults.db")
    wall = Wall(faults=faults)
    wall.show((255, 255, 255), int(FAULT_AFTER_S * FPS) - 5)
    assert not faults.active()
    wall.show((255, 255, 255), 10)
    active = faults.active()
    assert sorted((f.code, f.source) for f in active) == [("power.limiting", "card:0x01"),
                                                          ("power.limiting", "card:0x02")]
    assert "limited to its 1 A budget" in active[0].details["text"]
    wall.show((0, 0, 0), int((HOLD_S + RELEASE_S) * FPS) + 5)
    assert not faults.active()
    faults.close()


def test_dimming_scales_the_light_not_the_quiescent_current():
    wall = Wall(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 10.0"),
                dimming=lambda: 0.5)
    wall.show((255, 255, 255))
    assert wall.cabinet()["estimate_a"] == pytest.approx(0.2 + 1.5)


def test_card_readings_correct_the_estimate_and_their_absence_is_said():
    wall = Wall(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 10.0"))
    wall.show((255, 255, 255), 30)
    assert "estimate alone" in wall.limiter.status()["note"]
    wall.limiter.measured(1, (0.2 + 3.0 * 1.1) * 1000)   # this card's LEDs draw 10 % more
    wall.limiter.measured(2, None)                        # this one cannot say
    wall.show((255, 255, 255))
    one, two = wall.cabinet(1), wall.cabinet(2)
    assert one["estimate_a"] == pytest.approx(0.2 + 3.3, rel=1e-3) and one["measured_a"] == 3.5
    assert one["model_a"] == pytest.approx(0.2 + 3.0, rel=1e-3)     # the model's own, uncorrected
    assert two["model_a"] == two["estimate_a"]
    assert one["basis"].startswith("estimate corrected") and two["basis"] == "estimate"
    assert two["measured_a"] is None
    assert wall.limiter.status()["note"].endswith("cabinets 2: they have not reported their current")
    wall.limiter.measured(1, 50_000)                      # absurd: bounded to twice the model
    wall.show((255, 255, 255))
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(0.2 + 6.0, rel=1e-3)
    wall.limiter.measured(77, 1.0)                        # not a cabinet of this screen: ignored


def test_a_reading_just_after_a_cut_does_not_mis_scale_the_cabinet():
    """A card read 0.1 s after a cut from white to black may show either picture; compared
    with an estimate averaged across the cut it would halve (or double) the cabinet's estimate
    until the next reading, and the next white frame would overload it.  Such a reading is
    shown in status but corrects nothing; a reading of a steady picture still does."""
    wall = Wall(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 10.0"))
    wall.show((255, 255, 255), 30)
    wall.limiter.measured(1, (0.2 + 3.0 * 1.1) * 1000)      # steady white: 10 % more
    wall.show((0, 0, 0), 5)                                  # cut to black, 0.1 s
    wall.limiter.measured(1, 0.2 * 1000 + 30)                # the card already shows black
    assert wall.cabinet(1)["measured_a"] == pytest.approx(0.23)
    wall.show((255, 255, 255))
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(0.2 + 3.3, rel=1e-3)   # kept 1.1
    wall.show((255, 255, 255), 30)
    wall.limiter.measured(1, (0.2 + 3.0 * 0.95) * 1000)     # steady again: taken
    wall.show((255, 255, 255))
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(0.2 + 2.85, rel=1e-3)


def test_the_model_s_tolerance_is_kept_as_headroom_until_a_reading_corrects_the_estimate():
    """A cabinet whose LEDs draw 3 % more than the model would sit 3 % over its budget on the
    model alone (the simulated wall's cabinet 11 did); ``model_tolerance_pct`` keeps that much
    headroom until its card's reading says how it really draws."""
    wall = Wall(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 1.0\nmodel_tolerance_pct = 5"))
    wall.show((255, 255, 255), 30)
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(1.0 / 1.05, rel=1e-3)
    wall.limiter.measured(1, wall.cabinet(1)["estimate_a"] * 1000)   # the model was right
    wall.show((255, 255, 255), int((HOLD_S + RELEASE_S) * FPS) + 10)
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(1.0, rel=1e-3)
    assert wall.cabinet(2)["estimate_a"] == pytest.approx(1.0 / 1.05, rel=1e-3)   # still unread
    wall.limiter.measured(1, None)                     # the card stops reporting: headroom again
    wall.show((255, 255, 255), 2)                      # the frame after next (one-frame attack)
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(1.0 / 1.05, rel=1e-3)


def test_a_tolerance_that_leaves_no_room_for_light_is_refused():
    data, layout = load(POWER.replace("cabinet_budget_a = 1.0",
                                      "cabinet_budget_a = 0.205\nmodel_tolerance_pct = 5"))
    with pytest.raises(ConfigError, match=r"plus model_tolerance_pct 5 %\); rule: a budget must"):
        parse_power(data, layout)
    data, layout = load(POWER.replace("cabinet_budget_a = 1.0",
                                      "cabinet_budget_a = 1.0\nmodel_tolerance_pct = 25"))
    with pytest.raises(ConfigError, match=r"model_tolerance_pct = 25 is out of range"):
        parse_power(data, layout)


def test_a_second_look_gives_a_cut_the_scale_it_needs_and_leaves_the_rest_alone():
    """The frame loop corrects a frame again when, at the scale it was given, it would draw
    more than a budget allows (a cut): the scale that fits; None when the frame fits."""
    wall = Wall()
    wall.show((0, 0, 0), 10)
    dark = wall.sums_of((40, 40, 40), wall.limiter.scale())
    assert wall.limiter.second_look(dark, wall.limiter.scale()) is None
    white = wall.sums_of((255, 255, 255), wall.limiter.scale())
    tighter = wall.limiter.second_look(white, wall.limiter.scale())
    assert tighter is not None
    # 1.0 A budget less 0.2 A quiescent, against 3.0 A of light at full white: scale 0.8/3.0
    assert tighter / 65536 == pytest.approx([0.8 / 3.0] * 2, abs=1e-4)
    wall.limiter.update(wall.sums_of((255, 255, 255), tighter), tighter)
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(1.0, rel=2e-3)   # sent within budget
    again = wall.sums_of((255, 255, 255), wall.limiter.scale())
    assert wall.limiter.second_look(again, wall.limiter.scale()) is None   # steady: no 2nd pass


def test_a_card_behind_the_frames_sent_is_shown_but_corrects_nothing():
    """A card that showed few of the frames sent may be showing a picture seconds old (found
    by the simulator's current log at 1080p: a correction taken from a lagging card let whole
    seconds of stripes through over budget)."""
    wall = Wall(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 10.0"))
    wall.show((255, 255, 255), 30)
    wall.limiter.measured(1, (0.2 + 3.0 * 0.6) * 1000, keeping_up=False)   # an old, dim picture
    assert wall.cabinet(1)["measured_a"] == pytest.approx(2.0)
    wall.show((255, 255, 255))
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(0.2 + 3.0, rel=1e-3)   # the model's
    wall.limiter.measured(1, (0.2 + 3.0 * 1.1) * 1000, keeping_up=True)
    wall.show((255, 255, 255))
    assert wall.cabinet(1)["estimate_a"] == pytest.approx(0.2 + 3.3, rel=1e-3)


def test_the_compiled_pipelines_sums_are_read_in_place_and_agree_with_copies():
    from controller import fastpath
    wall = Wall(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 10.0"))
    other = Wall(POWER.replace("cabinet_budget_a = 1.0", "cabinet_budget_a = 10.0"))
    frame = np.random.default_rng(1).integers(0, 256, (16, 64, 3), dtype=np.uint8)
    pipe = fastpath.Pipeline(wall.layout, power_lut(2.2), gains_from(1.0), threads=1)
    for k in range(3):      # the same result object every frame, refilled in place
        scan = pipe.process(np.roll(frame, k, axis=1))
        wall.limiter.update(scan.sums, None)
        other.limiter.update({a: s.copy() for a, s in scan.sums.items()}, None)
        assert wall.limiter.status() == other.limiter.status()


def test_a_fade_to_white_stays_within_budget_and_a_cut_is_not_overdone():
    wall = Wall()
    estimates = []
    for k in list(range(0, 256, 8)) + [255] * 10:      # a fade: ~3 % more light every frame
        wall.show((k, k, k))
        estimates.append(wall.cabinet()["estimate_a"])
    assert max(estimates) <= 1.0 * 1.02                # the limiter follows the rise, not behind it
    cut = Wall()
    cut.show((0, 0, 0), 5)
    cut.show((255, 255, 255), 3)
    # one jump is not a trend: the frames after the cut are at the budget, not darker
    assert cut.cabinet()["estimate_a"] == pytest.approx(1.0, rel=2e-3)


def test_a_1080p_sequence_with_full_white_stays_within_budget_after_each_cut():
    """The bench's 1080p wall (16 cabinets), the compiled pipeline, a sequence with cuts, a
    fade and full white: no cabinet above its budget by more than 2 % but on a cut's frame."""
    from controller import fastpath
    from host.bench import wall_layout
    from host.benchlimit import bench_power
    from controller.service.frameloop import frame_source

    layout = wall_layout(1920, 1080)
    clock = Clock()
    limiter = bench_power(layout)
    limiter.clock = clock
    budget = limiter.model.cabinets[0].budget_a
    pipe = fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0), threads=1)
    bars, white = frame_source("pattern:bars", 1920, 1080), next(frame_source("pattern:white", 1920, 1080))
    fade = [np.full((1080, 1920, 3), k, np.uint8) for k in range(0, 256, 9)]
    sequence = ([("cut", next(bars))] + [("", next(bars)) for _ in range(9)]
                + [("cut", white)] + [("", white)] * 15
                + [("cut", fade[0])] + [("", f) for f in fade[1:]]
                + [("", white)] * 10 + [("cut", np.zeros_like(white))] * 1 + [("", np.zeros_like(white))] * 5
                + [("cut", white)] + [("", white)] * 10)
    worst = 0.0
    for kind, frame in sequence:
        scale = limiter.scale()
        limiter.update(pipe.process(frame, scale).sums, scale)
        clock.now += 1 / 30
        peak = max(c["estimate_a"] for c in limiter.status()["cabinets"])
        if kind != "cut":
            worst = max(worst, peak / budget)
    assert 0.9 < worst <= 1.02
