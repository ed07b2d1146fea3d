"""The Colorlight sink against a card emulator on a veth pair inside a network namespace.

The emulator below is written from the protocol description in
``docs/video-io.md`` (PanelPlayer's and FPP's notes) and shares no code with
:mod:`controller.video.colorlight`: it parses with plain slicing, answers
discovery, keeps the rows it is sent and shows them on a display packet, as a
card does.  Both ends live in a namespace the test makes (``ip netns add``),
so nothing touches the host's interfaces; sockets are made on a thread that
has entered the namespace (``setns``), and keep it when used elsewhere.
Without root or ``ip`` the tests skip with the reason, except in CI (``CI``
set), where they fail.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from controller import fastpath
from controller.config import loads_screen
from controller.errors import ConfigError
from controller.fastpath.settings import gains_from, power_lut
from controller.service.frameloop import frame_sink
from controller.video.colorlight import ColorlightSink
from controller.video.picture import ScreenPicture

WIDE = """
[screen]
name = "wide"
width = 600
height = 16
[modules.m]
width = 100
height = 16
scan = 8
[[cabinets]]
address = 1
x = 0
y = 0
module = "m"
modules_x = 6
modules_y = 1
chain = "serpentine"
rotation = 0
"""
W, H = 600, 16
CARD = bytes.fromhex("112233445566")
HOST = bytes.fromhex("222233445566")
CLONE_NEWNET = 0x40000000


class Namespace:
    """A network namespace holding a veth pair ``clhost`` ↔ ``clcard``; ``run`` calls inside it."""

    def __init__(self) -> None:
        self.name = f"lwcl{os.getpid()}"
        self.pool = ThreadPoolExecutor(1, initializer=self._enter)

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def create(self) -> None:
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.ip("link", "add", "clhost", "type", "veth", "peer", "name", "clcard")
        for dev in ("lo", "clhost", "clcard"):
            self.ip("link", "set", dev, "up")

    def _enter(self) -> None:
        fd = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def run(self, fn, *args, **kwargs):
        return self.pool.submit(fn, *args, **kwargs).result(timeout=30)

    def delete(self) -> None:
        self.pool.shutdown()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def netns():
    ns = Namespace()
    try:
        ns.create()
        ns.run(lambda: None)
    except (OSError, subprocess.CalledProcessError) as exc:
        ns.delete()
        reason = f"cannot make a network namespace with a veth pair (needs root and iproute2): {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield ns
    ns.delete()


class Emulator:
    """A 5A-75 card: answers discovery, keeps rows, shows them on a display packet."""

    def __init__(self, firmware=(10, 16), size=(W, H), silent=False, announce=None) -> None:
        self.firmware, self.size, self.silent = firmware, size, silent
        self.announce = announce or size   # the resolution its reply claims (a misconfigured card)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)  # Python reads slowly
        self.sock.bind(("clcard", 0))
        self.sock.settimeout(0.05)
        self.pending = np.zeros((size[1], size[0], 3), np.uint8)
        self.shown: list[np.ndarray] = []
        self.log: list[tuple[str, float]] = []   # (packet kind, arrival time)
        self.wire_rows: list[bytes] = []
        self.brightness: list[bytes] = []
        self.sync: list[bytes] = []
        self.counter = 0
        self.booted = time.monotonic() - 3600
        self.drop_every = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def power_cycle(self) -> None:
        self.counter = 0
        self.booted = time.monotonic()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                frame, meta = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if meta[2] == 4 or frame[:6] != CARD or frame[6:12] != HOST:
                continue  # our own replies, or traffic not for a card
            self.counter += 1
            kind, now = frame[12], time.monotonic()
            if kind == 0x07:
                self.log.append(("discover", now))
                if not self.silent:
                    self.reply()
            elif kind == 0x55:
                if self.drop_every and self.counter % self.drop_every == 0:
                    continue
                row = int.from_bytes(frame[13:15], "big")
                first = int.from_bytes(frame[15:17], "big")
                count = int.from_bytes(frame[17:19], "big")
                assert frame[19:21] == b"\x08\x88" and count <= 497
                pixels = frame[21:21 + 3 * count]
                assert len(pixels) == 3 * count
                bgr = np.frombuffer(pixels, np.uint8).reshape(count, 3)
                self.pending[row, first:first + count] = bgr[:, ::-1]
                self.wire_rows.append(frame)
                self.log.append(("row", now))
            elif kind == 0x0A:
                self.brightness.append(frame[13:])
                self.log.append(("brightness", now))
            elif kind == 0x01:
                self.sync.append(frame[13:])
                self.log.append(("sync", now))
                if len(self.sync) == 1 or self.log[-2][0] != "sync":
                    self.shown.append(self.pending.copy())

    def reply(self) -> None:
        body = bytearray(64)
        body[0] = 0x05
        body[1] = 4                                       # model: 5A
        body[2], body[3] = self.firmware
        body[21:23] = self.announce[0].to_bytes(2, "big")     # frame offsets 34, 36
        body[23:25] = self.announce[1].to_bytes(2, "big")
        body[25:29] = self.counter.to_bytes(4, "big")     # frame offsets 38, 42 (provisional)
        body[29:33] = int(time.monotonic() - self.booted).to_bytes(4, "big")
        self.sock.send(HOST + CARD + b"\x08" + bytes(body))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def wait_shown(self, count: int, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while len(self.shown) < count and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.fixture
def layout():
    return loads_screen(WIDE)


def frame_of(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def rig(netns, layout, **card):
    emulator = netns.run(Emulator, **card)
    sink = netns.run(ColorlightSink, layout, "clhost")
    return emulator, sink


def test_discovery_reads_model_firmware_resolution_and_uptime(netns, layout):
    emulator, sink = rig(netns, layout, firmware=(12, 3))
    try:
        card = sink.card
        assert card is not None and card.model == "5A" and card.firmware == "12.3"
        assert (card.width, card.height) == (W, H) and card.uptime_s >= 3600
        assert not card.doubles and sink.stats()["card"]["firmware"] == "12.3"
        emulator.power_cycle()
        again = sink.discover()
        assert again is not None and again.uptime_s < 3600 and sink.card is again
        assert sink.stats()["card_restarts"] == 1 and not sink.card_silent
    finally:
        sink.close()
        emulator.close()


def test_the_picture_that_arrives_is_the_picture_meant_at_identity(netns, layout):
    emulator, sink = rig(netns, layout)
    pipe = fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0), threads=1)
    try:
        for n, seed in enumerate((1, 2, 3)):
            frame = frame_of(seed)
            sink.send(pipe.process(frame), n)
            emulator.wait_shown(n + 1)
            assert np.array_equal(emulator.shown[n], frame)
    finally:
        sink.close()
        emulator.close()
    # 600 pixels a row: 497 + 103, offsets 0 and 497
    counts = sorted({(int.from_bytes(r[15:17], "big"), int.from_bytes(r[17:19], "big"))
                     for r in emulator.wire_rows})
    assert counts == [(0, 497), (497, 103)]
    assert sink.stats()["frames"] == 3 and sink.stats()["send_errors"] == 0


def test_with_a_curve_and_calibration_the_card_gets_what_the_reference_predicts(netns, layout):
    emulator, sink = rig(netns, layout)
    calib = np.random.default_rng(9).integers(12000, 16384, (H, W, 3), dtype=np.int16)
    lut, gains = power_lut(2.2), gains_from(0.8)
    frame = frame_of(4)
    try:
        sink.send(fastpath.Pipeline(layout, lut, gains, calib, threads=1).process(frame), 0)
        emulator.wait_shown(1)
    finally:
        sink.close()
        emulator.close()
    corrected = fastpath.reference.correct(frame, lut, gains, calib).astype(np.int64)
    assert np.array_equal(emulator.shown[0], ((corrected * 255 + 32767) // 65535).astype(np.uint8))


def test_fused_with_a_card_curve_the_card_gets_correct_encode_exactly(netns, layout):
    """``colorlight:IFACE?gamma=2.2`` through ``send_frame`` (the frame loop's path): the
    emulator shows ``reference.correct_encode`` with the card's inverse curve, to the bit."""
    emulator = netns.run(Emulator)
    sink = netns.run(frame_sink, "colorlight:clhost?gamma=2.2", layout)
    calib = np.random.default_rng(19).integers(-3000, 9000, (H, W, 3, 3), dtype=np.int16)
    lut, gains = power_lut(2.2), gains_from(0.8, (1.0, 0.95, 0.9))
    pipe = fastpath.Pipeline(layout, lut, gains, calib, threads=2)
    table = fastpath.encode_table("2.2")
    try:
        for n, seed in enumerate((14, 15)):
            frame = frame_of(seed)
            sink.send_frame(frame, pipe, n)
            emulator.wait_shown(n + 1)
            want = fastpath.reference.correct_encode(frame, lut, gains, calib, table)
            assert np.array_equal(emulator.shown[n], want)
        # identity settings on a linear card: the frame itself
        plain = netns.run(frame_sink, "colorlight:clhost", layout)
        try:
            plain.send_frame(frame_of(16), fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0)), 2)
            emulator.wait_shown(3)
        finally:
            plain.close()
        assert np.array_equal(emulator.shown[2], frame_of(16))
    finally:
        sink.close()
        emulator.close()
    assert sink.stats()["card_gamma"] == "2.2"


def test_pixel_bytes_go_out_blue_green_red(netns, layout):
    """PanelPlayer says BGR, FPP's comment RGB: we send BGR.  Pure red is ``00 00 FF`` on the wire."""
    emulator, sink = rig(netns, layout)
    red = np.zeros((H, W, 3), np.uint8)
    red[..., 0] = 255
    try:
        sink.send(IdentityScan(layout).scan(red), 0)
        emulator.wait_shown(1)
    finally:
        sink.close()
        emulator.close()
    assert emulator.wire_rows[0][21:27] == b"\x00\x00\xff\x00\x00\xff"


class IdentityScan:
    """Scan buffers for a picture at identity settings (gamma 1.0, no calibration, full)."""

    def __init__(self, layout) -> None:
        self.pipe = fastpath.Pipeline(layout, power_lut(1.0), gains_from(1.0), threads=1)

    def scan(self, picture):
        return self.pipe.process(picture)


@pytest.mark.parametrize("firmware, copies", [((12, 9), 1), ((13, 0), 2)])
def test_display_and_brightness_follow_the_rows_after_a_gap_twice_from_firmware_13(
        netns, layout, firmware, copies):
    emulator, sink = rig(netns, layout, firmware=firmware)
    try:
        sink.send(IdentityScan(layout).scan(frame_of(5)), 0)
        emulator.wait_shown(1)
        time.sleep(0.1)
    finally:
        sink.close()
        emulator.close()
    kinds = [kind for kind, _ in emulator.log if kind != "discover"]
    assert kinds == ["row"] * (2 * H) + ["brightness"] * copies + ["sync"] * copies
    last_row = max(t for kind, t in emulator.log if kind == "row")
    first_sync = min(t for kind, t in emulator.log if kind == "sync")
    assert first_sync - last_row >= 0.004  # the 5 ms gap, less clock granularity
    sync, brightness = emulator.sync[0], emulator.brightness[0]
    assert sync[0] == 0x07 and sync[22] == 255 and sync[23] == 0x05 and sync[25:28] == b"\xff" * 3
    assert len(sync) >= 98 and brightness[:4] == b"\xff\xff\xff\xff" and len(brightness) >= 64


def test_a_silent_card_is_still_driven_once_per_frame(netns, layout):
    emulator, sink = rig(netns, layout, silent=True, firmware=(13, 1))
    try:
        assert sink.card is None and sink.stats()["card_silent"]
        sink.send(IdentityScan(layout).scan(frame_of(6)), 0)
        emulator.wait_shown(1)
    finally:
        sink.close()
        emulator.close()
    assert len(emulator.sync) == 1 and np.array_equal(emulator.shown[0], frame_of(6))


def test_a_power_cycle_is_noticed_while_frames_flow(netns, layout):
    """Rediscovery rides along with the frames: no frame waits for the card's answer."""
    emulator = netns.run(Emulator)
    sink = netns.run(ColorlightSink, layout, "clhost", rediscover_s=0.0)
    scan = IdentityScan(layout).scan(frame_of(12))
    try:
        sink.send(scan, 0)
        emulator.power_cycle()
        for n in range(1, 20):
            sink.send(scan, n)
            emulator.wait_shown(n + 1)
            if sink.card_restarts:
                break
        assert sink.card_restarts == 1 and sink.card.uptime_s < 60
        assert np.array_equal(emulator.shown[-1], frame_of(12))
    finally:
        sink.close()
        emulator.close()
    assert sum(kind == "discover" for kind, _ in emulator.log) >= 2


def test_link_and_timing_are_reported(netns, layout):
    emulator, sink = rig(netns, layout)
    try:
        sink.send(IdentityScan(layout).scan(frame_of(7)), 0)
        stats = sink.stats()
    finally:
        sink.close()
        emulator.close()
    assert stats["link"]["up"] and stats["link"]["carrier"]
    assert stats["link"]["speed_mbps"] is None or stats["link"]["speed_mbps"] > 0
    assert stats["last_send_ms"] > 0 and stats["packets"] == 2 * H + 2 + 1  # + discovery


def test_a_missing_or_down_interface_is_one_clear_error(netns, layout):
    with pytest.raises(ConfigError, match="no network interface 'nosuch0'"):
        netns.run(frame_sink, "colorlight:nosuch0", layout)
    netns.ip("link", "set", "clhost", "down")
    with pytest.raises(ConfigError, match="down or has no carrier"):
        netns.run(frame_sink, "colorlight:clhost", layout)
    with pytest.raises(ConfigError, match="order=bgr"):
        frame_sink("colorlight:eth0?order=grb", layout)


def test_the_emulator_sees_a_dropped_row_as_a_wrong_picture(netns, layout):
    """The check can fail: a card that loses row packets shows a picture that differs."""
    emulator, sink = rig(netns, layout)
    emulator.drop_every = 7
    pipe = IdentityScan(layout)
    try:
        sink.send(pipe.scan(frame_of(8)), 0)
        emulator.wait_shown(1)
    finally:
        sink.close()
        emulator.close()
    assert not np.array_equal(emulator.shown[0], frame_of(8))


def test_the_sink_picture_matches_the_screen_picture_helper(layout):
    """The emulator's expectation at identity is ScreenPicture's own output (no namespace needed)."""
    frame = frame_of(11)
    scan = IdentityScan(layout).scan(frame)
    assert np.array_equal(ScreenPicture(layout).picture(scan), frame)


def test_without_permission_for_raw_sockets_the_error_says_what_to_do():
    """As an unprivileged user (``setpriv`` to nobody) the sink is one sentence, no traceback."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        reason = "needs root and setpriv to become an unprivileged user"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c"]
    root = Path(__file__).resolve().parents[2]
    if subprocess.run([*nobody, "import controller.service.frameloop"], cwd=root,
                      capture_output=True, timeout=60).returncode != 0:
        pytest.skip("the unprivileged user cannot read the project here")
    script = ("from controller.config import loads_screen\n"
              "from controller.errors import ConfigError\n"
              "from controller.service.frameloop import frame_sink\n"
              f"try:\n    frame_sink('colorlight:lo', loads_screen({WIDE!r}))\n"
              "except ConfigError as exc:\n    print(exc)\n")
    done = subprocess.run([*nobody, script], capture_output=True, text=True, cwd=root, timeout=60)
    assert done.stdout.strip() == ("--sink colorlight: sending raw Ethernet frames needs root or "
                                   "the CAP_NET_RAW capability; run the service with it"), done.stderr


@pytest.mark.parametrize("height, width", [(3, 1000), (5, 497), (2, 10), (4, 1500)])
def test_row_packets_filled_from_a_picture_are_the_encoders_layout(height, width):
    """``fill`` (the card-buffer path) writes exactly where ``Payloads`` says the fused encoder
    writes, so both paths send the same packets."""
    from controller.fastpath import reference
    from controller.video.colorlight import RowPackets
    rows = RowPackets(height, width)
    picture = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rows.fill(picture)
    want = reference.pack(picture, rows.payloads, rows.buffer.copy())
    assert np.array_equal(rows.buffer, want)
    assert len(list(rows.frames())) == height * -(-width // 497)


@pytest.mark.parametrize("spec, message", [
    ("colorlight:eth0?gamma=abc", "gamma: 'abc' is not a number"),
    ("colorlight:eth0?gamma=2.225", "at most 2 decimal places"),
    ("colorlight:eth0?brightness=9", "the options are order=bgr|rgb and gamma=G"),
])
def test_a_card_gamma_that_cannot_be_is_one_clear_error_before_any_socket(layout, spec, message):
    with pytest.raises(ConfigError, match=message):
        frame_sink(spec, layout)
