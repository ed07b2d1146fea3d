"""The LWP/1 bus master: one transaction engine over any pyserial URL.

There is exactly one code path for a transaction (:meth:`Bus.call`), used by
the command line, the service and the tests alike; async callers run it in a
worker thread, and a lock keeps it to one transaction at a time as the
half-duplex bus demands.

How a unicast transaction runs (``docs/protocol.md`` explains the choices):

1. pending bytes are read and dropped as late (answers to an earlier try), and
   any partial frame is forgotten: a card never talks unprompted, so whatever
   precedes our request cannot belong to its answer;
2. the request is written; the engine keeps the time the last written byte
   leaves the wire (``_line_free_at``), from the byte count and baud rate, so
   that bytes still queued behind a broadcast are accounted for;
3. the deadline is that time plus the card's answer time for the command
   (5 ms, 250 ms for ``FW_BEGIN``, 1 s for ``FW_COMMIT``), plus the wire time
   of the largest answer and a configurable port latency;
4. frames arriving before the deadline are matched on ``seq``, ``cmd`` and
   ``src``; others are counted as late and discarded;
5. on timeout the same bytes (same ``seq``) are sent again, up to ``retries``
   more times, and the card's duplicate memory keeps the command from running
   twice.  An error answer is not retried: it is raised as :class:`CardError`.
"""

from __future__ import annotations

import errno
import logging
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, overload
from dataclasses import dataclass, field
from statistics import fmean

import serial
import serial.rs485

from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD, hex_address, is_card_address
from controller.errors import BusTimeout, CardError, PayloadError, PortError
from controller.percentile import percentile
from controller.protocol import commands as c
from controller.protocol import portlock
from controller.protocol.framing import (
    ADDR_BROADCAST,
    ADDR_CONTROLLER,
    Deframer,
    Frame,
    encode,
    encoded_size,
)

log = logging.getLogger("ledwarden.bus")

DEFAULT_BAUD = 921_600
MIN_BAUD = 115_200
MAX_BAUD = 3_000_000
DEFAULT_RETRIES = 3
#: Allowance for the port's own delay.  USB adapters hold short reads back for
#: their latency timer (16 ms by default on FTDI chips); a UART, a
#: pseudo-terminal or a local TCP port hands bytes over at once.
USB_LATENCY_S = 0.020
DEFAULT_LATENCY_S = 0.005
BITS_PER_BYTE = 10  # 8N1: start, eight data bits, stop
#: The most one read takes after its first byte: more than any answer, so one read per answer.
READ_CHUNK_BYTES = 4096

#: ``trace(kind, frame_or_bytes, monotonic_time)``; kinds: tx, rx, late, echo, timeout, and
#: idle (with the seconds of a deliberate pause instead of a frame).
TraceHook = Callable[[str, object, float], None]


@dataclass(frozen=True)
class RS485Config:
    """pyserial's RS-485 mode: the driver-enable line follows RTS while sending."""

    rts_level_for_tx: bool = True
    rts_level_for_rx: bool = False
    delay_before_tx: float | None = None
    delay_before_rx: float | None = None

    def settings(self) -> serial.rs485.RS485Settings:
        return serial.rs485.RS485Settings(
            rts_level_for_tx=self.rts_level_for_tx,
            rts_level_for_rx=self.rts_level_for_rx,
            delay_before_tx=self.delay_before_tx,
            delay_before_rx=self.delay_before_rx,
        )


#: Round-trip times kept per card (the newest).
RTT_SAMPLES = 1000


@dataclass
class LinkStats:
    """Per-card link quality, as the quarterly inspection reads it."""

    requests: int = 0      # transactions started
    retries: int = 0       # extra tries after a timeout
    timeouts: int = 0      # tries that got no matching answer in time
    failures: int = 0      # transactions that ran out of tries
    errors: int = 0        # error answers (RESP|ERR)
    bad_frames: int = 0    # frames dropped by the deframer during this card's transactions
    late: int = 0          # well-formed answers that matched no outstanding request
    rtt_s: deque[float] = field(default_factory=lambda: deque(maxlen=RTT_SAMPLES))

    def as_dict(self) -> dict[str, Any]:
        rtts = sorted(self.rtt_s)

        def ms(seconds: float) -> float:
            return round(seconds * 1000, 3)

        rtt_ms = None
        if rtts:
            p99 = percentile(rtts, 0.99)
            assert p99 is not None  # only an empty list has none
            rtt_ms = {"min": ms(rtts[0]), "mean": ms(fmean(rtts)), "p99": ms(p99),
                      "max": ms(rtts[-1]), "samples": len(rtts)}
        return {
            "requests": self.requests, "retries": self.retries, "timeouts": self.timeouts,
            "failures": self.failures, "errors": self.errors, "bad_frames": self.bad_frames,
            "late": self.late,
            "rtt_ms": rtt_ms,
        }


@dataclass(frozen=True)
class BusStatistics:
    """The bus's counters at one instant, copied under the bus's statistics lock.

    The engine's counters are written by the bus thread in the middle of a
    transaction; a reader in another thread (the service's ``status`` and
    ``cards`` views) that walked the live objects would rely on the GIL to
    see whole numbers and could meet a ``deque`` mutated while it sorts it.
    A snapshot is consistent across cards and owes nothing to the GIL.
    """

    #: Per-card link counters, each an independent copy.
    links: dict[int, LinkStats]
    #: Frames the deframer discarded, by :class:`~controller.errors.FrameError` reason.
    dropped: dict[str, int]
    #: Valid frames the deframer produced.
    frames: int
    #: Operations the service's bus owner ran (0 for a bus used without one).
    operations: int = 0


def default_latency(url: str) -> float:
    """The latency allowance for a port, judged from its name: udev's stable names for a USB
    adapter (``/dev/serial/by-id/usb-FTDI_…``, ``by-path/…-usb-0:1.2…``) count as USB too."""
    usb = re.search(r"ttyUSB|ttyACM|cu\.usb|COM\d|[/-]usb-", url, re.IGNORECASE)
    return USB_LATENCY_S if usb else DEFAULT_LATENCY_S


def open_port(url: str, baud: int = DEFAULT_BAUD, rs485: RS485Config | None = None) -> serial.SerialBase:
    """Open a device path or any pyserial URL (``socket://``, ``loop://``, ``spy://`` …), 8N1.

    A device is opened exclusively (``flock``, see :mod:`~controller.protocol.portlock`):
    a second master on the same line is refused with the holder's PID.
    """
    if not MIN_BAUD <= baud <= MAX_BAUD:
        raise PortError(f"baud rate {baud} is outside {MIN_BAUD}..{MAX_BAUD}")
    device = portlock.device_of(url)
    try:
        port = serial.serial_for_url(url, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                     timeout=0, do_not_open=True,
                                     **({"exclusive": True} if device else {}))
        if rs485 is not None:
            port.rs485_mode = rs485.settings()
        port.open()
        _no_delay(port)
    except (serial.SerialException, ValueError, OSError) as exc:
        if device and getattr(exc, "errno", None) in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise portlock.in_use(device, portlock.flock_holder(device)) from None
        raise PortError(f"cannot open {url}: {exc}; check the device path or URL and that no "
                        f"other program holds the port") from None
    return port


def _no_delay(port: serial.SerialBase) -> None:
    """Turn off Nagle's algorithm on a ``socket://`` port.

    A request that goes unanswered leaves its TCP segment unacknowledged
    (delayed ACK), and Nagle would then hold the retry back for ~40 ms,
    until the retries of a noisy line pile up and arrive together.  A serial
    line sends each byte at once; so must the socket standing in for it.
    pyserial keeps the socket in ``_socket`` and offers no option for this.
    """
    sock = getattr(port, "_socket", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _waiting(port: serial.SerialBase) -> int:
    """Bytes ready to read.  Every concrete pyserial port has ``in_waiting``; the abstract
    ``SerialBase``, the type ``serial_for_url`` is declared to return, does not."""
    waiting: int = getattr(port, "in_waiting")
    return waiting


#: What the master allows a card for each broadcast it hears: this much per frame and per
#: byte.  The project's own card (MicroPython on an RP2040) needs about 3.9 ms after a
#: 512-byte chunk and 9.75 µs a byte while it arrives (docs/firmware.md, "CPU time"); a byte
#: is 10.85 µs on the wire at 921 600 baud, so back-to-back chunks would outrun it.
CARD_FRAME_S = 0.004
CARD_BYTE_S = 10e-6


class Bus:
    """The master of one LWP/1 bus.

    ``port`` is a URL or device path (opened with :func:`open_port`) or an
    already open pyserial port object.  Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, port: str | serial.SerialBase, baud: int = DEFAULT_BAUD, *,
                 retries: int = DEFAULT_RETRIES, latency: float | None = None,
                 rs485: RS485Config | None = None, trace: TraceHook | None = None,
                 broadcast_gap: float = 0.0005) -> None:
        #: The UUCP lock file held for a device port (None for URLs and given port objects).
        self._lock_file = None
        if isinstance(port, str):
            device = portlock.device_of(port)
            self._lock_file = portlock.LockFile.take(device) if device else None
            try:
                self.port = open_port(port, baud, rs485)
            except PortError:
                self._release_lock_file()
                raise
        else:
            self.port = port
        self.baud = baud
        self.retries = retries
        self.latency = latency if latency is not None else default_latency(
            port if isinstance(port, str) else str(getattr(port, "port", "")))
        self.broadcast_gap = broadcast_gap
        self.trace = trace
        self.deframer = Deframer()
        self.stats: dict[int, LinkStats] = {}
        #: Taken by every write to ``stats`` and to the deframer's counters, and by
        #: :meth:`snapshot`: the counters are written in the bus thread and read by others.
        #: Never held across I/O, so a reader waits at most for a few increments.
        self._stats_lock = threading.Lock()
        self._seq = secrets.randbelow(0x10000)  # a restarted master must not hit a card's duplicate memory
        self._line_free_at = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.port.close()
        self._release_lock_file()

    def _release_lock_file(self) -> None:
        if self._lock_file is not None:
            self._lock_file.release()
            self._lock_file = None

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ public API

    # The answer's type follows from ``cmd`` through the command table (``spec_of(cmd).response``),
    # which a type checker cannot read; these overloads spell the table out for the commands that
    # answer, so ``bus.call(a, Cmd.GET_CONFIG).scan`` is checked.  A command held in a variable,
    # or one answered with nothing, falls through to the last, untyped form.
    @overload
    def call(self, address: int, cmd: Literal[c.Cmd.PING], request: c.Message | None = None, *,
             retries: int | None = None) -> c.PingReply: ...
    @overload
    def call(self, address: int, cmd: Literal[c.Cmd.GET_STATUS], request: c.Message | None = None,
             *, retries: int | None = None) -> c.StatusReply: ...
    @overload
    def call(self, address: int, cmd: Literal[c.Cmd.GET_CONFIG], request: c.Message | None = None,
             *, retries: int | None = None) -> c.CardConfig: ...
    @overload
    def call(self, address: int, cmd: Literal[c.Cmd.GET_BRIGHTNESS],
             request: c.Message | None = None, *, retries: int | None = None) -> c.Brightness: ...
    @overload
    def call(self, address: int, cmd: Literal[c.Cmd.PIXEL_SCAN], request: c.Message | None = None,
             *, retries: int | None = None) -> c.PixelScanReply: ...
    @overload
    def call(self, address: int, cmd: Literal[c.Cmd.FW_STATUS], request: c.Message | None = None,
             *, retries: int | None = None) -> c.FwStatusReply: ...
    @overload
    def call(self, address: int, cmd: Literal[c.Cmd.GET_EVENTS], request: c.Message | None = None,
             *, retries: int | None = None) -> c.EventsReply: ...
    @overload
    def call(self, address: int, cmd: int, request: c.Message | None = None, *,
             retries: int | None = None) -> Any: ...

    def call(self, address: int, cmd: int, request: c.Message | None = None, *,
             retries: int | None = None) -> Any:
        """Run one unicast transaction and return the decoded answer (``None`` if empty).

        Raises :class:`BusTimeout` when no try is answered, :class:`CardError`
        when the card answers with an error, :class:`PayloadError` for a
        request of the wrong type or an answer that does not parse.
        """
        if not is_card_address(address):
            raise PayloadError(f"card address {hex_address(address)} is outside "
                               f"{hex_address(ADDR_FIRST_CARD)}..{hex_address(ADDR_LAST_CARD)}")
        spec = c.spec_of(cmd)
        payload = self._payload(spec, request)
        tries = 1 + (self.retries if retries is None else retries)
        with self._lock:
            frame = Frame(dst=address, src=ADDR_CONTROLLER, seq=self._next_seq(), cmd=spec.cmd,
                          payload=payload)
            answer = self._transact(frame, spec, tries)
        if answer.is_error:
            code, text = c.decode_error(answer.payload)
            raise CardError(address, spec.name, code, c.error_name(code), text)
        return c.decode_response(spec.cmd, answer.payload)

    def broadcast(self, cmd: int, request: c.Message | None = None) -> None:
        """Send a request to every card (``dst = 0xFF``); broadcasts are never answered.

        Nothing says when the cards are done with it, so the line then stays
        idle for :meth:`broadcast_pause`, traced as ``idle``.
        """
        spec = c.spec_of(cmd)
        with self._lock:
            frame = Frame(dst=ADDR_BROADCAST, src=ADDR_CONTROLLER, seq=self._next_seq(),
                          cmd=spec.cmd, payload=self._payload(spec, request))
            self._drain()
            wire = encode(frame)
            self._send(wire, frame)
            pause = self.broadcast_pause(len(wire))
            self._line_free_at += pause
            self._emit("idle", pause)

    def broadcast_pause(self, nbytes: int) -> float:
        """The idle time after a broadcast of ``nbytes`` wire bytes: at least ``broadcast_gap``,
        and long enough for a card to have spent ``CARD_FRAME_S`` plus ``CARD_BYTE_S`` a byte on
        it (docs/protocol.md, "Pacing broadcasts"); a card that falls behind the line loses
        what overflows its receive buffer, and no answer would tell."""
        card_s = CARD_FRAME_S + nbytes * CARD_BYTE_S
        return max(self.broadcast_gap, card_s - self.wire_time(nbytes))

    def stats_for(self, address: int) -> LinkStats:
        """The live counters of one card, created on first use.  For the bus thread (and
        code running in it, such as a self-test's timed pings); other threads read a
        :meth:`snapshot`."""
        with self._stats_lock:
            return self.stats.setdefault(address, LinkStats())

    def snapshot(self) -> BusStatistics:
        """Every counter copied at one instant under the statistics lock (see
        :class:`BusStatistics`): safe to call from any thread while transactions run."""
        with self._stats_lock:     # only the raw copies under the lock: the bus thread waits
            raw = [(a, (s.requests, s.retries, s.timeouts, s.failures, s.errors, s.bad_frames,
                        s.late), list(s.rtt_s)) for a, s in self.stats.items()]
            dropped, frames = dict(self.deframer.dropped), self.deframer.frames
        links = {a: LinkStats(*counts, deque(rtts, maxlen=RTT_SAMPLES)) for a, counts, rtts in raw}
        return BusStatistics(links=links, dropped=dropped, frames=frames)

    def wire_time(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take on the line at the configured baud rate (8N1)."""
        return nbytes * BITS_PER_BYTE / self.baud

    def wait_idle(self) -> None:
        """Block until every byte written so far has left the wire."""
        delay = self._line_free_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Leave the line idle for ``seconds`` because a card needs the time (an erase, say);
        traced as ``idle`` so a trace can tell waiting from talking."""
        self._emit("idle", seconds)
        time.sleep(seconds)

    # ------------------------------------------------------------ internals

    @staticmethod
    def _payload(spec: c.CommandSpec, request: c.Message | None) -> bytes:
        if request is None:
            request = spec.request()
        if not isinstance(request, spec.request):
            raise PayloadError(f"{spec.name} takes a {spec.request.__name__} request, "
                               f"not {type(request).__name__}")
        return request.pack()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _emit(self, kind: str, item: object) -> None:
        if self.trace is not None:
            self.trace(kind, item, time.monotonic())

    def _send(self, data: bytes, frame: Frame) -> float:
        """Write ``data`` once the line is free (so a broadcast's pause is idle line, not only
        bookkeeping); return the monotonic time its last byte leaves the wire."""
        self.wait_idle()
        now = time.monotonic()
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"writing to the bus failed: {exc}") from None
        self._line_free_at = max(now, self._line_free_at) + self.wire_time(len(data))
        self._emit("tx", frame)
        return self._line_free_at

    def _read_some(self, timeout: float) -> bytes:
        """What has arrived, waiting up to ``timeout`` for the first byte.

        After the first read, whatever else is there is taken without waiting: pyserial's
        ``socket://`` port (a TCP serial server) reports "one or more" bytes waiting, so a
        read sized by ``in_waiting`` alone took a 650-byte answer one byte per call, slower
        than the line delivers it, and a long answer missed its window.
        """
        try:
            self.port.timeout = max(0.0, timeout)
            first = self.port.read(max(1, _waiting(self.port)))
            if not first:
                return first
            self.port.timeout = 0
            return first + self.port.read(READ_CHUNK_BYTES)
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"reading from the bus failed: {exc}") from None

    def _drain(self) -> None:
        """Drop what arrived between transactions (late answers) and any partial frame."""
        while True:
            try:
                waiting = _waiting(self.port)
            except (serial.SerialException, OSError) as exc:
                raise PortError(f"reading from the bus failed: {exc}") from None
            if not waiting:
                break
            for frame in self._deframe(self._read_some(0)):
                self._discard(frame, None)
        self.deframer.reset()

    def _discard(self, frame: Frame, stats: LinkStats | None) -> None:
        if not frame.is_response:
            self._emit("echo", frame)  # our own request, echoed by a half-duplex adapter
            return
        owner = stats if stats is not None else self.stats_for(frame.src)
        with self._stats_lock:
            owner.late += 1
        self._emit("late", frame)

    def _deframe(self, chunk: bytes) -> list[Frame]:
        """The frames ``chunk`` completes, fed under the statistics lock (the deframer counts
        what it drops); the read that produced ``chunk`` happened outside it."""
        with self._stats_lock:
            return list(self.deframer.feed(chunk))

    def _transact(self, frame: Frame, spec: c.CommandSpec, tries: int) -> Frame:
        stats = self.stats_for(frame.dst)
        with self._stats_lock:
            stats.requests += 1
        data = encode(frame)
        answer_window = spec.deadline_s + self.wire_time(encoded_size(spec.max_response)) + self.latency
        for attempt in range(tries):
            if attempt:
                with self._stats_lock:
                    stats.retries += 1
            self._drain()
            started = time.monotonic()
            deadline = self._send(data, frame) + answer_window
            dropped_before = self.deframer.dropped_total
            answer = self._await(frame, deadline, stats)
            with self._stats_lock:
                stats.bad_frames += self.deframer.dropped_total - dropped_before
                if answer is not None:
                    stats.rtt_s.append(time.monotonic() - started)
                    if answer.is_error:
                        stats.errors += 1
                else:
                    stats.timeouts += 1
            if answer is not None:
                return answer
            self._emit("timeout", frame)
        with self._stats_lock:
            stats.failures += 1
        raise BusTimeout(frame.dst, spec.name, tries)

    def _await(self, request: Frame, deadline: float, stats: LinkStats) -> Frame | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            for frame in self._deframe(self._read_some(remaining)):
                if (frame.is_response and frame.seq == request.seq and frame.cmd == request.cmd
                        and frame.src == request.dst and frame.dst == ADDR_CONTROLLER):
                    self._emit("rx", frame)
                    return frame
                self._discard(frame, stats)


def log_trace(kind: str, item: object, when: float) -> None:
    """A trace hook that writes bus traffic to the ``ledwarden.bus`` logger at DEBUG."""
    if isinstance(item, Frame):
        name = c.COMMANDS[item.cmd].name if item.cmd in c.COMMANDS else f"0x{item.cmd:02X}"
        log.debug("%-7s %s dst=%02X src=%02X seq=%04X flags=%d len=%d %s", kind, name, item.dst,
                  item.src, item.seq, item.flags, len(item.payload), item.payload[:32].hex())
    else:
        log.debug("%-7s %r", kind, item)
