"""A real gooseBit (someone else's DDI server) and a real ``ledwarden controller run`` with
simulated cards: a signed card firmware package, wrapped in the ``.swu`` gooseBit insists on,
is uploaded through gooseBit's API, a rollout is made on its feed, and the controller polls,
downloads (SHA-1 only, as gooseBit sends), unwraps, checks the signature, upgrades the cards
and reports; gooseBit then shows the device finished and the rollout's success.  The same
package signed by an untrusted key ends on gooseBit as a failure with the reason in its log.
gooseBit has no cancelAction and no confirmation: those are tested in test_ddi_agent.py."""

from __future__ import annotations

import shutil
import time

import pytest

from upgrade.card_cases import firmware
from controller.fleet import settings as ddi_settings
from controller.fleet.swu import wrap
from controller.upgrade import signing
from controller.upgrade.cards import firmware as fwpkg
from hw.sim.server import Simulator
from support import controller_process, goosebit_server

TARGET = "hall-a-wall"


def wait_for(predicate, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise AssertionError("timed out")


@pytest.mark.parametrize("signed_by", ["centre", "stranger"])
def test_a_goosebit_rollout_upgrades_the_cards_and_goosebit_shows_the_end(tmp_path, signed_by):
    goosebit_server.ensure()
    private, public = signing.generate(tmp_path / "keys", "centre")
    if signed_by == "stranger":
        private, _ = signing.generate(tmp_path / "keys", "stranger")
    fw = firmware(64 * 1024)
    package = tmp_path / "card-2.0.0.lwf"
    fwpkg.build_firmware(package, fw.image, hw_model=fw.hw_model, version="2.0.0",
                         private_key=signing.load_private(private))
    # The controller sends no hw_boardname/hw_revision, so gooseBit files it as default/default.
    swu = wrap(package, tmp_path / "card-2.0.0.swu", version="2.0.0", hardware="default")
    with goosebit_server.GooseBit(tmp_path / "goosebit", controller_process.free_port()) as gb, \
            Simulator(8, pty=True) as sim:
        software = gb.upload(swu)
        gb.rollout("cards 2.0.0", software)
        state = tmp_path / "state"
        (state / "trusted-keys").mkdir(parents=True)
        shutil.copy(public, state / "trusted-keys" / "centre.pub")
        ddi_settings.save(state, ddi_settings.check(gb.url, "DEFAULT", TARGET, poll_s=10))
        ddi_settings.save_token(state, "goosebit-device-auth-is-off")
        proc, _url = controller_process.start(state, sim.url, "--no-frames", "--watch-interval",
                                              "0", "--schedule", "off")
        try:
            device = wait_for(lambda: next((d for d in gb.devices() if d["id"] == TARGET and
                                            d["last_state"] in ("Finished", "Error")), None),
                              timeout=180)
            (rollout,) = gb.rollouts()
            device_log = gb.device_log(TARGET)
        finally:
            controller_process.stop(proc)
            log = gb.log.read_text()
    if signed_by == "centre":
        assert device["last_state"] == "Finished", (device, log[-2000:])
        assert device["sw_version"] == "2.0.0"
        assert (rollout["success_count"], rollout["failure_count"]) == (1, 0)
        assert {k.card.version for k in sim.cards} == {(2, 0, 0)}
        assert "SHA-1 matches" in device_log and "signature verified" in device_log, device_log
    else:
        assert device["last_state"] == "Error", (device, log[-2000:])
        assert (rollout["success_count"], rollout["failure_count"]) == (0, 1)
        assert "refused (untrusted-key)" in device_log and "nothing was installed" in device_log, \
            device_log
        assert {k.card.version for k in sim.cards} != {(2, 0, 0)}
