"""``ledwarden sim`` and ``ledwarden bus …`` as an installer uses them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from host.cli import main
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

LEDWARDEN = [sys.executable, "-m", "host.cli"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["tcp", "pty"])
def sim_process(request):
    """``ledwarden sim --cards 8`` as its own process; yields the port URL it serves."""
    where = ["--tcp", f"127.0.0.1:{_free_port()}"] if request.param == "tcp" else ["--pty"]
    proc = subprocess.Popen([*LEDWARDEN, "sim", "--cards", "8", *where], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url, proc.stderr.read()
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_discover_json_lists_the_eight_cards(sim_process):
    out = subprocess.run([*LEDWARDEN, "bus", "discover", "--port", sim_process, "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cards = json.loads(out.stdout)["cards"]
    assert [k["address"] for k in cards] == list(range(1, 9))
    assert len({k["serial"] for k in cards}) == 8
    assert all(k["version"] == "1.0.0" and k["bank"] == "A" for k in cards)


@pytest.fixture(scope="module")
def sim():
    plan = FaultPlan().with_card(2, temp_c=90.0).with_card(3, dead_leds=frozenset({(1, 4, 6, 1)}))
    with Simulator(4, pty=True, plan=plan) as s:
        yield s


def run_json(capsys, *argv):
    status = main(list(argv) + ["--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if captured.out.strip() else None, captured.err


def test_status_table_and_json(sim, capsys):
    assert main(["bus", "status", "--port", sim.url, "-a", "1-2"]) == 0
    out = capsys.readouterr().out
    assert "over_temperature" in out and "0x02" in out and "temp_C" in out
    status, data, _ = run_json(capsys, "bus", "status", "--port", sim.url, "-a", "2")
    assert status == 0 and data["0x02"]["temperature_c"] == 90.0
    assert data["0x02"]["link"]["requests"] >= 1


def test_config_set_reads_back(sim, capsys):
    status, data, _ = run_json(capsys, "bus", "config", "set", "--port", sim.url, "-a", "1",
                               "--module", "32x16", "--scan", "8", "--modules", "5x3",
                               "--chain", "serpentine", "--rotation", "180")
    assert status == 0
    assert data["0x01"] | {} == {"module_w": 32, "module_h": 16, "scan": 8, "modules_x": 5,
                                 "modules_y": 3, "chain": 1, "rotation": 2, "refresh_hz": 3840}
    status, data, _ = run_json(capsys, "bus", "config", "get", "--port", sim.url, "-a", "1")
    assert data["0x01"]["modules_x"] == 5


def test_invalid_config_is_refused_by_the_card_in_words(sim, capsys):
    status = main(["bus", "config", "set", "--port", sim.url, "-a", "1", "--scan", "3"])
    assert status == 1
    assert "scan=3" in capsys.readouterr().err


def test_brightness_percent_and_pattern_broadcast(sim, capsys):
    status, data, _ = run_json(capsys, "bus", "brightness", "set", "50%", "--port", sim.url, "-a", "1-4")
    assert status == 0 and set(data.values()) == {32768}
    assert main(["bus", "pattern", "grid", "--port", sim.url]) == 0
    assert "broadcast" in capsys.readouterr().out
    assert {card.platform.pattern for card in sim.cards} == {5}
    assert main(["bus", "pattern", "normal", "--port", sim.url, "-a", "1-4"]) == 0


def test_detect_lists_dead_leds(sim, capsys):
    status, data, _ = run_json(capsys, "bus", "detect", "--port", sim.url, "-a", "3")
    assert status == 0 and data == {"0x03": [{"module": 1, "x": 4, "y": 6, "channel": "g"}]}
    status, data, _ = run_json(capsys, "bus", "pixel-scan", "--port", sim.url, "-a", "3")
    assert data["0x03"] == [{"module": 1, "x": 4, "y": 6, "channel": "g"}]


def test_events_and_ping(sim, capsys):
    status, data, _ = run_json(capsys, "bus", "events", "--port", sim.url, "-a", "1")
    assert status == 0 and data["0x01"][0]["name"] == "boot"
    status, data, _ = run_json(capsys, "bus", "ping", "--port", sim.url, "-a", "4")
    assert data["0x04"]["serial"] == sim.cards[3].serial


def test_missing_card_is_an_error_in_words(sim, capsys):
    status = main(["bus", "ping", "--port", sim.url, "-a", "9", "--retries", "2"])
    assert status == 1
    assert "no card at 0x09 after 3 tries" in capsys.readouterr().err


def test_set_address_moves_a_card_and_refuses_a_taken_address(sim, capsys):
    serial = f"{sim.cards[3].serial:016X}"
    assert main(["bus", "set-address", "--port", sim.url, "--serial", serial, "--to", "20"]) == 0
    assert "now answers at 0x14" in capsys.readouterr().out
    assert main(["bus", "set-address", "--port", sim.url, "--serial", serial, "--to", "4",
                 "--via", "20"]) == 0
    capsys.readouterr()
    # Moving card 4 onto card 1's address: both answer at 0x01 and the check catches it.
    status = main(["bus", "set-address", "--port", sim.url, "--serial", serial, "--to", "1",
                   "--retries", "1"])
    assert status == 1
    assert "0x01" in capsys.readouterr().err
    # The broadcast reaches only the card with that serial, so it undoes the mistake.
    assert main(["bus", "set-address", "--port", sim.url, "--serial", serial, "--to", "4"]) == 0
    capsys.readouterr()
    status, data, _ = run_json(capsys, "bus", "discover", "--port", sim.url, "--range", "1-4")
    assert [k["address"] for k in data["cards"]] == [1, 2, 3, 4]


def test_set_address_refuses_an_occupied_address_and_names_an_unknown_serial(sim, capsys):
    first, fourth = (f"{sim.cards[i].serial:016X}" for i in (0, 3))
    status = main(["bus", "set-address", "--port", sim.url, "--serial", fourth, "--to", "1"])
    assert status == 1
    assert f"address 0x01 is taken by card serial {first}" in capsys.readouterr().err
    # nothing moved: each card still answers alone at its own address
    status, data, _ = run_json(capsys, "bus", "ping", "--port", sim.url, "-a", "1,4")
    assert status == 0
    assert (data["0x01"]["serial"], data["0x04"]["serial"]) == (sim.cards[0].serial, sim.cards[3].serial)
    status = main(["bus", "set-address", "--port", sim.url, "--serial", "0123456789ABCDEF",
                   "--to", "9", "--retries", "1"])
    assert status == 1
    assert "no card with serial 0123456789ABCDEF answered" in capsys.readouterr().err


def test_soak_reports_link_quality(sim, capsys):
    status, data, _ = run_json(capsys, "bus", "soak", "--port", sim.url, "-a", "2", "--count", "60")
    assert status == 0
    assert data["completed"] == 60 and data["wrong_answers"] == 0 and 0 < data["goodput"] < 1


def test_bad_arguments_exit_2_with_usage():
    with pytest.raises(SystemExit) as err:
        main(["bus", "ping", "--port", "loop://", "-a", "300"])
    assert err.value.code == 2


def test_unopenable_port_says_what_to_check(capsys):
    assert main(["bus", "discover", "--port", "/dev/no-such-adapter"]) == 1
    assert "cannot open /dev/no-such-adapter" in capsys.readouterr().err


def test_output_table_and_json_say_which_cards_lack_the_command_or_the_sensor(capsys):
    plan = FaultPlan().with_card(2, no_get_output=True).with_card(3, no_sensor=True)
    with Simulator(3, pty=True, plan=plan) as s:
        status, data, _ = run_json(capsys, "bus", "output", "--port", s.url, "-a", "1-3")
        assert status == 0                              # lacking the command is not a failure
        assert data["0x01"]["supported"] and data["0x01"]["current_ma"] > 0
        assert data["0x01"]["frames_shown"] == 0 and data["0x01"]["frames_dropped"] == 0
        assert data["0x02"] == {"supported": False, "current_ma": None, "frames_shown": None,
                                "frames_dropped": None}
        assert data["0x03"]["supported"] and data["0x03"]["current_ma"] is None
        assert main(["bus", "output", "--port", s.url, "-a", "1-3"]) == 0
        out = capsys.readouterr().out
        assert "not supported" in out and "no sensor" in out and "current_mA" in out
        status = main(["bus", "output", "--port", s.url, "-a", "9", "--retries", "0"])
        assert status == 1 and "no card at 0x09" in capsys.readouterr().err


def test_sim_output_flags_and_their_bad_values():
    import argparse

    from controller.errors import ConfigError
    from hw.sim import cli as simcli

    parser = argparse.ArgumentParser()
    simcli.register(parser.add_subparsers())

    def plan(*flags):
        args = parser.parse_args(["sim", "--pty", "--cards", "4", *flags])
        return simcli.plan_from_args(args)
    every = plan("--no-get-output")
    assert all(every.for_card(k).no_get_output for k in range(1, 5))
    one = plan("--no-sensor", "2", "--stays-black", "3:2.5", "--stays-black", "4")
    assert one.for_card(2).no_sensor and not one.for_card(1).no_sensor
    assert one.for_card(3).stays_black_after_s == 2.5 and one.for_card(4).stays_black_after_s == 10
    with pytest.raises(ConfigError, match="SECONDS >= 0"):
        plan("--stays-black", "3:-1")
    with pytest.raises(ConfigError, match="SECONDS >= 0"):
        plan("--stays-black", "3:soon")


def test_sim_screen_file_errors_are_one_sentence(tmp_path):
    bad = tmp_path / "screen.toml"
    bad.write_text("[screen]\nname = 'x'\n")
    out = subprocess.run([*LEDWARDEN, "sim", "--pty", "--screen", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "screen.toml" in out.stderr


def test_sim_with_a_screen_file_serves_its_cabinets_and_their_output():
    screen = os.path.join(ROOT, "host", "demo_wall.toml")
    proc = subprocess.Popen([*LEDWARDEN, "sim", "--pty", "--screen", screen, "--no-sensor", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url, proc.stderr.read()
        out = subprocess.run([*LEDWARDEN, "bus", "output", "--port", url, "-a", "1-2", "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["0x01"]["current_ma"] > 0 and data["0x02"]["current_ma"] is None
        out = subprocess.run([*LEDWARDEN, "bus", "config", "get", "--port", url, "-a", "1",
                              "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        config = json.loads(out.stdout)["0x01"]
        assert (config["module_w"], config["module_h"], config["scan"]) == (64, 32, 16)
        assert (config["modules_x"], config["modules_y"]) == (4, 4)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
