"""The simulated cards take the video in and report it through ``GET_OUTPUT``.

The test sends LWV1 datagrams itself (the layout from docs/video-io.md, not the
controller's sink) and computes the current it expects from docs/simulator.md's
figures with its own arithmetic: per LED channel the driver's peak current times
value / 65535 times the dimming level, divided by the scan; 40 mA a module of
driver quiescent current; and each card within ±3 % of that.
"""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest

from controller.config import loads_screen
from controller.errors import ConfigError
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

SCREEN = """
[screen]
name = "test"
width = 256
height = 32
[modules.p25]
width = 64
height = 32
scan = 16
[modules.p4]
width = 32
height = 16
scan = 8
[[cabinets]]
address = 3
x = 0
y = 0
module = "p25"
modules_x = 2
modules_y = 1
chain = "rows"
rotation = 0
[[cabinets]]
address = 7
x = 128
y = 0
module = "p4"
modules_x = 4
modules_y = 2
chain = "serpentine"
rotation = 180
"""
PEAK_MA = (15.0, 12.0, 10.0)
QUIESCENT_MA = 40.0
SLICE = 1400


def expected_ma(buffer: np.ndarray, scan: int, modules: int, level: int = 65535) -> float:
    total = 0.0
    for channel in range(3):
        total += PEAK_MA[channel] * int(buffer[channel::3].astype(np.int64).sum()) / 65535
    return total / scan * level / 65535 + modules * QUIESCENT_MA


class Sender:
    """An LWV1 sender written from the datagram layout alone."""

    def __init__(self, address) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.to = address

    def send(self, card: int, frame: int, buffer: np.ndarray, skip: set[int] = frozenset()) -> None:
        data = buffer.astype("<u2").tobytes()
        for i, offset in enumerate(range(0, len(data), SLICE)):
            if i not in skip:
                head = b"LWV1" + bytes([card, 0, 0, 0]) + struct.pack("<II", frame, offset)
                self.sock.sendto(head + data[offset:offset + SLICE], self.to)

    def close(self) -> None:
        self.sock.close()


def wait_for(check, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    return check()


@pytest.fixture
def wall():
    layout = loads_screen(SCREEN)
    with Simulator(pty=True, video=("127.0.0.1", 0), screen=layout, seed=11) as sim:
        sender = Sender(sim.video.address)
        with Bus(sim.url) as bus:
            yield sim, bus, sender
        sender.close()


def test_cards_come_up_as_the_screen_file_says(wall):
    sim, bus, _ = wall
    assert [card.card.address for card in sim.cards] == [3, 7]
    assert bus.call(3, c.Cmd.GET_CONFIG) == c.CardConfig(64, 32, 16, 2, 1, 0, 0, 3840)
    assert bus.call(7, c.Cmd.GET_CONFIG) == c.CardConfig(32, 16, 8, 4, 2, 1, 2, 3840)


def test_the_current_follows_the_picture_and_the_dimming_within_the_card_s_tolerance(wall):
    sim, bus, sender = wall
    rng = np.random.default_rng(5)
    idle = ops.read_output(bus, 3)
    assert idle is not None and idle.frames_shown == 0
    assert abs(idle.current_ma - 2 * QUIESCENT_MA) <= 0.03 * 2 * QUIESCENT_MA + 1
    readings = {}
    for address, pixels, scan, modules in ((3, 64 * 32 * 2, 16, 2), (7, 32 * 16 * 8, 8, 8)):
        buffer = rng.integers(0, 65536, pixels * 3, dtype=np.uint16)
        buffer[0::3] //= 2                      # not grey: channels weigh differently
        sender.send(address, 1, buffer)
        reply = wait_for(lambda a=address: (r := ops.read_output(bus, a)) and r.frames_shown and r)
        assert (reply.frames_shown, reply.frames_dropped) == (1, 0)
        want = expected_ma(buffer, scan, modules)
        assert abs(reply.current_ma - want) <= 0.03 * want + 1, (reply, want)
        readings[address] = reply.current_ma / want
        ops.write_brightness(bus, address, 0x4000)
        dimmed = ops.read_output(bus, address)
        want = expected_ma(buffer, scan, modules, 0x4000)
        assert abs(dimmed.current_ma - want) <= 0.03 * want + 1, (dimmed, want)
    # the two cards are off nominal by different amounts, which the controller cannot know
    assert abs(readings[3] - readings[7]) > 1e-4


def test_full_white_and_a_test_pattern_draw_the_same(wall):
    _, bus, sender = wall
    white = np.full(64 * 32 * 2 * 3, 65535, np.uint16)
    sender.send(3, 1, white)
    video = wait_for(lambda: (r := ops.read_output(bus, 3)) and r.frames_shown and r)
    bus.call(3, c.Cmd.TEST_PATTERN, c.TestPattern(c.Pattern.WHITE, 65535))
    pattern = ops.read_output(bus, 3)
    assert pattern.current_ma == video.current_ma
    assert abs(video.current_ma - expected_ma(white, 16, 2)) <= 0.03 * expected_ma(white, 16, 2) + 1


def test_the_current_log_has_every_shown_frame_with_what_get_output_reports(tmp_path):
    """The probe a benchmark counts frames over budget with: one line per frame shown, with
    the current GET_OUTPUT reports for it, at the card's dimming; none for a test pattern."""
    log = tmp_path / "current.csv"
    with Simulator(pty=True, video=("127.0.0.1", 0), screen=loads_screen(SCREEN), seed=11,
                   current_log=log) as sim, Bus(sim.url) as bus:
        sender = Sender(sim.video.address)
        rng = np.random.default_rng(9)
        reported = []
        for frame, level in ((1, 0xFFFF), (2, 0xFFFF), (3, 0x4000)):
            if level != 0xFFFF:
                ops.write_brightness(bus, 3, level)
                time.sleep(0.3)                         # the simulator's tick carries it over
            buffer = rng.integers(0, 65536, 64 * 32 * 2 * 3, dtype=np.uint16)
            sender.send(3, frame, buffer)
            reply = wait_for(lambda f=frame: (r := ops.read_output(bus, 3)) and r.frames_shown == f
                             and r)
            assert reply, f"frame {frame} was not shown"
            reported.append(reply.current_ma)
        bus.call(3, c.Cmd.TEST_PATTERN, c.TestPattern(c.Pattern.WHITE, 65535))
        time.sleep(0.3)
        sender.send(3, 4, rng.integers(0, 65536, 64 * 32 * 2 * 3, dtype=np.uint16))
        wait_for(lambda: ops.read_output(bus, 3).frames_shown == 4)
        sender.close()
    lines = log.read_text().splitlines()
    assert lines[0] == "t_s,address,frame,current_ma"
    rows = [line.split(",") for line in lines[1:]]
    assert [(int(a), int(f)) for _, a, f, _ in rows] == [(3, 1), (3, 2), (3, 3)]
    assert [round(float(ma)) for *_, ma in rows] == reported


def test_a_current_log_without_video_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="--current-log needs --video"):
        Simulator(2, pty=True, current_log=tmp_path / "c.csv")


def test_torn_late_and_duplicate_datagrams_are_counted_as_a_card_would(wall):
    sim, bus, sender = wall
    buffer = np.arange(64 * 32 * 2 * 3, dtype=np.uint16)
    sender.send(3, 10, buffer, skip={2})            # incomplete ...
    sender.send(3, 11, buffer)                      # ... and overtaken: torn
    sender.send(3, 11, buffer)                      # repeated datagrams change nothing
    sender.send(3, 10, buffer, skip={0, 1})         # the rest of frame 10, late: not twice
    sender.send(3, 9, buffer)                       # an older frame, late
    sender.send(3, 12, buffer)
    reply = wait_for(lambda: (r := ops.read_output(bus, 3)) and r.frames_shown >= 2 and r)
    time.sleep(0.1)
    reply = ops.read_output(bus, 3)
    assert (reply.frames_shown, reply.frames_dropped) == (2, 2)
    assert sim.cards[0].platform.video.rejected == 0
    sender.send(3, 500, np.zeros(10 ** 5, np.uint16))   # larger than the card's buffer
    assert wait_for(lambda: sim.cards[0].platform.video.rejected > 0)
    sender.send(3, 0, buffer)                           # far behind: the sender restarted
    assert wait_for(lambda: ops.read_output(bus, 3).frames_shown == 3)


def test_a_card_without_sensor_or_without_the_command(wall):
    sim, bus, sender = wall
    sim.set_plan(FaultPlan().with_card(1, no_sensor=True).with_card(2, no_get_output=True))
    reply = ops.read_output(bus, 3)
    assert reply is not None and reply.milliamps is None and reply.current_ma == 0xFFFFFFFF
    assert ops.read_output(bus, 7) is None
    assert bus.call(7, c.Cmd.GET_STATUS).rx_ok > 0


def test_a_power_cycled_card_stays_black_until_the_sender_restarts(wall):
    sim, bus, sender = wall
    buffer = np.full(64 * 32 * 2 * 3, 1000, np.uint16)
    frame = 0
    for frame in range(1, 4):
        sender.send(3, frame, buffer)
    assert wait_for(lambda: ops.read_output(bus, 3).frames_shown == 3)
    sim.set_plan(FaultPlan().with_card(1, stays_black_after_s=0.0))
    assert wait_for(lambda: not sim.cards[0].powered, 2.0)
    assert wait_for(lambda: sim.cards[0].powered, 2.0)
    for frame in range(frame + 1, frame + 6):
        sender.send(3, frame, buffer)
    time.sleep(0.2)
    black = ops.read_output(bus, 3)
    assert black.frames_shown == 0 and black.frames_dropped == 5     # counters since boot
    assert abs(black.current_ma - 2 * QUIESCENT_MA) <= 0.03 * 2 * QUIESCENT_MA + 1
    for restarted in range(0, 3):                                    # a new stream from 0
        sender.send(3, restarted, buffer)
    assert wait_for(lambda: ops.read_output(bus, 3).frames_shown == 3)


def test_the_fault_file_takes_the_output_faults_and_refuses_bad_values():
    from controller.errors import ConfigError
    from hw.sim.faults import plan_from_mapping

    plan = plan_from_mapping({"cards": {"2": {"no_get_output": True, "no_sensor": True,
                                              "stays_black_after_s": 0}}})
    card = plan.for_card(2)
    assert card.no_get_output and card.no_sensor and card.stays_black_after_s == 0.0
    with pytest.raises(ConfigError, match="stays_black_after_s"):
        plan_from_mapping({"cards": {"2": {"stays_black_after_s": -2}}})
    with pytest.raises(ConfigError, match="no_sensor"):
        plan_from_mapping({"cards": {"2": {"no_sensor": "yes"}}})


def test_a_screen_whose_modules_no_card_config_holds_is_refused_in_one_sentence():
    from controller.errors import ConfigError

    layout = loads_screen(SCREEN.replace("scan = 8", "scan = 3").replace("height = 16", "height = 15")
                          .replace("height = 32\n[[cabinets]]", "height = 32\n[[cabinets]]"))
    with pytest.raises(ConfigError, match="address 7 .*scan must be"):
        Simulator(pty=True, screen=layout)


def test_a_video_port_in_use_is_one_sentence_and_leaves_nothing_behind():
    from controller.errors import PortError

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(PortError, match="cannot listen for video on 127.0.0.1:.*in use"):
            Simulator(2, pty=True, video=taken.getsockname())
