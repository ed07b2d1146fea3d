"""The saved source choice and the switch's edge cases, in-process (the API path is covered by
``test_video_source_cli`` against a real controller)."""

from __future__ import annotations

import asyncio
import json

import pytest

from controller import fastpath
from controller.config import loads_screen
from controller.errors import ConfigError, PayloadError
from controller.faultlog import FaultLog
from controller.fastpath.settings import gains_from, power_lut
from controller.service.frameloop import FrameLoop, NullSink, frame_source
from controller.service.videosource import (STATE_FILE, SourceSwitch, note_startup, open_startup,
                                            saved_choice)
from test_video_ddp import SCREEN, H, W


@pytest.mark.parametrize("content", ["{not json", "[]", '{"spec": 3}', '{"spec": ""}'])
def test_a_damaged_choice_is_ignored_and_source_plays(tmp_path, content):
    (tmp_path / STATE_FILE).write_text(content)
    assert saved_choice(tmp_path) is None
    startup = open_startup(tmp_path, "pattern:red", W, H)
    assert startup.spec == "pattern:red" and startup.problem is None


def test_the_saved_choice_wins_and_a_broken_one_falls_back_in_order(tmp_path):
    (tmp_path / STATE_FILE).write_text(json.dumps({"spec": "pattern:blue", "by": "a", "at": "t"}))
    assert open_startup(tmp_path, "pattern:red", W, H).spec == "pattern:blue"
    (tmp_path / STATE_FILE).write_text(json.dumps({"spec": "pattern:plaid", "by": "a", "at": "t"}))
    startup = open_startup(tmp_path, "pattern:red", W, H)
    assert (startup.spec, startup.wanted) == ("pattern:red", "pattern:plaid")
    assert "patterns are" in startup.problem
    (tmp_path / STATE_FILE).unlink()
    startup = open_startup(tmp_path, str(tmp_path / "gone.npy"), W, H)
    assert startup.spec == "pattern:bars" and "no such file" in startup.problem
    with FaultLog(tmp_path / "faults.db") as faults:
        note_startup(faults, startup)
        (fault,) = faults.list(state="active")
        assert fault.code == "source.unavailable" and fault.details["playing"] == "pattern:bars"


def test_a_choice_that_cannot_be_saved_still_switches_and_says_so(tmp_path):
    layout = loads_screen(SCREEN)
    (tmp_path / STATE_FILE).mkdir()          # a directory where the file goes: the write fails
    pipeline = fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0), threads=1)
    loop = FrameLoop(layout, pipeline, frame_source("pattern:red", W, H), NullSink(), fps=10,
                     source_name="pattern:red")

    async def run():
        with FaultLog(tmp_path / "faults.db") as faults:
            switch = SourceSwitch(loop, faults, tmp_path)
            with pytest.raises(PayloadError, match="say which source"):
                await switch.set(42, "installer-1")
            with pytest.raises(ConfigError, match="still playing pattern:red"):
                await switch.set("pattern:plaid", "installer-1")
            with pytest.raises(ConfigError, match="File name too long; give pattern:NAME"):
                await switch.set("0" * 999, "installer-1")   # found by the OpenAPI fuzzer
            answer = await switch.set("pattern:blue", "installer-1")
            codes = [f.code for f in faults.list(state="all")]
        return answer, codes
    answer, codes = asyncio.run(run())
    assert answer["changed"] and answer["spec"] == "pattern:blue" and loop.source_name == "pattern:blue"
    assert "could not be saved" in answer["note"] and answer["chosen"] is None
    assert codes == ["source.changed"]
