"""``benchmarks/power_accuracy.py`` runs end to end on a small wall (issue 14).

Structure only, never timing or accuracy: the script starts the simulator and
the controller, plays its sequence, and its report holds errors computed from
both sources (the controller's estimates and the cards' GET_OUTPUT readings)
for every cabinet, and the limiting-on figures.  The figures themselves are
the benchmark's to give (docs/power.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "power_accuracy.py"

SCREEN = """
[screen]
name = "two cabinets"
width = 128
height = 64

[modules.m]
width = 32
height = 32
scan = 16

[[cabinets]]
address = 1
x = 0
y = 0
module = "m"
modules_x = 2
modules_y = 2
chain = "serpentine"
rotation = 0

[[cabinets]]
address = 2
x = 64
y = 0
module = "m"
modules_x = 2
modules_y = 2
chain = "serpentine"
rotation = 0

[power]
cabinet_budget_a = 1.0

[power.modules.m]
current_ma = [960, 768, 640]   # 15, 12, 10 mA x 1024 LEDs / 16 (the simulator's LEDs)
quiescent_ma = 40
supply_v = 4.5
"""


def test_the_script_compares_estimates_with_card_readings(tmp_path):
    screen = tmp_path / "two.toml"
    screen.write_text(SCREEN)
    out = subprocess.run([sys.executable, str(SCRIPT), "--screen", str(screen), "--seconds", "2",
                          "--settle", "2.5", "--no-bench", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    white = 4 * (0.04 + 0.96 + 0.768 + 0.64)
    assert abs(report["full_white_a"] - white) < 1e-3
    assert abs(report["budget_on_a"] - (0.16 + 0.5 * (white - 0.16))) < 1e-3
    assert [c["address"] for c in report["cabinets"]] == [1, 2]
    for cab in report["cabinets"]:
        assert cab["readings_off"] > 0 and cab["readings_on"] > 0      # the cards answered
        assert cab["polls_on"] > 0 and cab["peak_estimate_on_a"] is not None
    compared = report["model_error"]
    assert compared["n"] > 0 and compared["worst_pct"] is not None   # both sources met
    assert report["frame_loop"]["off"]["frames"] > 0 and report["frame_loop"]["on"]["frames"] > 0


def test_a_screen_without_power_is_refused_in_one_sentence(tmp_path):
    screen = tmp_path / "bare.toml"
    screen.write_text(SCREEN[:SCREEN.index("[power]")])
    out = subprocess.run([sys.executable, str(SCRIPT), "--screen", str(screen), "--no-bench"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no [power] table" in out.stderr and "Traceback" not in out.stderr
