"""``ledwarden cards`` shows as seen every card the controller hears (issue 15 item 11).

It said "not seen" for cards the watch had polled a second before, because
only a discovery or a commissioning marked a card found, and its hint
suggested "start a discovery", which no command does.
"""

from __future__ import annotations

import os
import time

import pytest

from controller.service.auth import TokenStore
from host.cli import main
from host.client import ControllerClient
from hw.sim.server import Simulator
from support import controller_process


@pytest.fixture
def controller(tmp_path, monkeypatch):
    def start(watch_interval: str):
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        token = TokenStore(state / "tokens.db").create(f"viewer-{watch_interval}", "viewer")
        monkeypatch.setenv("LEDWARDEN_TOKEN", token)
        monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host"))
        proc, url = controller_process.start(state, sim.url, "--no-frames", "--schedule", "off",
                                             "--watch-interval", watch_interval)
        started.append(proc)
        return url, ControllerClient(url, token)

    started = []
    with Simulator(8, pty=True) as sim:
        try:
            yield start
        finally:
            for proc in started:
                controller_process.stop(proc)


def test_cards_the_watch_hears_are_seen(controller, capsys):
    url, client = controller("0.2")
    deadline = time.monotonic() + 20
    while not all(c["found"] for c in client.get("/api/v1/cards")["cabinets"]):
        assert time.monotonic() < deadline, client.get("/api/v1/cards")
        time.sleep(0.1)
    cabinets = client.get("/api/v1/cards")["cabinets"]
    assert all(c["last_answer"] and c["last_answer"].endswith("Z") for c in cabinets)
    assert main(["--controller", url, "cards"]) == 0
    out = capsys.readouterr().out
    assert "not seen" not in out and out.count(" yes ") == 8
    assert "no card seen yet" not in out


def test_with_nothing_heard_the_hint_names_a_command(controller, capsys):
    url, _ = controller("0")
    assert main(["--controller", url, "cards"]) == 0
    out = capsys.readouterr().out
    assert out.count("not seen") == 8
    assert ("(no card seen yet: 'ledwarden commission' finds and identifies them; the "
            "controller's watch also marks each card that answers its status polls)") in out
