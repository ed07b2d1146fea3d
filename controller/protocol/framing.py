"""LWP/1 framing: frames to wire bytes and back, with no I/O.

A frame on the wire is the COBS encoding of the decoded frame below,
followed by one ``0x00`` delimiter (all integers little-endian)::

     0     1       2     3     4       6     7       9          9+N
    +-----+-------+-----+-----+-------+-----+-------+----------+---------+
    | ver | flags | dst | src |  seq  | cmd |  len  | payload  | crc32c  |
    | 01  | b0 RESP, b1 ERR   | u16   | u8  | u16=N | N <= 640 | 4 bytes |
    +-----+-------+-----+-----+-------+-----+-------+----------+---------+
                 CRC-32C covers bytes 0 .. 8+N

COBS comes from the ``cobs`` package and the CRC from ``crcmod`` (its
``crc-32c`` definition) so the controller's codec shares no code with the
card firmware in ``hw/firmware``: the two meet only in bytes on the wire,
like cards built by another team.

:class:`Deframer` is the receive side: it is fed whatever chunks the port
returns, splits them at delimiters, and drops (and counts, by reason) every
frame that breaks a rule of the spec's section 2, resynchronising on the
next ``0x00``.  It never raises on input.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import crcmod.predefined
from cobs import cobs

from controller.cardaddress import ADDR_FIRST_CARD as ADDR_FIRST_CARD
from controller.cardaddress import ADDR_LAST_CARD as ADDR_LAST_CARD
from controller.errors import FrameError

VERSION = 0x01
FLAG_RESP = 0x01
FLAG_ERR = 0x02
MAX_PAYLOAD = 640
#: A receiver drops anything longer than this before a delimiter.
MAX_ENCODED = 700
HEADER = struct.Struct("<BBBBHBH")
CRC = struct.Struct("<I")

ADDR_CONTROLLER = 0x00
# ADDR_FIRST_CARD, ADDR_LAST_CARD: the cards' range, from controller.cardaddress (imported above).
ADDR_FACTORY = 0xF0
ADDR_BROADCAST = 0xFF

crc32c = crcmod.predefined.mkCrcFun("crc-32c")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded LWP/1 frame.  Construction validates every field."""

    dst: int
    src: int
    seq: int
    cmd: int
    payload: bytes = b""
    flags: int = 0

    def __post_init__(self) -> None:
        for name, value, top in (("dst", self.dst, 0xFF), ("src", self.src, 0xFF),
                                 ("seq", self.seq, 0xFFFF), ("cmd", self.cmd, 0xFF)):
            if not 0 <= value <= top:
                raise ValueError(f"frame field {name}={value} is outside 0..{top}")
        if self.flags & ~(FLAG_RESP | FLAG_ERR):
            raise ValueError(f"frame flags 0x{self.flags:02X} set a reserved bit")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESP)

    @property
    def is_error(self) -> bool:
        return bool(self.flags & FLAG_ERR)


def encode(frame: Frame) -> bytes:
    """Wire bytes of ``frame``: COBS of header, payload and CRC, then ``0x00``."""
    body = HEADER.pack(VERSION, frame.flags, frame.dst, frame.src, frame.seq, frame.cmd,
                       len(frame.payload)) + frame.payload
    stuffed: bytes = cobs.encode(body + CRC.pack(crc32c(body)))
    return stuffed + b"\x00"


def encoded_size(payload_len: int) -> int:
    """Upper bound of wire bytes for a frame with this payload (delimiter included).

    COBS adds one byte per started 254-byte run, plus one; used to derive
    timeouts from frame sizes and the baud rate.
    """
    decoded = HEADER.size + payload_len + CRC.size
    return decoded + decoded // 254 + 1 + 1


def decode(packet: bytes) -> Frame:
    """Decode one COBS packet (without its ``0x00`` delimiter) or raise :class:`FrameError`."""
    if len(packet) > MAX_ENCODED:
        raise FrameError("oversize", f"{len(packet)} bytes before a delimiter (limit {MAX_ENCODED})")
    try:
        raw = cobs.decode(packet)
    except cobs.DecodeError as exc:
        raise FrameError("cobs", f"bad COBS block: {exc}") from None
    if len(raw) < HEADER.size + CRC.size:
        raise FrameError("short", f"{len(raw)} bytes is shorter than a header and CRC")
    ver, flags, dst, src, seq, cmd, length = HEADER.unpack_from(raw)
    if len(raw) != HEADER.size + length + CRC.size:
        raise FrameError("length", f"len field says {length} payload bytes, frame holds "
                                   f"{len(raw) - HEADER.size - CRC.size}")
    (crc,) = CRC.unpack_from(raw, len(raw) - CRC.size)
    if crc != crc32c(raw[:-CRC.size]):
        raise FrameError("crc", "CRC-32C mismatch")
    if ver != VERSION:
        raise FrameError("version", f"unknown version 0x{ver:02X}")
    if flags & ~(FLAG_RESP | FLAG_ERR):
        raise FrameError("flags", f"reserved flag bits set in 0x{flags:02X}")
    if length > MAX_PAYLOAD:
        raise FrameError("length", f"payload of {length} bytes exceeds {MAX_PAYLOAD}")
    return Frame(dst=dst, src=src, seq=seq, cmd=cmd,
                 payload=raw[HEADER.size:HEADER.size + length], flags=flags)


class Deframer:
    """Turns a byte stream, in any chunking, into valid frames.

    ``dropped`` counts discarded frames by :class:`FrameError` reason; a run of
    delimiters (an idle or freshly resynchronised line) is not a frame and is
    not counted.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.frames = 0
        self.dropped: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget a partial frame (e.g. before a new transaction); counters stay."""
        self._buf.clear()
        self._overflow = False

    def feed(self, chunk: bytes) -> Iterator[Frame]:
        """Yield every complete valid frame that ``chunk`` finishes."""
        start = 0
        while True:
            end = chunk.find(b"\x00", start)
            if end < 0:
                self._append(chunk[start:])
                return
            self._append(chunk[start:end])
            frame = self._finish()
            if frame is not None:
                yield frame
            start = end + 1

    def _append(self, data: bytes) -> None:
        if self._overflow or not data:
            return
        if len(self._buf) + len(data) > MAX_ENCODED:
            # Keep nothing more of this frame: it is dropped at its delimiter.
            self._overflow = True
            self._buf.clear()
            return
        self._buf += data

    def _finish(self) -> Frame | None:
        if self._overflow:
            self._overflow = False
            self.dropped["oversize"] += 1
            return None
        if not self._buf:
            return None
        packet = bytes(self._buf)
        self._buf.clear()
        try:
            frame = decode(packet)
        except FrameError as exc:
            self.dropped[exc.reason] += 1
            return None
        self.frames += 1
        return frame

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())
