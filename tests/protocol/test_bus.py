"""The transaction engine against a scripted peer on a real TCP socket.

The peer here is a few lines of test code that answers (or does not) exactly
as each test needs, so retries, late answers, echoes and timeouts can be
provoked deterministically; the engine under test is the real one, over a
real pyserial ``socket://`` port.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from controller.errors import BusTimeout, CardError, PayloadError, PortError
from controller.protocol import commands as c
from controller.protocol.bus import (DEFAULT_LATENCY_S, USB_LATENCY_S, Bus, RS485Config,
                                     default_latency, open_port)
from controller.protocol.framing import FLAG_ERR, FLAG_RESP, Deframer, Frame, encode

PING = c.PingReply(0x0A01, 1, 0, 0, 42, 0, 5, 640)


class ScriptedPeer:
    """Accepts one connection; for each request calls ``script(frame, try_no)``.

    The script returns a list of ``(delay_s, bytes)`` to send back.
    """

    def __init__(self, script):
        self.script = script
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = "socket://127.0.0.1:%d" % self.server.getsockname()[1]
        self.received: list[Frame] = []
        self.tries: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        conn, _ = self.server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        d = Deframer()
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                for frame in d.feed(data):
                    self.received.append(frame)
                    n = self.tries[frame.seq] = self.tries.get(frame.seq, 0) + 1
                    for delay, out in self.script(frame, n):
                        time.sleep(delay)
                        conn.sendall(out)

    def close(self):
        self.server.close()


def answer(req: Frame, payload: bytes = b"", flags: int = FLAG_RESP, **override) -> bytes:
    fields = dict(dst=0, src=req.dst, seq=req.seq, cmd=req.cmd, payload=payload, flags=flags)
    fields.update(override)
    return encode(Frame(**fields))


@pytest.fixture
def peer_bus():
    made = []

    def make(script, **kw):
        peer = ScriptedPeer(script)
        bus = Bus(peer.url, **{"latency": 0.02, **kw})
        made.append((peer, bus))
        return peer, bus
    yield make
    for peer, bus in made:
        bus.close()
        peer.close()


def test_answer_is_decoded_and_rtt_recorded(peer_bus):
    peer, bus = peer_bus(lambda f, n: [(0, answer(f, PING.pack()))])
    assert bus.call(5, c.Cmd.PING) == PING
    s = bus.stats_for(5)
    assert (s.requests, s.retries, s.timeouts, len(s.rtt_s)) == (1, 0, 0, 1)


def test_a_long_answer_over_a_tcp_serial_server_is_taken_in_a_few_reads(peer_bus):
    """pyserial's socket:// port says only "one or more bytes waiting"; reading by that count
    took a 640-byte answer one byte per call, slower than the wire, and PIXEL_SCAN missed its
    window on a TCP serial server."""
    width, rows = 64, 26                                      # 3 x 208 bytes of bitmaps
    bitmap = bytes(range(208))
    scan = c.PixelScanReply(0, 0, rows, width, bitmap, bitmap[::-1], bytes(208))
    peer, bus = peer_bus(lambda f, n: [(0, answer(f, scan.pack()))])
    reads = []
    real_read = bus.port.read
    bus.port.read = lambda size=1: reads.append(size) or real_read(size)
    assert bus.call(4, c.Cmd.PIXEL_SCAN, c.PixelScan(0, 0, rows)) == scan
    assert len(reads) < 20, f"{len(reads)} reads for one answer"


def test_timeout_is_retried_with_the_same_bytes(peer_bus):
    peer, bus = peer_bus(lambda f, n: [] if n < 3 else [(0, answer(f, PING.pack()))])
    assert bus.call(7, c.Cmd.PING) == PING
    assert len(peer.received) == 3
    assert len({(f.seq, f.cmd, f.dst, f.payload) for f in peer.received}) == 1
    s = bus.stats_for(7)
    assert (s.retries, s.timeouts, s.failures) == (2, 2, 0)


def test_no_answer_raises_bus_timeout_in_words(peer_bus):
    peer, bus = peer_bus(lambda f, n: [], retries=2)
    with pytest.raises(BusTimeout, match=r"no card at 0x05 after 3 tries") as err:
        bus.call(5, c.Cmd.PING)
    assert isinstance(err.value, TimeoutError)
    assert len(peer.received) == 3
    assert bus.stats_for(5).failures == 1


def test_late_answer_to_an_earlier_try_is_discarded(peer_bus):
    # Try 1 is answered long after its timeout, carrying a wrong payload so a mix-up would show;
    # the answer to try 2 is the one the engine must return.
    def script(f, n):
        if f.cmd == c.Cmd.GET_BRIGHTNESS:
            return [] if n == 1 else [(0, answer(f, c.Brightness(111).pack()))]
        return [(0, answer(f, PING.pack()))]
    peer, bus = peer_bus(script)
    assert bus.call(3, c.Cmd.GET_BRIGHTNESS).level == 111
    # A stale answer (old seq) arriving before the next request is dropped and counted.
    stale = Frame(dst=0, src=3, seq=(bus._seq - 5) & 0xFFFF, cmd=c.Cmd.GET_BRIGHTNESS,
                  payload=c.Brightness(999).pack(), flags=FLAG_RESP)
    peer.script = lambda f, n: [(0, encode(stale)), (0, answer(f, c.Brightness(222).pack()))]
    assert bus.call(3, c.Cmd.GET_BRIGHTNESS).level == 222
    assert bus.stats_for(3).late == 1


@pytest.mark.parametrize("override", [dict(src=4), dict(cmd=c.Cmd.PING), dict(flags=0)])
def test_answers_that_do_not_match_are_ignored(peer_bus, override):
    def script(f, n):
        wrong = answer(f, c.Brightness(9).pack(), **override)
        return [(0, wrong), (0, answer(f, c.Brightness(5).pack()))]
    peer, bus = peer_bus(script)
    assert bus.call(3, c.Cmd.GET_BRIGHTNESS).level == 5


def test_error_answer_raises_card_error_without_retry(peer_bus):
    peer, bus = peer_bus(lambda f, n: [(0, answer(f, b"\x03level too high", FLAG_RESP | FLAG_ERR))])
    with pytest.raises(CardError, match=r"card 0x05 refused SET_BRIGHTNESS: BAD_VALUE: level too high") as err:
        bus.call(5, c.Cmd.SET_BRIGHTNESS, c.Brightness(1))
    assert err.value.code == c.ErrorCode.BAD_VALUE
    assert len(peer.received) == 1
    assert bus.stats_for(5).errors == 1


def test_garbage_before_the_answer_is_counted_and_survived(peer_bus):
    peer, bus = peer_bus(lambda f, n: [(0, b"\x13\x37garbage\x00"), (0, answer(f, PING.pack()))])
    assert bus.call(9, c.Cmd.PING) == PING
    assert bus.stats_for(9).bad_frames == 1


def test_broadcast_is_sent_once_and_not_awaited(peer_bus):
    peer, bus = peer_bus(lambda f, n: [])
    t = time.monotonic()
    bus.broadcast(c.Cmd.TEST_PATTERN, c.TestPattern(c.Pattern.WHITE))
    bus.wait_idle()
    assert time.monotonic() - t < 0.05
    time.sleep(0.05)
    assert [(f.dst, f.cmd, f.payload) for f in peer.received] == [(0xFF, 0x20, b"\x04\xff\xff")]


def test_sequence_numbers_advance_per_transaction_not_per_try(peer_bus):
    peer, bus = peer_bus(lambda f, n: [] if n == 1 else [(0, answer(f, PING.pack()))])
    bus.call(1, c.Cmd.PING)
    bus.call(1, c.Cmd.PING)
    seqs = [f.seq for f in peer.received]
    assert seqs[0] == seqs[1] and seqs[2] == seqs[3] and seqs[2] == (seqs[0] + 1) & 0xFFFF


def test_timeout_follows_the_command_deadline(peer_bus):
    # FW_BEGIN may take 250 ms to answer (erasing a bank); PING only 5 ms.
    peer, bus = peer_bus(lambda f, n: [(0.15, answer(f))], retries=0)
    bus.call(2, c.Cmd.FW_BEGIN, c.FwBegin(1024, 1, 1, 0, 0, 256, bytes(32)))
    with pytest.raises(BusTimeout):
        bus.call(2, c.Cmd.FW_ABORT)


def test_wrong_request_type_and_address_are_refused_before_sending(peer_bus):
    peer, bus = peer_bus(lambda f, n: [])
    with pytest.raises(PayloadError, match="SET_BRIGHTNESS takes a Brightness"):
        bus.call(1, c.Cmd.SET_BRIGHTNESS, c.Empty())
    with pytest.raises(PayloadError, match="outside 0x01..0xF0"):
        bus.call(0xFF, c.Cmd.PING)
    time.sleep(0.02)
    assert peer.received == []


def test_loop_url_sees_only_its_own_echo():
    # loop:// returns what is written, like a half-duplex adapter echoing its own transmission.
    bus = Bus("loop://", latency=0.001, retries=1)
    with pytest.raises(BusTimeout):
        bus.call(1, c.Cmd.PING)
    assert bus.stats_for(1).late == 0
    bus.close()


def test_spy_url_logs_traffic_for_field_debugging(tmp_path):
    master, slave = os.openpty()
    log = tmp_path / "spy.txt"
    bus = Bus(f"spy://{os.ttyname(slave)}?file={log}", latency=0.001, retries=0)
    with pytest.raises(BusTimeout):
        bus.call(1, c.Cmd.PING)
    bus.close()
    assert os.read(master, 100).endswith(b"\x00")  # the request went through the spy to the port
    assert "TX" in log.read_text()
    os.close(master)
    os.close(slave)


def test_bad_ports_are_port_errors_in_words():
    with pytest.raises(PortError, match="cannot open /dev/does-not-exist"):
        Bus("/dev/does-not-exist")
    with pytest.raises(PortError, match="baud rate 9600 is outside"):
        open_port("loop://", 9600)


def test_rs485_mode_reaches_pyserial_and_a_port_without_it_says_so():
    settings = RS485Config(rts_level_for_tx=False, delay_before_tx=0.001).settings()
    assert settings.rts_level_for_tx is False and settings.delay_before_tx == 0.001
    master, slave = os.openpty()  # a pseudo-terminal has no RS-485 ioctl
    with pytest.raises(PortError, match="RS485"):
        open_port(os.ttyname(slave), rs485=RS485Config())
    os.close(master)
    os.close(slave)


# ------------------------------------------------------------------ statistics across threads


def test_a_snapshot_is_a_copy_taken_at_one_instant(peer_bus):
    peer, bus = peer_bus(lambda f, n: [(0, b"\x13\x37garbage\x00"), (0, answer(f, PING.pack()))])
    bus.call(5, c.Cmd.PING)
    snap = bus.snapshot()
    assert (snap.links[5].requests, len(snap.links[5].rtt_s), snap.links[5].bad_frames) == (1, 1, 1)
    assert sum(snap.dropped.values()) == 1 and snap.frames == 1 and snap.operations == 0
    bus.call(5, c.Cmd.PING)
    assert (snap.links[5].requests, len(snap.links[5].rtt_s)) == (1, 1)   # the copy did not move
    assert bus.snapshot().links[5].requests == 2


def test_the_bus_thread_counts_under_the_statistics_lock(peer_bus):
    """While a reader holds the lock the bus thread cannot count: a counter written without
    it (relying on the GIL) would let the call finish here."""
    peer, bus = peer_bus(lambda f, n: [(0, answer(f, PING.pack()))])
    done = threading.Event()
    worker = threading.Thread(target=lambda: (bus.call(4, c.Cmd.PING), done.set()))
    with bus._stats_lock:
        worker.start()
        assert not done.wait(0.3), "the call counted without taking the statistics lock"
    worker.join(5)
    assert done.is_set() and bus.snapshot().links[4].requests == 1


def test_snapshots_from_another_thread_stay_consistent_while_the_bus_counts(peer_bus):
    # A second of latency: the peer shares this process's GIL with the snapshot loop, and a
    # timeout on a loaded machine is not what this test is about.
    peer, bus = peer_bus(lambda f, n: [(0, answer(f, PING.pack()))], latency=1.0)
    stop = threading.Event()
    failed: list[Exception] = []

    def hammer():
        try:
            while not stop.is_set():
                bus.call(6, c.Cmd.PING)
        except Exception as exc:                # noqa: BLE001 - reported by the assertion below
            failed.append(exc)
    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        seen = snapshots = 0
        # until the counts moved while snapshots were taken: a loaded machine just takes longer
        deadline = time.monotonic() + 60
        while (seen <= 20 or snapshots < 100) and time.monotonic() < deadline and not failed:
            link = bus.snapshot().links.get(6)
            snapshots += 1
            if link is not None:
                # at most the one transaction in flight is counted but not yet answered
                assert 0 <= link.requests - len(link.rtt_s) <= 1
                link.as_dict()                      # sorting the copied deque never races
                seen = link.requests
    finally:
        stop.set()
        worker.join(5)
    assert not failed and seen > 20 and snapshots >= 100


def test_the_bus_owner_adds_its_operations_to_the_snapshot(peer_bus):
    import asyncio

    from controller.service.busowner import BusOwner
    peer, bus = peer_bus(lambda f, n: [(0, answer(f, PING.pack()))])
    owner = BusOwner(bus)

    async def go():
        await owner.call(2, c.Cmd.PING)
        await owner.call(2, c.Cmd.PING)
        return owner.statistics()
    stats = asyncio.run(go())
    owner._executor.shutdown(wait=True)
    assert stats.operations == 2 and stats.links[2].requests == 2


@pytest.mark.parametrize("url, allowance", [
    ("/dev/ttyUSB0", USB_LATENCY_S), ("/dev/ttyACM1", USB_LATENCY_S), ("COM3", USB_LATENCY_S),
    ("/dev/cu.usbserial-A10K", USB_LATENCY_S),
    ("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K-if00-port0", USB_LATENCY_S),
    ("/dev/serial/by-path/platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0-port0", USB_LATENCY_S),
    ("/dev/ttyAMA0", DEFAULT_LATENCY_S), ("/dev/ttyS0", DEFAULT_LATENCY_S),
    ("socket://127.0.0.1:4000", DEFAULT_LATENCY_S), ("/dev/pts/3", DEFAULT_LATENCY_S),
])
def test_usb_adapters_get_their_latency_timer_under_every_name_udev_gives_them(url, allowance):
    assert default_latency(url) == allowance
