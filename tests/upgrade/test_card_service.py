"""Card firmware upgrades through a real ``ledwarden controller run`` process: the host tool
uploads and follows, the role is enforced, the fault log hears of each card, and a controller
killed mid-transfer resumes by itself from what the cards hold."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from card_cases import WireChunks, firmware
from controller.service.auth import TokenStore
from controller.upgrade import signing
from controller.upgrade.cards import firmware as fwpkg
from host.cli import main
from host.client import ApiError, ControllerClient
from host.upload import upload_file
from hw.sim.server import Simulator
from support import controller_process


def start_controller(state: Path, bus: str) -> tuple[subprocess.Popen, str]:
    return controller_process.start(state, bus, "--no-frames", "--watch-interval", "0", "--schedule",
                                    "off", "--max-refusals", "1000")


@pytest.fixture
def rig(tmp_path, monkeypatch):
    state = tmp_path / "state"
    (state / "trusted-keys").mkdir(parents=True)
    store = TokenStore(state / "tokens.db")
    tokens = {role: store.create(f"{role}-1", role) for role in ("installer", "service")}
    private, public = signing.generate(tmp_path / "keys", "centre")
    shutil.copy(public, state / "trusted-keys" / "centre.pub")
    fw = firmware(64 * 1024)
    package = tmp_path / "card-2.0.0.lwf"
    fwpkg.build_firmware(package, fw.image, hw_model=fw.hw_model, version="2.0.0",
                         private_key=signing.load_private(private))
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host-config"))
    monkeypatch.setenv("LEDWARDEN_TOKEN", tokens["service"])
    with Simulator(8, pty=True) as sim:
        yield {"sim": sim, "state": state, "tokens": tokens, "package": package, "fw": fw,
               "wire": WireChunks(sim), "private": private}


def host(url: str, *argv: str) -> int:
    return main(["--controller", url, *argv])


def test_the_host_tool_upgrades_every_card_and_the_fault_log_hears_of_it(rig, capsys):
    proc, url = start_controller(rig["state"], rig["sim"].url)
    try:
        assert host(url, "upgrade", "cards", str(rig["package"]), "--cards", "1-8", "--canary",
                    "2", "--json") == 0
        done = json.loads(capsys.readouterr().out)
        assert done["outcome"] == "succeeded"
        assert [k["state"] for k in done["job"]["result"]["cards"]] == ["installed"] * 8
        assert {k.card.version for k in rig["sim"].cards} == {(2, 0, 0)}
        assert rig["wire"].count == rig["fw"].chunks()           # every chunk once, for all eight

        viewer = ControllerClient(url, rig["tokens"]["service"])
        faults = viewer.get("/api/v1/faults", state="all")["faults"]
        installed = {f["source"] for f in faults if f["code"] == "upgrade.card.installed"}
        assert installed == {f"card:0x{a:02X}" for a in range(1, 9)}
        assert viewer.get("/api/v1/upgrade/cards")["plan"]["state"] == "succeeded"

        with pytest.raises(ApiError) as refused:     # an installer may not change firmware
            ControllerClient(url, rig["tokens"]["installer"]).post(
                "/api/v1/upgrade/cards", {"upload": "0" * 64})
        assert refused.value.status == 403

        assert host(url, "upgrade", "cards", str(rig["package"])) == 0   # again: nothing to do
        out = capsys.readouterr().out
        assert "8 skipped" in out and rig["wire"].count == rig["fw"].chunks()
        assert host(url, "upgrade", "cards") == 0
        assert "succeeded" in capsys.readouterr().out
    finally:
        controller_process.stop(proc)


def test_a_controller_killed_mid_transfer_resumes_from_what_the_cards_hold(rig, capsys):
    proc, url = start_controller(rig["state"], rig["sim"].url)
    try:
        client = ControllerClient(url, rig["tokens"]["service"])
        upload = upload_file(client, rig["package"])
        first = client.post("/api/v1/upgrade/cards", {"upload": upload, "canary": 1})
        deadline = time.monotonic() + 20
        while rig["wire"].count < 48:
            assert time.monotonic() < deadline, "the transfer did not start"
            time.sleep(0.01)
    finally:
        proc.kill()                                   # no shutdown, no goodbye: a crash
        proc.wait(timeout=10)
    sent_before = rig["wire"].count
    assert sent_before < rig["fw"].chunks()
    assert json.loads((rig["state"] / "card-upgrade.json").read_text())["state"] == "running"

    proc, url = start_controller(rig["state"], rig["sim"].url)
    try:
        client = ControllerClient(url, rig["tokens"]["service"])
        deadline = time.monotonic() + 20
        while (client.get("/api/v1/upgrade/cards")["plan"] or {}).get("resumes") != 1:
            assert time.monotonic() < deadline, "the interrupted upgrade was not resumed"
            time.sleep(0.1)
        plan = client.get("/api/v1/upgrade/cards")["plan"]
        assert plan["upload"] == first["params"]["upload"]
        # The same command again joins the resumed job rather than starting over.
        assert host(url, "upgrade", "cards", str(rig["package"]), "--json") == 0
        done = json.loads(capsys.readouterr().out)
        assert done["job"]["id"] == plan["job"] and "resumed" in done["job"]["started_by"]
        assert [k["state"] for k in done["job"]["result"]["cards"]] == ["installed"] * 8
    finally:
        controller_process.stop(proc)
    assert {k.card.version for k in rig["sim"].cards} == {(2, 0, 0)}
    resent = rig["wire"].count - sent_before
    assert resent <= rig["fw"].chunks() - 40          # what the cards held was not sent again
    assert os.path.exists(rig["state"] / "card-upgrade.json")


def test_refused_packages_leave_no_upload_behind(rig, tmp_path):
    """Issue 15 item 21: refused firmware stayed in STATE/uploads for 7 days, and a run refused
    for a card of another model reported the other cards as held, ready to resume."""
    stranger = signing.generate(tmp_path / "stranger", "stranger")[0]
    unsigned = tmp_path / "stranger.lwf"
    fwpkg.build_firmware(unsigned, rig["fw"].image, hw_model=rig["fw"].hw_model, version="2.0.0",
                         private_key=signing.load_private(stranger))
    other_model = tmp_path / "other-model.lwf"
    fwpkg.build_firmware(other_model, rig["fw"].image, hw_model=rig["fw"].hw_model ^ 0x0100,
                         version="2.0.0", private_key=signing.load_private(rig["private"]))
    proc, url = start_controller(rig["state"], rig["sim"].url)
    try:
        client = ControllerClient(url, rig["tokens"]["service"])
        upload = upload_file(client, unsigned)
        with pytest.raises(ApiError) as refused:
            client.post("/api/v1/upgrade/cards", {"upload": upload})
        assert refused.value.status == 400 and "does not trust" in refused.value.message
        assert list((rig["state"] / "uploads").iterdir()) == []

        upload = upload_file(client, other_model)
        job = client.post("/api/v1/upgrade/cards", {"upload": upload})
        deadline = time.monotonic() + 20
        while job["state"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, "the refused run did not end"
            time.sleep(0.05)
            job = client.get(f"/api/v1/jobs/{job['id']}")
        assert job["state"] == "failed" and "hw_model" in job["error"]
        cards = {k["address"]: k for k in job["progress"]["cards"]}
        assert cards[1]["state"] == "failed"
        assert {cards[a]["state"] for a in range(2, 9)} == {"not-started"}
        assert not any("resumes" in k["detail"] for k in cards.values())
        assert list((rig["state"] / "uploads").iterdir()) == []
    finally:
        controller_process.stop(proc)
    assert rig["wire"].count == 0
