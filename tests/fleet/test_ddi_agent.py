"""The DDI agent against a DDI server written from hawkBit's document (tests/support/ddi_server.py).

Real signed packages, real keys, the real upload store and resumable downloads over
loopback HTTP; the installers are a recording stand-in for the service's adapter that
verifies card firmware with the card job's own ``open_firmware``.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from controller.errors import ConfigError, LedwardenError
from controller.fleet import settings as ddi_settings
from controller.fleet.agent import Agent
from controller.fleet.ddi import (BACKOFF_MAX_S, BACKOFF_MIN_S, DdiClient, DdiError, Unreachable,
                                  backoff, parse_sleep)
from controller.upgrade.cards.firmware import build_firmware, open_firmware
from controller.upgrade.signing import TrustedKeys, generate, load_private
from controller.upgrade.uploads import UploadStore
from support.ddi_server import TARGET, TENANT, TOKEN, Action, DdiServer

ATTRS = {"model": "ledwarden-ctl", "serial": "LW-0001", "controller": "1.4.0",
         "screen": "Hall A", "cabinets": "8"}


class RecordingInstallers:
    """Stands in for the service adapter: checks card firmware as the card job does, and records."""

    def __init__(self, state: Path, result: tuple[bool, str] = (True, "8 cards at 2.0.0")) -> None:
        self.state, self.result = state, result
        self.installed: list[tuple[str, str]] = []
        self.busy_reason: str | None = None
        self.fate: object = None

    def busy(self):
        return self.busy_reason

    async def install(self, kind, upload_id, action):
        path = self.state / "uploads" / upload_id
        if kind == "card-firmware":
            open_firmware(path, TrustedKeys.from_directory(self.state / "trusted-keys"))
        self.installed.append((kind, upload_id))
        return None if kind == "controller" else self.result

    def outcome(self, kind, action):
        return self.fate


def firmware(tmp: Path, key: Path, name: str = "fw.lwpkg", image: bytes = b"\x5a" * 300_000) -> Path:
    out = tmp / name
    build_firmware(out, image, hw_model=0x0101, version="2.0.0", private_key=load_private(key))
    return out


@pytest.fixture
def rig(tmp_path):
    state = tmp_path / "state"
    (state / "trusted-keys").mkdir(parents=True)
    priv, pub = generate(tmp_path / "keys", "centre")
    (state / "trusted-keys" / "centre.pub").write_bytes(pub.read_bytes())
    other, _ = generate(tmp_path / "keys", "stranger")
    return {"state": state, "key": priv, "stranger": other, "tmp": tmp_path}


def run(rig, server: DdiServer, body, installers=None):
    """Serve ``server`` on 127.0.0.1, build an agent for it, and run ``body(agent)``."""
    installers = installers or RecordingInstallers(rig["state"])

    async def main():
        runner = web.AppRunner(server.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        settings = ddi_settings.check(server.url, TENANT, TARGET)
        try:
            async with aiohttp.ClientSession() as session:
                agent = Agent(DdiClient(settings, TOKEN, session), rig["state"],
                              UploadStore(rig["state"] / "uploads", 1 << 30), installers,
                              lambda: dict(ATTRS))
                return await body(agent)
        finally:
            await runner.cleanup()
    asyncio.run(main())
    return installers


def test_poll_reports_attributes_and_follows_the_server_interval(rig):
    server = DdiServer(sleep="00:05:00")

    async def body(agent):
        poll = await agent.step()
        assert poll.sleep_s == 300
        await agent.step()                      # nothing changed and not asked: no second PUT
    run(rig, server, body)
    assert server.config == [{"mode": "merge", "data": ATTRS}]
    assert all(h["Authorization"] == f"TargetToken {TOKEN}" for _, _, h in server.requests)


def test_card_firmware_action_downloads_resumes_verifies_installs_and_reports(rig):
    fw = firmware(rig["tmp"], rig["key"])
    server = DdiServer(action=Action("8", [fw]), cut_once_after=70_000)

    async def body(agent):
        with pytest.raises(Unreachable, match="resumes there"):
            await agent.step()                  # the link drops mid-download
        await agent.step()                      # the next poll resumes with Range
        await agent.step()                      # the action is reported: nothing more happens
    inst = run(rig, server, body)
    assert server.ranges and server.ranges[0].startswith("bytes=") and server.ranges[0] != "bytes=0-"
    assert len(inst.installed) == 1 and inst.installed[0][0] == "card-firmware"
    assert server.closed() == [{"execution": "closed", "result": {"finished": "success"},
                                "details": ["8 cards at 2.0.0"]}]
    executions = [fb["status"]["execution"] for _, fb in server.feedback]
    assert executions[0] == "proceeding" and "downloaded" in executions
    assert json.loads((rig["state"] / "ddi" / "action.json").read_text())["reported"] == ["8"]


@pytest.mark.parametrize("trouble", ["wrong_hash", "stranger"])
def test_a_hash_or_signature_that_does_not_match_ends_as_failure_and_installs_nothing(rig, trouble):
    fw = firmware(rig["tmp"], rig["stranger"] if trouble == "stranger" else rig["key"])
    server = DdiServer(action=Action("9", [fw]), wrong_hash=trouble == "wrong_hash")

    async def body(agent):
        await agent.step()
    inst = run(rig, server, body)
    assert inst.installed == []
    (final,) = server.closed()
    assert final["result"]["finished"] == "failure"
    assert ("SHA-256" in final["details"][0]) if trouble == "wrong_hash" else \
        ("untrusted" in final["details"][0] or "key" in final["details"][0])
    assert not list((rig["state"] / "uploads").iterdir())


def test_a_restart_in_the_middle_of_an_install_never_installs_again(rig):
    fw = firmware(rig["tmp"], rig["key"])
    server = DdiServer(action=Action("10", [fw]))
    inst = RecordingInstallers(rig["state"])

    async def crash(kind, upload_id, action):
        raise SystemExit("power cut")           # the process dies inside the install

    inst.install = crash

    async def body(agent):
        with pytest.raises(SystemExit):
            await agent.step()
    run(rig, server, body, inst)
    assert json.loads((rig["state"] / "ddi" / "action.json").read_text())["stage"] == "installing"

    again = RecordingInstallers(rig["state"])
    again.fate = (True, "8 cards at 2.0.0 (resumed job)")   # the card job finished after restart

    async def body2(agent):
        await agent.step()
        await agent.step()
    run(rig, server, body2, again)
    assert again.installed == []
    assert [s["result"]["finished"] for s in server.closed()] == ["success"]
    assert server.closed()[0]["details"] == ["8 cards at 2.0.0 (resumed job)"]


def test_a_controller_switch_reports_only_after_the_boot_guard_judged(rig):
    fw = firmware(rig["tmp"], rig["key"])      # kind is card-firmware; relabel the installer's view
    server = DdiServer(action=Action("11", [fw]))
    inst = RecordingInstallers(rig["state"])

    async def switch(kind, upload_id, action):
        inst.installed.append((kind, upload_id))
        return None                              # switched: the service restarts into the trial
    inst.install = switch

    async def body(agent):
        await agent.step()
        assert server.closed() == []
        inst.fate = "running"                    # the trial is not judged yet
        await agent.step()
        assert server.closed() == []
        inst.fate = (False, "rolled back to 1.4.0: the quick self-test found cabinet 3 silent")
        await agent.step()
    run(rig, server, body, inst)
    assert len(inst.installed) == 1
    (final,) = server.closed()
    assert final["result"]["finished"] == "failure" and "rolled back" in final["details"][0]


def test_update_skip_downloads_and_waits_and_busy_board_waits(rig):
    fw = firmware(rig["tmp"], rig["key"])
    server = DdiServer(action=Action("12", [fw], update="skip"))
    inst = RecordingInstallers(rig["state"])

    async def body(agent):
        await agent.step()
        assert inst.installed == [] and server.feedback[-1][1]["status"]["execution"] == "scheduled"
        server.action.update = "attempt"
        inst.busy_reason = "job 4 (selftest) is running"
        await agent.step()
        assert inst.installed == [] and "job 4" in server.feedback[-1][1]["status"]["details"][0]
        inst.busy_reason = None
        await agent.step()
    run(rig, server, body, inst)
    assert len(inst.installed) == 1
    assert [s["result"]["finished"] for s in server.closed()] == ["success"]


def test_cancel_before_install_is_confirmed_and_after_is_rejected(rig):
    fw = firmware(rig["tmp"], rig["key"])
    server = DdiServer(action=Action("13", [fw], update="skip"))

    async def body(agent):
        await agent.step()                       # downloaded, held
        server.cancel = ("14", "13")
        await agent.step()
    inst = run(rig, server, body)
    assert inst.installed == []
    path, doc = server.feedback[-1]
    assert path.endswith("/cancelAction/14/feedback")
    assert doc["status"]["execution"] == "closed" and doc["status"]["result"]["finished"] == "success"


def test_garbage_and_a_wrong_token_are_refused_with_the_reason(rig):
    server = DdiServer(garbage=True)

    async def body(agent):
        with pytest.raises(DdiError, match="not JSON"):
            await agent.step()
        agent.client._token = "wrong"
        with pytest.raises(DdiError, match="refused the target token"):
            await agent.step()
    run(rig, server, body)


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(1)
    first = [backoff(1, rng) for _ in range(200)]
    assert BACKOFF_MIN_S * 0.5 <= min(first) and max(first) <= BACKOFF_MIN_S * 1.5
    assert max(first) - min(first) > BACKOFF_MIN_S * 0.5          # jittered
    assert all(backoff(n, rng) <= BACKOFF_MAX_S * 1.5 for n in range(1, 200))
    assert backoff(5, random.Random(2)) > backoff(1, random.Random(2))


def test_sleep_and_settings_are_checked():
    assert parse_sleep("00:00:30") == 30 and parse_sleep("24:00:00") == 86400
    for bad in ("30", "00:00:01", None, "00:61:00"):
        with pytest.raises(DdiError):
            parse_sleep(bad)
    with pytest.raises(ConfigError, match="url .* tenant"):
        ddi_settings.check("ftp://x", "bad tenant", "wall")


def test_settings_and_token_files(tmp_path):
    s = ddi_settings.check("https://hawkbit.example:8443/", "DEFAULT", "hall-a")
    ddi_settings.save(tmp_path, s)
    assert ddi_settings.load(tmp_path) == s
    assert s.base == "https://hawkbit.example:8443/DEFAULT/controller/v1/hall-a"
    ddi_settings.save_token(tmp_path, "  abc123\n")
    assert ddi_settings.load_token(tmp_path) == "abc123"
    assert (tmp_path / "ddi-token").stat().st_mode & 0o777 == 0o600
    assert "abc123" not in (tmp_path / "ddi.toml").read_text()
    with pytest.raises(ConfigError, match="one line"):
        ddi_settings.save_token(tmp_path, "two words")
    (tmp_path / "ddi.toml").write_text("[ddi]\nurl = 'https://x'\nsecret = 1\n")
    with pytest.raises(ConfigError, match="unknown setting secret"):
        ddi_settings.load(tmp_path)
    assert ddi_settings.load(tmp_path / "nowhere") is None


def test_an_action_offered_again_after_its_report_is_answered_not_reinstalled(rig):
    fw = firmware(rig["tmp"], rig["key"])
    server = DdiServer(action=Action("15", [fw]), close_on_feedback=False)

    async def body(agent):
        await agent.step()
        await agent.step()                       # the server "lost" the closed feedback
    inst = run(rig, server, body)
    assert len(inst.installed) == 1
    assert [s["details"][0] for s in server.closed()] == ["8 cards at 2.0.0",
                                                          "already finished on this controller"]


def test_a_server_that_ignores_range_gets_the_download_from_the_start(rig):
    fw = firmware(rig["tmp"], rig["key"])
    server = DdiServer(action=Action("16", [fw]), cut_once_after=100_000, ignore_range=True)

    async def body(agent):
        with pytest.raises(Unreachable):
            await agent.step()
        await agent.step()
    inst = run(rig, server, body)
    assert len(inst.installed) == 1 and server.ranges == []
    assert [s["result"]["finished"] for s in server.closed()] == ["success"]


def test_the_controller_outcome_is_read_from_the_upgrade_journal(tmp_path):
    from controller.service.api_fleet import _controller_outcome
    from controller.upgrade.bundles import events
    sha = "ab" * 32
    assert _controller_outcome(tmp_path, sha, 0) is None
    events.record(tmp_path, "installed", {"transaction": "T1", "bundle": sha, "version": "1.5.0",
                                          "slot": "b", "from_version": "1.4.0"})
    assert _controller_outcome(tmp_path, sha, 0) == "running"
    events.record(tmp_path, "rolled-back", {"transaction": "T1", "version": "1.5.0", "slot": "b",
                                            "reason": "the quick self-test failed",
                                            "back_to": "a", "back_version": "1.4.0"})
    assert _controller_outcome(tmp_path, sha, 0) == (
        False, "1.5.0 rolled back to 1.4.0: the quick self-test failed")
    other = "cd" * 32
    events.record(tmp_path, "rejected", {"bundle": other, "reason": "platform",
                                         "message": "built for aarch64"})
    assert _controller_outcome(tmp_path, other, 0) == (False, "platform: built for aarch64")
    events.record(tmp_path, "installed", {"transaction": "T2", "bundle": other, "version": "1.6.0"})
    events.record(tmp_path, "confirmed", {"transaction": "T2", "version": "1.6.0", "slot": "a"})
    import time
    assert _controller_outcome(tmp_path, other, time.time() + 60) is None   # older than the action


def test_a_final_status_the_server_took_before_a_restart_is_not_sent_again(rig):
    """Killed after the server recorded the final status but before the agent knew: the next
    poll no longer offers the action, so it is marked reported without a second closed; one
    that the server did not get (still offered) is sent again."""
    fw = firmware(rig["tmp"], rig["key"])
    server = DdiServer(action=Action("21", [fw]))
    path = rig["state"] / "ddi" / "action.json"

    async def body(agent):
        await agent.step()                       # installed, reported, closed on the server
        doc = json.loads(path.read_text())
        # As if killed between the server's recording and the agent's save:
        path.write_text(json.dumps({"id": "21", "stage": "finished", "version": "1.0",
                                    "final": {"ok": True, "reason": "8 cards at 2.0.0"},
                                    "reported": [], "sw_version": doc["sw_version"]}))
        await agent.step()
        assert len(server.closed()) == 1
        assert json.loads(path.read_text())["reported"] == ["21"]
        # The same, but the server never got it: still offered, so it is sent (once more).
        server.action = Action("22", [fw])
        path.write_text(json.dumps({"id": "22", "stage": "finished", "version": "1.0",
                                    "final": {"ok": True, "reason": "8 cards at 2.0.0"},
                                    "reported": ["21"], "sw_version": "1.0"}))
        await agent.step()
        assert len(server.closed()) == 2 and server.action is None
    inst = run(rig, server, body)
    assert len(inst.installed) == 1
    # gooseBit takes the device's version from configData: the last good action's version.
    assert "sw_version" not in server.config[0]["data"]
    assert server.config[-1]["data"]["sw_version"] == "1.0"


def test_a_failed_action_offered_again_is_answered_failure(rig):
    fw = firmware(rig["tmp"], rig["key"])
    server = DdiServer(action=Action("23", [fw]), close_on_feedback=False)

    async def body(agent):
        await agent.step()
        await agent.step()                       # the server "lost" the closed feedback
    inst = run(rig, server, body, RecordingInstallers(rig["state"], (False, "card 3 silent")))
    assert [(s["result"]["finished"], s["details"][0]) for s in server.closed()] == [
        ("failure", "card 3 silent"), ("failure", "already finished on this controller (it failed)")]
    assert len(inst.installed) == 1
