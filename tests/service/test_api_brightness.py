"""Brightness over the API and the host tool, on a real ``controller run`` process over simulated
cards: percent everywhere, the schedule set, shown and cleared, bad input refused, roles."""

from __future__ import annotations

import json
import os

import pytest

from controller.brightness import level_of_percent
from controller.service.auth import TokenStore
from host.cli import main
from host.client import ApiError, ControllerClient
from hw.sim.server import Simulator
from support import controller_process


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("brightness")
    state = tmp / "state"
    state.mkdir()
    store = TokenStore(state / "tokens.db")
    tokens = {role: store.create(f"{role}-1", role) for role in ("viewer", "installer")}
    os.environ["LEDWARDEN_CONFIG_DIR"] = str(tmp / "host-config")
    with Simulator(8, pty=True) as sim:
        proc, url = controller_process.start(state, sim.url, "--no-frames", "--watch-interval", "0")
        try:
            yield {"sim": sim, "url": url, "tokens": tokens, "state": state}
        finally:
            controller_process.stop(proc)
    os.environ.pop("LEDWARDEN_CONFIG_DIR", None)


def host(rig, role: str, *argv: str) -> int:
    os.environ["LEDWARDEN_TOKEN"] = rig["tokens"][role]
    try:
        return main(["--controller", rig["url"], *argv])
    finally:
        del os.environ["LEDWARDEN_TOKEN"]


def client(rig, role: str) -> ControllerClient:
    return ControllerClient(rig["url"], rig["tokens"][role])


def test_brightness_in_percent_by_hand_through_the_host_tool(rig, capsys):
    assert host(rig, "viewer", "brightness", "--json") == 0
    view = json.loads(capsys.readouterr().out)
    assert (view["percent"], view["source"], view["schedule"]) == (80, "screen file", None)
    assert host(rig, "installer", "brightness", "40%") == 0
    out = capsys.readouterr().out
    assert "0x01: brightness 40.0 %, read back" in out
    assert {k.card.brightness for k in rig["sim"].cards} == {level_of_percent(40)}
    assert host(rig, "viewer", "brightness") == 0
    assert capsys.readouterr().out.startswith("brightness 40 % (set by hand by installer-1)")
    assert host(rig, "viewer", "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["brightness"]["percent"] == 40
    assert host(rig, "viewer", "status") == 0
    assert "brightness 40 % (set by hand by installer-1)" in capsys.readouterr().out
    assert host(rig, "installer", "brightness", "55%", "-a", "2", "--json") == 0
    assert json.loads(capsys.readouterr().out)["cards"] == {"0x02": level_of_percent(55)}
    assert host(rig, "viewer", "brightness") == 0
    assert "  card 0x02: 55 % by hand" in capsys.readouterr().out


def test_the_schedule_is_set_shown_and_cleared(rig, capsys):
    assert host(rig, "installer", "brightness", "schedule", "set", "07:00=80", "22:00=30",
                "--fade", "60", "--json") == 0
    view = json.loads(capsys.readouterr().out)
    assert view["schedule"]["entries"] == [{"time": "07:00", "percent": 80.0},
                                           {"time": "22:00", "percent": 30.0}]
    assert view["source"] == "schedule" and view["schedule"]["by"] == "installer-1"
    assert view["next"]["time"] in ("07:00", "22:00")
    assert host(rig, "viewer", "brightness", "schedule", "show") == 0
    out = capsys.readouterr().out
    assert "07:00  80 %" in out and "fade 60 s; set by installer-1" in out
    assert host(rig, "installer", "brightness", "schedule", "clear", "--json") == 0
    view = json.loads(capsys.readouterr().out)
    assert view["schedule"] is None and view["source"] == "hand"


@pytest.mark.parametrize("argv,reason", [
    (("schedule", "set", "07:00=80", "25:00=30"), "25:00 is not a time of day: hours go 00..23"),
    (("schedule", "set", "07:00=80", "07:00=30"), "07:00 appears twice"),
    (("schedule", "set", "07:00=180"), "not a percentage 0..100"),
    (("schedule", "sett"), "'schedule sett' is not a schedule command"),
    (("140%",), "not a percentage 0..100"),
    (("40%", "--fade", "3"), "--fade belongs to"),
])
def test_bad_input_is_one_sentence_and_changes_nothing(rig, capsys, argv, reason):
    def setting() -> dict:     # what was set, not how many broadcasts the schedule has made
        return {k: v for k, v in client(rig, "viewer").get("/api/v1/brightness").items()
                if k != "broadcasts"}
    before = setting()
    assert host(rig, "installer", "brightness", *argv) == 1
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert setting() == before


@pytest.mark.parametrize("path,body,reason", [
    ("/api/v1/brightness", {"percent": 40, "level": 3}, "one of the two"),
    ("/api/v1/brightness", {}, "one of the two"),
    ("/api/v1/brightness", {"percent": True}, "percent must be a number 0..100"),
    ("/api/v1/brightness", {"percent": 100.5}, "percent must be a number 0..100"),
    ("/api/v1/brightness/schedule", {"entries": [{"time": "25:00", "percent": 5}]}, "25:00"),
    ("/api/v1/brightness/schedule", {"entries": [{"time": "07:00", "percent": 5}],
                                     "fade_s": 86400}, "the fade must be 0..21600 seconds"),
])
def test_the_api_refuses_bad_bodies_with_the_reason(rig, path, body, reason):
    with pytest.raises(ApiError) as err:
        client(rig, "installer").post(path, body)
    assert err.value.status == 400 and reason in str(err.value)


def test_a_viewer_reads_but_does_not_change(rig):
    viewer = client(rig, "viewer")
    assert "percent" in viewer.get("/api/v1/brightness")
    for call in (lambda: viewer.post("/api/v1/brightness", {"percent": 10}),
                 lambda: viewer.post("/api/v1/brightness/schedule",
                                     {"entries": [{"time": "07:00", "percent": 5}]}),
                 lambda: viewer.delete("/api/v1/brightness/schedule")):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 403


def test_a_screen_file_with_the_retired_key_does_not_start_the_controller(tmp_path, capsys):
    old = (controller_process.SCREEN.read_text()
           .replace("[correction]\nbrightness = 80", "[correction]")
           .replace("refresh_hz = 3840\n", "refresh_hz = 3840\nbrightness = 0.8\n"))
    assert "[cards]" in old and "brightness = 0.8" in old
    screen = tmp_path / "old.toml"
    screen.write_text(old)
    status = main(["controller", "run", "--screen", str(screen), "--bus", "loop://",
                   "--state", str(tmp_path / "state"), "--listen", "127.0.0.1:0"])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert ("[cards] brightness is retired: brightness is a percentage of full in the [correction] "
            "table now; write [correction] brightness = 80 (for the old 0.8)") in err
