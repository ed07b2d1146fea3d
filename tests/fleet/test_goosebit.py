"""A real gooseBit (someone else's DDI server) and a real ``ledwarden controller run`` with
simulated cards.

Cards: a signed card firmware package, wrapped in the ``.swu`` gooseBit insists on, is
uploaded through gooseBit's API, a rollout is made on its feed, and the controller polls,
downloads (SHA-1 only, as gooseBit sends), unwraps, checks the signature, upgrades the cards
and reports; gooseBit then shows the device finished and the rollout's success.  The same
package signed by an untrusted key ends on gooseBit as a failure with the reason in its log.

The controller itself: a board on N under the boot guard takes N+1 from a gooseBit rollout
(A/B install, restart, the guard confirms), gooseBit shows it finished only once the guard has
confirmed; then card firmware as a second action on the same device; then a broken N+2, which
the guard rolls back, ends on gooseBit as a failure with the rollback reason in its log.

gooseBit has no cancelAction and no confirmation: those are tested in test_ddi_agent.py."""

from __future__ import annotations

import pytest

from controller.fleet.swu import wrap
from controller.upgrade import signing
from host.demo_upgrade import BROKEN
from hw.sim.server import Simulator
from support import controller_process, goosebit_server
from support.fleet_rig import card_package, configure_ddi, wait_for
from support.upgrade_rig import N, N1, N2, board_on, bundle, signing_key

TARGET = "hall-a-wall"
#: gooseBit's device authentication is off (its default): any token is sent and ignored.
TOKEN = "goosebit-device-auth-is-off"
ENDED = ("Finished", "Error")


def device(gb: goosebit_server.GooseBit) -> dict | None:
    return next((d for d in gb.devices() if d["id"] == TARGET), None)


@pytest.mark.parametrize("signed_by", ["centre", "stranger"])
def test_a_goosebit_rollout_upgrades_the_cards_and_goosebit_shows_the_end(tmp_path, signed_by):
    goosebit_server.ensure()
    private, public = signing.generate(tmp_path / "keys", "centre")
    if signed_by == "stranger":
        private, _ = signing.generate(tmp_path / "keys", "stranger")
    package = card_package(tmp_path / "card-2.0.0.lwf", private)
    # The controller sends no hw_boardname/hw_revision, so gooseBit files it as default/default.
    swu = wrap(package, tmp_path / "card-2.0.0.swu", version="2.0.0", hardware="default")
    with goosebit_server.GooseBit(tmp_path / "goosebit", controller_process.free_port()) as gb, \
            Simulator(8, pty=True) as sim:
        gb.rollout("cards 2.0.0", gb.upload(swu))
        state = tmp_path / "state"
        configure_ddi(state, gb.url, "DEFAULT", TARGET, TOKEN, trust=public)
        proc, _url = controller_process.start(state, sim.url, "--no-frames", "--watch-interval",
                                              "0", "--schedule", "off")
        try:
            dev = wait_for(lambda: (d := device(gb)) and d["last_state"] in ENDED and d,
                           180, "gooseBit to show the device finished or failed")
            (rollout,) = gb.rollouts()
            device_log = gb.device_log(TARGET)
        finally:
            controller_process.stop(proc)
            log = gb.log.read_text()
    if signed_by == "centre":
        assert dev["last_state"] == "Finished", (dev, log[-2000:])
        assert dev["sw_version"] == "2.0.0"
        assert (rollout["success_count"], rollout["failure_count"]) == (1, 0)
        assert {k.card.version for k in sim.cards} == {(2, 0, 0)}
        assert "SHA-1 matches" in device_log and "signature verified" in device_log, device_log
    else:
        assert dev["last_state"] == "Error", (dev, log[-2000:])
        assert (rollout["success_count"], rollout["failure_count"]) == (0, 1)
        assert "refused (untrusted-key)" in device_log and "nothing was installed" in device_log, \
            device_log
        assert {k.card.version for k in sim.cards} != {(2, 0, 0)}


def _journal_says(board, code: str, version: str) -> dict | None:
    return next((e for e in board.journal() if e["code"] == f"upgrade.controller.{code}"
                 and e["details"].get("version") == version), None)


@pytest.mark.timeout(900)
def test_goosebit_rolls_out_the_controller_then_the_cards_and_a_broken_bundle_fails(tmp_path):
    goosebit_server.ensure()
    board = board_on((N,)).copy(tmp_path / "board")
    swu = {v: wrap(bundle(v), tmp_path / f"ledwarden-{v}.swu", version=v, hardware="default")
           for v in (N1, N2)}
    cards = wrap(card_package(tmp_path / "card-2.0.0.lwf", signing_key()[0]),
                 tmp_path / "card-2.0.0.swu", version="2.0.0", hardware="default")
    with goosebit_server.GooseBit(tmp_path / "goosebit", controller_process.free_port()) as gb:
        configure_ddi(board.state, gb.url, "DEFAULT", TARGET, TOKEN)   # it trusts the rig's key
        with board.running() as run:
            assert run.settled()["running"] == {"slot": "a", "version": N, "guarded": True}

            # 1. N+1 through the A/B installer; gooseBit hears "finished" only after the verdict.
            gb.rollout(f"controller {N1}", gb.upload(swu[N1]))
            seen: list[str] = []

            def finished_n1():
                dev = device(gb)
                if dev and dev["last_state"] in ENDED:
                    # Read after gooseBit showed the end: the guard's verdict must already be there.
                    seen.append(repr(_journal_says(board, "confirmed", N1)))
                    # gooseBit saves the state first and the version a moment later.
                    return (dev["last_state"] == "Error" or dev["sw_version"] == N1) and dev
                return None
            dev = wait_for(finished_n1, 240, f"gooseBit to show the {N1} rollout ended")
            assert dev["last_state"] == "Finished", (dev, gb.device_log(TARGET), board.log()[-3000:])
            assert seen[0] != "None", "gooseBit showed the end before the boot guard confirmed"
            assert dev["sw_version"] == N1
            assert "confirmed healthy by the boot guard" in gb.device_log(TARGET)
            doc = run.settled()
            assert doc["running"] == {"slot": "b", "version": N1, "guarded": True}
            assert doc["last_transaction"]["outcome"] == "confirmed"

            # 2. Card firmware, a second action on the same device.
            gb.rollout("cards 2.0.0", gb.upload(cards))
            dev = wait_for(lambda: (d := device(gb)) and (d["sw_version"] == "2.0.0" or
                                                          d["last_state"] == "Error") and d,
                           240, "gooseBit to show the card rollout ended")
            assert dev["last_state"] == "Finished", (dev, gb.device_log(TARGET))
            assert {k.card.version for k in run.sim.cards} == {(2, 0, 0)}

            # 3. A broken N+2: installed, started on trial, fails its health check, rolled back.
            gb.rollout(f"controller {N2}", gb.upload(swu[N2]))
            dev = wait_for(lambda: (d := device(gb)) and d["last_state"] == "Error" and d
                           or (d and d["sw_version"] == N2 and d), 300,
                           f"gooseBit to show the {N2} rollout ended")
            assert dev["last_state"] == "Error", (dev, gb.device_log(TARGET))
            device_log = gb.device_log(TARGET)
            assert f"{N2} rolled back to {N1}: {N2} failed its health check: {BROKEN}" in \
                device_log, device_log
            assert _journal_says(board, "rolled-back", N2) is not None
            doc = run.settled()
            assert doc["running"] == {"slot": "b", "version": N1, "guarded": True}
            rollouts = {r["name"]: (r["success_count"], r["failure_count"]) for r in gb.rollouts()}
    assert rollouts == {f"controller {N1}": (1, 0), "cards 2.0.0": (1, 0),
                        f"controller {N2}": (0, 1)}, rollouts
    # One install per action, each judged once.
    codes = [(e["code"].rsplit(".", 1)[1], e["details"].get("version")) for e in board.journal()]
    assert codes[-4:] == [("installed", N1), ("confirmed", N1), ("installed", N2),
                          ("rolled-back", N2)], codes
