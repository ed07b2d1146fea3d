"""The board context (controller/boardcontext.py): self-tests, the health check and the watch
run on the board's parts alone, without any Service object."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import textwrap
import tomllib

import pytest
from conftest import ROOT, SCREEN, demo_plan

from controller.boardcontext import BoardContext
from controller.config import load_screen
from controller.errors import LedwardenError
from controller.faultlog import FaultLog
from controller.protocol.bus import Bus
from controller.screenmap import CardSettings
from controller.selftest.history import History
from controller.service.busowner import BusOwner
from controller.service.watch import CardWatch
from hw.sim.server import Simulator

#: Builds a board from its parts, runs the quick self-test and the upgrade health check on it,
#: and reports whether the service's module was ever imported.
ALONE = textwrap.dedent('''
    import asyncio, json, sys, tomllib
    from pathlib import Path
    from controller.boardcontext import BoardContext
    from controller.config import load_screen
    from controller.faultlog import FaultLog
    from controller.faultlog.findings import record_selftest_faults
    from controller.protocol.bus import Bus
    from controller.screenmap import CardSettings
    from controller.selftest.history import History
    from controller.selftest.runner import run_profile
    from controller.service.busowner import BusOwner
    from controller.upgrade.bundles.health import health_check

    url, screen, state = sys.argv[1:4]
    Path(state).mkdir()

    async def main():
        owner = BusOwner(Bus(url))
        board = BoardContext(bus=owner, layout=load_screen(screen),
                             settings=CardSettings.from_screen_file(tomllib.loads(Path(screen).read_text())),
                             state_dir=Path(state), history=History(Path(state) / "selftest.db"),
                             faults=FaultLog(Path(state) / "faults.db"), screen_file=screen)
        report = await run_profile(board, "quick", trigger="manual", who="test")
        record_selftest_faults(board.faults, report)
        ok, detail = await health_check(board)
        owner.close()
        return {"result": report["result"], "id": report["id"],
                "findings": sorted(f["key"] + " " + f["subject"] for ch in report["checks"]
                                   for f in ch["findings"] if f["outcome"] != "pass"),
                "faults": sorted(f.code + " " + f.source for f in board.faults.active()),
                "health": [ok, detail], "runs": len(board.history.runs()),
                "service_imported": "controller.service.state" in sys.modules}
    print(json.dumps(asyncio.run(main())))
''')


def test_a_self_test_and_the_health_check_run_without_any_service(tmp_path):
    with Simulator(8, pty=True, plan=demo_plan()) as sim:
        done = subprocess.run([sys.executable, "-c", ALONE, sim.url, str(SCREEN), str(tmp_path / "s")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["service_imported"] is False
    assert out["result"] == "fail" and "env.hot card:0x03" in out["findings"]
    assert "card.over_temperature card:0x03" in out["faults"]
    assert out["runs"] == 2                        # the run and the health check's run
    ok, detail = out["health"]
    assert ok and detail.startswith(f"quick self-test {out['id'] + 1}: fail"), detail


def board_over(sim, tmp_path, **kw) -> tuple[BoardContext, BusOwner]:
    owner = BusOwner(Bus(sim.url))
    tmp_path.mkdir(exist_ok=True)
    board = BoardContext(bus=owner, layout=load_screen(SCREEN),
                         settings=CardSettings.from_screen_file(tomllib.loads(SCREEN.read_text())),
                         state_dir=tmp_path, history=History(tmp_path / "selftest.db"), **kw)
    return board, owner


def test_the_watch_runs_on_a_board_and_stands_aside_when_told(tmp_path):
    faults = FaultLog(tmp_path / "faults.db")
    with Simulator(8, pty=True, plan=demo_plan()) as sim:
        board, owner = board_over(sim, tmp_path, faults=faults)

        async def go():
            busy = CardWatch(board, bus_busy=lambda: True)
            await busy.poll_once()
            asked = owner.operations
            await CardWatch(board).poll_once()
            return asked
        try:
            assert asyncio.run(go()) == 0              # a busy bus: the watch asked nothing
            assert ("card.over_temperature", "card:0x03") in {(f.code, f.source)
                                                              for f in faults.active()}
        finally:
            owner.close()
            board.history.close()  # type: ignore[attr-defined]
            faults.close()


def test_the_context_is_frozen_and_the_watch_needs_a_fault_log(tmp_path):
    with Simulator(1, pty=True) as sim:
        board, owner = board_over(sim, tmp_path)
        try:
            with pytest.raises(dataclasses.FrozenInstanceError):
                board.faults = None  # type: ignore[misc]
            with pytest.raises(LedwardenError, match="needs a fault log"):
                CardWatch(board)
            assert board.reports_dir == tmp_path / "reports"
            assert board.targets(None) == board.addresses() and board.targets([5]) == [5]
        finally:
            owner.close()
            board.history.close()  # type: ignore[attr-defined]
