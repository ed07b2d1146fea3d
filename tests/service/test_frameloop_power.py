"""The current limiter in the frame loop and the service: scale in, sums back, status out."""

from __future__ import annotations

import argparse
import asyncio

import numpy as np
import pytest

from controller import fastpath
from controller.config import load_screen, load_screen_data
from controller.errors import ConfigError
from controller.fastpath.settings import gains_from, power_lut
from controller.power import PowerLimiter, parse_power
from controller.service import cli as service_cli
from controller.service.frameloop import FrameLoop, frame_source

from test_frameloop import SCREEN   # tests/service is on the path

POWER = """
[power]
cabinet_budget_a = 2.0
[power.modules.m]
current_ma = [300, 300, 300]
quiescent_ma = 50
supply_v = 5.0
"""


class Recorder:
    """A sink that keeps each cabinet's buffer sum, frame by frame."""

    name = "recorder"

    def __init__(self) -> None:
        self.totals: list[dict[int, int]] = []

    def send(self, scan, frame_no: int) -> None:
        self.totals.append({a: int(b.sum(dtype=np.uint64)) for a, b in scan.buffers.items()})

    def close(self) -> None:
        pass


def test_the_loop_limits_a_cut_to_a_white_wall_from_its_first_frame_on(tmp_path):
    path = tmp_path / "screen.toml"
    path.write_text(SCREEN + POWER)
    layout = load_screen(path)
    limiter = PowerLimiter(parse_power(load_screen_data(path), layout), layout)
    sink = Recorder()
    pipe = fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0), threads=1)
    loop = FrameLoop(layout, pipe, frame_source("pattern:white", 128, 32), sink, fps=50, power=limiter)

    async def run():
        await loop.start()
        await asyncio.sleep(0.3)
        await loop.stop()
    asyncio.run(run())
    assert len(sink.totals) >= 5 and loop.error is None
    full = 64 * 32 * 3 * 65535
    # 4 modules × 0.9 A of light at full white against 2 A - 0.2 A quiescent: scale 0.5, from
    # the first frame on (corrected a second time before it was sent: limiter.second_look)
    for totals in (sink.totals[0], sink.totals[-1]):
        for address in (1, 2):
            assert totals[address] / full == pytest.approx(1.8 / 3.6, abs=2e-3)
    status = limiter.status()
    assert all(c["limiting"] and c["estimate_a"] <= 2.0 + 1e-3 for c in status["cabinets"])


def _args(tmp_path, screen_text: str, *extra: str) -> argparse.Namespace:
    path = tmp_path / "screen.toml"
    path.write_text(screen_text)
    parser = argparse.ArgumentParser()
    service_cli.register(parser.add_subparsers())
    return parser.parse_args(["controller", "run", "--screen", str(path), "--bus", "loop://",
                              "--state", str(tmp_path / "state"), "--threads", "1", *extra])


def test_the_service_builds_the_limiter_from_the_screen_file_and_shows_it(tmp_path):
    async def build():
        service = service_cli.build_service(_args(tmp_path, SCREEN + POWER), "fp")
        try:
            assert service.frame_loop.power is service.power
            assert service.power.faults is service.faults
            status = service.status()["power"]
            assert [c["address"] for c in status["cabinets"]] == [1, 2]
            assert status["cabinets"][0]["budget_a"] == 2.0
            assert status["cabinets"][0]["estimate_a"] == pytest.approx(0.2)   # quiescent, no frame yet
            assert "estimate alone" in status["note"]
        finally:
            service.faults.close()
            service.history.close()
            service.owner.close()
    asyncio.run(build())


def test_without_a_power_table_there_is_no_limiter(tmp_path):
    async def build():
        service = service_cli.build_service(_args(tmp_path, SCREEN), "fp")
        assert service.power is None and service.status()["power"] is None
        assert service.frame_loop.power is None
        service.faults.close()
        service.history.close()
        service.owner.close()
    asyncio.run(build())


def test_a_bad_power_table_stops_the_start_with_the_reason(tmp_path):
    with pytest.raises(ConfigError, match=r"budget 0.1 A is not above its quiescent current 0.2 A"):
        service_cli.build_service(_args(tmp_path, SCREEN + POWER.replace("= 2.0", "= 0.1")), "fp")


def test_the_host_status_shows_the_limiter():
    from host.remote import power_lines
    assert power_lines(None) == []
    power = {"wall_estimate_a": 3.2, "wall_budget_a": 4.0, "limiting": True,
             "note": "limits on its estimate alone: no card has reported its current",
             "cabinets": [
                 {"address": 1, "estimate_a": 1.99, "measured_a": 2.05, "budget_a": 2.0,
                  "scale": 0.5, "limiting": True, "basis": "estimate corrected by the card's reading"},
                 {"address": 2, "estimate_a": 0.2, "measured_a": None, "budget_a": None,
                  "scale": 0.8, "limiting": True, "basis": "estimate"},
                 {"address": 3, "estimate_a": 0.2, "measured_a": None, "budget_a": 2.0,
                  "scale": 1.0, "limiting": False, "basis": "estimate"}]}
    lines = power_lines(power)
    assert lines[0] == ("power      2 of 3 cabinets limited; highest 1.99 A of 2 A (cabinet 1); "
                        "wall 3.2 A of 4 A; limits on its estimate alone: no card has reported "
                        "its current")
    assert lines[1:] == ["  cabinet 1: 1.99 A of 2 A, card reads 2.05 A, gain x0.50",
                         "  cabinet 2: 0.2 A (the wall's budget), gain x0.80"]


def test_the_limit_survives_a_pipeline_swap(tmp_path):
    """A live correction change hands the loop a new pipeline (``use_pipeline``): the limiter's
    scale goes into whichever pipeline is current, and reads the new one's sums."""
    path = tmp_path / "screen.toml"
    path.write_text(SCREEN + POWER)
    layout = load_screen(path)
    limiter = PowerLimiter(parse_power(load_screen_data(path), layout), layout)
    sink = Recorder()
    first = fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0), threads=1)
    loop = FrameLoop(layout, first, frame_source("pattern:white", 128, 32), sink, fps=50, power=limiter)

    async def run():
        await loop.start()
        await asyncio.sleep(0.15)
        loop.use_pipeline(fastpath.Pipeline(layout, power_lut(2.4), gains_from(1.0), threads=1))
        await asyncio.sleep(0.25)
        await loop.stop()
        return loop.pipeline is not first
    assert asyncio.run(run()) and loop.error is None
    full = 64 * 32 * 3 * 65535
    assert all(t[a] / full == pytest.approx(0.5, abs=2e-3) for t in sink.totals[-5:] for a in (1, 2))


class EightBitRecorder(Recorder):
    """An 8-bit sink (it has ``send_frame``): must still get card buffers under a limiter."""

    def __init__(self) -> None:
        super().__init__()
        self.fused = 0

    def send_frame(self, frame, pipeline, frame_no: int) -> None:
        self.fused += 1


def test_an_8_bit_sink_takes_card_buffers_while_a_limiter_runs_and_the_fused_path_without(tmp_path):
    """The fused re-encode (issue 16) has no module sums or per-cabinet scale, so with a
    limiter the loop keeps the card-buffer path, and the wall stays limited."""
    path = tmp_path / "screen.toml"
    path.write_text(SCREEN + POWER)
    layout = load_screen(path)
    pipe = fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0), threads=1)

    def play(power):
        sink = EightBitRecorder()
        loop = FrameLoop(layout, pipe, frame_source("pattern:white", 128, 32), sink, fps=50,
                         power=power)

        async def run():
            await loop.start()
            await asyncio.sleep(0.3)
            await loop.stop()
        asyncio.run(run())
        assert loop.error is None
        return sink

    limited = play(PowerLimiter(parse_power(load_screen_data(path), layout), layout))
    assert limited.fused == 0 and len(limited.totals) >= 5
    assert limited.totals[-1][1] < limited.totals[0][1]
    free = play(None)
    assert free.fused >= 5 and not free.totals
