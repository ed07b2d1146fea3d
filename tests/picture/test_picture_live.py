"""The live picture: changes while frames stream never give a mixed frame, a refused change
changes nothing, every change is in the journal with who made it, and a restart shows the same."""

from __future__ import annotations

import asyncio
import tomllib

import numpy as np
import pytest

from controller import fastpath
from controller.config import loads_screen
from controller.errors import ConfigError, LedwardenError
from controller.faultlog import FaultLog
from controller.fastpath import reference
from controller.fastpath.common import ScanResult
from controller.picture.live import Picture
from controller.picture.settings import parse_correction
from controller.picture.store import PictureStore
from controller.service.frameloop import FrameLoop
from support.picture_screen import SCREEN, csv_text, matrix, q14, write_screen

LAYOUT = loads_screen(SCREEN)
FRAME = np.random.default_rng(11).integers(0, 256, (16, 64, 3), dtype=np.uint8)


def picture(state, text="", folder=None, journal=None, threads=2) -> Picture:
    source = str((folder or state) / "screen.toml")
    return Picture(LAYOUT, parse_correction(tomllib.loads(SCREEN + text), source, (1, 2)),
                   PictureStore(state), threads=threads, journal=journal)


def expected(pic: Picture) -> dict[int, np.ndarray]:
    """The NumPy reference's card buffers for the picture's current inputs."""
    inputs = pic.inputs
    scan = reference.Pipeline(LAYOUT, inputs.lut(), inputs.gains(),
                              inputs.calib(LAYOUT)).process(FRAME)
    return {a: b.copy() for a, b in scan.buffers.items()}


class Recorder:
    """A sink that keeps a copy of every frame's buffers, by frame number."""

    name = "recorder"

    def __init__(self) -> None:
        self.frames: list[tuple[int, dict[int, np.ndarray]]] = []

    def send(self, scan: ScanResult, frame_no: int) -> None:
        self.frames.append((frame_no, {a: np.array(b) for a, b in scan.buffers.items()}))

    def close(self) -> None:
        pass


def same(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_no_frame_mixes_old_and_new_settings_while_changes_fire(tmp_path):
    """Every streamed frame equals, as a whole, one of the states the picture went through,
    in the order it went through them: never part of one and part of the next."""
    pic = picture(tmp_path)
    sink = Recorder()

    def frames():
        while True:
            yield FRAME

    async def scenario() -> list[dict[int, np.ndarray]]:
        loop = FrameLoop(LAYOUT, pic.start(), frames(), sink, fps=240)
        pic.frame_loop = loop
        states = [expected(pic)]
        await loop.start()
        changes = [
            lambda: pic.set_correction({"gamma": 2.6}, "t"),
            lambda: pic.import_calibration(1, csv_text(matrix(1)).encode(), "csv", "t",
                                           activate=True),
            lambda: pic.set_correction({"white": [1.0, 0.8, 0.6]}, "t"),
            lambda: pic.import_calibration(2, csv_text(matrix(2)).encode(), "csv", "t",
                                           activate=True),
            lambda: pic.set_correction({"curve": "cie1931"}, "t"),
            lambda: pic.rollback(1, "t"),
            lambda: pic.set_correction({"gamma": 1.8}, "t"),
            lambda: pic.activate(1, 1, "t"),
        ]
        for change in changes:
            before = len(sink.frames)
            while len(sink.frames) < before + 3:        # some frames of each state
                await asyncio.sleep(0.005)
            await change()
            states.append(expected(pic))
        before = len(sink.frames)
        while len(sink.frames) < before + 3:
            await asyncio.sleep(0.005)
        await loop.stop()
        return states

    states = asyncio.run(scenario())
    assert all(not same(a, b) for a, b in zip(states, states[1:]))   # each change shows
    at = 0
    for frame_no, buffers in sink.frames:
        matches = [i for i, s in enumerate(states) if same(buffers, s)]
        assert matches, f"frame {frame_no} is no state the picture was in: a mixed frame"
        later = [i for i in matches if i >= at]
        assert later, f"frame {frame_no} went back to an earlier state"
        at = later[0]
    assert at == len(states) - 1
    shown = {next(i for i, s in enumerate(states) if same(b, s)) for _, b in sink.frames}
    assert shown == set(range(len(states)))          # every state was streamed


def test_a_refused_change_changes_nothing(tmp_path):
    pic = picture(tmp_path)
    first = pic.start()
    before = expected(pic)

    async def go():
        with pytest.raises(ConfigError, match="gamma = 0 is out of range"):
            await pic.set_correction({"gamma": 0}, "t")
        bad = csv_text(matrix(3)).replace("\n5,", "\n5,", 1).splitlines()
        bad[7] = bad[7].split(",", 2)[0] + "," + bad[7].split(",", 2)[1] + ",1.9,0.2,0,0,1,0,0,0,1"
        with pytest.raises(ConfigError, match="absolute sum 2.1000 > 2.0"):
            await pic.import_calibration(1, "\n".join(bad).encode(), "csv", "t", activate=True)
        with pytest.raises(LedwardenError, match="nothing to roll back"):
            await pic.rollback(2, "t")
    asyncio.run(go())
    assert pic.pipeline is first and same(expected(pic), before)
    assert PictureStore(tmp_path).correction() == {} and PictureStore(tmp_path).cabinets() == []


def test_every_change_is_in_the_journal_with_who_made_it(tmp_path):
    with FaultLog(tmp_path / "faults.db") as faults:
        pic = picture(tmp_path, journal=faults)
        pic.start()

        async def go():
            await pic.set_correction({"gamma": 2.4}, "ann")
            await pic.import_calibration(1, csv_text(matrix(1)).encode(), "csv", "bob",
                                         activate=False)
            await pic.activate(1, 1, "bob")
            await pic.rollback(1, "cy")
        asyncio.run(go())
        rows = sorted(faults.list(state="all"), key=lambda f: f.id)
    assert [(f.code, f.details["by"], f.cleared_by, f.severity) for f in rows] == [
        ("picture.correction.changed", "ann", "ann", "info"),
        ("picture.calibration.imported", "bob", "bob", "info"),
        ("picture.calibration.activated", "bob", "bob", "info"),
        ("picture.calibration.rolled_back", "cy", "cy", "info")]
    assert rows[0].details["settings"]["gamma"] == 2.4
    assert rows[3].details == {"cabinet": 1, "from": 1, "to": None, "by": "cy"}


def test_a_restart_shows_what_was_changed_over_the_screen_file(tmp_path):
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "two.csv").write_text(csv_text(matrix(2)))
    text = '[correction]\ngamma = 2.0\nwhite = [1, 0.9, 0.9]\n[correction.calibration]\n2 = "cal/two.csv"\n'
    pic = picture(tmp_path, text)
    assert pic.inputs.origin == {2: {"from": "screen file", "file": str(tmp_path / "cal/two.csv")}}
    asyncio.run(pic.set_correction({"gamma": 2.4}, "t"))
    asyncio.run(pic.import_calibration(2, calibration_npz(q14(matrix(5))), "npz", "t", activate=True))
    again = picture(tmp_path, text)
    assert again.inputs.settings.gamma == 2.4 and again.inputs.settings.white == (1.0, 0.9, 0.9)
    assert np.array_equal(again.inputs.arrays[2], q14(matrix(5)))
    asyncio.run(again.rollback(2, "t"))                     # back to the screen file's file
    assert np.array_equal(again.inputs.arrays[2], q14(matrix(2)))
    assert np.array_equal(picture(tmp_path, text).inputs.arrays[2], q14(matrix(2)))
    asyncio.run(again.set_correction({"reset": True}, "t"))
    assert picture(tmp_path, text).inputs.settings.gamma == 2.0


def calibration_npz(a: np.ndarray) -> bytes:
    from controller.picture.calibration import to_npz
    return to_npz(a)


def test_damaged_stored_state_falls_back_to_the_screen_file_and_says_so(tmp_path):
    pic = picture(tmp_path)
    asyncio.run(pic.import_calibration(1, csv_text(matrix(1)).encode(), "csv", "t", activate=True))
    (tmp_path / "correction.json").write_text("{")
    (tmp_path / "calibration" / "0x01" / "v1.npz").write_bytes(b"garbage")
    with FaultLog(tmp_path / "faults.db") as faults:
        again = picture(tmp_path, journal=faults)
        again.start()
        again.file_notes()
        notes = [f.details["text"] for f in faults.list() if f.code == "picture.stored_state"]
    assert again.inputs.settings.gamma == 2.2 and again.inputs.arrays == {}
    assert len(notes) == 1 and "correction.json: unreadable" in notes[0]
    assert "cabinet 1: stored calibration not used" in notes[0] and "is damaged" in notes[0]


def test_a_bad_screen_file_calibration_is_refused_at_start(tmp_path):
    (tmp_path / "bad.csv").write_text(csv_text(matrix(1, 8, 32)))
    with pytest.raises(ConfigError, match="cabinet 1 .*have no row"):
        picture(tmp_path, '[correction.calibration]\n1 = "bad.csv"\n')


def test_the_live_kind_of_pipeline_agrees_with_the_reference_on_the_wall_s_inputs(tmp_path):
    pic = picture(tmp_path, '[correction]\ncurve = "cie1931"\nwhite = [0.9, 1, 0.8]\n')
    asyncio.run(pic.import_calibration(2, csv_text(matrix(2)).encode(), "csv", "t", activate=True))
    got = pic.start().process(FRAME)
    assert fastpath.backend in ("cffi", "numpy")
    assert same({a: np.array(b) for a, b in got.buffers.items()}, expected(pic))


def test_replaced_pipelines_do_not_keep_their_threads(tmp_path):
    """A change a minute for months must not pile up worker threads: a replaced pipeline's
    pool goes with it."""
    import gc
    import os
    pic = picture(tmp_path, threads=3)
    pic.start()

    def threads() -> int:
        gc.collect()
        return len(os.listdir("/proc/self/task"))
    before = threads()

    async def go():
        for n in range(12):
            await pic.set_correction({"gamma": 2.0 + n / 10}, "t")
    asyncio.run(go())
    assert threads() <= before + 2


def test_a_disk_that_refuses_the_write_changes_nothing(tmp_path):
    pic = picture(tmp_path)
    first = pic.start()
    (tmp_path / "correction.json").mkdir()          # the rename onto it fails: EISDIR

    async def go():
        with pytest.raises(LedwardenError, match="could not be stored on the board .* the "
                                                 "picture is unchanged"):
            await pic.set_correction({"gamma": 2.4}, "t")
    asyncio.run(go())
    assert pic.pipeline is first and pic.inputs.settings.gamma == 2.2
