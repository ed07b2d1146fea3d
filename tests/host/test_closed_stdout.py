"""Every command, run for real, with a stdout whose reader has gone: no traceback (issue 15
item 10).

``ledwarden … status | head -1`` ended in a ``BrokenPipeError``.  Here each command the
parser has (found by walking it, so a new command fails this test until it is given a way to
run here) runs in-process against a real controller on simulated cards, a simulated bus, a
board state directory and real keys, with ``sys.stdout`` raising ``BrokenPipeError`` on every
write, as a pipe whose reader exited does.  Whatever each command does, it must end with an
exit status and at most one line, never a traceback or an "internal error".
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from controller.service.auth import TokenStore
from controller.upgrade import signing
from host.cli import EXIT_BUG, build_parser, main
from hw.sim.server import Simulator
from support import controller_process
from test_cli_errors import ClosedStdout, leaf_commands

SCREEN = controller_process.SCREEN

#: Commands that serve until stopped or run a whole other workflow: what they print on stdout
#: is one line at start-up (covered by the handler like any other print), and running them
#: here would never end.
SERVING = {("demo",): "runs the whole demo against a controller of its own",
           ("sim",): "serves simulated cards until stopped",
           ("controller", "run"): "serves the API until stopped",
           ("controller", "boot"): "the boot guard: runs the controller until stopped"}


def samples(rig: dict) -> dict[tuple[str, ...], list[str]]:
    """How each command runs here; ``R`` commands talk to the controller, the others to the
    simulated bus, the state directory or files."""
    R = ["--controller", rig["url"]]
    bus, state, tmp = ["--port", rig["bus"]], ["--state", str(rig["state"])], rig["tmp"]
    private, public = (str(p) for p in rig["keys"])
    return {
        ("status",): R + ["status"],
        ("cards",): R + ["cards"],
        ("commission",): R + ["commission", "--yes", "--out", str(tmp / "reports")],
        ("pattern",): R + ["pattern", "red"],
        ("brightness",): R + ["brightness", "50%"],
        ("detect",): R + ["detect", "-a", "1"],
        ("jobs",): R + ["jobs"],
        ("selftest", "run"): R + ["selftest", "run", "--profile", "quick", "--out", str(tmp / "reports")],
        ("selftest", "list"): R + ["selftest", "list"],
        ("selftest", "history"): R + ["selftest", "history"],
        ("selftest", "report"): R + ["selftest", "report", "1"],
        ("faults", "list"): R + ["faults", "list", "--state", "all"],
        ("faults", "show"): R + ["faults", "show", "1"],
        ("faults", "clear"): R + ["faults", "clear", "--code", "card.offline"],
        ("faults", "export"): R + ["faults", "export", "--state", "all"],
        ("source", "show"): R + ["source", "show"],
        ("source", "set"): R + ["source", "set", "pattern:gradient"],
        ("correction", "show"): R + ["correction", "show"],
        ("correction", "set"): R + ["correction", "set", "--gamma", "2.4"],
        ("correction", "reset"): R + ["correction", "reset"],
        ("calibration", "list"): R + ["calibration", "list"],
        ("calibration", "import"): R + ["calibration", "import", str(tmp / "none.csv"),
                                        "--cabinet", "1"],
        ("calibration", "activate"): R + ["calibration", "activate", "--cabinet", "1",
                                          "--version", "1"],
        ("calibration", "rollback"): R + ["calibration", "rollback", "--cabinet", "1"],
        ("calibrate",): ["calibrate", "--patterns", str(tmp / "frames"), "--screen", str(SCREEN)],
        ("bus", "discover"): ["bus", "discover", *bus, "--range", "1-4"],
        ("bus", "ping"): ["bus", "ping", *bus, "-a", "1"],
        ("bus", "status"): ["bus", "status", *bus, "-a", "1-4"],
        ("bus", "set-address"): ["bus", "set-address", *bus, "--serial", "0x1", "--to", "9"],
        ("bus", "config", "get"): ["bus", "config", "get", *bus, "-a", "1"],
        ("bus", "config", "set"): ["bus", "config", "set", *bus, "-a", "1", "--refresh-hz", "1920"],
        ("bus", "brightness", "get"): ["bus", "brightness", "get", *bus, "-a", "1"],
        ("bus", "brightness", "set"): ["bus", "brightness", "set", *bus, "-a", "1", "60%"],
        ("bus", "pattern"): ["bus", "pattern", *bus, "-a", "1", "grid"],
        ("bus", "detect"): ["bus", "detect", *bus, "-a", "1"],
        ("bus", "pixel-scan"): ["bus", "pixel-scan", *bus, "-a", "1"],
        ("bus", "events"): ["bus", "events", *bus, "-a", "1"],
        ("bus", "output"): ["bus", "output", *bus, "-a", "1"],
        ("bus", "soak"): ["bus", "soak", *bus, "-a", "1", "--count", "20"],
        ("controller", "token", "create"): ["controller", "token", "create", "--role", "viewer",
                                            "--name", "piped", *state],
        ("controller", "token", "list"): ["controller", "token", "list", *state],
        ("controller", "token", "revoke"): ["controller", "token", "revoke", "piped", *state],
        ("controller", "trust", "add"): ["controller", "trust", "add", str(rig["second_key"]),
                                         "--name", "second", *state],
        ("controller", "trust", "list"): ["controller", "trust", "list", *state],
        ("controller", "trust", "remove"): ["controller", "trust", "remove", "second", *state],
        ("controller", "install"): ["controller", "install", str(tmp / "none.lwb"), *state],
        ("controller", "slots"): ["controller", "slots", *state],
        ("controller", "ddi", "set"): ["controller", "ddi", "set", "--url", "https://127.0.0.1:9",
                                       "--controller-id", "piped", "--token-file",
                                       str(rig["keys"][1]), *state],
        ("controller", "ddi", "show"): ["controller", "ddi", "show", *state],
        ("controller", "ddi", "off"): ["controller", "ddi", "off", *state],
        ("controller", "forget"): ["controller", "forget", rig["url"].removeprefix("https://")],
        ("bench",): ["bench", "--resolution", "480x270", "--rounds", "1", "--numpy-rounds", "1",
                     "--min-time", "0"],
        ("keys", "generate"): ["keys", "generate", "--name", "piped", "--dir", str(tmp / "keys2")],
        ("keys", "show"): ["keys", "show", public],
        ("bundle", "build"): ["bundle", "build", "--version", "9.0.0", "--key", str(tmp / "no.key")],
        ("bundle", "verify"): ["bundle", "verify", str(tmp / "none.lwb"), "--key", public],
        ("bundle", "build-firmware"): ["bundle", "build-firmware", str(rig["image"]), "--hw-model",
                                       "0x0A01", "--version", "2.0.0", "--key", private, "--out",
                                       str(tmp / "fw.lwf")],
        ("bundle", "verify-firmware"): ["bundle", "verify-firmware", str(tmp / "fw.lwf"), "--key",
                                        public],
        ("upgrade", "controller"): R + ["upgrade", "controller", str(tmp / "none.lwb")],
        ("upgrade", "cards"): R + ["upgrade", "cards", str(tmp / "none.lwf")],
    }


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("closed-stdout")
    state, controller_state = tmp / "board-state", tmp / "controller-state"
    state.mkdir()
    controller_state.mkdir()
    token = TokenStore(controller_state / "tokens.db").create("service-1", "service")
    keys = signing.generate(tmp / "keys", "centre")
    second_key = signing.generate(tmp / "keys", "successor")[1]
    assert main(["controller", "trust", "add", str(keys[1]), "--state", str(state)]) == 0
    image = tmp / "image.bin"
    image.write_bytes(bytes(range(256)) * 64)
    with pytest.MonkeyPatch.context() as mp, Simulator(8, pty=True) as wall, \
            Simulator(4, tcp=("127.0.0.1", 0)) as bench_bus:
        mp.setenv("LEDWARDEN_TOKEN", token)
        mp.setenv("LEDWARDEN_CONFIG_DIR", str(tmp / "host"))
        proc, url = controller_process.start(controller_state, wall.url, "--watch-interval", "0",
                                             "--schedule", "off")
        try:
            yield {"url": url, "bus": bench_bus.url, "state": state, "tmp": tmp, "keys": keys,
                   "second_key": second_key, "image": image}
        finally:
            controller_process.stop(proc)


COMMANDS = [path for path in leaf_commands(build_parser()) if path not in SERVING]


def test_every_command_has_a_way_to_run_here(rig):
    assert sorted(samples(rig)) == sorted(COMMANDS), "give each new command a line in samples()"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_with_its_reader_gone(rig, path, capsys, monkeypatch):
    argv = samples(rig)[path]
    monkeypatch.setattr(sys, "stdout", ClosedStdout())
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    assert isinstance(status, int) and status != EXIT_BUG, (status, err)
