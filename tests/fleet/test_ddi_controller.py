"""A real ``ledwarden controller run`` with simulated cards polls a DDI server (written from
hawkBit's document), downloads a signed card firmware package, upgrades the cards with the
card upgrade job a hand upload uses, and closes the action on the server."""

from __future__ import annotations

import shutil
import time

import pytest

from upgrade.card_cases import firmware
from controller.fleet import settings as ddi_settings
from controller.service.auth import TokenStore
from controller.upgrade import signing
from controller.upgrade.cards import firmware as fwpkg
from host.client import ControllerClient
from hw.sim.server import Simulator
from support import controller_process
from support.ddi_server import TARGET, TENANT, TOKEN, Action, DdiServer, Serving


@pytest.fixture
def keys(tmp_path):
    return signing.generate(tmp_path / "keys", "centre")


def wait_for(predicate, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.parametrize("signed_by", ["centre", "stranger"])
def test_a_rollout_upgrades_the_cards_and_the_server_hears_the_end(tmp_path, keys, signed_by):
    private, public = keys
    if signed_by == "stranger":
        private, _ = signing.generate(tmp_path / "keys", "stranger")
    fw = firmware(64 * 1024)
    package = tmp_path / "card-2.0.0.lwf"
    fwpkg.build_firmware(package, fw.image, hw_model=fw.hw_model, version="2.0.0",
                         private_key=signing.load_private(private))
    server = DdiServer(sleep="00:00:10", action=Action("31", [package]))
    with Simulator(8, pty=True) as sim, Serving(server):
        state = tmp_path / "state"
        (state / "trusted-keys").mkdir(parents=True)
        shutil.copy(public, state / "trusted-keys" / "centre.pub")
        ddi_settings.save(state, ddi_settings.check(server.url, TENANT, TARGET))
        ddi_settings.save_token(state, TOKEN)
        proc, url = controller_process.start(state, sim.url, "--no-frames", "--watch-interval",
                                             "0", "--schedule", "off")
        try:
            wait_for(lambda: server.closed())
            (final,) = server.closed()
            viewer = TokenStore(state / "tokens.db").create("viewer-1", "viewer")
            status = ControllerClient(url, viewer).get("/api/v1/fleet/ddi")
        finally:
            controller_process.stop(proc)
    assert server.config and server.config[0]["data"]["cabinets"] == "8"
    assert status["enabled"] is True and status["reported"] == ["31"]
    assert TOKEN not in str(status)
    if signed_by == "centre":
        assert final["result"]["finished"] == "success", final
        assert {k.card.version for k in sim.cards} == {(2, 0, 0)}
    else:
        assert final["result"]["finished"] == "failure"
        assert "untrusted" in final["details"][0] or "key" in final["details"][0]
        assert {k.card.version for k in sim.cards} != {(2, 0, 0)}
