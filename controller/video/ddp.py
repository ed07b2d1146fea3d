"""DDP, the Distributed Display Protocol (http://3waylabs.com/ddp/), in and out.

Written from the published description.  A packet is a 10-byte header, 4
more bytes of timecode when its flag is set, then data:

====  ====  ===========================================================
byte  size  field
====  ====  ===========================================================
0     1     flags: version in bits 7–6 (``01``), timecode ``0x10``,
            storage ``0x08``, reply ``0x04``, query ``0x02``, PUSH ``0x01``
1     1     sequence number in the low 4 bits (1–15, 0 = not used)
2     1     data type: ``0x0B`` is RGB, 8 bits a channel (WLED, xLights);
            ``0x00``/``0x01`` are what older senders put and mean the same
3     1     destination id: 1 is the display, 255 every device
4     4     byte offset of the data in the display's buffer, big-endian
8     2     data length, big-endian
====  ====  ===========================================================

PUSH on the last packet of a frame shows what the buffer holds.  A sender
that never sets PUSH (some do not) gets its frame shown when a packet reaches
the buffer's end.

The receiver (:class:`DdpSource`) keeps one screen-sized RGB buffer and shows
it on PUSH; packets it cannot use are counted, never raised: a wrong length,
an offset past the frame, another version, a data type or destination that is
not pixels for us, a query.  A frame whose bytes did not all arrive since the
last PUSH is still shown (DDP's buffer keeps the previous bytes, as a real
receiver's does) and counted ``incomplete``.

The sender (:class:`DdpSink`) sends the screen's picture in 8 bits,
re-encoded for the receiver's own curve (docs/correction.md, "Cards with
their own curve"), 480 pixels (1 440 bytes) a packet so a packet fits a 1 500-byte MTU,
PUSH on the last.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from controller.config import Layout
from controller.errors import ConfigError
from controller.fastpath.common import ScanResult
from controller.jsonin import JsonObject
from controller.fastpath import reference
from controller.fastpath.reencode import Payloads, card_gamma, encode_table
from controller.video.batch import BatchSender
from controller.video.encoding import FrameEncoder
from controller.video.picture import ScreenPicture
from controller.video.threaded import ThreadedSource

PORT = 4048
HEADER = struct.Struct(">BBBBIH")
TIMECODE_BYTES = 4
VERSION_1 = 0x40
VERSION_MASK = 0xC0
FLAG_TIMECODE = 0x10
FLAG_REPLY = 0x04
FLAG_QUERY = 0x02
FLAG_PUSH = 0x01
TYPE_RGB8 = 0x0B
PIXEL_TYPES = {0x00, 0x01, TYPE_RGB8}
ID_DISPLAY = 1
ID_ALL = 255
DATA_PER_PACKET = 1440
MAX_DATAGRAM = 65535


def parse_listen(spec: str) -> tuple[str, int]:
    """``ddp:`` or ``ddp://HOST:PORT`` → where to listen (default every address, port 4048)."""
    rest = spec[len("ddp:"):]
    if rest in ("", "//"):
        return "0.0.0.0", PORT
    return _host_port(spec, rest, "0.0.0.0", lowest_port=0)  # 0: any free port (tests)


def parse_target(spec: str) -> tuple[str, int]:
    """``ddp://HOST[:PORT]`` → where to send (port 4048 unless given); options are ignored here."""
    rest = spec[len("ddp:"):].partition("?")[0]
    if not rest.startswith("//") or rest == "//":
        raise ConfigError(f"--sink {spec}: say where to send, as ddp://HOST or ddp://HOST:PORT")
    return _host_port(spec, rest, None, lowest_port=1)


def parse_target_gamma(spec: str) -> str:
    """The receiver's own gamma from ``ddp://HOST[:PORT]?gamma=G`` (1.0 when not given)."""
    query = spec.partition("?")[2]
    options = parse_qs(query, keep_blank_values=True) if query else {}
    if set(options) - {"gamma"}:
        raise ConfigError(f"--sink {spec}: the only option is gamma=G, the receiver's own "
                          f"gamma (1.0 when it applies none)")
    gamma = options.get("gamma", ["1.0"])[-1]
    try:
        card_gamma(gamma)
    except ValueError as exc:
        raise ConfigError(f"--sink {spec}: {exc}") from None
    return gamma


def _host_port(spec: str, rest: str, default_host: str | None,
               lowest_port: int) -> tuple[str, int]:
    hostport = rest.removeprefix("//")
    host, _, port_text = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    host = host.strip("[]") or (default_host or "")
    try:
        port = int(port_text) if port_text else PORT
    except ValueError:
        port = -1
    if not host or not lowest_port <= port < 65536:
        raise ConfigError(f"{spec}: expected ddp://HOST:PORT with a port 1 … 65535 (DDP uses 4048)")
    return host, port


class DdpSource(ThreadedSource):
    """Listens for DDP on UDP and hands the loop a frame on each PUSH."""

    def __init__(self, width: int, height: int, host: str = "0.0.0.0", port: int = PORT) -> None:
        super().__init__(width, height)
        self.name = f"ddp://{host}:{port}"
        self.size = width * height * 3
        self.buffer = bytearray(self.size)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"cannot listen for DDP on {host}:{port}: "
                              f"{exc.strerror or exc}; is another program using the port?") from None
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.packets = 0
        self.shown = 0
        self.incomplete = 0
        self.rejected: dict[str, int] = {}
        self.seen_push = False
        self._filled = 0
        self.start()

    def _reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def produce(self) -> None:
        while not self.stopping.is_set():
            try:
                packet = self.sock.recv(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                raise
            self.take(packet)

    def take(self, packet: bytes) -> None:
        """One datagram: check it, copy its data into the buffer, show on PUSH."""
        self.packets += 1
        if len(packet) < HEADER.size:
            return self._reject("short")
        flags, _seq, data_type, dest, offset, length = HEADER.unpack_from(packet)
        if flags & VERSION_MASK != VERSION_1:
            return self._reject("version")
        if flags & (FLAG_QUERY | FLAG_REPLY):
            return self._reject("query")
        if dest not in (ID_DISPLAY, ID_ALL):
            return self._reject("destination")
        if data_type not in PIXEL_TYPES:
            return self._reject("data type")
        start = HEADER.size + (TIMECODE_BYTES if flags & FLAG_TIMECODE else 0)
        data = packet[start:]
        if len(data) != length:
            return self._reject("length")
        if offset + length > self.size:
            return self._reject("offset")
        self.buffer[offset:offset + length] = data
        self._filled += length
        push = bool(flags & FLAG_PUSH)
        self.seen_push |= push
        if push or (not self.seen_push and offset + length == self.size):
            if self._filled < self.size:
                self.incomplete += 1
            self._filled = 0
            self.shown += 1
            frame = np.frombuffer(bytes(self.buffer), np.uint8).reshape(self.height, self.width, 3)
            self.offer(frame)

    def close(self) -> None:
        super().close()
        self.sock.close()

    def stats(self) -> JsonObject:
        return {**super().stats(), "packets": self.packets, "frames": self.shown,
                "incomplete": self.incomplete, "rejected": dict(self.rejected)}


def ddp_packets(picture: bytes, sequence: int) -> list[bytes]:
    """The datagrams of one frame: 1 440 bytes each, PUSH on the last, sequence 1 … 15."""
    packets = []
    seq = (sequence % 15) + 1
    for offset in range(0, len(picture), DATA_PER_PACKET):
        chunk = picture[offset:offset + DATA_PER_PACKET]
        last = offset + len(chunk) >= len(picture)
        flags = VERSION_1 | (FLAG_PUSH if last else 0)
        packets.append(HEADER.pack(flags, seq, TYPE_RGB8, ID_DISPLAY, offset, len(chunk)) + chunk)
    return packets


class DdpSink:
    """Sends each corrected frame, as the screen's 8-bit picture, to a DDP receiver.

    The frame's datagrams live in one buffer, headers written once (the
    sequence number is refreshed per frame), 1 440 data bytes each; from the
    frame loop the fused encoder writes the pixel bytes straight into it
    (``send_frame``), card buffers go through
    :class:`~controller.video.picture.ScreenPicture` (``send``).  ``gamma`` is
    the receiver's own curve (``ddp://HOST?gamma=2.2``; WLED applies one when
    its "gamma correct colour" is on), 1.0 by default.
    """

    def __init__(self, layout: Layout, host: str, port: int = PORT,
                 gamma: float | str = "1.0") -> None:
        self.name = f"ddp://{host}:{port}"
        try:
            table = encode_table(gamma)
        except ValueError as exc:
            raise ConfigError(f"--sink {self.name}: {exc}") from None
        self.gamma = str(gamma)
        self.picture = ScreenPicture(layout, table)
        pixels = layout.height * layout.width
        self.payloads = Payloads(segment=max(pixels, 1), chunk=DATA_PER_PACKET // 3,
                                 stride=HEADER.size + DATA_PER_PACKET, first=HEADER.size)
        self.buffer = np.zeros(self.payloads.size(pixels), np.uint8)
        self.spans: list[tuple[int, int]] = []
        packets = self.payloads.packets(pixels)
        for n, (offset, first, count) in enumerate(packets):
            flags = VERSION_1 | (FLAG_PUSH if n == len(packets) - 1 else 0)
            self.buffer[offset - HEADER.size:offset] = np.frombuffer(
                HEADER.pack(flags, 1, TYPE_RGB8, ID_DISPLAY, 3 * first, 3 * count), np.uint8)
            self.spans.append((offset - HEADER.size, offset + 3 * count))
        self.encoder = FrameEncoder(layout, self.payloads, table)
        try:
            found = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
            self.address = (str(found[0]), int(found[1]))
        except socket.gaierror as exc:
            raise ConfigError(f"--sink ddp://{host}:{port}: cannot resolve {host!r} "
                              f"({exc.strerror}); give an IP address or a known name") from None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.batch = BatchSender(self.sock, self.buffer, self.spans, self.address)
        self.datagrams = 0
        self.send_errors = 0
        self.last_send_s = 0.0

    def send(self, scan: ScanResult, frame_no: int) -> None:
        """Card buffers in: back to the picture, then out."""
        t0 = time.perf_counter()
        reference.pack(self.picture.picture(scan), self.payloads, self.buffer)
        self._send_packets(frame_no, t0)

    def send_frame(self, frame: np.ndarray, pipeline: Any, frame_no: int) -> None:
        """The frame loop's way: corrected and re-encoded straight into the datagrams."""
        if not self.encoder.usable(pipeline):
            return self.send(pipeline.process(frame), frame_no)
        t0 = time.perf_counter()
        self.encoder.encode(frame, pipeline, self.buffer)
        self._send_packets(frame_no, t0)

    def _send_packets(self, frame_no: int, t0: float) -> None:
        self.buffer[1::self.payloads.stride] = (frame_no % 15) + 1   # every header's sequence
        sent, refused = self.batch.send()   # best effort: a missing receiver must not stop the loop
        self.datagrams += sent
        self.send_errors += refused
        self.last_send_s = time.perf_counter() - t0

    def close(self) -> None:
        self.sock.close()

    def stats(self) -> JsonObject:
        return {"sink": self.name, "datagrams": self.datagrams, "send_errors": self.send_errors,
                "last_send_ms": round(self.last_send_s * 1000, 3), "card_gamma": self.gamma}
