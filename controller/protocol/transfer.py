"""LWP/1 payloads of firmware transfers (``FW_*``) and of the card's event log (``GET_EVENTS``).

Kept apart from :mod:`controller.protocol.commands`, which re-exports every
name here, so callers keep writing ``c.FwBegin`` and ``c.EventsReply``.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import astuple, dataclass, field
from typing import ClassVar

from controller.errors import PayloadError
from controller.protocol.payload import Payload, check


class EventCode(enum.IntEnum):
    """Codes in a card's event log (``GET_EVENTS``): what happened while nobody was asking."""

    BOOT = 1
    OVER_TEMPERATURE = 2
    UNDER_VOLTAGE = 3
    FAN_FAULT = 4
    MODULE_LINK_LOST = 5
    FIRMWARE_ROLLED_BACK = 6
    CONFIG_WRITTEN = 7
    WATCHDOG_RESET = 8
    FIRMWARE_CONFIRMED = 9




class FwState(enum.IntEnum):
    """Where a card is in a firmware transfer (``FW_STATUS``), so a transfer can resume."""

    IDLE = 0
    RECEIVING = 1
    COMPLETE = 2
    VERIFIED = 3




# ---------------------------------------------------------------- firmware transfer

@dataclass(frozen=True)
class FwBegin(Payload):
    """Start a firmware transfer: the image's size, model, version, chunk size and SHA-256, so
    the card can refuse a wrong image before erasing anything and verify the right one after."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<IHBBHH32s")
    size: int
    hw_model: int
    major: int
    minor: int
    patch: int
    chunk_size: int
    sha256: bytes

    def __post_init__(self) -> None:
        check("size", self.size, 1, 2**32 - 1)
        check("hw_model", self.hw_model, 0, 0xFFFF)
        check("major", self.major, 0, 255)
        check("minor", self.minor, 0, 255)
        check("patch", self.patch, 0, 0xFFFF)
        check("chunk_size", self.chunk_size, 1, 512)
        if len(self.sha256) != 32:
            raise PayloadError(f"sha256 must be 32 bytes, got {len(self.sha256)}")

    @property
    def chunks(self) -> int:
        """Chunks the image takes; the last may be short."""
        return math.ceil(self.size / self.chunk_size)


@dataclass(frozen=True)
class FwChunk:
    """One numbered piece of a firmware image; numbered so chunks may be re-sent, broadcast to
    many cards at once, and arrive in any order."""

    index: int
    data: bytes

    HEAD: ClassVar[struct.Struct] = struct.Struct("<I")

    def __post_init__(self) -> None:
        check("index", self.index, 0, 2**32 - 1)
        if not 1 <= len(self.data) <= 512:
            raise PayloadError(f"a chunk carries 1..512 bytes, got {len(self.data)}")

    def pack(self) -> bytes:
        return self.HEAD.pack(self.index) + self.data

    @classmethod
    def unpack(cls, payload: bytes) -> FwChunk:
        if len(payload) < cls.HEAD.size + 1:
            raise PayloadError(f"FW_CHUNK of {len(payload)} bytes carries no data")
        return cls(cls.HEAD.unpack_from(payload)[0], payload[cls.HEAD.size:])


FW_STATUS_HEAD = struct.Struct("<BIHI")


@dataclass(frozen=True)
class FwStatusReply:
    """A card's transfer state and a bitmap of the chunks it holds: what lets a transfer resume
    after a cut, sending only what is missing."""

    state: int
    size: int
    chunk_size: int
    received: int
    bitmap: bytes = b""

    @property
    def chunks(self) -> int:
        return math.ceil(self.size / self.chunk_size) if self.chunk_size else 0

    def has(self, index: int) -> bool:
        """Whether the card holds chunk ``index``."""
        byte = index >> 3
        return byte < len(self.bitmap) and bool(self.bitmap[byte] >> (index & 7) & 1)

    def missing(self) -> list[int]:
        """The chunks still to send, in order."""
        return [i for i in range(self.chunks) if not self.has(i)]

    def pack(self) -> bytes:
        return FW_STATUS_HEAD.pack(self.state, self.size, self.chunk_size, self.received) + self.bitmap

    @classmethod
    def unpack(cls, payload: bytes) -> FwStatusReply:
        if len(payload) < FW_STATUS_HEAD.size:
            raise PayloadError(f"FW_STATUS answer of {len(payload)} bytes is too short")
        state, size, chunk, received = FW_STATUS_HEAD.unpack_from(payload)
        reply = cls(state, size, chunk, received, payload[FW_STATUS_HEAD.size:])
        if len(reply.bitmap) != math.ceil(reply.chunks / 8):
            raise PayloadError(f"FW_STATUS bitmap of {len(reply.bitmap)} bytes does not fit "
                               f"{reply.chunks} chunks")
        return reply


# ---------------------------------------------------------------- events

@dataclass(frozen=True)
class GetEvents(Payload):
    """Ask for a card's event log from index ``first`` on; the master keeps a cursor per card
    so each event is read once."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<I")
    first: int = 0

    def __post_init__(self) -> None:
        check("first", self.first, 0, 2**32 - 1)


EVENT = struct.Struct("<IIHI")
MAX_EVENTS_PER_ANSWER = 40


@dataclass(frozen=True)
class Event:
    """One entry of a card's event log: what happened (``code``) and when (card uptime)."""

    index: int
    uptime_s: int
    code: int
    argument: int

    @property
    def name(self) -> str:
        """The event's name, or its number for a code this master does not know."""
        try:
            return EventCode(self.code).name.lower()
        except ValueError:
            return f"event {self.code}"


@dataclass(frozen=True)
class EventsReply:
    """Up to 40 events of a card's log in one answer."""

    events: tuple[Event, ...] = field(default_factory=tuple)

    def pack(self) -> bytes:
        return bytes([len(self.events)]) + b"".join(EVENT.pack(*astuple(e)) for e in self.events)

    @classmethod
    def unpack(cls, payload: bytes) -> EventsReply:
        if not payload:
            raise PayloadError("GET_EVENTS answer is empty")
        count = payload[0]
        if count > MAX_EVENTS_PER_ANSWER or len(payload) != 1 + count * EVENT.size:
            raise PayloadError(f"GET_EVENTS answer says {count} events in {len(payload)} bytes")
        return cls(tuple(Event(*EVENT.unpack_from(payload, 1 + i * EVENT.size))
                         for i in range(count)))
