"""``ledwarden bench`` runs end to end and reports every variant; no speed is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.config import load_screen
from host.bench import wall_layout
from host.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUICK = ["--rounds", "1", "--min-time", "0", "--numpy-rounds", "1"]


def test_bench_json_has_every_variant(capsys):
    assert main(["bench", "--resolution", "960x540", "--calibration", "none,matrix", *QUICK,
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "cffi" and report["build"] and report["cpu"]
    rows = report["results"]
    assert {(r["calibration"], r["variant"], r["threads"]) for r in rows} == {
        (mode, variant, threads) for mode in ("none", "matrix")
        for variant, threads in [("fused pipeline", report["threads"]), ("fused pipeline", 1),
                                 ("correct + module_scan", 1), ("NumPy reference", 1),
                                 ("floor (memory copy)", 1)]}
    for r in rows:
        assert r["ms_per_frame"] > 0 and r["fps"] > 0 and r["mpix_per_s"] > 0
        assert r["ratio_to_floor"] > 0 and r["speedup_vs_numpy"] > 0


def test_bench_table_names_the_machine_and_build(capsys):
    assert main(["bench", "--screen", str(EXAMPLES / "lobby.toml"), "--calibration", "gain",
                 "--threads", "2", *QUICK]) == 0
    text = capsys.readouterr().out
    for expected in ("CPU ", "build    cc ", "'Lobby wall': 16 cabinets, 144 modules", "x floor",
                     "correct + module_scan", "NumPy reference"):
        assert expected in text


@pytest.mark.parametrize("argv", [["--resolution", "100x100"], ["--resolution", "wide"],
                                  ["--calibration", "lut"]])
def test_bench_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", *argv])
    assert info.value.code == 2


@pytest.mark.parametrize("name, size", [("lobby.toml", (1920, 1080)), ("atrium-4k.toml", (3840, 2160))])
def test_example_screens_are_the_bench_walls(name, size):
    layout = load_screen(EXAMPLES / name)
    assert (layout.width, layout.height) == size
    assert layout.cabinets == wall_layout(*size).cabinets


def test_bench_limiting_reports_ratios_and_the_update_cost(capsys):
    assert main(["bench", "--limiting", "--resolution", "960x540", "--calibration", "none,gain",
                 *QUICK, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    variants = {(r["calibration"], r["variant"]) for r in rows}
    assert variants == {(m, v) for m in ("none", "gain")
                        for v in ("fused pipeline", "fused + scale", "fused + scale + limiter update",
                                  "limiter update alone")}
    for r in rows:
        if r["variant"] == "limiter update alone":
            assert r["us_per_frame"] > 0 and r["cabinets"] == 4
        else:
            assert r["ms_per_frame"] > 0 and r["ratio_to_plain"] > 0
    assert main(["bench", "--limiting", "--cpu-time", "--resolution", "960x540",
                 "--calibration", "none", *QUICK]) == 0
    text = capsys.readouterr().out
    assert "fused + scale + limiter update" in text and "limiter update µs" in text
