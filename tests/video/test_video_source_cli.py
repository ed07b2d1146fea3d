"""``ledwarden source show|set`` against a real ``controller run`` process on simulated cards.

What is checked: the installer role, bad specs refused in one sentence with the
old source still playing, the switch seen in ``show``/``status``, the journal
entry naming who, the choice kept in ``STATE/source.json`` and winning over
``--source`` at the next start, and a saved choice that cannot be opened at
start filed as ``source.unavailable`` while ``--source`` plays (cleared by the
next good switch).
"""

from __future__ import annotations

import json
import os

import pytest
from support import controller_process

from controller.service.auth import TokenStore
from host.cli import main
from hw.sim.server import Simulator

OPTIONS = ("--source", "pattern:bars", "--fps", "10", "--watch-interval", "0", "--schedule", "off")


@pytest.fixture
def rig(tmp_path, monkeypatch):
    state = tmp_path / "state"
    state.mkdir()
    store = TokenStore(state / "tokens.db")
    tokens = {role: store.create(f"{role}-1", role) for role in ("viewer", "installer")}
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host-config"))
    with Simulator(2, pty=True) as sim:
        yield {"state": state, "tokens": tokens, "bus": sim.url}


def host(url: str, token: str, capsys, *argv: str) -> tuple[int, str, str]:
    os.environ["LEDWARDEN_TOKEN"] = token
    try:
        status = main(["--controller", url, *argv])
    finally:
        del os.environ["LEDWARDEN_TOKEN"]
    out, err = capsys.readouterr()
    return status, out, err


def test_switching_refusing_keeping_and_restarting(rig, capsys):
    viewer, installer = rig["tokens"]["viewer"], rig["tokens"]["installer"]
    proc, url = controller_process.start(rig["state"], rig["bus"], *OPTIONS)
    try:
        status, out, _ = host(url, viewer, capsys, "source", "show", "--json")
        shown = json.loads(out)
        assert status == 0 and shown["spec"] == "pattern:bars" and shown["chosen"] is None
        status, _, err = host(url, viewer, capsys, "source", "set", "pattern:red")
        assert status == 1 and "installer" in err
        status, _, err = host(url, installer, capsys, "source", "set", "pattern:plaid")
        assert status == 1 and "patterns are bars" in err and "still playing pattern:bars" in err
        assert err.count("\n") == 1 and "Traceback" not in err
        status, _, err = host(url, installer, capsys, "source", "set", "file:/nonexistent/clip.mp4")
        assert status == 1 and "no such file" in err and "still playing pattern:bars" in err
        status, out, _ = host(url, installer, capsys, "source", "set", "pattern:red", "--json")
        answer = json.loads(out)
        assert status == 0 and answer["changed"] and answer["spec"] == "pattern:red"
        assert answer["chosen"]["spec"] == "pattern:red" and answer["chosen"]["by"] == "installer-1"
        status, out, _ = host(url, installer, capsys, "source", "set", "pattern:red")
        assert status == 0 and out.strip() == "already playing pattern:red"
        status, out, _ = host(url, viewer, capsys, "source", "show")
        assert "source     pattern:red" in out and "chosen     pattern:red by installer-1" in out
        status, out, _ = host(url, viewer, capsys, "status")
        assert status == 0 and "video      pattern:red → null: latency p50" in out
        status, out, _ = host(url, viewer, capsys, "faults", "list", "--state", "all", "--json")
        changed = [f for f in json.loads(out)["faults"] if f["code"] == "source.changed"]
        assert changed[0]["details"] == {"who": "installer-1", "from": "pattern:bars",
                                         "to": "pattern:red"}
        assert changed[0]["severity"] == "info"
    finally:
        controller_process.stop(proc)
    saved = json.loads((rig["state"] / "source.json").read_text())
    assert saved["spec"] == "pattern:red" and saved["by"] == "installer-1"

    # The choice wins over --source at the next start.
    proc, url = controller_process.start(rig["state"], rig["bus"], *OPTIONS)
    try:
        status, out, _ = host(url, viewer, capsys, "source", "show", "--json")
        assert json.loads(out)["spec"] == "pattern:red"
    finally:
        controller_process.stop(proc)

    # A saved choice that cannot be opened: the controller starts, --source plays, a fault says why.
    (rig["state"] / "source.json").write_text(json.dumps(
        {"spec": "file:/nonexistent/show.mp4", "by": "installer-1", "at": "2026-12-05T07:00:00Z"}))
    proc, url = controller_process.start(rig["state"], rig["bus"], *OPTIONS)
    try:
        status, out, _ = host(url, viewer, capsys, "source", "show", "--json")
        assert json.loads(out)["spec"] == "pattern:bars"
        status, out, _ = host(url, viewer, capsys, "faults", "list", "--json")
        unavailable = [f for f in json.loads(out)["faults"] if f["code"] == "source.unavailable"]
        assert len(unavailable) == 1 and unavailable[0]["severity"] == "error"
        details = unavailable[0]["details"]
        assert details["wanted"] == "file:/nonexistent/show.mp4" and details["playing"] == "pattern:bars"
        assert "no such file" in details["reason"]
        status, _, _ = host(url, installer, capsys, "source", "set", "pattern:green")
        status, out, _ = host(url, viewer, capsys, "faults", "list", "--json")
        assert status == 0 and not [f for f in json.loads(out)["faults"]
                                    if f["code"] == "source.unavailable"]
    finally:
        controller_process.stop(proc)


def test_without_a_frame_loop_the_source_commands_say_so(rig, capsys):
    proc, url = controller_process.start(rig["state"], rig["bus"], "--no-frames",
                                         "--watch-interval", "0", "--schedule", "off")
    try:
        status, _, err = host(url, rig["tokens"]["viewer"], capsys, "source", "show")
        assert status == 1 and "without a frame loop (--no-frames)" in err
    finally:
        controller_process.stop(proc)
