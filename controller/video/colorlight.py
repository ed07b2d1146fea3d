"""Colorlight 5A-75 / 5A-75B receiving cards over raw Ethernet (``AF_PACKET``).

Written from PanelPlayer's ``protocol/readme.md``, FPP's
``ColorLight-5a-75.cpp`` header comment and haraldkubota/colorlight's
detection notes; no code is shared with them.  Every frame goes from
``22:22:33:44:55:66`` to ``11:22:33:44:55:66`` and has no EtherType: the byte
after the addresses is the packet type.

* ``0x55`` row: row u16 BE, pixel offset u16 BE, pixel count u16 BE, ``0x08 0x88``,
  then at most 497 pixels of 3 bytes (so the frame stays within 1 514 bytes).
* ``0x0A`` brightness: red, green, blue brightness, ``0xFF``, 60 zero bytes.
* ``0x01`` display ("sync"): 98 bytes, ``0x07`` first, overall brightness at
  22, ``0x05`` at 23, red/green/blue brightness at 25–27.  It shows the rows
  sent so far and must come at least 5 ms after the last row (PanelPlayer),
  which this sink waits (``sync_gap_s``).
* ``0x07`` discovery (270 zero bytes) is answered by a ``0x08`` frame: model
  at 14 (4 = 5A), firmware major.minor at 15–16, width and height u16 BE at
  34–35 and 36–37 (the byte after ``0x08`` is ``0x05`` in every reply seen;
  the sink listens for exactly ``08 05``).  Cards with firmware 13 or later want the display and
  brightness packets twice; the sink does so once discovery has told it.

**Colour order.**  PanelPlayer (and other independent notes) say the pixel
bytes are BGR; FPP's comment says RGB, but FPP sends whatever order its
``colorOrder`` setting says, so its comment describes its default setting,
not the card.  We send **BGR**, pinned by a test; ``order="rgb"``
(``colorlight:eth0?order=rgb``) is there for a card configured otherwise.

**16 → 8 bits.**  The card applies its own gamma (``colorlight:eth0?gamma=2.2``;
1.0, the default, for a linear card), so the corrected linear light is
re-encoded through its inverse (docs/correction.md, "Cards with their own
curve"): from the frame loop in one fused pass straight into the row packets
(``send_frame``), or from card buffers through
:class:`~controller.video.picture.ScreenPicture` (``send``).  Brightness
packets say full (255): the pipeline already applied ours.

**Packet counter and uptime** in the discovery reply: no public description
gives their place.  :data:`REPLY_COUNTER_AT` and :data:`REPLY_UPTIME_AT` are
PROVISIONAL (u32 BE after the resolution) until checked against a capture
from a real card; a power-cycle shows as either going backwards.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from controller.config import Layout
from controller.errors import ConfigError
from controller.fastpath.common import ScanResult
from controller.jsonin import JsonObject
from controller.fastpath.reencode import Payloads, card_gamma, encode_table
from controller.video.batch import BatchSender
from controller.video.encoding import FrameEncoder
from controller.video.picture import ScreenPicture

log = logging.getLogger("ledwarden.video")

CARD_MAC = bytes.fromhex("112233445566")
SENDER_MAC = bytes.fromhex("222233445566")
ADDRESSES = CARD_MAC + SENDER_MAC
TYPE_SYNC = 0x01
TYPE_DISCOVER = 0x07
TYPE_REPLY = 0x08
TYPE_BRIGHTNESS = 0x0A
TYPE_ROW = 0x55
ROW_HEADER = struct.Struct(">BHHHBB")
ROW_MARK = (0x08, 0x88)
MAX_PIXELS = 497
SYNC_BYTES = 98
BRIGHTNESS_BYTES = 64
DISCOVER_BYTES = 270
DOUBLE_FROM_FIRMWARE = 13
MODELS = {4: "5A"}
REPLY_COUNTER_AT = 38   # PROVISIONAL, see the module docstring
REPLY_UPTIME_AT = 42    # PROVISIONAL
REPLY_ETHERTYPE = 0x0805
PACKET_OUTGOING = 4
SIOCGIFFLAGS = 0x8913
SIOCETHTOOL = 0x8946
ETHTOOL_GSET = 0x00000001
IFF_UP = 0x1
IFF_RUNNING = 0x40
ORDERS = {"bgr": (2, 1, 0), "rgb": (0, 1, 2)}
#: What sending or reading says when the link is gone or full: counted, never the loop's end.
LINK_GONE = (errno.ENETDOWN, errno.ENXIO, errno.ENOBUFS, errno.EAGAIN)


@dataclass(frozen=True)
class CardInfo:
    """What a card says in its discovery reply."""

    model: str
    firmware: str
    firmware_major: int
    width: int
    height: int
    packet_counter: int
    uptime_s: int

    @property
    def doubles(self) -> bool:
        """Firmware 13 and later want the display and brightness packets twice."""
        return self.firmware_major >= DOUBLE_FROM_FIRMWARE


def discovery_frame() -> bytes:
    return ADDRESSES + bytes([TYPE_DISCOVER]) + bytes(DISCOVER_BYTES)


def parse_reply(frame: bytes) -> CardInfo | None:
    """A discovery reply from a card, or ``None`` for any other frame."""
    if len(frame) < REPLY_UPTIME_AT + 4 or frame[6:12] != CARD_MAC or frame[12] != TYPE_REPLY:
        return None
    model = frame[14]
    width, height = struct.unpack_from(">HH", frame, 34)
    return CardInfo(model=MODELS.get(model, f"model {model}"),
                    firmware=f"{frame[15]}.{frame[16]}", firmware_major=frame[15],
                    width=width, height=height,
                    packet_counter=struct.unpack_from(">I", frame, REPLY_COUNTER_AT)[0],
                    uptime_s=struct.unpack_from(">I", frame, REPLY_UPTIME_AT)[0])


def sync_frame(brightness: int = 255, rgb: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    payload = bytearray(SYNC_BYTES)
    payload[0] = 0x07
    payload[22] = brightness
    payload[23] = 0x05
    payload[25:28] = bytes(rgb)
    return ADDRESSES + bytes([TYPE_SYNC]) + payload


def brightness_frame(rgb: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    payload = bytearray(BRIGHTNESS_BYTES)
    payload[0:3] = bytes(rgb)
    payload[3] = 0xFF
    return ADDRESSES + bytes([TYPE_BRIGHTNESS]) + payload


class RowPackets:
    """The row packets of a ``height`` × ``width`` picture in one buffer, refilled each frame.

    Packet ``i`` (row ``i // per_row``, part ``i % per_row``: a row wider than
    497 pixels takes several) starts at ``i * stride``; addresses and header
    are written at construction, the pixel bytes after them by the fused
    encoder (:attr:`payloads` says where, for :class:`controller.fastpath.Encoder`)
    or by :meth:`fill` from a picture.  :meth:`frames` then yields each packet
    as a view, so sending costs one system call a packet and no copy.
    """

    def __init__(self, height: int, width: int, order: str = "bgr") -> None:
        header = len(ADDRESSES) + ROW_HEADER.size
        chunk = min(MAX_PIXELS, max(width, 1))
        self.payloads = Payloads(segment=max(width, 1), chunk=chunk, stride=header + 3 * chunk,
                                 first=header, order=ORDERS[order])
        self.pixels = height * width
        # whole packets for every row, so the buffer is also [row][part][byte] for fill()
        self.per_row = self.payloads.per_segment
        self.buffer = np.zeros(height * self.per_row * self.payloads.stride, np.uint8)
        self.spans: list[tuple[int, int]] = []
        for offset, first, count in self.payloads.packets(self.pixels):
            row, start = divmod(first, width)
            self.buffer[offset - header:offset] = np.frombuffer(
                ADDRESSES + ROW_HEADER.pack(TYPE_ROW, row, start, count, *ROW_MARK), np.uint8)
            self.spans.append((offset - header, offset + 3 * count))

    def fill(self, picture: np.ndarray) -> None:
        """Copy ``uint8[H][W][3]`` (RGB) into the packets, in the card's colour order
        (``reference.pack``'s result, one NumPy assignment per part and channel)."""
        height, width = picture.shape[:2]
        packets = self.buffer.reshape(height, self.per_row, self.payloads.stride)
        first, chunk = self.payloads.first, self.payloads.chunk
        for part, start in enumerate(range(0, width, chunk)):
            count = min(chunk, width - start)
            pixels = packets[:, part, first:first + 3 * count].reshape(height, count, 3)
            for k, channel in enumerate(self.payloads.order):  # per channel: no temporary
                pixels[:, :, k] = picture[:, start:start + count, channel]

    def frames(self) -> Iterator[memoryview]:
        view = self.buffer.data
        for start, end in self.spans:
            yield view[start:end]


def row_frames(picture: np.ndarray, order: str = "bgr") -> list[bytes]:
    """Every row of ``uint8[H][W][3]`` (RGB) as row packets of at most 497 pixels."""
    packets = RowPackets(picture.shape[0], picture.shape[1], order)
    packets.fill(picture)
    return [bytes(frame) for frame in packets.frames()]


def link_state(sock: socket.socket, iface: str) -> JsonObject:
    """Carrier and speed of ``iface``, asked through ``sock`` (so right inside a network namespace,
    where ``/sys/class/net`` may show another namespace's devices)."""
    name = iface.encode()[:15]
    flags = struct.unpack_from("H", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS,
                                                struct.pack("16s24x", name)), 16)[0]
    speed = None
    cmd = ctypes.create_string_buffer(struct.pack("I", ETHTOOL_GSET), 44)
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL,
                    struct.pack("16sP", name, ctypes.addressof(cmd)).ljust(40, b"\0"))
        low, high = struct.unpack_from("H", cmd, 12)[0], struct.unpack_from("H", cmd, 28)[0]
        value = low | (high << 16)
        speed = None if value in (0, 0xFFFF, 0xFFFFFFFF) else value
    except OSError:
        pass  # no ethtool support on this device: speed unknown
    return {"up": bool(flags & IFF_UP), "carrier": bool(flags & IFF_RUNNING),
            "speed_mbps": speed, "gigabit": speed is not None and speed >= 1000}


def parse_spec(spec: str) -> tuple[str, str, str]:
    """``colorlight:IFACE[?order=bgr|rgb&gamma=G]`` → interface, colour order, card gamma."""
    rest = spec[len("colorlight:"):]
    iface, _, query = rest.partition("?")
    options = parse_qs(query, keep_blank_values=True) if query else {}
    if set(options) - {"order", "gamma"}:
        raise ConfigError(f"--sink {spec}: the options are order=bgr|rgb and gamma=G "
                          f"(the card's own gamma, 1.0 when it is linear)")
    order = options.get("order", ["bgr"])[-1]
    if order not in ORDERS:
        raise ConfigError(f"--sink {spec}: the colour order is order=bgr or order=rgb, not {order!r}")
    gamma = options.get("gamma", ["1.0"])[-1]
    try:
        card_gamma(gamma)
    except ValueError as exc:
        raise ConfigError(f"--sink {spec}: {exc}") from None
    if not iface or len(iface) > 15 or "/" in iface:
        raise ConfigError(f"--sink {spec}: name the network interface the card is on, "
                          f"as colorlight:eth0")
    return iface, order, gamma


class ColorlightSink:
    """Sends each corrected frame to a Colorlight card: rows, a gap, brightness, display.

    Discovery runs once at start (waiting up to ``discover_timeout_s``) and then
    every ``rediscover_s`` without waiting: the question goes out after a
    frame and answers are read after later frames, so a power-cycled card
    (uptime or packet counter going backwards) is noticed and a silent one
    shows as ``card_silent`` while frames keep flowing to it either way.
    """

    def __init__(self, layout: Layout, iface: str, *, order: str = "bgr",
                 gamma: float | str = "1.0", sync_gap_s: float = 0.005,
                 slow_after_s: float = 0.020, discover_timeout_s: float = 0.3,
                 rediscover_s: float = 5.0) -> None:
        self.name = f"colorlight:{iface}"
        self.iface, self.order, self.sync_gap_s, self.slow_after_s = iface, order, sync_gap_s, slow_after_s
        self.rediscover_s = rediscover_s
        self.layout = layout
        try:
            table = encode_table(gamma)
        except ValueError as exc:
            raise ConfigError(f"--sink colorlight:{iface}: {exc}") from None
        self.gamma = str(gamma)
        self.picture = ScreenPicture(layout, table)
        self.rows = RowPackets(layout.height, layout.width, order)
        self.encoder = FrameEncoder(layout, self.rows.payloads, table)
        try:
            socket.if_nametoindex(iface)
        except OSError:
            raise ConfigError(f"--sink colorlight:{iface}: there is no network interface "
                              f"{iface!r}; see `ip link` for the names") from None
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            # The reply's type byte and the one after it (0x08 0x05) read as an EtherType, so
            # the kernel hands this socket the replies alone, not a copy of every row we send.
            self.replies = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                         socket.htons(REPLY_ETHERTYPE))
        except PermissionError:
            raise ConfigError("--sink colorlight: sending raw Ethernet frames needs root or the "
                              "CAP_NET_RAW capability; run the service with it") from None
        self.sock.bind((iface, 0))
        self.batch = BatchSender(self.sock, self.rows.buffer, self.rows.spans)
        self.replies.bind((iface, REPLY_ETHERTYPE))
        self.replies.setblocking(False)
        self.link = link_state(self.sock, iface)
        if not self.link["up"] or not self.link["carrier"]:
            self.close()
            raise ConfigError(f"--sink colorlight:{iface}: the interface is down or has no "
                              f"carrier; plug in the card's cable and `ip link set {iface} up`")
        self.frames = 0
        self.packets = 0
        self.send_errors = 0
        self.slow_frames = 0
        self.last_send_s = 0.0
        self.card: CardInfo | None = None
        self.card_restarts = 0
        self.card_seen_at: float | None = None
        self.asked_at = 0.0
        self.discover(discover_timeout_s)

    def discover(self, timeout_s: float = 0.3) -> CardInfo | None:
        """Ask the card who it is and wait up to ``timeout_s`` for the answer (kept in :attr:`card`)."""
        seen = self.card_seen_at
        self._ask()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if select.select([self.replies], [], [], 0.02)[0]:
                self.read_replies()
                if self.card_seen_at != seen:
                    return self.card
        return None

    def _ask(self) -> None:
        self.asked_at = time.monotonic()
        self._send(discovery_frame())

    def read_replies(self) -> None:
        """Take every discovery reply waiting, without waiting for more."""
        while True:
            try:
                frame, address = self.replies.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # a pulled cable (ENETDOWN …) must not stop the loop either
                if exc.errno in LINK_GONE:
                    return
                raise
            info = parse_reply(frame) if address[2] != PACKET_OUTGOING else None
            if info is None:
                continue
            old = self.card
            if old is not None and (info.uptime_s < old.uptime_s
                                    or info.packet_counter < old.packet_counter):
                self.card_restarts += 1
                log.warning("%s: the card restarted (uptime %d s after %d s)", self.name,
                            info.uptime_s, old.uptime_s)
            if (info.width, info.height) != (self.layout.width, self.layout.height) and (
                    old is None or (old.width, old.height) != (info.width, info.height)):
                log.warning("%s: the card is set up for %dx%d, the screen is %dx%d", self.name,
                            info.width, info.height, self.layout.width, self.layout.height)
            self.card, self.card_seen_at = info, time.monotonic()

    def _send(self, frame: bytes | memoryview, copies: int = 1) -> None:
        for _ in range(copies):
            try:
                self.sock.send(frame)
                self.packets += 1
            except OSError as exc:  # best effort: a pulled cable must not stop the loop
                self.send_errors += 1
                if exc.errno not in LINK_GONE:
                    raise

    def send(self, scan: ScanResult, frame_no: int) -> None:
        """Card buffers in (the LWV1 way): back to the picture, then out."""
        t0 = time.perf_counter()
        self.rows.fill(self.picture.picture(scan))
        self._send_rows(t0)

    def send_frame(self, frame: np.ndarray, pipeline: Any, frame_no: int) -> None:
        """The frame loop's way: corrected and re-encoded straight into the row packets."""
        if not self.encoder.usable(pipeline):
            return self.send(pipeline.process(frame), frame_no)
        t0 = time.perf_counter()
        self.encoder.encode(frame, pipeline, self.rows.buffer)
        self._send_rows(t0)

    def _send_rows(self, t0: float) -> None:
        sent, refused = self.batch.send(lambda err: err not in LINK_GONE)
        self.packets += sent
        self.send_errors += refused
        time.sleep(self.sync_gap_s)  # the card needs the gap before it shows the rows
        copies = 2 if self.card is not None and self.card.doubles else 1
        self._send(brightness_frame(), copies)
        self._send(sync_frame(), copies)
        self.last_send_s = time.perf_counter() - t0
        self.frames += 1
        if self.last_send_s > self.slow_after_s:
            self.slow_frames += 1
        self.read_replies()
        if time.monotonic() - self.asked_at >= self.rediscover_s:
            self._ask()

    @property
    def card_silent(self) -> bool:
        """No discovery reply for three rounds of asking (or never)."""
        return self.card_seen_at is None or (
            time.monotonic() - self.card_seen_at > 3 * max(self.rediscover_s, 1.0))

    def close(self) -> None:
        self.sock.close()
        self.replies.close()

    def cards(self) -> list[JsonObject]:
        """The card on this interface as ``ledwarden cards`` and ``status`` show it: what its last
        discovery reply said, how long ago, whether it matches the screen, restarts seen."""
        card, seen = self.card, self.card_seen_at
        entry: JsonObject = {"sink": self.name, "interface": self.iface, "found": card is not None,
                       "silent": self.card_silent, "restarts": self.card_restarts,
                       "seen_s_ago": None if seen is None else round(time.monotonic() - seen, 1)}
        if card is not None:
            entry.update(asdict(card), doubles=card.doubles,
                         matches_screen=(card.width, card.height) == (self.layout.width,
                                                                       self.layout.height))
        return [entry]

    def stats(self) -> JsonObject:
        return {"sink": self.name, "frames": self.frames, "packets": self.packets,
                "send_errors": self.send_errors, "slow_frames": self.slow_frames,
                "last_send_ms": round(self.last_send_s * 1000, 3), "link": self.link,
                "card_gamma": self.gamma,
                "card_restarts": self.card_restarts, "card_silent": self.card_silent,
                "card": None if self.card is None else {**asdict(self.card),
                                                        "doubles": self.card.doubles}}
