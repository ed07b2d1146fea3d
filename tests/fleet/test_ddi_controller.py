"""A real ``ledwarden controller run`` with simulated cards polls a DDI server (written from
hawkBit's document), downloads a signed card firmware package, upgrades the cards with the
card upgrade job a hand upload uses, and closes the action on the server."""

from __future__ import annotations

import pytest

from controller.service.auth import TokenStore
from controller.upgrade import signing
from host.client import ControllerClient
from hw.sim.server import Simulator
from support import controller_process
from support.ddi_server import TARGET, TENANT, TOKEN, Action, DdiServer, Serving
from support.fleet_rig import card_package, configure_ddi, wait_for


@pytest.fixture
def keys(tmp_path):
    return signing.generate(tmp_path / "keys", "centre")


@pytest.mark.parametrize("signed_by", ["centre", "stranger"])
def test_a_rollout_upgrades_the_cards_and_the_server_hears_the_end(tmp_path, keys, signed_by):
    private, public = keys
    if signed_by == "stranger":
        private, _ = signing.generate(tmp_path / "keys", "stranger")
    package = card_package(tmp_path / "card-2.0.0.lwf", private)
    server = DdiServer(sleep="00:00:10", action=Action("31", [package]))
    with Simulator(8, pty=True) as sim, Serving(server):
        state = tmp_path / "state"
        configure_ddi(state, server.url, TENANT, TARGET, TOKEN, trust=public, poll_s=300)
        proc, url = controller_process.start(state, sim.url, "--no-frames", "--watch-interval",
                                             "0", "--schedule", "off")
        try:
            wait_for(lambda: server.closed(), 90, "the server to hear the action closed")
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
