"""Typed, validated payloads for every LWP/1 command (spec section 5).

Each request and each response is a frozen dataclass that validates its
fields when built and knows its ``struct`` layout: ``pack()`` gives payload
bytes, ``unpack(payload)`` parses them and raises :class:`PayloadError` when
the length or a field is wrong.  :data:`COMMANDS` ties each command code to
its request and response types and to the card's answer deadline, which is
what the transaction engine needs to know about a command and nothing more.
Commands whose response is empty have ``response=None``.

The payloads of firmware transfers and of the event log live in
:mod:`controller.protocol.transfer`, their base in
:mod:`controller.protocol.payload`; both are re-exported here, so every caller
names a payload as ``commands.X`` whatever module holds it.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass
from typing import ClassVar

from controller.brightness import LEVEL_MAX
from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD
from controller.errors import PayloadError
from controller.protocol.framing import MAX_PAYLOAD
from controller.protocol.payload import Empty as Empty
from controller.protocol.payload import Message as Message
from controller.protocol.payload import Payload as Payload
from controller.protocol.payload import check as _check
# Re-exported (``X as X``): callers write c.FwBegin, c.EventsReply … whatever module holds them.
from controller.protocol.transfer import EVENT as EVENT
from controller.protocol.transfer import FW_STATUS_HEAD as FW_STATUS_HEAD
from controller.protocol.transfer import MAX_EVENTS_PER_ANSWER as MAX_EVENTS_PER_ANSWER
from controller.protocol.transfer import Event as Event
from controller.protocol.transfer import EventCode as EventCode
from controller.protocol.transfer import EventsReply as EventsReply
from controller.protocol.transfer import FwBegin as FwBegin
from controller.protocol.transfer import FwChunk as FwChunk
from controller.protocol.transfer import FwState as FwState
from controller.protocol.transfer import FwStatusReply as FwStatusReply
from controller.protocol.transfer import GetEvents as GetEvents


class Cmd(enum.IntEnum):
    """Command codes (spec section 5); the first byte after the header says what a frame asks."""

    PING = 0x01
    GET_STATUS = 0x02
    SET_ADDRESS = 0x03
    REBOOT = 0x04
    GET_CONFIG = 0x10
    SET_CONFIG = 0x11
    SET_BRIGHTNESS = 0x12
    GET_BRIGHTNESS = 0x13
    GET_OUTPUT = 0x14
    TEST_PATTERN = 0x20
    PIXEL_SCAN = 0x21
    DETECT_START = 0x22
    FW_BEGIN = 0x30
    FW_CHUNK = 0x31
    FW_STATUS = 0x32
    FW_COMMIT = 0x33
    FW_CONFIRM = 0x34
    FW_ABORT = 0x35
    GET_EVENTS = 0x40


class ErrorCode(enum.IntEnum):
    """Why a card refused a request (spec section 6), carried in an error answer."""

    UNKNOWN_COMMAND = 0x01
    BAD_LENGTH = 0x02
    BAD_VALUE = 0x03
    BUSY = 0x04
    BAD_STATE = 0x05
    VERIFY_FAILED = 0x06
    STORAGE = 0x07


def error_name(code: int) -> str:
    """The name of an error code, or its number when a newer card sends one this master does not
    know: a message must still say something true."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error 0x{code:02X}"


class StatusFlag(enum.IntFlag):
    """The ``flags`` bits of ``GET_STATUS`` (spec section 5): what a card says is wrong with it."""

    OVER_TEMPERATURE = 1 << 0
    UNDER_VOLTAGE = 1 << 1
    FAN_FAULT = 1 << 2
    MODULE_LINK_LOST = 1 << 3
    CONFIG_INVALID = 1 << 4
    TRIAL_FIRMWARE = 1 << 5
    PIXEL_FAULTS = 1 << 6
    DETECTING = 1 << 7


class Pattern(enum.IntEnum):
    """``TEST_PATTERN``'s patterns; ``NORMAL`` goes back to showing the video."""

    NORMAL = 0
    RED = 1
    GREEN = 2
    BLUE = 3
    WHITE = 4
    GRID = 5
    GRADIENT = 6
    MODULE_NUMBERS = 7


# ---------------------------------------------------------------- PING, status, address

@dataclass(frozen=True)
class PingReply(Payload):
    """Who a card is: model, firmware, serial, the bank it booted, and the largest payload it
    takes (so the master never sends it more)."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<HBBHQBIH")
    hw_model: int
    fw_major: int
    fw_minor: int
    fw_patch: int
    serial: int
    active_bank: int
    uptime_s: int
    max_payload: int

    @property
    def version(self) -> str:
        """Firmware version as ``MAJOR.MINOR.PATCH``, the form packages and reports use."""
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"

    @property
    def bank(self) -> str:
        """The flash bank the card runs from, ``A`` or ``B`` (``?N`` for a value the spec lacks)."""
        return "AB"[self.active_bank] if self.active_bank in (0, 1) else f"?{self.active_bank}"


@dataclass(frozen=True)
class StatusReply(Payload):
    """A card's health: temperature, supply, fan, flags, and the frames it received good and bad
    (``rx_bad`` growing is how a noisy line or a bad cable shows)."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<hHHHII")
    temp_dc: int
    supply_mv: int
    fan_rpm: int
    flags: int
    rx_ok: int
    rx_bad: int

    @property
    def temperature_c(self) -> float:
        """Temperature in °C; the wire carries tenths of a degree."""
        return self.temp_dc / 10

    @property
    def status(self) -> StatusFlag:
        """``flags`` as :class:`StatusFlag`, so ``in`` tests read as words."""
        return StatusFlag(self.flags)

    @property
    def flag_names(self) -> list[str]:
        """The flags set, lower-case (``over_temperature``): the form the API and reports show."""
        return [f.name.lower() for f in StatusFlag if f in self.status and f.name]


@dataclass(frozen=True)
class SetAddress(Payload):
    """Give the card with ``serial`` a new bus address; sent as a broadcast during discovery, so
    only the card whose serial matches acts."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<QB")
    serial: int
    address: int

    def __post_init__(self) -> None:
        _check("serial", self.serial, 0, 2**64 - 1)
        _check("address", self.address, ADDR_FIRST_CARD, ADDR_LAST_CARD)


# ---------------------------------------------------------------- config, brightness, patterns

@dataclass(frozen=True)
class CardConfig(Payload):
    """The config block; ranges are those the simulated card enforces (docs/protocol.md)."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<HHBBBBBH")
    module_w: int
    module_h: int
    scan: int
    modules_x: int
    modules_y: int
    chain: int = 0
    rotation: int = 0
    refresh_hz: int = 3840

    SCANS: ClassVar[tuple[int, ...]] = (1, 2, 4, 8, 16, 32)

    def __post_init__(self) -> None:
        _check("module_w", self.module_w, 1, 512)
        _check("module_h", self.module_h, 1, 512)
        if self.scan not in self.SCANS or self.module_h % self.scan:
            raise PayloadError(f"scan={self.scan} must be one of {self.SCANS} and divide "
                               f"module_h={self.module_h}")
        _check("modules_x", self.modules_x, 1, 64)
        _check("modules_y", self.modules_y, 1, 64)
        _check("chain", self.chain, 0, 1)
        if self.rotation not in (0, 2):
            raise PayloadError(f"rotation={self.rotation} must be 0 or 2 (180 degrees)")
        _check("refresh_hz", self.refresh_hz, 30, 7680)

    @property
    def modules(self) -> int:
        """Modules on the card's chain."""
        return self.modules_x * self.modules_y


@dataclass(frozen=True)
class Brightness(Payload):
    """A card's global brightness, 0–65535 (``SET_BRIGHTNESS`` and ``GET_BRIGHTNESS``)."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<H")
    level: int

    def __post_init__(self) -> None:
        _check("level", self.level, 0, LEVEL_MAX)


@dataclass(frozen=True)
class TestPattern(Payload):
    """Show a built-in pattern at ``level`` instead of the video, for commissioning by eye."""

    __test__ = False  # not a pytest test class
    FORMAT: ClassVar[struct.Struct] = struct.Struct("<BH")
    pattern: int
    level: int = LEVEL_MAX

    def __post_init__(self) -> None:
        _check("pattern", self.pattern, 0, max(Pattern))
        _check("level", self.level, 0, LEVEL_MAX)


# ---------------------------------------------------------------- LED faults

@dataclass(frozen=True)
class PixelScan(Payload):
    """Ask for the LED fault bitmaps of ``row_count`` rows of one module, after ``DETECT_START``;
    an answer holds at most 640 bytes, so a module is read in slices."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<HHH")
    module: int
    first_row: int
    row_count: int

    def __post_init__(self) -> None:
        _check("module", self.module, 0, 0xFFFF)
        _check("first_row", self.first_row, 0, 0xFFFF)
        _check("row_count", self.row_count, 1, 0xFFFF)


PIXEL_SCAN_HEAD = struct.Struct("<HHHH")


def pixel_scan_rows_that_fit(width: int) -> int:
    """Most rows of a ``width``-pixel module one PIXEL_SCAN answer can carry."""
    rows = (MAX_PAYLOAD - PIXEL_SCAN_HEAD.size) // 3 * 8 // width
    while rows and PIXEL_SCAN_HEAD.size + 3 * math.ceil(width * rows / 8) > MAX_PAYLOAD:
        rows -= 1
    return rows


@dataclass(frozen=True)
class PixelScanReply:
    """Fault bitmaps of ``row_count`` rows: bit (y * width + x), LSB first, set = faulty."""

    module: int
    first_row: int
    row_count: int
    width: int
    red: bytes
    green: bytes
    blue: bytes

    def __post_init__(self) -> None:
        size = self.bitmap_size(self.width, self.row_count)
        for name in ("red", "green", "blue"):
            if len(getattr(self, name)) != size:
                raise PayloadError(f"{name} bitmap must be {size} bytes for "
                                   f"{self.width}x{self.row_count}")

    @staticmethod
    def bitmap_size(width: int, rows: int) -> int:
        return math.ceil(width * rows / 8)

    def pack(self) -> bytes:
        return (PIXEL_SCAN_HEAD.pack(self.module, self.first_row, self.row_count, self.width)
                + self.red + self.green + self.blue)

    @classmethod
    def unpack(cls, payload: bytes) -> PixelScanReply:
        if len(payload) < PIXEL_SCAN_HEAD.size:
            raise PayloadError(f"PIXEL_SCAN answer of {len(payload)} bytes has no header")
        module, first, rows, width = PIXEL_SCAN_HEAD.unpack_from(payload)
        size = cls.bitmap_size(width, rows)
        if len(payload) != PIXEL_SCAN_HEAD.size + 3 * size:
            raise PayloadError(f"PIXEL_SCAN answer for {width}x{rows} must be "
                               f"{PIXEL_SCAN_HEAD.size + 3 * size} bytes, got {len(payload)}")
        at = PIXEL_SCAN_HEAD.size
        maps = [payload[at + i * size: at + (i + 1) * size] for i in range(3)]
        return cls(module, first, rows, width, *maps)

    def faults(self) -> list[tuple[int, int, str]]:
        """``(x, y, channel)`` of every faulty LED, y in module rows, channel 'r'/'g'/'b'."""
        found = []
        for channel, bitmap in zip("rgb", (self.red, self.green, self.blue)):
            value = int.from_bytes(bitmap, "little")
            while value:
                bit = (value & -value).bit_length() - 1
                value &= value - 1
                if bit < self.width * self.row_count:
                    found.append((bit % self.width, self.first_row + bit // self.width, channel))
        return sorted(found, key=lambda f: (f[1], f[0], f[2]))


# ---------------------------------------------------------------- video output (0x14)

@dataclass(frozen=True)
class OutputReply(Payload):
    """What a card's LEDs do with the video (``GET_OUTPUT``, spec section 5, December 2026):
    the current they draw by the card's own sensor, and the video frames shown and dropped
    (incomplete or late) since boot.

    The current is the card's *measurement*, which is what lets the controller check its own
    estimate from the frame content against something it did not compute; ``0xFFFFFFFF``
    says the card has no sensor (:attr:`milliamps` is then ``None``).  A frame counter that
    stops while video flows is how a card that receives video but shows none is found.
    """

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<III")
    current_ma: int
    frames_shown: int
    frames_dropped: int

    NO_SENSOR: ClassVar[int] = 0xFFFF_FFFF

    def __post_init__(self) -> None:
        _check("current_ma", self.current_ma, 0, 2**32 - 1)
        _check("frames_shown", self.frames_shown, 0, 2**32 - 1)
        _check("frames_dropped", self.frames_dropped, 0, 2**32 - 1)

    @property
    def milliamps(self) -> int | None:
        """The measured current, or ``None`` for a card without a current sensor."""
        return None if self.current_ma == self.NO_SENSOR else self.current_ma


# ---------------------------------------------------------------- the command table

@dataclass(frozen=True)
class CommandSpec:
    """What the engine needs to know of a command: types, answer deadline, answer size."""

    cmd: Cmd
    request: type[Message]
    response: type[Message] | None
    deadline_s: float = 0.005
    #: Largest answer payload, for the timeout; error texts are allowed 64 bytes.
    max_response: int = 64

    @property
    def name(self) -> str:
        return self.cmd.name


COMMANDS: dict[int, CommandSpec] = {s.cmd: s for s in (
    CommandSpec(Cmd.PING, Empty, PingReply),
    CommandSpec(Cmd.GET_STATUS, Empty, StatusReply),
    CommandSpec(Cmd.SET_ADDRESS, SetAddress, None),
    CommandSpec(Cmd.REBOOT, Empty, None),
    CommandSpec(Cmd.GET_CONFIG, Empty, CardConfig),
    CommandSpec(Cmd.SET_CONFIG, CardConfig, None),
    CommandSpec(Cmd.SET_BRIGHTNESS, Brightness, None),
    CommandSpec(Cmd.GET_BRIGHTNESS, Empty, Brightness),
    CommandSpec(Cmd.GET_OUTPUT, Empty, OutputReply),
    CommandSpec(Cmd.TEST_PATTERN, TestPattern, None),
    CommandSpec(Cmd.PIXEL_SCAN, PixelScan, PixelScanReply, max_response=MAX_PAYLOAD),
    CommandSpec(Cmd.DETECT_START, Empty, None),
    CommandSpec(Cmd.FW_BEGIN, FwBegin, None, deadline_s=0.250),
    CommandSpec(Cmd.FW_CHUNK, FwChunk, None),
    CommandSpec(Cmd.FW_STATUS, Empty, FwStatusReply, max_response=MAX_PAYLOAD),
    CommandSpec(Cmd.FW_COMMIT, Empty, None, deadline_s=1.0),
    CommandSpec(Cmd.FW_CONFIRM, Empty, None),
    CommandSpec(Cmd.FW_ABORT, Empty, None),
    CommandSpec(Cmd.GET_EVENTS, GetEvents, EventsReply,
                max_response=1 + MAX_EVENTS_PER_ANSWER * EVENT.size),
)}


def spec_of(cmd: int) -> CommandSpec:
    """The table entry for ``cmd``; :class:`PayloadError` for a code the master does not know."""
    try:
        return COMMANDS[cmd]
    except KeyError:
        raise PayloadError(f"unknown command 0x{cmd:02X}") from None


def decode_response(cmd: int, payload: bytes) -> Message | None:
    """Parse a successful answer to ``cmd``; ``None`` for commands that answer empty."""
    spec = spec_of(cmd)
    if spec.response is None:
        if payload:
            raise PayloadError(f"{spec.name} answers empty, got {len(payload)} bytes")
        return None
    return spec.response.unpack(payload)


def decode_error(payload: bytes) -> tuple[int, str]:
    """``(code, text)`` of an ``ERR`` answer; an empty one is reported as code 0."""
    if not payload:
        return 0, "error answer without a code"
    return payload[0], payload[1:].decode("utf-8", "replace")
