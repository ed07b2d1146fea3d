"""DDP in and out over loopback UDP, each side checked against a peer written here from the spec.

The test's sender and receiver below are written from the published DDP
description (10-byte header: flags with version 01 in bits 7–6 and PUSH in bit
0, sequence, data type, destination id, offset u32 BE, length u16 BE,
optional 4-byte timecode), not from :mod:`controller.video.ddp`.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from controller import fastpath
from controller.config import loads_screen
from controller.errors import ConfigError
from controller.fastpath.settings import gains_from, power_lut
from controller.service.frameloop import frame_sink, frame_source
from controller.video.ddp import DdpSink, DdpSource, parse_listen, parse_target

SCREEN = """
[screen]
name = "two cabinets"
width = 128
height = 32
[modules.m]
width = 32
height = 16
scan = 8
[[cabinets]]
address = 1
x = 0
y = 0
module = "m"
modules_x = 2
modules_y = 2
chain = "serpentine"
rotation = 0
[[cabinets]]
address = 2
x = 64
y = 0
module = "m"
modules_x = 2
modules_y = 2
chain = "rows"
rotation = 180
"""
W, H = 128, 32


def spec_packet(offset: int, data: bytes, push: bool, *, timecode: bool = False,
                data_type: int = 0x0B, dest: int = 1, seq: int = 3, length: int | None = None) -> bytes:
    flags = 0b0100_0000 | (0x01 if push else 0) | (0x10 if timecode else 0)
    header = bytes([flags, seq & 0x0F, data_type, dest]) + offset.to_bytes(4, "big") + \
        (len(data) if length is None else length).to_bytes(2, "big")
    return header + (b"\x00\x00\x12\x34" if timecode else b"") + data


def spec_send(sock: socket.socket, where: tuple, picture: bytes, chunk: int = 1200, **kw) -> None:
    """A sender from the spec: ``chunk`` bytes a packet, PUSH on the last."""
    for offset in range(0, len(picture), chunk):
        part = picture[offset:offset + chunk]
        sock.sendto(spec_packet(offset, part, offset + len(part) >= len(picture), **kw), where)


def random_frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture
def receiver():
    source = DdpSource(W, H, "127.0.0.1", 0)
    yield source
    source.close()


@pytest.fixture
def sender():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield sock
    sock.close()


def settle(source: DdpSource, packets: int) -> None:
    deadline = time.monotonic() + 5
    while source.packets < packets and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_receiver_shows_each_pushed_frame_exactly(receiver, sender):
    for seed in range(3):
        frame = random_frame(seed)
        spec_send(sender, receiver.address, frame.tobytes())
        got = receiver.wait_frame(5)
        assert got is not None and np.array_equal(got, frame)
    assert receiver.stats()["frames"] == 3 and receiver.stats()["incomplete"] == 0


def test_timecode_and_older_data_types_are_understood(receiver, sender):
    frame = random_frame(7)
    spec_send(sender, receiver.address, frame.tobytes(), timecode=True, data_type=0x01)
    got = receiver.wait_frame(5)
    assert got is not None and np.array_equal(got, frame)


def test_a_frame_with_a_missing_packet_is_shown_and_counted_incomplete(receiver, sender):
    whole = random_frame(1)
    spec_send(sender, receiver.address, whole.tobytes())
    assert receiver.wait_frame(5) is not None
    second = random_frame(2).tobytes()
    # the packet carrying bytes 1200 … 2399 is lost
    sender.sendto(spec_packet(0, second[:1200], False), receiver.address)
    sender.sendto(spec_packet(2400, second[2400:], True), receiver.address)
    got = receiver.wait_frame(5)
    expected = bytearray(second)
    expected[1200:2400] = whole.tobytes()[1200:2400]  # the lost part keeps the last picture
    assert got is not None and got.tobytes() == bytes(expected)
    assert receiver.stats()["incomplete"] == 1


def test_bad_packets_are_counted_and_the_last_picture_stays(receiver, sender):
    good = random_frame(3)
    spec_send(sender, receiver.address, good.tobytes())
    assert receiver.wait_frame(5) is not None
    size = W * H * 3
    bad = [spec_packet(0, b"\x01" * 30, True, length=31),             # length field lies
           spec_packet(size - 3, b"\x02" * 6, True),                   # runs past the frame
           spec_packet(0, b"\x03" * 6, True, dest=7),                  # not the display
           spec_packet(0, b"\x04" * 6, True, data_type=0x1B),          # not 8-bit RGB
           bytes([0x80, 1, 0x0B, 1]) + bytes(6) + b"\x05" * 3,         # version 2
           b"\x41\x01"]                                                # shorter than a header
    for packet in bad:
        sender.sendto(packet, receiver.address)
    settle(receiver, receiver.packets + len(bad))
    assert receiver.wait_frame(0.3) is None
    assert np.array_equal(next(receiver), good)
    assert receiver.stats()["rejected"] == {"length": 1, "offset": 1, "destination": 1,
                                            "data type": 1, "version": 1, "short": 1}


def test_a_sender_that_never_pushes_is_shown_at_the_end_of_the_buffer(receiver, sender):
    frame = random_frame(4).tobytes()
    for offset in range(0, len(frame), 1000):
        sender.sendto(spec_packet(offset, frame[offset:offset + 1000], False), receiver.address)
    got = receiver.wait_frame(5)
    assert got is not None and got.tobytes() == frame


def spec_receive(sock: socket.socket, size: int, timeout: float = 5) -> tuple[bytes, list[bytes]]:
    """A receiver from the spec: assemble by offset until a PUSH."""
    sock.settimeout(timeout)
    buffer = bytearray(size)
    headers = []
    while True:
        packet = sock.recv(2048)
        flags, offset = packet[0], int.from_bytes(packet[4:8], "big")
        length = int.from_bytes(packet[8:10], "big")
        start = 14 if flags & 0x10 else 10
        assert flags >> 6 == 1 and len(packet) - start == length
        buffer[offset:offset + length] = packet[start:]
        headers.append(packet[:10])
        if flags & 0x01:
            return bytes(buffer), headers


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def identity(layout):
    return fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0), threads=1)


def test_the_sink_sends_the_input_picture_exactly_at_identity_settings(listener):
    layout = loads_screen(SCREEN)
    sink = DdpSink(layout, "127.0.0.1", listener.getsockname()[1])
    frame = random_frame(5)
    try:
        sink.send(identity(layout).process(frame), 0)
        picture, headers = spec_receive(listener, W * H * 3)
    finally:
        sink.close()
    assert picture == frame.tobytes()
    assert all(h[2] == 0x0B and h[3] == 1 for h in headers)
    assert sum(h[0] & 1 for h in headers) == 1 and headers[-1][0] & 1
    assert all(int.from_bytes(h[8:10], "big") <= 1440 for h in headers)


def test_the_sink_sends_the_corrected_picture_in_8_bits():
    """With a real curve the receiver gets round(corrected * 255 / 65535) per channel."""
    layout = loads_screen(SCREEN)
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    sink = DdpSink(layout, "127.0.0.1", listener.getsockname()[1])
    frame = random_frame(6)
    lut, gains = power_lut(2.2), gains_from(0.5)
    try:
        sink.send(fastpath.Pipeline(layout, lut, gains, threads=1).process(frame), 1)
        picture, _ = spec_receive(listener, W * H * 3)
    finally:
        sink.close()
        listener.close()
    corrected = fastpath.reference.correct(frame, lut, gains).astype(np.int64)
    assert picture == ((corrected * 255 + 32767) // 65535).astype(np.uint8).tobytes()


def test_ddp_in_through_correction_and_out_again_is_pixel_exact(sender, listener):
    """Test sender → controller's DDP source → pipeline → DDP sink → test receiver."""
    layout = loads_screen(SCREEN)
    source = frame_source("ddp://127.0.0.1:0", W, H)
    sink = frame_sink(f"ddp://127.0.0.1:{listener.getsockname()[1]}", layout)
    pipe = identity(layout)
    try:
        for seed in (10, 11):
            frame = random_frame(seed)
            spec_send(sender, source.address, frame.tobytes(), chunk=1440)
            got = source.wait_frame(5)
            sink.send(pipe.process(got), seed)
            picture, _ = spec_receive(listener, W * H * 3)
            assert picture == frame.tobytes()
    finally:
        source.close()
        sink.close()


def test_specs_say_what_is_wrong():
    assert parse_listen("ddp:") == ("0.0.0.0", 4048)
    assert parse_listen("ddp://0.0.0.0:4049") == ("0.0.0.0", 4049)
    assert parse_target("ddp://10.0.0.7") == ("10.0.0.7", 4048)
    for bad in ("ddp:", "ddp://", "ddp://host:x", "ddp://host:70000"):
        with pytest.raises(ConfigError, match="ddp"):
            parse_target(bad)
    with pytest.raises(ConfigError, match="layout"):
        frame_sink("ddp://127.0.0.1:4048")


def test_a_port_in_use_is_one_clear_error(receiver):
    with pytest.raises(ConfigError, match="cannot listen for DDP on 127.0.0.1"):
        probe = DdpSource(W, H, "127.0.0.1", receiver.address[1])
        probe.close()


# ------------------------------------------------------------ receivers with their own curve (issue 16 item 3)

def test_the_fused_path_sends_what_the_reference_predicts_with_a_curve_and_calibration(listener):
    """The frame loop's way (``send_frame``): correction and the receiver's inverse curve in one
    C pass straight into the datagrams; the receiver gets ``reference.correct_encode`` exactly."""
    layout = loads_screen(SCREEN)
    sink = frame_sink(f"ddp://127.0.0.1:{listener.getsockname()[1]}?gamma=2.2", layout)
    calib = np.random.default_rng(3).integers(-4000, 9000, (H, W, 3, 3), dtype=np.int16)
    lut, gains = power_lut(2.2), gains_from(0.7, (1.0, 0.9, 0.8))
    pipe = fastpath.Pipeline(layout, lut, gains, calib, threads=2)
    table = fastpath.encode_table("2.2")
    try:
        for n, seed in enumerate((21, 22)):
            frame = random_frame(seed)
            sink.send_frame(frame, pipe, n)
            picture, headers = spec_receive(listener, W * H * 3)
            want = fastpath.reference.correct_encode(frame, lut, gains, calib, table)
            assert picture == want.tobytes()
            assert {h[1] for h in headers} == {n + 1}           # sequence 1 … 15
            # and the card-buffer path gives the same bytes
            sink.send(pipe.process(frame), n)
            assert spec_receive(listener, W * H * 3)[0] == want.tobytes()
    finally:
        sink.close()
    assert sink.stats()["card_gamma"] == "2.2"


def test_the_fused_path_is_the_input_frame_at_identity_and_black_where_no_cabinet_is(listener):
    gappy = SCREEN.replace("x = 64\n", "x = 96\n").replace("width = 128", "width = 160")
    layout = loads_screen(gappy)                      # columns 64 … 95 belong to no cabinet
    sink = DdpSink(layout, "127.0.0.1", listener.getsockname()[1])
    frame = np.random.default_rng(8).integers(0, 256, (H, 160, 3), dtype=np.uint8)
    try:
        sink.send_frame(frame, identity(layout), 0)
        picture, _ = spec_receive(listener, 160 * H * 3)
    finally:
        sink.close()
    got = np.frombuffer(picture, np.uint8).reshape(H, 160, 3)
    assert np.array_equal(got[:, :64], frame[:, :64]) and np.array_equal(got[:, 96:], frame[:, 96:])
    assert not got[:, 64:96].any()


def test_a_receiver_gamma_that_cannot_be_is_one_clear_error():
    layout = loads_screen(SCREEN)
    for bad, message in (("?gamma=fast", "not a number"), ("?gamma=9", "between 0.5 and 4.0"),
                         ("?brightness=3", "the only option is gamma")):
        with pytest.raises(ConfigError, match=message):
            frame_sink(f"ddp://127.0.0.1:4048{bad}", layout)
